// Decode GEMV for 32-value block formats (q4_0, q4_1, q5_0, q5_1, q8_0, iq4_nl): one token.
// Source: ggml-cpu/quants.c ggml_vec_dot_{q4_0,q4_1,q5_0,q5_1,q8_0}_q8_{0,1}_generic and
// iq4_nl_q8_0: per block, d_w·d_x·Σ q_w·q_x (+ m_w·s_x for q4_1/q5_1).
//
// Batch independence: every path (this GEMV, the 4-token GEMV below and the blocked GEMM) computes
// each output with the same float operations in the same order — per block the exact integer sum
// isum = Σ (q − bias)·x, then acc = fma(Float(isum), d_x·d_w, acc), then for q4_1/q5_1
// acc = fma(s_x, m_w, acc), blocks in order — so a token's result does not depend on the batch it
// is in, on the rows computed beside it, or on the thread count (bitwise).
//
// Shapes: W [rows, cols] in blocks of 32; x row t = cols/32 q8 blocks; out[r] for r in rows.
// Kernel: 4 weight rows per pass share each activation block (loaded once, `vpmovsxbd`); per row
// and block, (q − bias)·x in 16 Int32 lanes, the 4 rows' lanes reduced at once to 4 exact sums
// (a transposing add tree), then one SIMD4 `vfmadd` per block. Scalar twin: WeightMatrix+Reference.swift.

extension WeightMatrix {
    /// (q − bias)·x of one block in 16 Int32 lanes (exact).
    @inline(__always)
    static func lanes32<F: Block32Format>(_: F.Type, _ w: UnsafeRawPointer, _ x0: SIMD16<Int32>, _ x1: SIMD16<Int32>) -> SIMD16<Int32> {
        let (q0, q1) = F.quants(w)
        return (q0 &- F.bias) &* x0 &+ (q1 &- F.bias) &* x1
    }

    /// out[r] = W[r]·x[t] for r in rows (32-value block formats).
    func gemv32<F: Block32Format>(_ f: F.Type, _ x: ActivationBuffer, _ t: Int, _ rows: Range<Int>,
                                  _ out: UnsafeMutablePointer<Float>) {
        let nb = cols / 32
        let xr = x.row(t), xBytes = x.type.typeSize, xqs = x.type == .q8_1 ? BlockLayout.Q8_1.qs : BlockLayout.Q8_0.qs
        let dxp = x.rowScale + t * nb, sxp = x.rowSum + t * nb
        let wb = F.bytes, rb = rowBytes, base = data
        var r = rows.lowerBound
        while r + 4 <= rows.upperBound {
            let w0 = base + r * rb, w1 = w0 + rb, w2 = w1 + rb, w3 = w2 + rb
            var acc = SIMD4<Float>()
            let next = w0 + 4 * rb   // the next 4 rows, prefetched at the pace these are read
            for b in 0..<nb {
                Self.prefetch(next + 4 * wb * b, bytes: 4 * wb)
                let xb = xr + b * xBytes + xqs
                let x0 = Lanes.signedBytes(xb, 0), x1 = Lanes.signedBytes(xb, 16)
                let o = b * wb
                let i = Lanes.sum(Self.lanes32(f, w0 + o, x0, x1), Self.lanes32(f, w1 + o, x0, x1),
                                  Self.lanes32(f, w2 + o, x0, x1), Self.lanes32(f, w3 + o, x0, x1))
                let dw = SIMD4<Float>(F.scale(w0 + o), F.scale(w1 + o), F.scale(w2 + o), F.scale(w3 + o))
                acc = acc.addingProduct(SIMD4<Float>(i), SIMD4<Float>(repeating: dxp[b]) * dw)
                if F.hasMin {
                    let m = SIMD4<Float>(F.minimum(w0 + o), F.minimum(w1 + o), F.minimum(w2 + o), F.minimum(w3 + o))
                    acc = acc.addingProduct(SIMD4<Float>(repeating: sxp[b]), m)
                }
            }
            UnsafeMutableRawPointer(out + r).storeBytes(of: acc, as: SIMD4<Float>.self)
            r += 4
        }
        while r < rows.upperBound {
            let w0 = base + r * rb
            var acc: Float = 0
            for b in 0..<nb {
                let xb = xr + b * xBytes + xqs, w = w0 + b * wb
                let i = Lanes.sum(Self.lanes32(f, w, Lanes.signedBytes(xb, 0), Lanes.signedBytes(xb, 16)))
                acc = acc.addingProduct(Float(i), dxp[b] * F.scale(w))
                if F.hasMin { acc = acc.addingProduct(sxp[b], F.minimum(w)) }
            }
            out[r] = acc
            r += 1
        }
    }
}

extension WeightMatrix {
    /// Small batches: out[(t0+j)·outStride + r] for 4 tokens t0..<t0+4 and r in rows. Each weight
    /// block is unpacked once and dotted with the 4 tokens' blocks (2 rows × 4 tokens), so a weight
    /// row is decoded once per 4 tokens; per (row, token) the same operations as `gemv32`.
    func gemv32x4<F: Block32Format>(_ f: F.Type, _ x: ActivationBuffer, _ t0: Int, _ rows: Range<Int>,
                                    _ out: UnsafeMutablePointer<Float>, _ outStride: Int) {
        let nb = cols / 32
        let xBytes = x.type.typeSize, xqs = x.type == .q8_1 ? BlockLayout.Q8_1.qs : BlockLayout.Q8_0.qs
        let xr0 = x.row(t0), xrb = x.rowBytes
        let dxp = x.rowScale + t0 * nb, sxp = x.rowSum + t0 * nb
        let wb = F.bytes, rb = rowBytes, base = data
        var r = rows.lowerBound
        while r < rows.upperBound {
            let two = r + 1 < rows.upperBound
            let w0 = base + r * rb, w1 = two ? w0 + rb : w0
            var acc0 = SIMD4<Float>(), acc1 = SIMD4<Float>()
            for b in 0..<nb {
                let dx = SIMD4<Float>(dxp[b], dxp[nb + b], dxp[2 * nb + b], dxp[3 * nb + b])
                let sx = SIMD4<Float>(sxp[b], sxp[nb + b], sxp[2 * nb + b], sxp[3 * nb + b])
                let xb = xr0 + b * xBytes + xqs
                @inline(__always) func row(_ w: UnsafeRawPointer, _ acc: inout SIMD4<Float>) {
                    let (q0, q1) = F.quants(w)
                    let b0 = q0 &- F.bias, b1 = q1 &- F.bias
                    @inline(__always) func token(_ j: Int) -> SIMD16<Int32> {
                        b0 &* Lanes.signedBytes(xb, j * xrb) &+ b1 &* Lanes.signedBytes(xb, j * xrb + 16)
                    }
                    let i = Lanes.sum(token(0), token(1), token(2), token(3))
                    acc = acc.addingProduct(SIMD4<Float>(i), dx * F.scale(w))
                    if F.hasMin { acc = acc.addingProduct(sx, SIMD4<Float>(repeating: F.minimum(w))) }
                }
                row(w0 + b * wb, &acc0)
                row(w1 + b * wb, &acc1)
            }
            for j in 0..<4 { out[j * outStride + r] = acc0[j] }
            if two { for j in 0..<4 { out[j * outStride + r + 1] = acc1[j] } }
            r += 2
        }
    }
}
