// Per-channel bit allocation for one key group (kivi{b}mix, KIVIMixScheme.swift).
// Source: classic rate allocation by marginal analysis (greedy "reverse water-filling", e.g. Gersho &
// Gray, Vector Quantization and Signal Compression, §8.4) applied to KIVI's per-channel key groups
// (arXiv 2402.02750). Keys have a few channels with ranges 10–50× the others; uniform widths spend
// as many bits on a near-constant channel as on an outlier channel. Here the group's budget of
// b̄·d bits per position is handed out one step at a time to the channel whose weighted error drops
// the most per bit spent.
// Error model per channel c of the group (values x over the group's tokens), the uniform-noise model
// of a step over the channel's range at every width:
//   width b ≥ 2: asymmetric uniform codes over [min, max]: error = (range / (2^b − 1))² / 12
//   width 0: x ≈ mean (zero = mean, scale = 0): error = range² / 12 (one step across the range)
// Charging width 0 with the range rather than the variance keeps channels with rare large values
// coded (the variance model measured worse: K-only KLD kivi3mix 0.0287 vs 0.0249, kivi2mix 0.129 vs
// 0.104; equal at 4 bits): attention needs the extremes. Width 1 is never used: a 1-bit min/max code
// has the same expected error as the mean on uniform data (and MSE-optimal 1-bit levels measured far
// worse). Widths are capped at 8. The weight w_c scales channel c's error (1: plain key MSE).
// With trellis codes (kivi{b}tcq, KIVITrellisChannels.swift) a width b that has one is charged the
// smaller of the uniform model and the trellis model σ²·m_b (m_b: the trellis codebook's squared error
// per unit variance, σ²: the channel's variance over the group), in the same units.

public enum KIVIBitAllocation {
    /// The widest code (widths are 0 or 2…maxBits).
    static let maxBits = 8

    /// Expected squared error of a channel with this range under width b (in units of range²/12).
    @inline(__always)
    static func error(range: Float, bits b: Int) -> Float {
        let s = b == 0 ? range : range / Float((1 << b) - 1)
        return s * s
    }

    /// The same, with a trellis code at width b of squared error m·variance (m = trellisMSE[b], 0: none).
    @inline(__always)
    static func error(range: Float, variance: Float, trellisMSE: UnsafePointer<Float>?, bits b: Int) -> Float {
        let u = error(range: range, bits: b)
        guard let t = trellisMSE, b > 0, t[b] > 0 else { return u }
        return min(u, 12 * variance * t[b])
    }

    /// The widths for channel statistics given as arrays (tests, inspection).
    public static func widths(range: [Float], weight: [Float]?, budget: Int) -> [UInt8] {
        precondition((weight?.count ?? range.count) == range.count)
        var out = [UInt8](repeating: 0, count: range.count)
        range.withUnsafeBufferPointer { r in out.withUnsafeMutableBufferPointer { o in
            if let weight {
                weight.withUnsafeBufferPointer { w in
                    allocate(range: r.baseAddress!, weight: w.baseAddress!, count: r.count, budget: budget, into: o.baseAddress!)
                }
            } else {
                allocate(range: r.baseAddress!, weight: nil, count: r.count, budget: budget, into: o.baseAddress!)
            }
        } }
        return out
    }

    /// widths[c] for c < count, Σ widths ≤ budget, greedy on weighted error drop per bit.
    /// range, weight: [count].
    /// With `variance` and `trellisMSE` ([maxBits + 1], 0 where a width has no trellis code), widths
    /// that have a trellis code are charged the smaller model (see the file header).
    static func allocate(range: UnsafePointer<Float>, variance: UnsafePointer<Float>? = nil, trellisMSE: UnsafePointer<Float>? = nil,
                         weight: UnsafePointer<Float>?, count: Int, budget: Int, into widths: UnsafeMutablePointer<UInt8>) {
        for c in 0..<count { widths[c] = 0 }
        var left = budget
        while left > 0 {
            var best = -1
            var bestGain: Float = 0
            for c in 0..<count {
                let b = Int(widths[c])
                guard b < maxBits else { continue }
                let step = b == 0 ? 2 : 1
                guard step <= left else { continue }
                let w = weight?[c] ?? 1
                let v = variance?[c] ?? 0, t = variance == nil ? nil : trellisMSE
                let gain = w * (error(range: range[c], variance: v, trellisMSE: t, bits: b)
                                - error(range: range[c], variance: v, trellisMSE: t, bits: b + step)) / Float(step)
                if gain > bestGain { bestGain = gain; best = c }
            }
            guard best >= 0 else { break }
            let step = widths[best] == 0 ? 2 : 1
            widths[best] += UInt8(step)
            left -= step
        }
    }
}
