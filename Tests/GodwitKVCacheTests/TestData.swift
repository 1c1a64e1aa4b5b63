import Foundation
import GodwitKVCache

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

/// `count` query rows (queries [count, dim]) prepared by a key store: bytes [count, preparedQueryBytes].
func preparedQueries(_ store: any KeyStore, _ queries: [Float], count: Int, dim: Int) -> [UInt8] {
    let qb = store.preparedQueryBytes
    var prepared = [UInt8](repeating: 0, count: count * qb)
    prepared.withUnsafeMutableBytes { p in
        queries.withUnsafeBufferPointer { q in for i in 0..<count { store.prepareQuery(q.baseAddress! + i * dim, into: p.baseAddress! + i * qb) } }
    }
    return prepared
}

/// The fast kernel's and the scalar twin's scores of prepared queries over `positions`: each [count, stride].
func fastAndTwinScores(_ store: any ScalarTwinKeyStore, _ prepared: [UInt8], count: Int, head: Int, positions: Range<Int>,
                       stride: Int) -> (fast: [Float], twin: [Float]) {
    var fast = [Float](repeating: 0, count: count * stride), twin = fast
    prepared.withUnsafeBytes { p in
        fast.withUnsafeMutableBufferPointer {
            store.scores(queries: p.baseAddress!, queryCount: count, head: head, positions: positions, into: $0.baseAddress!, outStride: stride)
        }
        twin.withUnsafeMutableBufferPointer {
            store.scalarScores(queries: p.baseAddress!, queryCount: count, head: head, positions: positions, into: $0.baseAddress!, outStride: stride)
        }
    }
    return (fast, twin)
}
