// nuq3 / nuq4: KVQuant-style non-uniform quantization with dense-and-sparse outliers.
// Source: Hooper et al., "KVQuant: Towards 10 Million Context Length LLM Inference with KV Cache
// Quantization", arXiv 2401.18079; reference code github.com/SqueezeAILab/KVQuant.
// What is stored (per layer, per KV head vector):
//   K: pre-RoPE, per-channel normalization with offline thresholds (0.5/99.5 percentiles) → b-bit
//      codes into a per-layer 2^b-centroid codebook; values outside the thresholds kept as f16 +
//      index (NUQKeyStore.swift). RoPE is applied when scoring.
//   V: per-token absmax normalization (f16 scale) after removing the ⌈1%·d⌉ largest magnitudes
//      (kept as f16 + index) → b-bit codes into a per-layer codebook (NUQValueStore.swift).
//   Position 0 (attention sink) of K and V in f16.
// bpv (bytesHeld): K = b + (8 + 24·n_out)/d per vector, n_out the outliers actually stored
//      (nominal 1% → b + 8/d + 0.24 = b + 0.365 at d = 64); V = b + (16 + 24·⌈d/100⌉)/d (b + 0.625
//      at d = 64); plus, counted once per store, the f16 sink vector and the calibrated parameters
//      (K: mid and half per channel + codebook as f32; V: codebook) — ≈ 0.13 bpv for K at 512 tokens.
// Deviations: codebooks come from k-means weighted by the squared normalization scale (error in
// the original units) instead of the paper's Fisher-information weighting (needs gradients); no
// Q-Norm; fixed outlier capacity per vector; values scaled by absmax instead of min/max; no
// Hadamard rotation (per-channel keys must not be rotated); calibration with `godwit calibrate`
// (GodwitEval/Calibration.swift). Per-channel key codebooks are accepted from a calibration file
// (NUQCalibrator.fitKeys(perChannel:)) but not the default (their amortized size costs more than they save at short contexts).
import GodwitKernels

public struct NUQScheme: KVScheme {
    public let bits: Int

    public init(bits: Int) {
        precondition(bits == 3 || bits == 4, "nuq supports 3 and 4 bits")
        self.bits = bits
    }

    public var name: String { "nuq\(bits)" }
    public var summary: String {
        "KVQuant non-uniform \(bits)-bit: pre-RoPE per-channel keys, per-token values, calibrated codebooks, 1% f16 outliers (needs --kv-calibration)"
    }
    public var source: String { "KVQuant, arXiv 2401.18079 (github.com/SqueezeAILab/KVQuant)" }
    public var isQuantized: Bool { true }

    public func bitsPerValue(headDim: Int, role: KVRole, options: KVSchemeOptions) -> Double {
        switch role {
        case .key: return Double(bits) + 8 / Double(headDim) + 0.01 * 24
        case .value: return Double(NUQValueRecord(headDim: headDim, bits: bits).bytes * 8) / Double(headDim)
        }
    }

    public func unsupportedReason(role: KVRole, headDim: Int) -> String? {
        if headDim % 16 != 0 { return "the head dim must be a multiple of 16" }
        if headDim > 256 { return "outlier indices are one byte: the head dim must be at most 256" }
        return nil
    }

    /// None: per-channel key normalization must see the unrotated channels.
    public func rotation(role: KVRole, headDim: Int, options: KVSchemeOptions) -> (any KVRotation)? { nil }

    func requireCalibration(_ context: KVStoreContext) throws(KVCacheError) -> KVCalibration {
        if let why = unsupportedReason(role: context.role, headDim: context.geometry.headDim) {
            throw .unsupportedHeadDim(scheme: name, role: context.role, headDim: context.geometry.headDim, reason: why)
        }
        guard let c = context.calibration else {
            throw .missingCalibration(scheme: name, hint: "pass --kv-calibration FILE (create one with `godwit calibrate -f TEXT -o FILE`, e.g. scripts/calibrate.sh)")
        }
        return c
    }

    public func makeKeyStore(_ context: KVStoreContext) throws(KVCacheError) -> any KeyStore {
        let c = try requireCalibration(context)
        let g = context.geometry
        let norm = try NUQKeyNormalization.load(c, layer: g.layer, channels: g.headCount * g.headDim)
        let cb = try NUQCodebook.load(c, name: NUQTensorNames.keyCodebook(layer: g.layer, bits: bits), bits: bits,
                                     channels: g.headCount * g.headDim)
        return NUQKeyStore(g, bits: bits, normalization: norm, codebook: cb, rope: context.rope)
    }

    public func makeValueStore(_ context: KVStoreContext) throws(KVCacheError) -> any ValueStore {
        let c = try requireCalibration(context)
        let g = context.geometry
        let cb = try NUQCodebook.load(c, name: NUQTensorNames.valueCodebook(layer: g.layer, bits: bits), bits: bits)
        return NUQValueStore(g, bits: bits, codebook: cb)
    }
}
