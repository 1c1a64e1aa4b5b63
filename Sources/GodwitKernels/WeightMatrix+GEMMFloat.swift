// Prompt GEMM for float weights (f32, f16, bf16) against f32 activations: 4 rows × 4 tokens tiles.
// Source: ggml-cpu/vec.cpp plain f32/f16/bf16 dots; the blocking is Godwit's own.
// Deviation: f16/bf16 weights meet f32 (not f16/bf16-rounded) activations; summation order differs.
//
// Data: W [rows, cols] elements, x [x.rows, cols] floats (the activation rows themselves: no
// panel, no scratch). Micro-kernel: 16 columns per step, 4 weight vectors (converted once per step,
// `vcvtph2ps zmm` for f16) × 4 token vectors into 16 Float accumulators (16 `vfmadd231ps` per
// 8 loads); one horizontal sum per output at the end of the row. Edge tiles (fewer than 4 rows or
// tokens) use the GEMV kernel per token. Scalar twin: WeightMatrix+Reference.swift.

extension WeightMatrix {
    func gemmFloat(_ x: ActivationBuffer, _ rows: Range<Int>, _ out: UnsafeMutablePointer<Float>, _ outStride: Int) {
        switch type {
        case .f16: gemmFloat(F16Element.self, x, rows, out, outStride)
        case .bf16: gemmFloat(BF16Element.self, x, rows, out, outStride)
        default: gemmFloat(F32Element.self, x, rows, out, outStride)
        }
    }

    func gemmFloat<E: FloatElement>(_ e: E.Type, _ x: ActivationBuffer, _ rows: Range<Int>,
                                    _ out: UnsafeMutablePointer<Float>, _ outStride: Int) {
        let n = cols, n16 = n & ~15, rb = rowBytes, xb = x.rowBytes
        let full = rows.lowerBound + (rows.count & ~3), tokens4 = x.rows & ~3
        var r = rows.lowerBound
        while r < full {
            let w0 = data + r * rb, w1 = w0 + rb, w2 = w1 + rb, w3 = w2 + rb
            var t = 0
            while t < tokens4 {
                let x0 = x.row(t), x1 = x0 + xb, x2 = x1 + xb, x3 = x2 + xb
                var a00 = SIMD16<Float>(), a01 = SIMD16<Float>(), a02 = SIMD16<Float>(), a03 = SIMD16<Float>()
                var a10 = SIMD16<Float>(), a11 = SIMD16<Float>(), a12 = SIMD16<Float>(), a13 = SIMD16<Float>()
                var a20 = SIMD16<Float>(), a21 = SIMD16<Float>(), a22 = SIMD16<Float>(), a23 = SIMD16<Float>()
                var a30 = SIMD16<Float>(), a31 = SIMD16<Float>(), a32 = SIMD16<Float>(), a33 = SIMD16<Float>()
                var k = 0
                while k < n16 {
                    let v0 = x0.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self)
                    let v1 = x1.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self)
                    let v2 = x2.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self)
                    let v3 = x3.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self)
                    let u0 = E.load16(w0, k)
                    a00 = a00.addingProduct(u0, v0); a01 = a01.addingProduct(u0, v1); a02 = a02.addingProduct(u0, v2); a03 = a03.addingProduct(u0, v3)
                    let u1 = E.load16(w1, k)
                    a10 = a10.addingProduct(u1, v0); a11 = a11.addingProduct(u1, v1); a12 = a12.addingProduct(u1, v2); a13 = a13.addingProduct(u1, v3)
                    let u2 = E.load16(w2, k)
                    a20 = a20.addingProduct(u2, v0); a21 = a21.addingProduct(u2, v1); a22 = a22.addingProduct(u2, v2); a23 = a23.addingProduct(u2, v3)
                    let u3 = E.load16(w3, k)
                    a30 = a30.addingProduct(u3, v0); a31 = a31.addingProduct(u3, v1); a32 = a32.addingProduct(u3, v2); a33 = a33.addingProduct(u3, v3)
                    k += 16
                }
                // s_t = [row r, r+1, r+2, r+3] of token t.
                var s0 = Lanes.sum(a00, a10, a20, a30), s1 = Lanes.sum(a01, a11, a21, a31)
                var s2 = Lanes.sum(a02, a12, a22, a32), s3 = Lanes.sum(a03, a13, a23, a33)
                while k < n {
                    let u = SIMD4<Float>(E.load1(w0, k), E.load1(w1, k), E.load1(w2, k), E.load1(w3, k))
                    s0 += u * x0.loadUnaligned(fromByteOffset: 4 * k, as: Float.self)
                    s1 += u * x1.loadUnaligned(fromByteOffset: 4 * k, as: Float.self)
                    s2 += u * x2.loadUnaligned(fromByteOffset: 4 * k, as: Float.self)
                    s3 += u * x3.loadUnaligned(fromByteOffset: 4 * k, as: Float.self)
                    k += 1
                }
                UnsafeMutableRawPointer(out + t * outStride + r).storeBytes(of: s0, as: SIMD4<Float>.self)
                UnsafeMutableRawPointer(out + (t + 1) * outStride + r).storeBytes(of: s1, as: SIMD4<Float>.self)
                UnsafeMutableRawPointer(out + (t + 2) * outStride + r).storeBytes(of: s2, as: SIMD4<Float>.self)
                UnsafeMutableRawPointer(out + (t + 3) * outStride + r).storeBytes(of: s3, as: SIMD4<Float>.self)
                t += 4
            }
            r += 4
        }
        // Edges: the last x.rows % 4 tokens for the full row groups, every token for the last rows.
        for t in tokens4..<x.rows { gemvFloat(e, x, t, rows.lowerBound..<full, out + t * outStride) }
        if full < rows.upperBound {
            for t in 0..<x.rows { gemvFloat(e, x, t, full..<rows.upperBound, out + t * outStride) }
        }
    }
}
