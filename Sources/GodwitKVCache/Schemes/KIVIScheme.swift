// KIVI: tuning-free asymmetric 2/4-bit KV cache quantization (here also 3, 5, 6 and 8 bits).
// Source: Liu et al., "KIVI: A Tuning-Free Asymmetric 2bit Quantization for KV Cache", arXiv 2402.02750;
// reference code github.com/jy-yuan/KIVI and Hugging Face transformers `QuantizedCache`.
//
// What is stored (per KV head):
// - keys per channel: for each group of G consecutive tokens (G = --kv-group-size) and each channel
//   one f16 scale and one f16 zero-point (the group's min); b-bit codes x ≈ s·code + z.
// - values per token: groups of Gv channels inside each token vector, one f16 scale/zero per group.
// - the most recent tokens stay f16: keys until a full group of G tokens lies outside the last R
//   (R = --kv-residual), values for the last R tokens.
// Deviations from the reference:
// - KIVI quantizes its whole R-token residual when it fills (R a multiple of G); here groups are
//   quantized one at a time as soon as they are older than the last R tokens, so the f16 key tail is
//   R…R+G−1 tokens (R = 0 reproduces KIVI with residual = G: tail 0…G−1).
// - Groups are counted from the first position the store receives (so a store behind --kv-sink
//   starts its groups after the sinks).
// - Gv = the largest multiple of 16 dividing the head dim that is ≤ max(G, 16) (KIVI uses G for
//   both when it divides the head dim).
// - Values get llama.cpp's 64-block Hadamard rotation unless --no-kv-rotation (KIVI: none);
//   keys are never rotated (per-channel statistics must stay per channel).
// - Widths 3, 5, 6 and 8 (kivi3 … kivi8) are not in KIVI: the same asymmetric scheme with more or fewer
//   levels, codes stored as stacked 4/2/1-bit planes (KIVICodes.swift), for mixing K and V widths.
// - kivi{b}pre (not in KIVI): keys quantized before RoPE as KVQuant does (RoPE applied when scoring)
//   and position 0 kept f16 (KVQuant's attention sink); values exactly as kivi{b}.
// - Scale and zero are f16 (KIVI keeps them in the activation dtype, fp16 in the paper).
// - Prompt tokens are quantized when written, before attention reads them (KIVI attends the
//   prompt in full precision): a pessimistic, write-then-attend measurement like every scheme here.
// - Truncation back into a quantized key group dequantizes the surviving positions of that group
//   into the f16 tail (they are quantized a second time when the group refills).
import GodwitKernels

public struct KIVIScheme: KVScheme {
    /// Bits per code: 2, 3, 4, 5, 6 or 8.
    public let bits: Int
    /// kivi{b}pre: keys quantized before RoPE, position 0 kept f16 (PreRoPEKeyStore.swift).
    public let preRoPE: Bool

    /// The implemented widths (KIVI itself uses 2 and 4).
    public static let widths = [2, 3, 4, 5, 6, 8]

    /// The registered widths.
    public static let all: [KIVIScheme] = widths.map { KIVIScheme(validBits: $0, preRoPE: false) }
        + widths.map { KIVIScheme(validBits: $0, preRoPE: true) }

    /// nil unless `bits` is one of `widths`.
    public init?(bits: Int, preRoPE: Bool = false) {
        guard Self.widths.contains(bits) else { return nil }
        self.bits = bits
        self.preRoPE = preRoPE
    }

    private init(validBits: Int, preRoPE: Bool) {
        bits = validBits
        self.preRoPE = preRoPE
    }

    public var name: String { preRoPE ? "kivi\(bits)pre" : "kivi\(bits)" }
    public var summary: String {
        preRoPE
            ? "KIVI \(bits)-bit with keys quantized before RoPE (KVQuant) and position 0 f16; values as kivi\(bits)"
            : "KIVI \(bits)-bit asymmetric: keys per channel over --kv-group-size tokens, values per token in channel groups, last --kv-residual tokens f16"
    }
    public var source: String { "KIVI, arXiv 2402.02750 (github.com/jy-yuan/KIVI; transformers QuantizedCache)" }
    public var isQuantized: Bool { true }

