// Quantized dot products and matrix products in llama.cpp's exact float order.
// Source: llama.cpp ggml/src/ggml-cpu/arch/x86/quants.c (llama-cpp-python 0.3.36 vendor tree):
// `ggml_vec_dot_q4_1_q8_1`, `ggml_vec_dot_q8_0_q8_0`, `ggml_vec_dot_q4_0_q8_0`, `ggml_vec_dot_q5_0_q8_0` (the `__AVX2__` branches, which are what an
// AVX-512 build runs: there is no AVX-512 branch; with AVX512-VNNI the 8 lanes come from
// `_mm256_dpbusd_epi32`), and llamafile/sgemm.cpp `tinyBLAS_Q0_AVX` (prompt batches of q8_0
// weights: per (row, token) the same lanes, the same `d_w·d_x` products and `fmadd`s, and the same
// `hsum`, so its results equal the vec_dot's). ggml-cpu.c `ggml_compute_forward_mul_mat` calls
// the vec_dot once per (weight row, activation row) for q4_1 (no tinyBLAS or repacked kernel for
// it on x86), so the products are batch-independent in llama.cpp too.
//
// Per 32-value block b (weights w, activations x in q8_1 / q8_0 as ActivationBuffer writes them):
//   lanes[i] = Σ_{j=4i}^{4i+3} q_w[j]·q_x[j]  (i = 0..7, exact Int32; q4_1 nibbles: low nibbles are
//              values 0..15, high nibbles 16..31), converted to float
//   acc      = fma(f16(d_w)·f16(d_x), lanes, acc)             8 float lanes
//   q4_1:      summs = fma(f16(m_w), f16(s_x), summs)           (`summs += m·s`, contracted by the
//              C compiler into an FMA under -ffp-contract)
//   result   = hsum_float_8(acc) [+ summs],  hsum_float_8 = ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))
// Deviations: none known for q4_1, q4_0, q5_0 and q8_0 (q4_0 is used by the KV cache's exact flash
// attention only: no weight product for it here). q4_K (repacked `ggml_gemv/gemm_q4_K_8x8_q8_K`)
// and q6_K (vec_dot, or ggml-cpu/tiled for batches of 8+) are in GGMLExactKQuants.swift. Other
// weight types have no exact product here (`hasGGMLProduct` is false): callers fall back to the
// fast kernels.
// Scalar twins: `dotQ4_1Q8_1Reference`, `dotQ8_0Q8_0Reference`, `dotQ4_0Q8_0Reference`, `dotQ5_0Q8_0Reference` (Tests/GodwitTests/ExactNumericsTests.swift).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// llama.cpp-exact kernels (`Numerics.ggml`).
public enum GGMLExact {
    /// Which of the C compiler's possible FMA contractions to reproduce. llama.cpp's release build
    /// (GCC, -ffp-contract=fast by default) fuses `summs += m·s`, RoPE's `x0·cos − x1·sin` and
    /// ggml-cpu/tiled's epilogue `buf + result·d1` (GCC's `_mm512_add_ps`/`_mm512_mul_ps` are plain
    /// vector `+`/`*`, so they contract like C; measured on Gemma 3: without it the logits of
    /// 8+-token prompts drift, with it they match); `GODWIT_GGML_VARIANT` (a comma list of
    /// `plain-summs`, `plain-rope`, `plain-tiled`) switches them off for diagnosing a build
    /// compiled without. (quantize_row_q8_K_ref's `nearest_int(iscale·x)` is measured not fused.)
    public struct Variant: Sendable {
        public var fusedMinSum = true
        public var fusedRoPE = true
        public var fusedTiled = true
    }

    public static let variant: Variant = {
        var v = Variant()
        let env = getenv("GODWIT_GGML_VARIANT").map { String(cString: $0) } ?? ""
        for item in env.split(separator: ",") {
            if item == "plain-summs" { v.fusedMinSum = false }
            if item == "plain-rope" { v.fusedRoPE = false }
            if item == "plain-tiled" { v.fusedTiled = false }
        }
        return v
    }()

