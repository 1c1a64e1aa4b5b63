import Foundation
import GodwitGGUF

/// A tiny synthetic Llama-architecture GGUF for unit tests of the model and tokenizer code.
///
/// ```swift
/// let path = try TinyModel(layers: 2, embedding: 64, heads: 4, kvHeads: 2, ff: 128, vocab: 300).write()
/// defer { try? FileManager.default.removeItem(atPath: path) }
/// let file = try GGUFFile(path: path)
/// ```
///
/// **Metadata** (in this order, types as llama.cpp's converter writes them):
/// `general.architecture = "llama"`, `general.name`, `llama.block_count`, `llama.context_length`,
/// `llama.embedding_length`, `llama.feed_forward_length`, `llama.attention.head_count`,
/// `llama.attention.head_count_kv` (uint32), `llama.rope.freq_base`,
/// `llama.attention.layer_norm_rms_epsilon` (float32), `general.file_type` (0 = all F32, 1 = mostly F16),
/// `llama.vocab_size`, `llama.rope.dimension_count` (= embedding / heads), then a GPT-2 tokenizer:
/// `tokenizer.ggml.model = "gpt2"`, `tokenizer.ggml.pre = "default"`, `tokenizer.ggml.add_bos_token`,
/// `tokenizer.ggml.tokens`, `tokenizer.ggml.token_type` (int32), `tokenizer.ggml.merges`,
/// `tokenizer.ggml.bos_token_id`, `tokenizer.ggml.eos_token_id` (uint32).
///
/// **Vocabulary** (`vocab` ≥ 259 tokens): ids 0...255 are the 256 byte-level tokens in byte order
/// (GPT-2's byte-to-unicode alphabet, so byte 0x20 is "Ġ"), ids 256..<vocab-2 are merged tokens,
/// one per merge in `merges` order, and the last two ids are `<s>` (bos) and `</s>` (eos), token
/// type 3 (control); all others are type 1 (normal).
///
/// **Tensors** (llama.cpp names, ggml dims innermost first, so a weight of out×in is `[in, out]`):
/// `token_embd.weight [embedding, vocab]`, per layer N `blk.N.attn_norm.weight [embedding]`,
/// `blk.N.attn_q.weight [embedding, heads·headDim]`, `blk.N.attn_k.weight` and `blk.N.attn_v.weight
/// [embedding, kvHeads·headDim]`, `blk.N.attn_output.weight [heads·headDim, embedding]`,
/// `blk.N.ffn_norm.weight [embedding]`, `blk.N.ffn_gate.weight` and `blk.N.ffn_up.weight [embedding, ff]`,
/// `blk.N.ffn_down.weight [ff, embedding]`, then `output_norm.weight [embedding]` and, only when
/// `tiedEmbeddings` is false, `output.weight [embedding, vocab]`. Matrices are stored as `weightType`
/// (F32 or F16), norms always as F32 (as llama.cpp does).
///
/// **Values** are deterministic for a given `seed`: one SplitMix64 stream in the tensor order above;
/// matrix entries are uniform in [-1, 1) / √dims[0], norm weights 1 + uniform [-0.1, 0.1).
/// F16 tensors hold the same draws rounded to nearest-even.
public struct TinyModel: Sendable {
    public var layers: Int
    public var embedding: Int
    public var heads: Int
    public var kvHeads: Int
    public var ff: Int
    public var vocab: Int
    public var seed: UInt64
    /// `.f32` or `.f16`, used for every matrix including the embedding.
    public var weightType: GGMLType
    public var contextLength = 256
    public var ropeFreqBase: Float = 10_000
    public var rmsEpsilon: Float = 1e-5
    public var addBOS = true
    /// When true (default) there is no `output.weight`: the output projection reuses `token_embd.weight`.
    public var tiedEmbeddings = true

    public init(layers: Int = 2, embedding: Int = 64, heads: Int = 4, kvHeads: Int = 2, ff: Int = 128,
                vocab: Int = 300, seed: UInt64 = 1, weightType: GGMLType = .f32) {
        self.layers = layers
        self.embedding = embedding
        self.heads = heads
        self.kvHeads = kvHeads
        self.ff = ff
        self.vocab = vocab
        self.seed = seed
        self.weightType = weightType
    }

