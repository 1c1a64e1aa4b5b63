// Lloyd–Max scalar codebooks for TurboQuant (arXiv 2504.19874, §3.1, "TurboQuant_mse").
// After a random rotation, each coordinate of a unit vector in dimension d follows
//   f_d(x) = Γ(d/2) / (√π Γ((d−1)/2)) · (1 − x²)^((d−3)/2),  x ∈ [−1, 1]
// (a shifted, scaled Beta((d−1)/2, (d−1)/2); only close to N(0, 1/d) for large d). The optimal b-bit
// scalar quantizer for f_d is found by Lloyd's algorithm (boundaries = midpoints of centroids,
// centroids = conditional means), computed here deterministically by numerical integration:
// the density is sampled at the midpoints of 2^16 cells on [0, 1] (it is symmetric, so the positive
// half is solved with 2^(b−1) levels and mirrored: centroids are exactly antisymmetric and 0 is a
// boundary), with cumulative mass / first / second moments interpolated linearly inside a cell.
// Iteration starts at the half-density quantiles and stops when no centroid moves by 1e-13 (≤ 2000
// iterations). Everything is Double and sequential, so the result is bit-reproducible.
// The expected squared error of a unit vector, d·E[(x − Q(x))²], is reported as `mse`
// (paper, Theorem 1: ≈ 0.36, 0.117, 0.03, 0.009 for b = 1…4 at large d).
// Codebooks are cached per (d, b) behind a lock.
import Foundation

/// A b-bit Lloyd–Max codebook for one coordinate of a random unit vector in dimension `dim`.
public struct TurboCodebook: Sendable, Equatable {
    public let dim: Int
    public let bits: Int
    /// Reconstruction levels, ascending, [2^bits] (in unit-vector coordinates, ~1/√dim in size).
    public let centroids: [Float]
    /// Decision thresholds between consecutive centroids, ascending, [2^bits − 1].
    public let boundaries: [Float]
    /// d · E[(x − Q(x))²]: the expected relative squared error of a unit vector (Double, from the integration).
    public let mse: Double

    private static let cache = CodebookCache<TurboCodebook>()

    /// The shared codebook for (dim, bits), computed once. dim ≥ 3, 1 ≤ bits ≤ 8.
    public static func shared(dim: Int, bits: Int) throws(KVCacheError) -> TurboCodebook {
        try check(dim: dim, bits: bits)
        return cache.codebook(dim: dim, bits: bits) { TurboCodebook(dim: dim, bits: bits) }
    }

    /// Computes the codebook from scratch, bypassing the cache (deterministic; tests compare the two).
    public static func compute(dim: Int, bits: Int) throws(KVCacheError) -> TurboCodebook {
        try check(dim: dim, bits: bits)
        return TurboCodebook(dim: dim, bits: bits)
    }

    static func check(dim: Int, bits: Int) throws(KVCacheError) {
        guard dim >= 3 else { throw .invalidOption(name: "turbo codebook dim", value: "\(dim)", reason: "must be at least 3") }
        guard (1...8).contains(bits) else { throw .invalidOption(name: "turbo codebook bits", value: "\(bits)", reason: "must be 1…8") }
    }

    /// Valid (dim, bits) only: callers go through `shared` / `compute`, which check them.
    init(dim: Int, bits: Int) {
        self.dim = dim
        self.bits = bits
        let half = HalfDensity(dim: dim)
        let levels = 1 << (bits - 1)
        // Start at the quantiles (i + ½)/levels of the half density.
        var c = (0..<levels).map { half.quantile((Double($0) + 0.5) / Double(levels)) }
        var t = [Double](repeating: 0, count: levels + 1)
        for _ in 0..<2000 {
            t[0] = 0
            t[levels] = 1
            for i in 1..<levels { t[i] = (c[i - 1] + c[i]) / 2 }
            var moved = 0.0
            for i in 0..<levels {
                let m = half.mass(t[i], t[i + 1])
                let next = m > 0 ? half.firstMoment(t[i], t[i + 1]) / m : (t[i] + t[i + 1]) / 2
                moved = max(moved, abs(next - c[i]))
                c[i] = next
            }
            if moved < 1e-13 { break }
        }
        for i in 1..<levels { t[i] = (c[i - 1] + c[i]) / 2 }
        var err = 0.0
        for i in 0..<levels {
            // ∫(x − c)² f = M2 − 2c·M1 + c²·M0 over the cell (half density has total mass 1).
            err += half.secondMoment(t[i], t[i + 1]) - 2 * c[i] * half.firstMoment(t[i], t[i + 1]) + c[i] * c[i] * half.mass(t[i], t[i + 1])
        }
        mse = err * Double(dim)
        let positive = c.map { Float($0) }
        centroids = positive.reversed().map { -$0 } + positive
        let tb = t[1..<levels].map { Float($0) }
        boundaries = tb.reversed().map { -$0 } + [0] + tb
    }

    /// Index of the centroid nearest to x (binary search over the boundaries; ties go up).
    @inline(__always) public func code(_ x: Float) -> Int {
        var lo = 0, hi = boundaries.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if x < boundaries[mid] { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }
}

/// The density f_d restricted to [0, 1] and renormalized, tabulated on `cells` midpoints with
/// prefix sums of mass, first and second moments: [cells + 1] each.
private struct HalfDensity {
    static let cells = 1 << 16
    let m0: [Double], m1: [Double], m2: [Double]

    init(dim: Int) {
        let n = Self.cells
        let h = 1.0 / Double(n)
        let power = Double(dim - 3) / 2
        var w = [Double](repeating: 0, count: n)
        for i in 0..<n {
            let x = (Double(i) + 0.5) * h
            w[i] = Foundation.exp(power * Foundation.log1p(-x * x))
        }
        let total = w.reduce(0, +)
        var a = [Double](repeating: 0, count: n + 1), b = a, c = a
        for i in 0..<n {
            let x = (Double(i) + 0.5) * h
            let p = w[i] / total
            a[i + 1] = a[i] + p
            b[i + 1] = b[i] + p * x
            c[i + 1] = c[i] + p * (x * x + h * h / 12)
        }
        m0 = a; m1 = b; m2 = c
    }

    /// Cumulative value of a prefix table at t ∈ [0, 1], linear inside a cell.
    private func at(_ table: [Double], _ t: Double) -> Double {
        let u = min(max(t, 0), 1) * Double(Self.cells)
        let i = min(Int(u), Self.cells - 1)
        let f = u - Double(i)
        return table[i] + f * (table[i + 1] - table[i])
    }

    func mass(_ a: Double, _ b: Double) -> Double { at(m0, b) - at(m0, a) }
    func firstMoment(_ a: Double, _ b: Double) -> Double { at(m1, b) - at(m1, a) }
    func secondMoment(_ a: Double, _ b: Double) -> Double { at(m2, b) - at(m2, a) }

    /// Smallest t with mass(0, t) ≥ p (bisection on the prefix table).
    func quantile(_ p: Double) -> Double {
        var lo = 0.0, hi = 1.0
        for _ in 0..<60 {
            let mid = (lo + hi) / 2
            if at(m0, mid) < p { lo = mid } else { hi = mid }
        }
        return (lo + hi) / 2
    }
}

/// Process-wide cache of codebooks keyed by (dim, bits).