    /// Σ of each group of 4 consecutive lanes: [4] from [16] (exact integers).
    @inline(__always) static func quads(_ p: SIMD16<Int32>) -> SIMD4<Int32> {
        let a = p.evenHalf &+ p.oddHalf
        return a.evenHalf &+ a.oddHalf
    }

    @inline(__always) static func float8(_ v: SIMD8<Int32>) -> SIMD8<Float> {
        var r = SIMD8<Float>()
        for i in 0..<8 { r[i] = Float(v[i]) }
        return r
    }

    /// hsum_float_8: ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)).
    @inline(__always) public static func hsum8(_ v: SIMD8<Float>) -> Float {
        let a = v.lowHalf + v.highHalf
        let b = a.lowHalf + a.highHalf
        return b[0] + b[1]
    }

    /// a·b + c rounded once (the C `fmaf` / `vfmadd`).
    @inline(__always) public static func fma(_ a: Float, _ b: Float, _ c: Float) -> Float { c.addingProduct(a, b) }

    @inline(__always) static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        halfToFloat(p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// ggml_vec_dot_q4_1_q8_1 (AVX2 order). w: `blocks` q4_1 blocks [d f16, m f16, qs 16 B];
    /// x: `blocks` q8_1 blocks [d f16, s f16, qs 32 B].
    @inline(__always)
    public static func dotQ4_1Q8_1(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, blocks nb: Int) -> Float {
        var acc = SIMD8<Float>()
        var summs: Float = 0
        let fused = variant.fusedMinSum
        for b in 0..<nb {
            let wb = w + 20 * b, xb = x + 36 * b
            summs = fused ? summs.addingProduct(half(wb, 2), half(xb, 2)) : summs + half(wb, 2) * half(xb, 2)
            let qs = wb.loadUnaligned(fromByteOffset: 4, as: SIMD16<UInt8>.self)
            let p0 = Lanes.widen(qs & 0x0F) &* Lanes.signedBytes(xb, 4)
            let p1 = Lanes.widen(qs &>> 4) &* Lanes.signedBytes(xb, 20)
            let lanes = float8(SIMD8<Int32>(lowHalf: quads(p0), highHalf: quads(p1)))
            acc = acc.addingProduct(SIMD8<Float>(repeating: half(wb, 0) * half(xb, 0)), lanes)
        }
        return hsum8(acc) + summs
    }

    /// ggml_vec_dot_q8_0_q8_0 (AVX2 order) = tinyBLAS_Q0_AVX per (row, token). w, x: `blocks`
    /// q8_0 blocks [d f16, qs 32 B].
    @inline(__always)
    public static func dotQ8_0Q8_0(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, blocks nb: Int) -> Float {
        var acc = SIMD8<Float>()
        for b in 0..<nb {
            let wb = w + 34 * b, xb = x + 34 * b
            let p0 = Lanes.signedBytes(wb, 2) &* Lanes.signedBytes(xb, 2)
            let p1 = Lanes.signedBytes(wb, 18) &* Lanes.signedBytes(xb, 18)
            let lanes = float8(SIMD8<Int32>(lowHalf: quads(p0), highHalf: quads(p1)))
            acc = acc.addingProduct(SIMD8<Float>(repeating: half(wb, 0) * half(xb, 0)), lanes)
        }
        return hsum8(acc)
    }

    /// ggml_vec_dot_q4_0_q8_0 (AVX2 order). w: q4_0 blocks [d f16, qs 16 B] (value j = nibble j − 8:
    /// low nibbles are values 0..15, high nibbles 16..31); x: q8_0 blocks.
    @inline(__always)
    public static func dotQ4_0Q8_0(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, blocks nb: Int) -> Float {
        var acc = SIMD8<Float>()
        for b in 0..<nb {
            let wb = w + 18 * b, xb = x + 34 * b
            let qs = wb.loadUnaligned(fromByteOffset: 2, as: SIMD16<UInt8>.self)
            let v0 = Lanes.widen(qs & 0x0F) &- 8, v1 = Lanes.widen(qs &>> 4) &- 8
            let p0 = v0 &* Lanes.signedBytes(xb, 2), p1 = v1 &* Lanes.signedBytes(xb, 18)
            let lanes = float8(SIMD8<Int32>(lowHalf: quads(p0), highHalf: quads(p1)))
            acc = acc.addingProduct(SIMD8<Float>(repeating: half(wb, 0) * half(xb, 0)), lanes)
        }
        return hsum8(acc)
    }

    /// Scalar twin of `dotQ4_0Q8_0`.
    public static func dotQ4_0Q8_0Reference(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, blocks nb: Int) -> Float {
        var acc = [Float](repeating: 0, count: 8)
        for b in 0..<nb {
            let wb = w + 18 * b, xb = x + 34 * b
            let d = half(wb, 0) * half(xb, 0)
            for i in 0..<8 {
                var s: Int32 = 0
                for j in 4 * i..<4 * i + 4 {
                    let byte = wb.load(fromByteOffset: 2 + j % 16, as: UInt8.self)
                    let v = Int32(j < 16 ? byte & 15 : byte >> 4) - 8
                    s += v * Int32(xb.load(fromByteOffset: 2 + j, as: Int8.self))
                }
                acc[i] = fma(d, Float(s), acc[i])
            }
        }
        return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
    }

    /// ggml_vec_dot_q5_0_q8_0 (AVX2 order) = tinyBLAS_Q0_AVX per (row, token). w: q5_0 blocks
    /// [d f16, qh 4 B, qs 16 B] (value j = (nibble j | bit j of qh << 4) − 16); x: q8_0 blocks.
    @inline(__always)
    public static func dotQ5_0Q8_0(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, blocks nb: Int) -> Float {
        var acc = SIMD8<Float>()
        for b in 0..<nb {
            let wb = w + 22 * b, xb = x + 34 * b
            let qh = wb.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
            let qs = wb.loadUnaligned(fromByteOffset: 6, as: SIMD16<UInt8>.self)
            let v0 = (Lanes.widen(qs & 0x0F) | Lanes.fifthBits(qh, shift: 0)) &- 16
            let v1 = (Lanes.widen(qs &>> 4) | Lanes.fifthBits(qh, shift: 16)) &- 16
            let p0 = v0 &* Lanes.signedBytes(xb, 2), p1 = v1 &* Lanes.signedBytes(xb, 18)
            let lanes = float8(SIMD8<Int32>(lowHalf: quads(p0), highHalf: quads(p1)))
            acc = acc.addingProduct(SIMD8<Float>(repeating: half(wb, 0) * half(xb, 0)), lanes)
        }
        return hsum8(acc)
    }

    /// Scalar twin of `dotQ5_0Q8_0`.
    public static func dotQ5_0Q8_0Reference(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, blocks nb: Int) -> Float {
        var acc = [Float](repeating: 0, count: 8)
        for b in 0..<nb {
            let wb = w + 22 * b, xb = x + 34 * b
            let d = half(wb, 0) * half(xb, 0)
            let qh = wb.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
            for i in 0..<8 {
                var s: Int32 = 0
                for j in 4 * i..<4 * i + 4 {
                    let byte = wb.load(fromByteOffset: 6 + j % 16, as: UInt8.self)
                    let nib = Int32(j < 16 ? byte & 15 : byte >> 4)
                    let v = nib | Int32((qh >> UInt32(j)) & 1) << 4 - 16
                    s += v * Int32(xb.load(fromByteOffset: 2 + j, as: Int8.self))
                }
                acc[i] = fma(d, Float(s), acc[i])
            }
        }
        return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
    }

    // MARK: Scalar twins, written from the C (element loops, explicit lanes)

    /// Scalar twin of `dotQ4_1Q8_1`.
    public static func dotQ4_1Q8_1Reference(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, blocks nb: Int) -> Float {
        var acc = [Float](repeating: 0, count: 8)
        var summs: Float = 0
        for b in 0..<nb {
            let wb = w + 20 * b, xb = x + 36 * b
            let d0 = half(wb, 0), m0 = half(wb, 2), d1 = half(xb, 0), s1 = half(xb, 2)
            summs = GGMLExact.fma(m0, s1, summs)
            var q = [Int32](repeating: 0, count: 32)
            for j in 0..<16 {
                let byte = wb.load(fromByteOffset: 4 + j, as: UInt8.self)
                q[j] = Int32(byte & 15); q[j + 16] = Int32(byte >> 4)
            }
            for i in 0..<8 {
                var s: Int32 = 0
                for j in 4 * i..<4 * i + 4 { s += q[j] * Int32(xb.load(fromByteOffset: 4 + j, as: Int8.self)) }
                acc[i] = GGMLExact.fma(d0 * d1, Float(s), acc[i])
            }
        }
        return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7])) + summs
    }

    /// Scalar twin of `dotQ8_0Q8_0`.
    public static func dotQ8_0Q8_0Reference(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, blocks nb: Int) -> Float {
        var acc = [Float](repeating: 0, count: 8)
        for b in 0..<nb {
            let wb = w + 34 * b, xb = x + 34 * b
            let d = half(wb, 0) * half(xb, 0)
            for i in 0..<8 {
                var s: Int32 = 0
                for j in 4 * i..<4 * i + 4 {
                    s += Int32(wb.load(fromByteOffset: 2 + j, as: Int8.self)) * Int32(xb.load(fromByteOffset: 2 + j, as: Int8.self))
                }
                acc[i] = GGMLExact.fma(d, Float(s), acc[i])
            }
        }
        return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
    }
}

