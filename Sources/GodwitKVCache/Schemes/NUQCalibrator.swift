// Offline fitting of the nuq3/nuq4 parameters (NUQScheme.swift) from recorded K/V samples.
// Source: KVQuant (arXiv 2401.18079) §3.3–3.5 and its reference code
// (github.com/SqueezeAILab/KVQuant, quant/kvquant/simquant_module_quantizer.py): per-channel key
// outlier thresholds from calibration percentiles, per-layer non-uniform codebooks from k-means
// over normalized inliers. Deviations: k-means weighted by the squared normalization scale (so it
// minimizes squared error in the original units) instead of Fisher information; samples are
// binned into a 8192-bin histogram over [−1, 1] before k-means (deterministic, fast; bin width
// 2.4e-4 is far below the centroid spacing).
import GodwitKernels

public enum NUQCalibrator {
    /// Fraction of key values (per channel, both tails together) treated as outliers.
    public static let keyOutlierFraction = 0.01
    static let bins = 8192

    /// Per-channel thresholds and key codebooks. samples: [tokens, channels] pre-RoPE keys
    /// (channels = kvHeads · headDim), position 0 excluded. Returns lower/upper [channels] and a
    /// codebook per requested bit width: [2^b] shared by the layer (KVQuant's choice, the default),
    /// or with `perChannel` one per channel [channels, 2^b] (lower error, but at a 512-token
    /// context its amortized size costs ~0.5 bpv, more than it saves — measured on SmolLM2).
    public static func fitKeys(samples: [Float], channels: Int, bits: [Int], perChannel: Bool = false,
                               outlierFraction: Double = keyOutlierFraction)
        -> (lower: [Float], upper: [Float], codebooks: [Int: [Float]]) {
        let n = channels > 0 ? samples.count / channels : 0
        var lower = [Float](repeating: -1, count: channels), upper = [Float](repeating: 1, count: channels)
        guard n > 0 else { return (lower, upper, Dictionary(uniqueKeysWithValues: bits.map { ($0, uniformCodebook(bits: $0)) })) }
        var column = [Float](repeating: 0, count: n)
        let tail = outlierFraction / 2
        var perChannelBooks = [Int: [Float]]()
        for c in 0..<channels {
            for t in 0..<n { column[t] = samples[t * channels + c] }
            column.sort()
            lower[c] = column[Int((tail * Double(n - 1)).rounded(.down))]
            upper[c] = column[Int(((1 - tail) * Double(n - 1)).rounded(.up))]
            if perChannel {
                let half = max((upper[c] - lower[c]) / 2, 1e-6), mid = (upper[c] + lower[c]) / 2
                let inliers = column.filter { $0 >= lower[c] && $0 <= upper[c] }.map { ($0 - mid) / half }
                for b in bits { perChannelBooks[b, default: []] += KMeans1D.fit(values: inliers, k: 1 << b) }
            }
        }
        if perChannel { return (lower, upper, perChannelBooks) }
        var hist = [Double](repeating: 0, count: bins)
        for c in 0..<channels {
            let half = max((upper[c] - lower[c]) / 2, 1e-6), mid = (upper[c] + lower[c]) / 2
            let w = Double(half * half)
            for t in 0..<n {
                let x = (samples[t * channels + c] - mid) / half
                guard abs(x) <= 1 else { continue }
                hist[bin(x)] += w
            }
        }
        return (lower, upper, Dictionary(uniqueKeysWithValues: bits.map { ($0, fitHistogram(hist, bits: $0)) }))
    }

    /// Value codebooks. samples: [vectors, headDim] (any number of heads per token, flattened),
    /// position 0 excluded. Each vector is normalized like NUQValueStore: the ⌈1%·d⌉ largest
    /// magnitudes removed, the rest divided by their absmax (rounded to f16).
    public static func fitValues(samples: [Float], headDim d: Int, bits: [Int]) -> [Int: [Float]] {
        let n = d > 0 ? samples.count / d : 0
        var hist = [Double](repeating: 0, count: bins)
        let k = NUQValueRecord.outlierCount(headDim: d)
        var top = [Int](repeating: -1, count: k + 1)
        samples.withUnsafeBufferPointer { all in
            for t in 0..<n {
                let v = all.baseAddress! + t * d
                // The k largest magnitudes (ties: lower index first), as NUQValueStore.outlierChannels.
                var count = 0
                for i in 0..<d {
                    let m = abs(v[i])
                    var at = count
                    while at > 0 && abs(v[top[at - 1]]) < m { at -= 1 }
                    if at < k {
                        var j = min(count, k - 1)
                        while j > at { top[j] = top[j - 1]; j -= 1 }
                        top[at] = i
                        count = min(count + 1, k)
                    }
                }
                var m: Float = 0
                for i in 0..<d where !top[0..<count].contains(i) { m = max(m, abs(v[i])) }
                let s = HalfConversion.toFloat(HalfConversion.toHalf(m))
                guard s > 0 else { continue }
                let w = Double(s * s)
                for i in 0..<d where !top[0..<count].contains(i) { hist[bin(max(-1, min(1, v[i] / s)))] += w }
            }
        }
        return Dictionary(uniqueKeysWithValues: bits.map { ($0, fitHistogram(hist, bits: $0)) })
    }

    /// Calibration tensors for one layer (names from NUQTensorNames).
    public static func layerTensors(layer: Int, keys: [Float], keyChannels: Int, values: [Float], valueHeadDim: Int,
                                    bits: [Int] = [3, 4]) -> [String: [Float]] {
        let k = fitKeys(samples: keys, channels: keyChannels, bits: bits)
        let v = fitValues(samples: values, headDim: valueHeadDim, bits: bits)
        var t: [String: [Float]] = [NUQTensorNames.keyLower(layer: layer): k.lower, NUQTensorNames.keyUpper(layer: layer): k.upper]
        for b in bits {
            t[NUQTensorNames.keyCodebook(layer: layer, bits: b)] = k.codebooks[b]!
            t[NUQTensorNames.valueCodebook(layer: layer, bits: b)] = v[b]!
        }
        return t
    }

    @inline(__always) static func bin(_ x: Float) -> Int { min(bins - 1, max(0, Int((x + 1) / 2 * Float(bins)))) }

    static func fitHistogram(_ hist: [Double], bits: Int) -> [Float] {
        var centers = [Float](), weights = [Float]()
        let total = hist.reduce(0, +)
        guard total > 0 else { return uniformCodebook(bits: bits) }
        for (i, w) in hist.enumerated() where w > 0 {
            centers.append(-1 + (Float(i) + 0.5) * 2 / Float(bins))
            weights.append(Float(w / total))
        }
        return KMeans1D.fit(values: centers, weights: weights, k: 1 << bits)
    }

    /// Evenly spaced centroids over [−1, 1] (used when there is no data).
    public static func uniformCodebook(bits: Int) -> [Float] {
        let k = 1 << bits
        return (0..<k).map { -1 + (2 * Float($0) + 1) / Float(k) }
    }
}
