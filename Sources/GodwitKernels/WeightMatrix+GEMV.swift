// Decode GEMV for 32-value block formats (q4_0, q4_1, q5_0, q5_1, q8_0, iq4_nl): one token.
// Source: ggml-cpu/quants.c ggml_vec_dot_{q4_0,q4_1,q5_0,q5_1,q8_0}_q8_{0,1}_generic and
// iq4_nl_q8_0: per block, d_w·d_x·Σ q_w·q_x (+ m_w·s_x for q4_1/q5_1).
// Deviation (rounding only): the signed sum Σ(q − bias)·x is computed as Σ q·x − bias·Σx with Σx
// exact and d_x·Σx precomputed per activation block (ActivationBuffer.rowSum), so the block term
// is d_w·(d_x·Σqx) − bias·d_w·(d_x·Σx): equal in exact arithmetic, a few ulp apart in float.
//
// Shapes: W [rows, cols] in blocks of 32; x row t = cols/32 q8 blocks; out[r] for r in rows.
// Kernel: 4 weight rows per pass share each activation block (loaded once, `vpmovsxbd`); per row
// and block, q (zero-extended) · x in 16 Int32 lanes (`vpmaddwd` + `vpdpwssd`), converted and
// scaled into a Float accumulator (`vcvtdq2ps` + `vfmadd`): no horizontal sum until the row ends.
// Scalar twin: WeightMatrix+Reference.swift.

extension WeightMatrix {
    /// Accumulates one block of one weight row: lanes += (q·x)·(d_w·d_x), scalar += d_w·corr or m·s.
    @inline(__always)
    static func step32<F: Block32Format>(_: F.Type, _ w: UnsafeRawPointer, _ x0: SIMD16<Int32>, _ x1: SIMD16<Int32>,
                                         _ dx: Float, _ corr: Float, _ acc: inout SIMD16<Float>, _ s: inout Float) {
        let (q0, q1) = F.quants(w)
        let dw = F.scale(w)
        let p = q0 &* x0 &+ q1 &* x1
        acc = acc.addingProduct(Lanes.float(p), SIMD16<Float>(repeating: dw * dx))
        s += (F.hasMin ? F.minimum(w) : dw) * corr
    }

    /// out[r] = W[r]·x[t] for r in rows (32-value block formats).
    func gemv32<F: Block32Format>(_ f: F.Type, _ x: ActivationBuffer, _ t: Int, _ rows: Range<Int>,
                                  _ out: UnsafeMutablePointer<Float>) {
        let nb = cols / 32
        let xr = x.row(t), xBytes = x.type.typeSize, xqs = x.type == .q8_1 ? BlockLayout.Q8_1.qs : BlockLayout.Q8_0.qs
        let dxp = x.rowScale + t * nb, sxp = x.rowSum + t * nb
        let wb = F.bytes, rb = rowBytes, base = data
        // corr: q4_1/q5_1 add m·s; the others subtract bias·d_w·(d_x·Σx).
        let corrScale: Float = F.hasMin ? 1 : -Float(F.bias)
        var r = rows.lowerBound
        while r + 4 <= rows.upperBound {
            let w0 = base + r * rb, w1 = w0 + rb, w2 = w1 + rb, w3 = w2 + rb
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
            var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
            let next = w0 + 4 * rb   // the next 4 rows, prefetched at the pace these are read
            for b in 0..<nb {
                Self.prefetch(next + 4 * wb * b, bytes: 4 * wb)
                let xb = xr + b * xBytes + xqs
                let x0 = Lanes.signedBytes(xb, 0), x1 = Lanes.signedBytes(xb, 16)
                let dx = dxp[b], corr = corrScale * sxp[b]
                Self.step32(f, w0 + b * wb, x0, x1, dx, corr, &a0, &s0)
                Self.step32(f, w1 + b * wb, x0, x1, dx, corr, &a1, &s1)
                Self.step32(f, w2 + b * wb, x0, x1, dx, corr, &a2, &s2)
                Self.step32(f, w3 + b * wb, x0, x1, dx, corr, &a3, &s3)
            }
            let sums = Lanes.sum(a0, a1, a2, a3) + SIMD4<Float>(s0, s1, s2, s3)
            UnsafeMutableRawPointer(out + r).storeBytes(of: sums, as: SIMD4<Float>.self)
            r += 4
        }
        while r < rows.upperBound {
            let w0 = base + r * rb
            var a0 = SIMD16<Float>(), s0: Float = 0
            for b in 0..<nb {
                let xb = xr + b * xBytes + xqs
                Self.step32(f, w0 + b * wb, Lanes.signedBytes(xb, 0), Lanes.signedBytes(xb, 16),
                            dxp[b], corrScale * sxp[b], &a0, &s0)
            }
            out[r] = Lanes.sum(a0) + s0
            r += 1
        }
    }
}

