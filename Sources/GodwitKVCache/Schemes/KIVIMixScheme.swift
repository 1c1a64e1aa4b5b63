// kivi{b}mix: KIVI keys quantized before RoPE with the bits of each token group allocated across
// channels (KIVIBitAllocation.swift, KIVIMixKeyStore.swift). Source: KIVI (arXiv 2402.02750) per-channel
// key groups, KVQuant (arXiv 2401.18079) pre-RoPE keys and position-0 sink, and greedy rate allocation;
// the allocation is this project's deviation from both papers.
// What is stored per key group of G tokens and head: an f16 scale and zero per channel, one width byte
// per channel (0, 2…8 bits, Σ widths = b·d), and the codes; b + 40/G bits per key value. Position 0 is
// kept f16 (PreRoPEKeyStore). Values are exactly kivi{b}'s (per token, channel groups).
// kivi{b}tcq: the same, where a channel given 2, 3 or 4 bits may instead be coded by a bitshift trellis
// along its tokens (KIVITrellisChannels.swift; QTIP, arXiv 2406.11235), whichever has the smaller error.
import GodwitKernels

public struct KIVIMixScheme: KVScheme {
    /// Average bits per key code.
    public let bits: Int
    /// Whether channels of 2–4 bits may be trellis-coded (kivi{b}tcq).
    public let trellis: Bool

    public static let widths = [2, 3, 4, 5]
    public static let all: [KIVIMixScheme] = widths.map { KIVIMixScheme(validBits: $0, trellis: false) }
        + widths.map { KIVIMixScheme(validBits: $0, trellis: true) }

    private init(validBits: Int, trellis: Bool) {
        bits = validBits
        self.trellis = trellis
    }

    public var name: String { trellis ? "kivi\(bits)tcq" : "kivi\(bits)mix" }
    public var summary: String {
        "KIVI \(bits)-bit keys before RoPE with each group's \(bits)·d bits per token allocated across channels (0–8 bits each, weighted by query energies from --kv-calibration when given"
            + (trellis ? "; a 2–4-bit channel trellis-coded along its tokens when that errs less" : "") + "); values as kivi\(bits)"
    }
    public var source: String {
        "KIVI, arXiv 2402.02750 + KVQuant pre-RoPE keys, arXiv 2401.18079; per-channel bit allocation: this project"
            + (trellis ? "; trellis channels: QTIP, arXiv 2406.11235" : "")
    }
    public var isQuantized: Bool { true }

    public func bitsPerValue(headDim: Int, role: KVRole, options: KVSchemeOptions) -> Double {
        switch role {
        case .key: return Double(bits) + 40 / Double(max(1, options.groupSize))
        case .value: return value.bitsPerValue(headDim: headDim, role: role, options: options)
        }
    }

    private var value: KIVIScheme { KIVIScheme(bits: bits)! }

    public func unsupportedReason(role: KVRole, headDim: Int) -> String? { value.unsupportedReason(role: role, headDim: headDim) }

    public func rotation(role: KVRole, headDim: Int, options: KVSchemeOptions) -> (any KVRotation)? {
        value.rotation(role: role, headDim: headDim, options: options)
    }

    public func makeKeyStore(_ context: KVStoreContext) throws(KVCacheError) -> any KeyStore {
        try value.check(context, as: name)
        let g = context.geometry, o = context.options
        let weights = try Self.channelWeights(context)
        let store = KIVIMixKeyStore(g, bits: bits, groupSize: o.groupSize, residual: o.residual, channelWeights: weights,
                                    trellis: trellis ? try KIVITrellisChannels(groupSize: o.groupSize) : nil)
        return PreRoPEKeyStore(inner: store, rope: context.rope, sinkTokens: 1)
    }

    /// Name of the calibration tensor with a layer's query energies (`godwit calibrate`).
    public static func queryEnergyTensor(layer: Int) -> String { "blk.\(layer).q.energy" }

    /// Per-channel error weights [heads, d]: the calibration's query energies E[q_c²] (post-RoPE; a
    /// pre-RoPE key error in channel c reaches the score mostly through q_c, since attention weight sits
    /// at short distances and on the slow RoPE pairs, which barely turn — averaging each RoPE pair's
    /// energies measured worse: KLD 0.0097 vs 0.0085 for kivi4mix keys). nil without a calibration; a
    /// calibration without the layer's tensor (an older file) is an error rather than a silent fallback.
    static func channelWeights(_ context: KVStoreContext) throws(KVCacheError) -> [Float]? {
        let g = context.geometry
        guard let cal = context.calibration else { return nil }
        guard let e = cal.tensors[queryEnergyTensor(layer: g.layer)] else {
            throw .invalidCalibration("no query energies ('\(queryEnergyTensor(layer: g.layer))') for kivi{b}mix: the file predates them; "
                                      + "recreate it with `godwit calibrate` (scripts/calibrate.sh)")
        }
        guard e.count == g.headCount * g.headDim else {
            throw .invalidCalibration("tensor '\(queryEnergyTensor(layer: g.layer))' has \(e.count) values, expected \(g.headCount * g.headDim)")
        }
        return e
    }

    public func makeValueStore(_ context: KVStoreContext) throws(KVCacheError) -> any ValueStore {
        try value.makeValueStore(context)
    }
}
