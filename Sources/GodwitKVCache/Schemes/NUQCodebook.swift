// Per-layer parameters of the KVQuant-style schemes, read from a calibration file written by
// `godwit calibrate` (GodwitEval/Calibration.swift, fitted by NUQCalibrator). Tensor names:
//   blk.L.k.lower, blk.L.k.upper   [kvHeads · headDim]  per-channel outlier thresholds of pre-RoPE
//                                  keys (the 0.5% / 99.5% percentiles over the calibration tokens);
//                                  normalization maps [lower, upper] to [−1, 1]
//   blk.L.k.codebook.B             [2^B]  key centroids in the normalized space, ascending
//   blk.L.v.codebook.B             [2^B]  value centroids in the per-token normalized space (v / max|inlier|)
// Source: KVQuant (arXiv 2401.18079), reference github.com/SqueezeAILab/KVQuant.
import GodwitKernels

/// Tensor names of a calibration file.
public enum NUQTensorNames {
    public static func keyLower(layer: Int) -> String { "blk.\(layer).k.lower" }
    public static func keyUpper(layer: Int) -> String { "blk.\(layer).k.upper" }
    public static func keyCodebook(layer: Int, bits: Int) -> String { "blk.\(layer).k.codebook.\(bits)" }
    public static func valueCodebook(layer: Int, bits: Int) -> String { "blk.\(layer).v.codebook.\(bits)" }
}

/// Codebooks with their decision boundaries, as the stores use them: one shared by every channel
/// (`stride` 0) or one per channel (`stride` 2^bits).
/// centroids [books, 2^bits] ascending per book; boundaries [books, 2^bits − 1] midpoints between neighbours.
final class NUQCodebook {
    let bits: Int
    let books: Int
    let centroids: UnsafeMutablePointer<Float>
    let boundaries: UnsafeMutablePointer<Float>
    var levels: Int { 1 << bits }
    /// Floats between consecutive channels' codebooks (0 when shared).
    var stride: Int { books > 1 ? levels : 0 }

    init(bits: Int, centroids c: [Float]) {
        self.bits = bits
        let l = 1 << bits
        books = c.count / l
        centroids = .allocate(capacity: c.count)
        boundaries = .allocate(capacity: books * (l - 1))
        for b in 0..<books {
            let sorted = c[b * l..<(b + 1) * l].sorted()
            for i in 0..<l { centroids[b * l + i] = sorted[i] }
            for i in 0..<l - 1 { boundaries[b * (l - 1) + i] = (sorted[i] + sorted[i + 1]) / 2 }
        }
    }

    deinit { centroids.deallocate(); boundaries.deallocate() }

    /// Code of x in channel `channel`'s codebook (the shared one when there is one book).
    @inline(__always) func encode(_ x: Float, channel: Int = 0) -> UInt8 {
        NUQCodes.encode(x, boundaries: boundaries + (books > 1 ? channel : 0) * (levels - 1), count: levels - 1)
    }

    /// Centroid of `code` in channel `channel`'s codebook.
    @inline(__always) func centroid(_ code: Int, channel: Int = 0) -> Float { centroids[(books > 1 ? channel : 0) * levels + code] }

    /// Loads and checks a codebook tensor: 2^bits values, or `channels` × 2^bits for per-channel books.
    static func load(_ calibration: KVCalibration, name: String, bits: Int, channels: Int = 1) throws(KVCacheError) -> NUQCodebook {
        let t = try calibration.tensor(name)
        guard t.count == 1 << bits || t.count == channels << bits else {
            throw .invalidCalibration("tensor '\(name)' has \(t.count) values, expected \(1 << bits)"
                                      + (channels > 1 ? " or \(channels << bits) (per channel)" : ""))
        }
        guard t.allSatisfy({ $0.isFinite }) else { throw .invalidCalibration("tensor '\(name)' has non-finite values") }
        return NUQCodebook(bits: bits, centroids: t)
    }
}

/// Per-channel key normalization of one layer: x = (k − mid) / half maps [lower, upper] to [−1, 1].
/// mid, invHalf, half: [kvHeads · headDim] (head-major, channel fastest).
final class NUQKeyNormalization {
    let channels: Int
    let mid: UnsafeMutablePointer<Float>
    let half: UnsafeMutablePointer<Float>
    let invHalf: UnsafeMutablePointer<Float>

    init(lower: [Float], upper: [Float]) {
        channels = lower.count
        mid = .allocate(capacity: channels)
        half = .allocate(capacity: channels)
        invHalf = .allocate(capacity: channels)
        for c in 0..<channels {
            let h = max((upper[c] - lower[c]) / 2, 1e-6)
            mid[c] = (upper[c] + lower[c]) / 2
            half[c] = h
            invHalf[c] = 1 / h
        }
    }

    deinit { mid.deallocate(); half.deallocate(); invHalf.deallocate() }

    static func load(_ calibration: KVCalibration, layer: Int, channels: Int) throws(KVCacheError) -> NUQKeyNormalization {
        let lo = try calibration.tensor(NUQTensorNames.keyLower(layer: layer))
        let hi = try calibration.tensor(NUQTensorNames.keyUpper(layer: layer))
        guard lo.count == channels, hi.count == channels else {
            throw .invalidCalibration("tensor '\(NUQTensorNames.keyLower(layer: layer))' has \(lo.count) values, expected "
                                      + "\(channels) (kv heads × head dim): was it calibrated on another model?")
        }
        guard zip(lo, hi).allSatisfy({ $0.isFinite && $1.isFinite && $0 <= $1 }) else {
            throw .invalidCalibration("layer \(layer): key thresholds must be finite with lower ≤ upper")
        }
        return NUQKeyNormalization(lower: lo, upper: hi)
    }
}