    public var headDim: Int { embedding / heads }
    public var bosID: Int { vocab - 2 }
    public var eosID: Int { vocab - 1 }

    public struct ConfigError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Checks the shape parameters; `writer()` and `write(to:)` call it.
    public func validate() throws(ConfigError) {
        func fail(_ s: String) -> ConfigError { ConfigError(description: "TinyModel: \(s)") }
        guard layers >= 1, embedding >= 1, heads >= 1, kvHeads >= 1, ff >= 1 else {
            throw fail("layers, embedding, heads, kvHeads and ff must all be positive")
        }
        guard embedding % heads == 0 else { throw fail("embedding \(embedding) is not a multiple of heads \(heads)") }
        guard heads % kvHeads == 0 else { throw fail("heads \(heads) is not a multiple of kvHeads \(kvHeads)") }
        guard vocab >= 259 else { throw fail("vocab \(vocab) must be at least 259 (256 bytes, a merge, <s>, </s>)") }
        guard weightType == .f32 || weightType == .f16 else { throw fail("weightType must be f32 or f16, not \(weightType)") }
    }

    // MARK: Tokenizer

    /// GPT-2's byte-to-unicode table: the token text of each byte 0...255.
    public static let byteTokens: [String] = {
        var direct = Set<Int>()
        for r in [33...126, 161...172, 174...255] { direct.formUnion(r) }
        var next = 256
        return (0..<256).map { b in
            if direct.contains(b) { return String(UnicodeScalar(UInt8(b))) }
            defer { next += 1 }
            return String(UnicodeScalar(UInt32(next))!)
        }
    }()

    /// The merges, each "left right"; merge i produces token id 256 + i.
    public var merges: [String] { Self.makeMerges(count: vocab - 258).map { "\($0.0) \($0.1)" } }

    /// All `vocab` token texts.
    public var tokens: [String] {
        Self.byteTokens + Self.makeMerges(count: vocab - 258).map { $0.0 + $0.1 } + ["<s>", "</s>"]
    }

    /// A few English-like merges first, then every "Ġ"/letter + letter pair, then merged tokens
    /// extended by a letter, until `count` merges exist. Both sides of a merge are always earlier tokens.
    static func makeMerges(count: Int) -> [(String, String)] {
        let letters = "etaoinsrhldcumfpgwybvkxjqz".map(String.init)
        let curated = [("Ġ", "t"), ("h", "e"), ("i", "n"), ("e", "r"), ("Ġ", "a"), ("o", "n"), ("Ġt", "he"),
                       ("r", "e"), ("a", "t"), ("e", "n"), ("o", "r"), ("Ġ", "s"), ("i", "s"), ("Ġ", "w")]
        var out = [(String, String)]()
        var seen = Set<String>()
        var made = [String]()
        func add(_ a: String, _ b: String) {
            guard out.count < count, seen.insert(a + b).inserted else { return }
            out.append((a, b))
            made.append(a + b)
        }
        for (a, b) in curated { add(a, b) }
        for a in ["Ġ"] + letters { for b in letters { add(a, b) } }
        var i = 0
        while out.count < count {
            for b in letters { add(made[i], b) }
            i += 1
        }
        return out
    }

    // MARK: Building

