// KIVI: tuning-free asymmetric 2/4-bit KV cache quantization.
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
// - Scale and zero are f16 (KIVI keeps them in the activation dtype, fp16 in the paper).
// - Prompt tokens are quantized when written, before attention reads them (KIVI attends the
//   prompt in full precision): a pessimistic, write-then-attend measurement like every scheme here.
// - Truncation back into a quantized key group dequantizes the surviving positions of that group
//   into the f16 tail (they are quantized a second time when the group refills).
import GodwitKernels

public struct KIVIScheme: KVScheme {
    /// Bits per code: 2 or 4.
    public let bits: Int

    /// The registered widths.
    public static let all: [KIVIScheme] = [KIVIScheme(validBits: 2), KIVIScheme(validBits: 4)]

    /// nil unless `bits` is 2 or 4.
    public init?(bits: Int) {
        guard bits == 2 || bits == 4 else { return nil }
        self.bits = bits
    }

    private init(validBits: Int) { bits = validBits }

    public var name: String { "kivi\(bits)" }
    public var summary: String {
        "KIVI \(bits)-bit asymmetric: keys per channel over --kv-group-size tokens, values per token in channel groups, last --kv-residual tokens f16"
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

    private func check(_ context: KVStoreContext) throws(KVCacheError) {
        let g = context.geometry
        if let why = unsupportedReason(role: context.role, headDim: g.headDim) {
            throw .unsupportedHeadDim(scheme: name, role: context.role, headDim: g.headDim, reason: why)
        }
        let o = context.options
        guard o.groupSize > 0 else {
            throw .invalidOption(name: "kv-group-size", value: "\(o.groupSize)", reason: "\(name) needs a positive group size")
        }
        guard o.residual >= 0 else {
            throw .invalidOption(name: "kv-residual", value: "\(o.residual)", reason: "\(name) needs a residual ≥ 0")
        }
    }

    public func makeKeyStore(_ context: KVStoreContext) throws(KVCacheError) -> any KeyStore {
        try check(context)
        let o = context.options
        return bits == 2
            ? KIVIKeyStore<KIVI2Bit>(context.geometry, groupSize: o.groupSize, residual: o.residual)
            : KIVIKeyStore<KIVI4Bit>(context.geometry, groupSize: o.groupSize, residual: o.residual)
    }

    public func makeValueStore(_ context: KVStoreContext) throws(KVCacheError) -> any ValueStore {
        try check(context)
        let o = context.options
        let group = Self.valueGroup(headDim: context.geometry.headDim, groupSize: o.groupSize)
        return bits == 2
            ? KIVIValueStore<KIVI2Bit>(context.geometry, channelGroup: group, residual: o.residual)
            : KIVIValueStore<KIVI4Bit>(context.geometry, channelGroup: group, residual: o.residual)
    }
}