extension WeightMatrix {
    /// Whether `multiplyGGML` reproduces llama.cpp's product for this weight type.
    public var hasGGMLProduct: Bool {
        type == .q4_1 || type == .q8_0 || type == .q5_0 || (type == .q4_K && rows % 8 == 0) || type == .q6_K
    }

    /// out[t·outStride + r] = llama.cpp's W[r]·x[t] for r in rows, t in 0..<x.rows: one dot per
    /// (row, token), in the order of GGMLExact's dots. For q4_K and q6_K the order depends on the
    /// batch (x.rows), as in llama.cpp (GGMLExactKQuants.swift). Falls back to `multiply` for weight
    /// types without an exact product. Thread-safe for disjoint row ranges.
    public func multiplyGGML(_ x: ActivationBuffer, rows: Range<Int>, into out: UnsafeMutablePointer<Float>, outStride: Int) {
        checkShapes(x, rows)
        let nb = cols / 32
        let n = x.rows
        switch type {
        case .q4_1:
            for r in rows {
                let w = row(r)
                for t in 0..<x.rows { out[t * outStride + r] = GGMLExact.dotQ4_1Q8_1(w, x.row(t), blocks: nb) }
            }
        case .q8_0:
            for r in rows {
                let w = row(r)
                for t in 0..<x.rows { out[t * outStride + r] = GGMLExact.dotQ8_0Q8_0(w, x.row(t), blocks: nb) }
            }
        case .q5_0:
            for r in rows {
                let w = row(r)
                for t in 0..<x.rows { out[t * outStride + r] = GGMLExact.dotQ5_0Q8_0(w, x.row(t), blocks: nb) }
            }
        case .q4_K where self.rows % 8 == 0:   // llama.cpp repacks these (8 rows interleaved)
            for r in rows {
                let w = row(r)
                for t in 0..<n {
                    out[t * outStride + r] = GGMLExact.q4KUsesGemm(token: t, of: n)
                        ? GGMLExact.dotQ4KGemm(w, x.row(t), blocks: cols / 256) : GGMLExact.dotQ4KGemv(w, x.row(t), blocks: cols / 256)
                }
            }
        case .q6_K:
            let tiled = GGMLExact.q6KUsesTiled(rows: n)
            for r in rows {
                let w = row(r)
                for t in 0..<n {
                    out[t * outStride + r] = tiled ? GGMLExact.dotQ6KTiled(w, x.row(t), blocks: cols / 256)
                                                   : GGMLExact.dotQ6KVec(w, x.row(t), blocks: cols / 256)
                }
            }
        default:
            multiply(x, rows: rows, into: out, outStride: outStride)
        }
    }
}
