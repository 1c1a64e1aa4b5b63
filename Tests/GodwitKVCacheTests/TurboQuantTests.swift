import Foundation
import GodwitKVCache
import Testing

/// TurboQuant's parts: the Lloyd–Max codebooks of the Beta coordinate density and the random rotation.
@Suite struct TurboQuantTests {
    /// Gaussian Lloyd–Max distortion (Max 1960; TurboQuant Thm. 1 quotes ≈ 0.36, 0.117, 0.03, 0.009),
    /// the large-d limit of d·MSE for the Beta density.
    static let gaussianMSE: [Int: Double] = [1: 0.3634, 2: 0.1175, 3: 0.03454, 4: 0.009497]

    @Test("Codebooks are deterministic, cached, symmetric, and sorted", arguments: [64, 128, 256])
    func codebookShape(dim: Int) throws {
        for bits in 1...4 {
            let a = try TurboCodebook.compute(dim: dim, bits: bits), b = try TurboCodebook.compute(dim: dim, bits: bits)
            #expect(a == b)
            #expect(try TurboCodebook.shared(dim: dim, bits: bits) == a)
            let c = a.centroids
            #expect(c.count == 1 << bits && a.boundaries.count == (1 << bits) - 1)
            for i in 0..<c.count { #expect(c[i] == -c[c.count - 1 - i], "dim \(dim) bits \(bits): not antisymmetric at \(i)") }
            for i in 1..<c.count { #expect(c[i - 1] < c[i]) }
            for i in 0..<a.boundaries.count { #expect(c[i] < a.boundaries[i] && a.boundaries[i] < c[i + 1]) }
            // Codes pick the nearest centroid.
            for x in stride(from: Float(-0.5), through: 0.5, by: 0.001) {
                let k = a.code(x)
                let best = c.indices.min { abs(c[$0] - x) < abs(c[$1] - x) }!
                #expect(abs(c[k] - x) <= abs(c[best] - x) + 1e-7)
            }
        }
    }

    @Test("MSE falls with bits and approaches the Gaussian Lloyd–Max values from below", arguments: [64, 256])
    func codebookMSE(dim: Int) throws {
        var previous = Double.infinity
        for bits in 1...4 {
            let m = try TurboCodebook.shared(dim: dim, bits: bits).mse
            #expect(m < previous)
            previous = m
            // The Beta density has lighter tails than N(0, 1/d): a little less distortion, within 5% at d ≥ 64.
            let g = Self.gaussianMSE[bits]!
            #expect(m <= g * 1.001 && m >= g * 0.95, "dim \(dim) bits \(bits): \(m) vs Gaussian \(g)")
        }
        // Monte Carlo check of the integration at 3 bits: random unit vectors in dimension d.
        let book = try TurboCodebook.shared(dim: dim, bits: 3)
        var rng = TestRandom(seed: 5)
        var err = 0.0
        let trials = 400
        for _ in 0..<trials {
            var v = (0..<dim).map { _ in Double(rng.gaussian()) }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            v = v.map { $0 / norm }
            for x in v { let q = Double(book.centroids[book.code(Float(x))]); err += (x - q) * (x - q) }
        }
        let mc = err / Double(trials)
        #expect(abs(mc - book.mse) < 0.1 * book.mse, "Monte Carlo \(mc) vs integrated \(book.mse)")
    }

    @Test("Invalid codebook parameters throw")
    func invalid() {
        #expect(throws: KVCacheError.self) { try TurboCodebook.shared(dim: 2, bits: 3) }
        #expect(throws: KVCacheError.self) { try TurboCodebook.shared(dim: 64, bits: 0) }
    }

    @Test("The scheme rotation is orthonormal, is not the parity Hadamard, and non-power-of-two dims are refused",
          arguments: ["turbo2", "turbo3", "turbo4"])
    func rotation(name: String) throws {
        let scheme = try KVSchemeRegistry.shared.scheme(named: name)
        for dim in [64, 256] {
            for role in KVRole.allCases {
                let r = try #require(scheme.rotation(role: role, headDim: dim, options: .init()))
                var noRotation = KVSchemeOptions()
                noRotation.rotation = false
                #expect(scheme.rotation(role: role, headDim: dim, options: noRotation) != nil, "intrinsic rotation")
                var worst: Float = 0, differsFromH = false
                var columns = [[Float]]()
                for i in 0..<dim {
                    var e = [Float](repeating: 0, count: dim)
                    e[i] = 1
                    var h = e
                    e.withUnsafeMutableBufferPointer { r.apply($0.baseAddress!, dim: dim) }
                    h.withUnsafeMutableBufferPointer { HadamardRotation(block: dim).apply($0.baseAddress!, dim: dim) }
                    if zip(e, h).contains(where: { abs($0 - $1) > 1e-6 }) { differsFromH = true }
                    columns.append(e)
                }
                for i in 0..<dim {
                    for j in i..<dim {
                        var d: Float = 0
                        for k in 0..<dim { d += columns[i][k] * columns[j][k] }
                        worst = max(worst, abs(d - (i == j ? 1 : 0)))
                    }
                }
                #expect(worst < 1e-5, "\(name) dim \(dim): |R·Rᵀ − I| = \(worst)")
                #expect(differsFromH)
                var rng = TestRandom(seed: 3)
                var v = rng.vectors(count: 1, dim: dim)
                let orig = v
                v.withUnsafeMutableBufferPointer { r.apply($0.baseAddress!, dim: dim); r.applyInverse($0.baseAddress!, dim: dim) }
                #expect(relativeRMSError(orig, v) < 1e-6)
            }
        }
        #expect(scheme.unsupportedReason(role: .key, headDim: 96) != nil)
        #expect(scheme.unsupportedReason(role: .key, headDim: 64) == nil)
        let ctx = KVStoreContext(geometry: KVStoreGeometry(layer: 0, headCount: 1, headDim: 96, capacity: 4), role: .key, options: .init(), rope: nil)
        #expect(throws: KVCacheError.self) { _ = try scheme.makeKeyStore(ctx) }
    }
}