    /// b bits per code plus a 16-bit scale and a 16-bit zero per group (keys: G tokens of one
    /// channel; values: Gv channels of one token). Excludes the f16 residual tail.
    public func bitsPerValue(headDim: Int, role: KVRole, options: KVSchemeOptions) -> Double {
        let group = role == .key ? max(1, options.groupSize) : Self.valueGroup(headDim: headDim, groupSize: options.groupSize)
        return Double(bits) + 32 / Double(group)
    }

    public func unsupportedReason(role: KVRole, headDim: Int) -> String? {
        headDim % 16 == 0 ? nil : "the head dim must be a multiple of 16 (codes are packed in 16-channel chunks)"
    }

    public func rotation(role: KVRole, headDim: Int, options: KVSchemeOptions) -> (any KVRotation)? {
        role == .key ? nil : parityRotation(role: role, headDim: headDim, options: options)
    }

    /// Channels per value group: the largest multiple of 16 dividing `headDim` that is ≤ max(G, 16).
    public static func valueGroup(headDim: Int, groupSize: Int) -> Int {
        var g = max(16, groupSize) / 16 * 16
        while g > 16 && headDim % g != 0 { g -= 16 }
        return g
    }

    /// The store options KIVI's groups need (head dim, group size, residual); errors name `scheme`
    /// (kivi{b}mix checks its keys with this too).
    func check(_ context: KVStoreContext, as scheme: String? = nil) throws(KVCacheError) {
        let name = scheme ?? self.name
        let g = context.geometry
        if let why = unsupportedReason(role: context.role, headDim: g.headDim) {
            throw .unsupportedHeadDim(scheme: name, role: context.role, headDim: g.headDim, reason: why)
        }
        let o = context.options
        guard o.groupSize > 0 else {
            throw .invalidOption(name: "kv-group-size", value: "\(o.groupSize)", reason: "\(name) needs a positive group size")
        }
        guard context.role == .value || o.groupSize % 16 == 0 else {
            throw .invalidOption(name: "kv-group-size", value: "\(o.groupSize)",
                                 reason: "\(name) keys need a multiple of 16 (codes are packed in 16-position tiles)")
        }
        guard o.residual >= 0 else {
            throw .invalidOption(name: "kv-residual", value: "\(o.residual)", reason: "\(name) needs a residual ≥ 0")
        }
    }

    public func makeKeyStore(_ context: KVStoreContext) throws(KVCacheError) -> any KeyStore {
        let store = try makePlainKeyStore(context)
        return preRoPE ? PreRoPEKeyStore(inner: store, rope: context.rope, sinkTokens: 1) : store
    }

    private func makePlainKeyStore(_ context: KVStoreContext) throws(KVCacheError) -> KIVIGroupedKeyStore {
        try check(context)
        let o = context.options
        let g = context.geometry
        switch bits {
        case 2: return KIVIKeyStore<KIVI2Bit>(g, groupSize: o.groupSize, residual: o.residual)
        case 3: return KIVIKeyStore<KIVI3Bit>(g, groupSize: o.groupSize, residual: o.residual)
        case 5: return KIVIKeyStore<KIVI5Bit>(g, groupSize: o.groupSize, residual: o.residual)
        case 6: return KIVIKeyStore<KIVI6Bit>(g, groupSize: o.groupSize, residual: o.residual)
        case 8: return KIVIKeyStore<KIVI8Bit>(g, groupSize: o.groupSize, residual: o.residual)
        default: return KIVIKeyStore<KIVI4Bit>(g, groupSize: o.groupSize, residual: o.residual)
        }
    }

    public func makeValueStore(_ context: KVStoreContext) throws(KVCacheError) -> any ValueStore {
        try check(context)
        let o = context.options
        let group = Self.valueGroup(headDim: context.geometry.headDim, groupSize: o.groupSize)
        let g = context.geometry
        switch bits {
        case 2: return KIVIValueStore<KIVI2Bit>(g, channelGroup: group, residual: o.residual)
        case 3: return KIVIValueStore<KIVI3Bit>(g, channelGroup: group, residual: o.residual)
        case 5: return KIVIValueStore<KIVI5Bit>(g, channelGroup: group, residual: o.residual)
        case 6: return KIVIValueStore<KIVI6Bit>(g, channelGroup: group, residual: o.residual)
        case 8: return KIVIValueStore<KIVI8Bit>(g, channelGroup: group, residual: o.residual)
        default: return KIVIValueStore<KIVI4Bit>(g, channelGroup: group, residual: o.residual)
        }
    }
}
