// Orthonormal rotations applied to cached vectors before quantization.
//
// llama.cpp (src/llama-kv-cache.cpp, since 2026-04) multiplies K (after RoPE) and Q by a normalized
// Sylvester Walsh–Hadamard matrix H_n (entries ±1/√n, H·H = I) with n the largest power of two
// dividing the head dim, when K's type is quantized and head dim % 64 == 0; V is rotated with 64×64
// blocks and the attention output rotated back. Scores are unchanged because (Hq)·(Hk) = q·k, and
// Σ w_i·H v_i = H Σ w_i v_i. The product is an in-place O(n log n) butterfly in the order of
// ggml-cpu's `ggml_compute_forward_fwht` (which llama.cpp runs for the rotation's mul_mat), so
// rotated vectors are bitwise llama.cpp's.
import GodwitKernels

/// An orthonormal transform of head vectors, applied in place.
public protocol KVRotation: Sendable {
    /// x ← R x for one vector [dim].
    func apply(_ x: UnsafeMutablePointer<Float>, dim: Int)
    /// x ← R⁻¹ x for one vector [dim].
    func applyInverse(_ x: UnsafeMutablePointer<Float>, dim: Int)
    var summary: String { get }
}

/// Block-diagonal normalized Walsh–Hadamard transform with blocks of `block` (a power of two).
public struct HadamardRotation: KVRotation, Equatable {
    public let block: Int

    public init(block: Int) {
        precondition(block > 0 && block & (block - 1) == 0, "Hadamard block must be a power of two")
        self.block = block
    }

    /// The largest power of two dividing `headDim` (llama.cpp's K rotation size).
    public static func largestPowerOfTwo(dividing headDim: Int) -> Int { headDim & -headDim }

    public var summary: String { "Walsh–Hadamard \(block)×\(block)" }

    public func apply(_ x: UnsafeMutablePointer<Float>, dim: Int) {
        var base = 0
        while base + block <= dim {
            Self.butterfly(x + base, block)
            base += block
        }
    }

    /// H is symmetric and orthonormal, so it is its own inverse.
    public func applyInverse(_ x: UnsafeMutablePointer<Float>, dim: Int) { apply(x, dim: dim) }

    /// In-place fast Walsh–Hadamard transform of [n] scaled by 1/√n (Sylvester ordering, the
    /// matrix llama.cpp builds in ggml_gen_hadamard). As ggml-cpu's `ggml_compute_forward_fwht`:
    /// the scale first (x·(1/√n)), then butterflies of width 1, 2, 4, … with (a + b, a − b).
    @inline(__always)
    static func butterfly(_ v: UnsafeMutablePointer<Float>, _ n: Int) {
        let s = 1 / Float(n).squareRoot()
        for i in 0..<n { v[i] *= s }
        var h = 1
        while h < n {
            var i = 0
            while i < n {
                for j in i..<i + h {
                    let a = v[j], b = v[j + h]
                    v[j] = a + b
                    v[j + h] = a - b
                }
                i += 2 * h
            }
            h *= 2
        }
    }
}

/// Random sign flips followed by a block Walsh–Hadamard transform: R = H·D. Used by TurboQuant-style
/// schemes so the rotation does not cancel against a plain Hadamard rotation.
public struct SignedHadamardRotation: KVRotation, Equatable {
    public let block: Int
    /// ±1 per coordinate, [dim].
    public let signs: [Float]

    /// Deterministic signs from `seed` (SplitMix64), one per coordinate of a `dim`-vector.
    public init(block: Int, dim: Int, seed: UInt64) {
        self.block = block
        var rng = SplitMix64(seed: seed)
        var s = [Float]()
        s.reserveCapacity(dim)
        for _ in 0..<dim { s.append(rng.next() & 1 == 0 ? 1 : -1) }
        signs = s
    }

    public var summary: String { "random signs + Walsh–Hadamard \(block)×\(block)" }

    public func apply(_ x: UnsafeMutablePointer<Float>, dim: Int) {
        for i in 0..<dim { x[i] *= signs[i] }
        HadamardRotation(block: block).apply(x, dim: dim)
    }

    public func applyInverse(_ x: UnsafeMutablePointer<Float>, dim: Int) {
        HadamardRotation(block: block).apply(x, dim: dim)
        for i in 0..<dim { x[i] *= signs[i] }
    }
}
