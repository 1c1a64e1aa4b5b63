import Foundation
import GodwitKVCache
import Testing

@Suite struct RotationTests {
    static let rotations: [(String, any KVRotation, Int)] = [
        ("H64", HadamardRotation(block: 64), 64), ("H256", HadamardRotation(block: 256), 256),
        ("H64 blocks of 256", HadamardRotation(block: 64), 256),
        ("signed H64", SignedHadamardRotation(block: 64, dim: 64, seed: 3), 64),
    ]

    @Test("Rotations are orthonormal: R·Rᵀ = I and R⁻¹·R = I", arguments: 0..<4)
    func orthonormal(index: Int) {
        let (name, r, dim) = Self.rotations[index]
        // Columns R e_i; orthonormal iff their Gram matrix is the identity.
        var columns = [[Float]]()
        for i in 0..<dim {
            var e = [Float](repeating: 0, count: dim)
            e[i] = 1
            e.withUnsafeMutableBufferPointer { r.apply($0.baseAddress!, dim: dim) }
            columns.append(e)
        }
        var worst: Float = 0
        for i in 0..<dim {
            for j in 0..<dim {
                var d: Float = 0
                for k in 0..<dim { d += columns[i][k] * columns[j][k] }
                worst = max(worst, abs(d - (i == j ? 1 : 0)))
            }
        }
        #expect(worst < 1e-5, "\(name): |R·Rᵀ − I| = \(worst)")
        var rng = TestRandom(seed: 11)
        var v = rng.vectors(count: 1, dim: dim)
        let orig = v
        v.withUnsafeMutableBufferPointer { r.apply($0.baseAddress!, dim: dim); r.applyInverse($0.baseAddress!, dim: dim) }
        #expect(relativeRMSError(orig, v) < 1e-6)
    }

    @Test("The Hadamard matrix is Sylvester's, entries ±1/√n (llama.cpp's ggml_gen_hadamard)")
    func sylvester() {
        let n = 64
        for i in 0..<n {
            var e = [Float](repeating: 0, count: n)
            e[i] = 1
            e.withUnsafeMutableBufferPointer { HadamardRotation(block: n).apply($0.baseAddress!, dim: n) }
            for j in 0..<n {
                let sign: Float = (i & j).nonzeroBitCount % 2 == 0 ? 1 : -1
                #expect(abs(e[j] - sign / 8) < 1e-6)
            }
        }
    }

    @Test("Rotating K and Q leaves exact scores unchanged")
    func scoresInvariant() {
        var rng = TestRandom(seed: 5)
        for (_, r, dim) in Self.rotations {
            var q = rng.vectors(count: 1, dim: dim), k = rng.vectors(count: 1, dim: dim)
            var before = 0.0
            for i in 0..<dim { before += Double(q[i] * k[i]) }
            q.withUnsafeMutableBufferPointer { r.apply($0.baseAddress!, dim: dim) }
            k.withUnsafeMutableBufferPointer { r.apply($0.baseAddress!, dim: dim) }
            var after = 0.0
            for i in 0..<dim { after += Double(q[i] * k[i]) }
            #expect(abs(before - after) < 1e-4 * max(1, abs(before)))
        }
    }
}
