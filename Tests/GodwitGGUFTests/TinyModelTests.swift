import Foundation
import GodwitGGUF
import GodwitTestSupport
import Testing

/// The tiny Llama builder from GodwitTestSupport writes what its documentation promises.
@Suite struct TinyModelTests {
    @Test(arguments: [GGMLType.f32, .f16])
    func writesALlamaModel(weightType: GGMLType) throws {
        let m = TinyModel(layers: 3, embedding: 48, heads: 6, kvHeads: 2, ff: 96, vocab: 300, seed: 7, weightType: weightType)
        let path = try m.write()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try GGUFFile(path: path)

        #expect(file.metadataKeys.first == "general.architecture")
        #expect(try file.string("general.architecture") == "llama")
        #expect(try file.int("llama.block_count") == 3)
        #expect(try file.int("llama.embedding_length") == 48)
        #expect(try file.int("llama.feed_forward_length") == 96)
        #expect(try file.int("llama.attention.head_count") == 6)
        #expect(try file.int("llama.attention.head_count_kv") == 2)
        #expect(try file.int("llama.rope.dimension_count") == 8)
        #expect(try file.int("llama.context_length") == 256)
        #expect(file["llama.rope.freq_base"] == .float32(10_000))
        #expect(file["llama.attention.layer_norm_rms_epsilon"] == .float32(1e-5))

        #expect(try file.string("tokenizer.ggml.model") == "gpt2")
        #expect(try file.string("tokenizer.ggml.pre") == "default")
        let tokens = try file.strings("tokenizer.ggml.tokens")
        let types = try file.ints("tokenizer.ggml.token_type")
        let merges = try file.strings("tokenizer.ggml.merges")
        #expect(tokens.count == 300 && types.count == 300 && merges.count == 300 - 258)
        #expect(tokens[32] == "Ġ" && tokens[65] == "A" && tokens[10] == "Ċ" && tokens[0] == "Ā")
        #expect(try file.int("tokenizer.ggml.bos_token_id") == 298 && tokens[298] == "<s>" && types[298] == 3)
        #expect(try file.int("tokenizer.ggml.eos_token_id") == 299 && tokens[299] == "</s>" && types[299] == 3)
        #expect(types[0..<298].allSatisfy { $0 == 1 })
        #expect(Set(tokens).count == tokens.count)
        // Each merge joins two earlier tokens into the token with id 256 + index.
        for (i, merge) in merges.enumerated() {
            let parts = merge.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            #expect(parts.count == 2)
            let left = tokens.firstIndex(of: parts[0]), right = tokens.firstIndex(of: parts[1])
            #expect(left != nil && left! < 256 + i && right != nil && right! < 256 + i, "merge \(merge)")
            #expect(tokens[256 + i] == parts.joined())
        }

        let w = weightType
        var expected: [(String, GGMLType, [Int])] = [("token_embd.weight", w, [48, 300])]
        for n in 0..<3 {
            expected += [("blk.\(n).attn_norm.weight", .f32, [48]), ("blk.\(n).attn_q.weight", w, [48, 48]),
                         ("blk.\(n).attn_k.weight", w, [48, 16]), ("blk.\(n).attn_v.weight", w, [48, 16]),
                         ("blk.\(n).attn_output.weight", w, [48, 48]), ("blk.\(n).ffn_norm.weight", .f32, [48]),
                         ("blk.\(n).ffn_gate.weight", w, [48, 96]), ("blk.\(n).ffn_up.weight", w, [48, 96]),
                         ("blk.\(n).ffn_down.weight", w, [96, 48])]
        }
        expected.append(("output_norm.weight", .f32, [48]))
        #expect(file.tensors.map(\.name) == expected.map(\.0))
        for (name, type, dims) in expected {
            #expect(file.tensorInfo(name)?.type == type && file.tensorInfo(name)?.dims == dims, "\(name)")
        }

        // Values: norms near 1, matrices within ±1/√in, not all equal.
        let norm = try floats(file.tensor("blk.1.ffn_norm.weight"))
        #expect(norm.allSatisfy { abs($0 - 1) <= 0.1 } && Set(norm).count > 40)
        let down = try floats(file.tensor("blk.2.ffn_down.weight"))
        #expect(down.count == 96 * 48 && down.allSatisfy { abs($0) <= 1 / Float(96).squareRoot() + 1e-3 })
        #expect(Set(down).count > 1000)
        withExtendedLifetime(file) {}  // tensor data points into the file's mapping
    }

