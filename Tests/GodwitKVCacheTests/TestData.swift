import Foundation

/// Deterministic pseudo-random data for cache tests (SplitMix64 + Box–Muller).
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 24) }
    mutating func gaussian() -> Float {
        let u1 = max(uniform(), 1e-7), u2 = uniform()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * .pi * u2)
    }
    /// Gaussian vectors with a few large outlier channels, like real keys.
    mutating func vectors(count: Int, dim: Int, outliers: Bool = true) -> [Float] {
        var v = [Float](repeating: 0, count: count * dim)
        for i in v.indices { v[i] = gaussian() }
        if outliers { for t in 0..<count { v[t * dim + 3] *= 6; v[t * dim + dim / 2 + 1] *= 4 } }
        return v
    }
}

func relativeRMSError(_ a: [Float], _ b: [Float]) -> Double {
    var num = 0.0, den = 0.0
    for i in a.indices { num += Double((a[i] - b[i]) * (a[i] - b[i])); den += Double(a[i] * a[i]) }
    return (num / max(den, 1e-30)).squareRoot()
}
