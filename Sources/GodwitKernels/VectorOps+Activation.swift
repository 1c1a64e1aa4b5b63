// Activation functions and a vectorized exp (ggml-cpu/vec.h: ggml_v_expf, ggml_vec_swiglu_f32,
// ggml_gelu_f32). Deviation: GELU is computed in float with the tanh formula, whereas ggml
// (GGML_GELU_FP16) looks it up in a table indexed by the f16-rounded input.
import RealModule

/// Vectorized transcendental approximations with bit tricks that compile to plain SIMD code.
public enum FastMath {
    /// e^x for 16 lanes, relative error ≈ 2e-7 on [-87, 88]; 0 below, +inf above.
    @inline(__always)
    public static func exp(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let lo = SIMD16<Float>(repeating: -87.33654), hi = SIMD16<Float>(repeating: 88.72283)
        var v = x.replacing(with: lo, where: x .< lo)
        v = v.replacing(with: hi, where: v .> hi)
        // n = round(v·log2 e) with the 1.5·2^23 trick; the low mantissa bits of t are n itself.
        let magic = SIMD16<Float>(repeating: 12582912.0)
        let t = magic.addingProduct(v, SIMD16<Float>(repeating: 1.44269504))
        let n = t - magic
        // r = v − n·ln2, with ln2 split in two for accuracy (Cody–Waite).
        var r = v.addingProduct(n, SIMD16<Float>(repeating: -0.693359375))
        r = r.addingProduct(n, SIMD16<Float>(repeating: 2.12194440e-4))
        // e^r on [-ln2/2, ln2/2]: Cephes expf polynomial.
        var p = SIMD16<Float>(repeating: 1.9875691500e-4)
        p = SIMD16<Float>(repeating: 1.3981999507e-3).addingProduct(p, r)
        p = SIMD16<Float>(repeating: 8.3334519073e-3).addingProduct(p, r)
        p = SIMD16<Float>(repeating: 4.1665795894e-2).addingProduct(p, r)
        p = SIMD16<Float>(repeating: 1.6666665459e-1).addingProduct(p, r)
        p = SIMD16<Float>(repeating: 5.0000001201e-1).addingProduct(p, r)
        let r2 = r * r
        p = (r + SIMD16<Float>(repeating: 1)).addingProduct(p, r2)
        // 2^n from the exponent bits.
        let tb = unsafeBitCast(t, to: SIMD16<UInt32>.self), mb = unsafeBitCast(magic, to: SIMD16<UInt32>.self)
        let bits = (tb &- mb) &+ SIMD16<UInt32>(repeating: 127)
        let scale = unsafeBitCast(bits &<< 23, to: SIMD16<Float>.self)
        return p * scale
    }

    /// e^x for one value, same method as the 16-lane version.
    @inline(__always)
    public static func exp(_ x: Float) -> Float {
        exp(SIMD16<Float>(repeating: x))[0]
    }
}

extension VectorOps {
    /// SwiGLU: out[i] = silu(gate[i]) · up[i] over [n]; silu(x) = x / (1 + e^−x). `out` may alias.
    public static func swiglu(gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                              into out: UnsafeMutablePointer<Float>, count n: Int) {
        let rg = UnsafeRawPointer(gate), ru = UnsafeRawPointer(up), ro = UnsafeMutableRawPointer(out)
        let one = SIMD16<Float>(repeating: 1)
        var i = 0
        while i + 16 <= n {
            let g = rg.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            let u = ru.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            let s = g / (one + FastMath.exp(-g))
            ro.storeBytes(of: s * u, toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        while i < n { out[i] = gate[i] / (1 + FastMath.exp(-gate[i])) * up[i]; i += 1 }
    }

    /// GeGLU (tanh approximation): out[i] = gelu(gate[i]) · up[i] over [n]. `out` may alias.
    public static func geglu(gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                             into out: UnsafeMutablePointer<Float>, count n: Int) {
        let rg = UnsafeRawPointer(gate), ru = UnsafeRawPointer(up), ro = UnsafeMutableRawPointer(out)
        var i = 0
        while i + 16 <= n {
            let g = rg.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            let u = ru.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            ro.storeBytes(of: gelu(g) * u, toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        while i < n { out[i] = gelu(SIMD16<Float>(repeating: gate[i]))[0] * up[i]; i += 1 }
    }

    /// gelu(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), with tanh(z) = 1 − 2/(e^{2z} + 1).
    @inline(__always)
    public static func gelu(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let c = SIMD16<Float>(repeating: 0.7978845608028654), k = SIMD16<Float>(repeating: 0.044715)
        let one = SIMD16<Float>(repeating: 1)
        let z = c * x * (one + k * x * x)
        let e = FastMath.exp(z + z)
        let th = one - (one + one) / (e + one)
        return SIMD16<Float>(repeating: 0.5) * x * (one + th)
    }
}