    @Test func deterministicPerSeedAndUntiedOutput() throws {
        let a = try TinyModel(seed: 5).writer().bytes()
        #expect(a == (try TinyModel(seed: 5).writer().bytes()))
        #expect(a != (try TinyModel(seed: 6).writer().bytes()))
        var m = TinyModel(vocab: 1000)
        m.tiedEmbeddings = false
        let file = try GGUFFile(bytes: m.writer().bytes())
        #expect(file.tensors.last?.name == "output.weight" && file.tensors.last?.dims == [64, 1000])
        #expect(try file.strings("tokenizer.ggml.merges").count == 742)
        // F16 holds the F32 draws rounded.
        let file32 = try GGUFFile(bytes: TinyModel(seed: 9).writer().bytes())
        let file16 = try GGUFFile(bytes: TinyModel(seed: 9, weightType: .f16).writer().bytes())
        let f32 = try floats(file32.tensor("blk.0.attn_q.weight"))
        let f16 = try file16.tensor("blk.0.attn_q.weight")
        let bits = withExtendedLifetime(file16) {
            (0..<f32.count).map { f16.data.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self) }
        }
        #expect(bits == f32.map(TinyModel.float16Bits))
    }

    @Test func rejectsBadConfigs() {
        #expect(throws: TinyModel.ConfigError.self) { try TinyModel(vocab: 258).writer() }
        #expect(throws: TinyModel.ConfigError.self) { try TinyModel(embedding: 30, heads: 4).writer() }
        #expect(throws: TinyModel.ConfigError.self) { try TinyModel(heads: 4, kvHeads: 3).writer() }
        #expect(throws: TinyModel.ConfigError.self) { try TinyModel(weightType: .q8_0).writer() }
    }

    @Test func float16Conversion() {
        #expect(TinyModel.float16Bits(0) == 0 && TinyModel.float16Bits(-0.0) == 0x8000)
        #expect(TinyModel.float16Bits(1) == 0x3C00 && TinyModel.float16Bits(-2) == 0xC000)
        #expect(TinyModel.float16Bits(65504) == 0x7BFF && TinyModel.float16Bits(65520) == 0x7C00)
        #expect(TinyModel.float16Bits(.infinity) == 0x7C00 && TinyModel.float16Bits(.nan) & 0x7E00 == 0x7E00)
        #expect(TinyModel.float16Bits(5.960_464_5e-8) == 1)  // smallest subnormal
        #expect(TinyModel.float16Bits(1 + 1.0 / 2048) == 0x3C00)  // tie rounds to even
        #expect(TinyModel.float16Bits(1 + 3.0 / 2048) == 0x3C02)
        #if !(os(macOS) && arch(x86_64))
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let f = Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))
            if f.isNaN { continue }
            #expect(TinyModel.float16Bits(f) == Float16(f).bitPattern, "\(f)")
        }
        #endif
    }

    /// The values of an F32 or F16 tensor.
    func floats(_ t: GGUFTensor) -> [Float] {
        (0..<t.info.elementCount).map { i in
            if t.info.type == .f32 { return Float(bitPattern: t.data.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
            let h = t.data.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
            let sign: Float = h & 0x8000 == 0 ? 1 : -1
            let exp = Int(h >> 10 & 0x1F), mant = Float(h & 0x3FF)
            if exp == 0 { return sign * mant * 0x1p-24 }
            if exp == 31 { return mant == 0 ? sign * .infinity : .nan }
            return sign * (1 + mant / 1024) * Float(sign: .plus, exponent: exp - 15, significand: 1)
        }
    }
}
