// Weighted one-dimensional k-means (Lloyd's algorithm on sorted data with prefix sums), used to
// learn the non-uniform codebooks of the KVQuant-style schemes (NUQScheme.swift).
// Source: KVQuant (arXiv 2401.18079) learns its nuq codebooks with sensitivity-weighted k-means
// (reference code: github.com/SqueezeAILab/KVQuant, quant/kvquant/simquant_module_quantizer.py,
// sklearn KMeans with sample_weight). Deviations: exact 1-D Lloyd iterations on sorted samples
// (no random restarts: the initialization is the weighted quantiles, so results are deterministic).

/// 1-D weighted k-means.
public enum KMeans1D {
    /// Fits `k` centroids to `values` weighted by `weights` (same count; nil = all 1). Returns the
    /// centroids sorted ascending. Deterministic: initialized at the weighted (j + ½)/k quantiles,
    /// then Lloyd iterations until no centroid moves (at most `iterations`). Clusters that become
    /// empty keep their previous centroid. Fewer distinct values than `k` give repeated centroids.
    public static func fit(values: [Float], weights: [Float]? = nil, k: Int, iterations: Int = 200) -> [Float] {
        precondition(k > 0, "k-means needs k > 0")
        guard !values.isEmpty else { return [Float](repeating: 0, count: k) }
        let order = values.indices.sorted { values[$0] < values[$1] }
        let x = order.map { Double(values[$0]) }
        let w = order.map { i in weights.map { Double(max(0, $0[i])) } ?? 1 }
        let n = x.count
        // prefix[i] = Σ_{j<i} w_j, prefixX[i] = Σ_{j<i} w_j·x_j.
        var prefix = [Double](repeating: 0, count: n + 1), prefixX = [Double](repeating: 0, count: n + 1)
        for i in 0..<n {
            prefix[i + 1] = prefix[i] + w[i]
            prefixX[i + 1] = prefixX[i] + w[i] * x[i]
        }
        let total = prefix[n]
        guard total > 0 else { return [Float](repeating: Float(x[n / 2]), count: k) }
        // First index whose cumulative weight exceeds `target` / first index with x > t.
        func indexOfWeight(_ target: Double) -> Int {
            var lo = 0, hi = n
            while lo < hi { let m = (lo + hi) / 2; if prefix[m + 1] <= target { lo = m + 1 } else { hi = m } }
            return min(lo, n - 1)
        }
        func firstAbove(_ t: Double) -> Int {
            var lo = 0, hi = n
            while lo < hi { let m = (lo + hi) / 2; if x[m] <= t { lo = m + 1 } else { hi = m } }
            return lo
        }
        var c = (0..<k).map { x[indexOfWeight((Double($0) + 0.5) / Double(k) * total)] }
        for _ in 0..<iterations {
            var next = c
            var start = 0
            for j in 0..<k {
                let end = j == k - 1 ? n : max(start, firstAbove((c[j] + c[j + 1]) / 2))
                let wsum = prefix[end] - prefix[start]
                if wsum > 0 { next[j] = (prefixX[end] - prefixX[start]) / wsum }
                start = end
            }
            next.sort()
            if next == c { break }
            c = next
        }
        return c.map { Float($0) }
    }

    /// Index of the nearest centroid (centroids sorted ascending).
    public static func nearest(_ v: Float, centroids c: [Float]) -> Int {
        var i = 0
        while i + 1 < c.count && v > (c[i] + c[i + 1]) / 2 { i += 1 }
        return i
    }
}