extension WeightMatrix {
    /// Small batches: out[(t0+j)·outStride + r] for 4 tokens t0..<t0+4 and r in rows. Each weight
    /// block is unpacked once and dotted with the 4 tokens' blocks (2 rows × 4 tokens register tile,
    /// 8 Float accumulators), so a weight row is decoded once per 4 tokens instead of once per token.
    func gemv32x4<F: Block32Format>(_ f: F.Type, _ x: ActivationBuffer, _ t0: Int, _ rows: Range<Int>,
                                    _ out: UnsafeMutablePointer<Float>, _ outStride: Int) {
        let nb = cols / 32
        let xBytes = x.type.typeSize, xqs = x.type == .q8_1 ? BlockLayout.Q8_1.qs : BlockLayout.Q8_0.qs
        let xr0 = x.row(t0), xrb = x.rowBytes
        let dxp = x.rowScale + t0 * nb, sxp = x.rowSum + t0 * nb
        let wb = F.bytes, rb = rowBytes, base = data
        let corrScale: Float = F.hasMin ? 1 : -Float(F.bias)
        var r = rows.lowerBound
        while r < rows.upperBound {
            let two = r + 1 < rows.upperBound
            let w0 = base + r * rb, w1 = two ? w0 + rb : w0
            var a00 = SIMD16<Float>(), a01 = SIMD16<Float>(), a02 = SIMD16<Float>(), a03 = SIMD16<Float>()
            var a10 = SIMD16<Float>(), a11 = SIMD16<Float>(), a12 = SIMD16<Float>(), a13 = SIMD16<Float>()
            var s0 = SIMD4<Float>(), s1 = SIMD4<Float>()
            for b in 0..<nb {
                let dx = SIMD4<Float>(dxp[b], dxp[nb + b], dxp[2 * nb + b], dxp[3 * nb + b])
                let corr = SIMD4<Float>(sxp[b], sxp[nb + b], sxp[2 * nb + b], sxp[3 * nb + b]) * corrScale
                let xb = xr0 + b * xBytes + xqs
                @inline(__always) func row(_ w: UnsafeRawPointer, _ a0: inout SIMD16<Float>, _ a1: inout SIMD16<Float>,
                                           _ a2: inout SIMD16<Float>, _ a3: inout SIMD16<Float>, _ s: inout SIMD4<Float>) {
                    let (q0, q1) = F.quants(w)
                    let dw = F.scale(w)
                    let ds = dx * dw
                    @inline(__always) func token(_ j: Int, _ a: inout SIMD16<Float>) {
                        let p = q0 &* Lanes.signedBytes(xb, j * xrb) &+ q1 &* Lanes.signedBytes(xb, j * xrb + 16)
                        a = a.addingProduct(Lanes.float(p), SIMD16<Float>(repeating: ds[j]))
                    }
                    token(0, &a0); token(1, &a1); token(2, &a2); token(3, &a3)
                    s += corr * (F.hasMin ? F.minimum(w) : dw)
                }
                row(w0 + b * wb, &a00, &a01, &a02, &a03, &s0)
                row(w1 + b * wb, &a10, &a11, &a12, &a13, &s1)
            }
            let v0 = Lanes.sum(a00, a01, a02, a03) + s0
            for j in 0..<4 { out[j * outStride + r] = v0[j] }
            if two {
                let v1 = Lanes.sum(a10, a11, a12, a13) + s1
                for j in 0..<4 { out[j * outStride + r + 1] = v1[j] }
            }
            r += 2
        }
    }
}
