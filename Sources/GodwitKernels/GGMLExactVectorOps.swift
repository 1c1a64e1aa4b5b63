// Elementwise and reduction kernels in llama.cpp's exact float order (Numerics.ggml).
// Source: llama.cpp ggml/src/ggml-cpu (llama-cpp-python 0.3.36 vendor tree), AVX-512 build
// without AVX512-FP16:
//   vec.h `ggml_v_expf` / `ggml_v_silu` (the `__AVX512F__ && __AVX512DQ__` versions),
//   vec.cpp `ggml_vec_swiglu_f32`, `ggml_vec_soft_max_f32`, `ggml_vec_dot_f16`,
//   simd-mappings.h (GGML_F16_STEP 64, GGML_F16_EPR 16, GGML_F32Cx16_REDUCE),
//   ops.cpp `ggml_compute_forward_rms_norm_f32` (Σx² in double), `rotate_pairs` (RoPE),
//   llamafile/sgemm.cpp `tinyBLAS<16, __m512, …, ggml_fp16_t>` (f16 products of 2+ tokens),
//   GCC's `_mm512_reduce_add_ps` (halves: 16 → 8 → 4 → 2 → 1).
// Deviations: scalar tails (n not a multiple of 16) call the C library's expf as ggml does; NaN
// inputs are not reproduced bit for bit.
// Scalar twins: `expfReference`, `dotF16VecReference`, `dotF16TinyBLASReference`.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension GGMLExact {
    // MARK: Reductions

    /// `_mm512_reduce_add_ps`: (x[i] + x[i+8]) → (+4) → (+2) → lane 0 + lane 1.
    @inline(__always) public static func reduceAdd(_ v: SIMD16<Float>) -> Float {
        let a = v.lowHalf + v.highHalf
        let b = a.lowHalf + a.highHalf
        let c = b.lowHalf + b.highHalf
        return c[0] + c[1]
    }

    // MARK: exp, SiLU, SwiGLU

    /// ggml_v_expf (AVX-512): 16 lanes.
    @inline(__always) public static func expf(_ x: SIMD16<Float>) -> SIMD16<Float> {
        typealias V = SIMD16<Float>
        let r = V(repeating: 0x1.8p23)
        let z = r.addingProduct(x, V(repeating: 0x1.715476p+0))
        let n = z - r
        let b = x.addingProduct(-n, V(repeating: 0x1.62e4p-1)).addingProduct(-n, V(repeating: 0x1.7f7d1cp-20))
        let u = b * b
        let p3 = V(repeating: 0x1.573e2ep-5).addingProduct(V(repeating: 0x1.0e4020p-7), b)
        let p1 = V(repeating: 0x1.fffdb6p-2).addingProduct(V(repeating: 0x1.555e66p-3), b)
        let p0 = V(repeating: 1).addingProduct(V(repeating: 0x1.ffffecp-1), b)
        let j = p0.addingProduct(p1.addingProduct(p3, u), u)
        // scalef(j, n) = j·2^n rounded once. n is an integer; its value is in z's low mantissa bits.
        let ni = unsafeBitCast(z, to: SIMD16<Int32>.self) &- unsafeBitCast(r, to: SIMD16<Int32>.self)
        let inRange = (n .>= V(repeating: -126)) .& (n .<= V(repeating: 127))
        if all(inRange) {
            return j * unsafeBitCast((ni &+ 127) &<< 23, to: V.self)
        }
        var res = V()
        for i in 0..<16 { res[i] = scalefLane(j[i], n[i]) }
        return res
    }

    /// One lane of scalef with ggml's overflow handling (|n| > 192 → 0 for n ≤ 0, +inf otherwise).
    @inline(never) static func scalefLane(_ j: Float, _ n: Float) -> Float {
        if !(abs(n) <= 192) { return n.isNaN ? .nan : (n <= 0 ? 0 : .infinity) }
        return Float(Double(j) * Double(sign: .plus, exponent: Int(n), significand: 1))
    }

    /// Scalar twin of `expf` (one lane, same constants and fused operations).
    public static func expfReference(_ x: Float) -> Float {
        let r: Float = 0x1.8p23
        let z = GGMLExact.fma(x, 0x1.715476p+0, r)
        let n = z - r
        let b = GGMLExact.fma(-n, 0x1.7f7d1cp-20, GGMLExact.fma(-n, 0x1.62e4p-1, x))
        let u = b * b
        let j = GGMLExact.fma(GGMLExact.fma(GGMLExact.fma(0x1.0e4020p-7, b, 0x1.573e2ep-5), u, GGMLExact.fma(0x1.555e66p-3, b, 0x1.fffdb6p-2)),
                          u, GGMLExact.fma(0x1.ffffecp-1, b, 1))
        return scalefLane(j, n)
    }

    /// ggml_v_silu: x / (1 + expf(0 − x)).
    @inline(__always) public static func silu(_ x: SIMD16<Float>) -> SIMD16<Float> {
        x / (SIMD16<Float>(repeating: 1) + expf(SIMD16<Float>() - x))
    }

    /// ggml_vec_swiglu_f32: out[i] = silu(gate[i]) · up[i] over [n] (tail: libm expf). `out` may alias.
    public static func swiglu(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count n: Int) {
        let rg = UnsafeRawPointer(gate), ru = UnsafeRawPointer(up), ro = UnsafeMutableRawPointer(out)
        var i = 0
        while i + 16 <= n {
            let g = rg.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
            let u = ru.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
            ro.storeBytes(of: silu(g) * u, toByteOffset: 4 * i, as: SIMD16<Float>.self)
            i += 16
        }
        while i < n { out[i] = gate[i] / (1 + Glibc.expf(-gate[i])) * up[i]; i += 1 }
    }

    /// ggml_table_gelu_f16: f16(gelu(x)) for every f16 bit pattern x, gelu = ggml_gelu_f32
    /// (0.5·x·(1 + tanhf(√(2/π)·x·(1 + 0.044715·x·x))), the `1 + a·x·x` contracted to an FMA).
    static let geluTable: [UInt16] = (0..<65536).map { i in
        let x = Float(Float16(bitPattern: UInt16(i)))
        let inner = fma(0.044715 * x, x, 1)
        let g = 0.5 * x * (1 + Glibc.tanhf(0.79788456080286535587989211986876 * x * inner))
        return Float16(g).bitPattern
    }

    /// ggml_vec_geglu_f32 (GGML_GELU_FP16): out[i] = gelu(gate[i])·up[i] over [n] with gelu read
    /// from the f16 table at f16(gate[i]); 0 for gate ≤ −10, gate·up for gate ≥ 10. `out` may alias.
    public static func geglu(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count n: Int) {
        geluTable.withUnsafeBufferPointer { table in
            for i in 0..<n {
                let x = gate[i]
                if x <= -10 { out[i] = 0 }
                else if x >= 10 { out[i] = x * up[i] }
                else { out[i] = Float(Float16(bitPattern: table[Int(Float16(x).bitPattern)])) * up[i] }
            }
        }
    }

    // MARK: Norms, RoPE

    /// ggml_compute_forward_rms_norm_f32 (+ the weight multiply): sum = Σ double(x·x) serially,
    /// mean = float(sum/n), scale = 1/sqrtf(mean + eps), out = (x·scale)·w over [n]. `out` may alias x.
    public static func rmsNorm(_ x: UnsafePointer<Float>, weight w: UnsafePointer<Float>,
                               into out: UnsafeMutablePointer<Float>, count n: Int, eps: Float) {
        var sum: Double = 0
        for i in 0..<n { sum += Double(x[i] * x[i]) }
        let mean = Float(sum / Double(n))
        let scale = 1 / (mean + eps).squareRoot()
        for i in 0..<n { out[i] = x[i] * scale * w[i] }
    }

    /// rotate_pairs: x0' = x0·cos − x1·sin, x1' = x0·sin + x1·cos with the C compiler's contraction
    /// (fma(x0, cos, −(x1·sin)), fma(x0, sin, x1·cos)). x: [heads, headDim]; pairs (2i, 2i+1)
    /// (normal) or (i, i + dims/2) (neox) for i < dims/2; cos/sin [dims/2].
    public static func rope(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim: Int, dimensions: Int, neox: Bool,
                            cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        let half = dimensions / 2
        let fused = variant.fusedRoPE
        for h in 0..<heads {
            let v = x + h * headDim
            for i in 0..<half {
                let i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1
                let x0 = v[i0], x1 = v[i1], c = cos[i], s = sin[i]
                if fused {
                    v[i0] = GGMLExact.fma(x0, c, -(x1 * s))
                    v[i1] = GGMLExact.fma(x0, s, x1 * c)
                } else {
                    v[i0] = x0 * c - x1 * s
                    v[i1] = x0 * s + x1 * c
                }
            }
        }
    }

    // MARK: f16 dot products (values already rounded to f16, held as floats)

    /// ggml_vec_dot_f16 (one token): 4 accumulators of 16 lanes per 64 elements (fma), reduced
    /// (s0+s2)+(s1+s3) then `reduceAdd`; elements past the last multiple of 64 are added in double.
    @inline(__always) public static func dotF16Vec(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        var s0 = SIMD16<Float>(), s1 = SIMD16<Float>(), s2 = SIMD16<Float>(), s3 = SIMD16<Float>()
        let np = n & ~63
        var i = 0
        while i < np {
            s0 = s0.addingProduct(ra.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self), rb.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self))
            s1 = s1.addingProduct(ra.loadUnaligned(fromByteOffset: 4 * i + 64, as: SIMD16<Float>.self), rb.loadUnaligned(fromByteOffset: 4 * i + 64, as: SIMD16<Float>.self))
            s2 = s2.addingProduct(ra.loadUnaligned(fromByteOffset: 4 * i + 128, as: SIMD16<Float>.self), rb.loadUnaligned(fromByteOffset: 4 * i + 128, as: SIMD16<Float>.self))
            s3 = s3.addingProduct(ra.loadUnaligned(fromByteOffset: 4 * i + 192, as: SIMD16<Float>.self), rb.loadUnaligned(fromByteOffset: 4 * i + 192, as: SIMD16<Float>.self))
            i += 64
        }
        var sum = Double(reduceAdd((s0 + s2) + (s1 + s3)))
        while i < n { sum += Double(a[i] * b[i]); i += 1 }
        return Float(sum)
    }

    /// tinyBLAS f16 (2+ tokens): one accumulator of 16 lanes (fma over chunks of 16), then
    /// `reduceAdd`. n must be a multiple of 16 (tinyBLAS declines otherwise; use `dotF16Vec`).
    @inline(__always) public static func dotF16TinyBLAS(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        var acc = SIMD16<Float>()
        var i = 0
        while i < n {
            acc = acc.addingProduct(ra.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self), rb.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self))
            i += 16
        }
        return reduceAdd(acc)
    }

    /// Scalar twin of `dotF16Vec`.
    public static func dotF16VecReference(_ a: [Float], _ b: [Float]) -> Float {
        let n = a.count, np = n & ~63
        var s = [[Float]](repeating: [Float](repeating: 0, count: 16), count: 4)
        for i in stride(from: 0, to: np, by: 64) {
            for j in 0..<4 { for l in 0..<16 { s[j][l] = GGMLExact.fma(a[i + 16 * j + l], b[i + 16 * j + l], s[j][l]) } }
        }
        var x = (0..<16).map { (s[0][$0] + s[2][$0]) + (s[1][$0] + s[3][$0]) }
        for w in [8, 4, 2, 1] { for l in 0..<w { x[l] = x[l] + x[l + w] } }
        var sum = Double(x[0])
        for i in np..<n { sum += Double(a[i] * b[i]) }
        return Float(sum)
    }

    /// Scalar twin of `dotF16TinyBLAS`.
    public static func dotF16TinyBLASReference(_ a: [Float], _ b: [Float]) -> Float {
        var x = [Float](repeating: 0, count: 16)
        for i in stride(from: 0, to: a.count, by: 16) { for l in 0..<16 { x[l] = GGMLExact.fma(a[i + l], b[i + l], x[l]) } }
        for w in [8, 4, 2, 1] { for l in 0..<w { x[l] = x[l] + x[l + w] } }
        return x[0]
    }

    /// Rounds to f16 and back (ggml_cpu_fp32_to_fp16: round to nearest even, F16C).
    @inline(__always) public static func roundF16(_ x: Float) -> Float { Float(Float16(x)) }
}