    /// The model as a `GGUFWriter`, so a test can change metadata or tensors before writing.
    public func writer() throws -> GGUFWriter {
        try validate()
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.set("general.name", .string("tiny-llama"))
        w.set("llama.block_count", .uint32(UInt32(layers)))
        w.set("llama.context_length", .uint32(UInt32(contextLength)))
        w.set("llama.embedding_length", .uint32(UInt32(embedding)))
        w.set("llama.feed_forward_length", .uint32(UInt32(ff)))
        w.set("llama.attention.head_count", .uint32(UInt32(heads)))
        w.set("llama.attention.head_count_kv", .uint32(UInt32(kvHeads)))
        w.set("llama.rope.freq_base", .float32(ropeFreqBase))
        w.set("llama.attention.layer_norm_rms_epsilon", .float32(rmsEpsilon))
        w.set("general.file_type", .uint32(weightType == .f16 ? 1 : 0))
        w.set("llama.vocab_size", .uint32(UInt32(vocab)))
        w.set("llama.rope.dimension_count", .uint32(UInt32(headDim)))

        w.set("tokenizer.ggml.model", .string("gpt2"))
        w.set("tokenizer.ggml.pre", .string("default"))
        w.set("tokenizer.ggml.add_bos_token", .bool(addBOS))
        w.set("tokenizer.ggml.tokens", .array(.string(tokens)))
        w.set("tokenizer.ggml.token_type", .array(.int32((0..<vocab).map { $0 >= bosID ? 3 : 1 })))
        w.set("tokenizer.ggml.merges", .array(.string(merges)))
        w.set("tokenizer.ggml.bos_token_id", .uint32(UInt32(bosID)))
        w.set("tokenizer.ggml.eos_token_id", .uint32(UInt32(eosID)))

        var rng = SplitMix64(seed: seed)
        func matrix(_ name: String, _ cols: Int, _ rows: Int) throws {
            let scale = 1 / Float(cols).squareRoot()
            let values = (0..<cols * rows).map { _ in rng.nextSigned() * scale }
            if weightType == .f16 {
                var data = [UInt8]()
                data.reserveCapacity(values.count * 2)
                for v in values {
                    let h = Self.float16Bits(v)
                    data.append(UInt8(h & 0xFF))
                    data.append(UInt8(h >> 8))
                }
                try w.addTensor(name: name, type: .f16, dims: [cols, rows], data: data)
            } else {
                try w.addTensor(name: name, floats: values, dims: [cols, rows])
            }
        }
        func norm(_ name: String) throws {
            try w.addTensor(name: name, floats: (0..<embedding).map { _ in 1 + 0.1 * rng.nextSigned() }, dims: [embedding])
        }
        let qDim = heads * headDim, kvDim = kvHeads * headDim
        try matrix("token_embd.weight", embedding, vocab)
        for n in 0..<layers {
            try norm("blk.\(n).attn_norm.weight")
            try matrix("blk.\(n).attn_q.weight", embedding, qDim)
            try matrix("blk.\(n).attn_k.weight", embedding, kvDim)
            try matrix("blk.\(n).attn_v.weight", embedding, kvDim)
            try matrix("blk.\(n).attn_output.weight", qDim, embedding)
            try norm("blk.\(n).ffn_norm.weight")
            try matrix("blk.\(n).ffn_gate.weight", embedding, ff)
            try matrix("blk.\(n).ffn_up.weight", embedding, ff)
            try matrix("blk.\(n).ffn_down.weight", ff, embedding)
        }
        try norm("output_norm.weight")
        if !tiedEmbeddings { try matrix("output.weight", embedding, vocab) }
        return w
    }

    /// Writes the model to `path`, or to a fresh file in the temporary directory; returns the path.
    /// The caller owns the file (delete it when done).
    @discardableResult
    public func write(to path: String? = nil) throws -> String {
        let target = path ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("godwit-tiny-\(UUID().uuidString).gguf").path
        try writer().write(to: target)
        return target
    }

    /// IEEE half-precision bits of `f`, rounded to nearest-even (portable: no `Float16` needed).
    public static func float16Bits(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        let sign = UInt16(truncatingIfNeeded: (x >> 16) & 0x8000)
        let exp = Int((x >> 23) & 0xFF)
        var mant = x & 0x7F_FFFF
        if exp == 0xFF { return sign | 0x7C00 | (mant != 0 ? 0x200 : 0) }
        let e = exp - 127 + 15
        if e >= 0x1F { return sign | 0x7C00 }
        if e <= 0 {  // subnormal half (or zero)
            if e < -10 { return sign }
            mant |= 0x80_0000
            let shift = UInt32(14 - e)
            var h = mant >> shift
            let rem = mant & ((1 << shift) - 1), half = UInt32(1) << (shift - 1)
            if rem > half || (rem == half && h & 1 == 1) { h += 1 }
            return sign | UInt16(h)
        }
        var h = UInt32(e) << 10 | (mant >> 13)
        let rem = mant & 0x1FFF
        if rem > 0x1000 || (rem == 0x1000 && h & 1 == 1) { h += 1 }  // a carry into the exponent is correct
        return sign | UInt16(h)
    }
}

/// SplitMix64: tiny, seedable, identical on every platform.
fileprivate struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [-1, 1) with 24 random bits.
    mutating func nextSigned() -> Float { Float(Int64(next() >> 40) - (1 << 23)) / Float(1 << 23) }
}
