// Decode GEMV for the k-quants (q4_K, q5_K, q6_K) against q8_K activations: one token.
// Source: ggml-cpu/quants.c ggml_vec_dot_{q4_K,q5_K,q6_K}_q8_K_generic: per super-block,
// d_w·d_x·Σ_j sc_j·(q·x over sub-block j) − dmin·d_x·Σ_j m_j·bsum_j (q4_K/q5_K), and for q6_K
// d_w·d_x·Σ_j sc_j·((q − 32)·x over j).
// Deviation (rounding only): the integer super-block sum is exact and scaled once (ggml's generic
// keeps 8 float partial sums); q6_K's −32 is applied as −32·Σ_j sc_j·bsums_j (as ggml's AVX code).
// Batch independence: like the blocked GEMM, per super-block acc = fma(Float(Σ_j m_j·bsum_j),
// d_x·(−dmin), acc) (q4_K/q5_K), then acc = fma(Float(isum), d_x·d, acc), so a token's result is
// bitwise the same in any batch and at any thread count.
//
// Shapes: W [rows, cols] in super-blocks of 256; x row t = cols/256 q8_K blocks; out[r] for r in rows.
// Kernel: per 16 values, zero-extended quants · sign-extended activations in Int32 lanes
// (`vpmaddwd`), times the sub-block scale, summed over the super-block; then one `vcvtdq2ps` +
// `vfmadd` per super-block. 4 rows per pass. Small batches (gemvK4): 4 tokens per decoded row.
// Scalar twin: WeightMatrix+Reference.swift.

/// The q8_K-activation dot of one super-block, exact: isum = Σlanes + offset (Σ_j sc_j·q·x),
/// minSum = Σ_j m_j·bsum_j; contribution = d_x·d·isum − d_x·dmin·minSum.
protocol KQuantDot: KQuantFormat {
    static func dot(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer) -> (lanes: SIMD16<Int32>, offset: Int32, minSum: Int32)
}

extension Q4KFormat: KQuantDot {
    @inline(__always) static func dot(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer) -> (lanes: SIMD16<Int32>, offset: Int32, minSum: Int32) {
        let L = BlockLayout.Q4_K.self, X = BlockLayout.Q8_K.self
        let (sc, mn) = KQuantScales.unpack(w + L.scales)
        var acc = SIMD16<Int32>()
        for i in 0..<4 {
            var lo = SIMD16<Int32>(), hi = SIMD16<Int32>()
            for h in 0..<2 {
                let q = Lanes.bytes(w, L.qs + 32 * i + 16 * h)
                lo &+= (q & 15) &* Lanes.signedBytes(x, X.qs + 64 * i + 16 * h)
                hi &+= (q &>> 4) &* Lanes.signedBytes(x, X.qs + 64 * i + 32 + 16 * h)
            }
            acc &+= lo &* Int32(sc[2 * i]) &+ hi &* Int32(sc[2 * i + 1])
        }
        return (acc, 0, KQuantGEMV.minSum(mn, x))
    }
}

extension Q5KFormat: KQuantDot {
    @inline(__always) static func dot(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer) -> (lanes: SIMD16<Int32>, offset: Int32, minSum: Int32) {
        let L = BlockLayout.Q5_K.self, X = BlockLayout.Q8_K.self
        let (sc, mn) = KQuantScales.unpack(w + L.scales)
        var acc = SIMD16<Int32>()
        for i in 0..<4 {
            var lo = SIMD16<Int32>(), hi = SIMD16<Int32>()
            for h in 0..<2 {
                let q = Lanes.bytes(w, L.qs + 32 * i + 16 * h), qh = Lanes.bytes(w, L.qh + 16 * h)
                let a = (q & 15) | (((qh &>> Int32(2 * i)) & 1) &<< 4)
                let b = (q &>> 4) | (((qh &>> Int32(2 * i + 1)) & 1) &<< 4)
                lo &+= a &* Lanes.signedBytes(x, X.qs + 64 * i + 16 * h)
                hi &+= b &* Lanes.signedBytes(x, X.qs + 64 * i + 32 + 16 * h)
            }
            acc &+= lo &* Int32(sc[2 * i]) &+ hi &* Int32(sc[2 * i + 1])
        }
        return (acc, 0, KQuantGEMV.minSum(mn, x))
    }
}

extension Q6KFormat: KQuantDot {
    @inline(__always) static func dot(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer) -> (lanes: SIMD16<Int32>, offset: Int32, minSum: Int32) {
        let L = BlockLayout.Q6_K.self, X = BlockLayout.Q8_K.self
        var acc = SIMD16<Int32>()
        for n in 0..<2 {
            for h in 0..<2 {
                let ql0 = Lanes.bytes(w, L.ql + 64 * n + 16 * h), ql1 = Lanes.bytes(w, L.ql + 64 * n + 32 + 16 * h)
                let qh = Lanes.bytes(w, L.qh + 32 * n + 16 * h)
                @inline(__always) func sub(_ q: SIMD16<Int32>, _ g: Int) {
                    let s = Int32(w.load(fromByteOffset: L.scales + 8 * n + 2 * g + h, as: Int8.self))
                    acc &+= (q &* Lanes.signedBytes(x, X.qs + 128 * n + 32 * g + 16 * h)) &* s
                }
                sub((ql0 & 15) | ((qh & 3) &<< 4), 0)
                sub((ql1 & 15) | (((qh &>> 2) & 3) &<< 4), 1)
                sub((ql0 &>> 4) | (((qh &>> 4) & 3) &<< 4), 2)
                sub((ql1 &>> 4) | (((qh &>> 6) & 3) &<< 4), 3)
            }
        }
        // −32·Σ_j sc_j·bsums_j: the bias of every value, per 16-value sub-block.
        let sc = Lanes.widen(w.loadUnaligned(fromByteOffset: L.scales, as: SIMD16<Int8>.self))
        let bs = Lanes.widen(x.loadUnaligned(fromByteOffset: X.bsums, as: SIMD16<Int16>.self))
        let bias = Lanes.sum(sc &* bs) &* -32
        return (acc, bias, 0)
    }
}

enum KQuantGEMV {
    /// Σ_j m_j·(bsums[2j] + bsums[2j+1]) of a q8_K block `x`.
    @inline(__always) static func minSum(_ mins: SIMD8<UInt8>, _ x: UnsafeRawPointer) -> Int32 {
        let bs = x.loadUnaligned(fromByteOffset: BlockLayout.Q8_K.bsums, as: SIMD16<Int16>.self)
        var s: Int32 = 0
        for j in 0..<8 { s &+= Int32(mins[j]) &* (Int32(bs[2 * j]) &+ Int32(bs[2 * j + 1])) }
        return s
    }
}

extension WeightMatrix {
    func gemvQ4K(_ x: ActivationBuffer, _ t: Int, _ rows: Range<Int>, _ out: UnsafeMutablePointer<Float>) {
        gemvK(Q4KFormat.self, x, t, rows, out)
    }
    func gemvQ5K(_ x: ActivationBuffer, _ t: Int, _ rows: Range<Int>, _ out: UnsafeMutablePointer<Float>) {
        gemvK(Q5KFormat.self, x, t, rows, out)
    }
    func gemvQ6K(_ x: ActivationBuffer, _ t: Int, _ rows: Range<Int>, _ out: UnsafeMutablePointer<Float>) {
        gemvK(Q6KFormat.self, x, t, rows, out)
    }

    /// out[r] = W[r]·x[t] for r in rows (k-quant formats), 4 rows per pass.
    func gemvK<F: KQuantDot>(_ f: F.Type, _ x: ActivationBuffer, _ t: Int, _ rows: Range<Int>,
                             _ out: UnsafeMutablePointer<Float>) {
        let nb = cols / 256
        let xr = x.row(t), xBytes = BlockLayout.Q8_K.bytes, dxp = x.rowScale + t * nb
        let wb = F.bytes, rb = rowBytes, base = data
        var r = rows.lowerBound
        while r < rows.upperBound {
            let n = min(4, rows.upperBound - r)
            // Short tails repeat the last row (its result is not stored).
            let w0 = base + r * rb, w1 = w0 + min(1, n - 1) * rb, w2 = w0 + min(2, n - 1) * rb, w3 = w0 + min(3, n - 1) * rb
            var acc = SIMD4<Float>()
            let next = w0 + 4 * rb   // the next 4 rows, prefetched at the pace these are read
            for b in 0..<nb {
                if n == 4 { Self.prefetch(next + 4 * wb * b, bytes: 4 * wb) }
                let xb = xr + b * xBytes, o = b * wb
                let dx = SIMD4<Float>(repeating: dxp[b])
                let (l0, o0, m0) = F.dot(w0 + o, xb), (l1, o1, m1) = F.dot(w1 + o, xb)
                let (l2, o2, m2) = F.dot(w2 + o, xb), (l3, o3, m3) = F.dot(w3 + o, xb)
                let (s0, s1, s2, s3) = (F.scales(w0 + o), F.scales(w1 + o), F.scales(w2 + o), F.scales(w3 + o))
                if F.hasMins {
                    let dmin = SIMD4<Float>(-s0.dmin, -s1.dmin, -s2.dmin, -s3.dmin)
                    acc = acc.addingProduct(SIMD4<Float>(SIMD4<Int32>(m0, m1, m2, m3)), dx * dmin)
                }
                let i = Lanes.sum(l0, l1, l2, l3) &+ SIMD4<Int32>(o0, o1, o2, o3)
                acc = acc.addingProduct(SIMD4<Float>(i), dx * SIMD4<Float>(s0.d, s1.d, s2.d, s3.d))
            }
            for j in 0..<n { out[r + j] = acc[j] }
            r += n
        }
    }
}

extension WeightMatrix {
    /// Small batches: out[(t0+j)·outStride + r] for 4 tokens t0..<t0+4 and r in rows. Each row is
    /// decoded once into Int16 values with the sub-block scales folded in (as the GEMM does,
    /// `KQuantFormat.unpack`), then dotted with each token's quants, widened to Int16 by
    /// `ActivationBuffer` (rowQuants): 8 `vpdpwssd` with memory operands per token and super-block.
    /// Decode and dot are separate loops so that LLVM does not forward the stored vectors into the
    /// dot (the pair pattern only matches loads). Shapes: rowQuants [4 tokens, cols] Int16 from row
    /// t0; stack scratch: decoded row [cols] Int16 plus per-super-block d, dmin, mins.
    func gemvK4<F: KQuantFormat>(_: F.Type, _ x: ActivationBuffer, _ t0: Int, _ rows: Range<Int>,
                                 _ out: UnsafeMutablePointer<Float>, _ outStride: Int) {
        let nb = cols / 256, n = cols
        let xq = UnsafeRawPointer(x.rowQuants + t0 * n), dxp = x.rowScale + t0 * nb
        let xr = x.row(t0), xrb = x.rowBytes
        withUnsafeTemporaryAllocation(byteCount: 2 * n + 1024 + 16 * nb, alignment: 64) { scratch in
            let w16 = scratch.baseAddress!
            let values = (w16 + 2 * n).assumingMemoryBound(to: Int32.self)
            let scales = (w16 + 2 * n + 1024).assumingMemoryBound(to: Float.self)   // [nb, 2]: d, dmin
            let minima = (w16 + 2 * n + 1024 + 8 * nb).assumingMemoryBound(to: SIMD8<UInt8>.self)
            for r in rows {
                for b in 0..<nb {
                    let blk = row(r) + b * F.bytes
                    _ = F.unpack(blk, into: values)
                    for i in 0..<8 {   // 64-byte stores: each pair load reads one store
                        let v0 = UnsafeRawPointer(values).load(fromByteOffset: 128 * i, as: SIMD16<Int32>.self)
                        let v1 = UnsafeRawPointer(values).load(fromByteOffset: 128 * i + 64, as: SIMD16<Int32>.self)
                        let v = SIMD32<Int16>(lowHalf: Lanes.narrow16(v0), highHalf: Lanes.narrow16(v1))
                        w16.storeBytes(of: v, toByteOffset: 512 * b + 64 * i, as: SIMD32<Int16>.self)
                    }
                    (scales[2 * b], scales[2 * b + 1]) = F.scales(blk)
                    if F.hasMins { minima[b] = F.mins(blk) }
                }
                var acc = SIMD4<Float>()
                for b in 0..<nb {
                    let wb = UnsafeRawPointer(w16 + 512 * b)
                    let dx = SIMD4<Float>(dxp[b], dxp[nb + b], dxp[2 * nb + b], dxp[3 * nb + b])
                    let xb0 = xq + 512 * b, xb1 = xb0 + 2 * n, xb2 = xb1 + 2 * n, xb3 = xb2 + 2 * n
                    var i0 = SIMD16<Int32>(), i1 = SIMD16<Int32>(), i2 = SIMD16<Int32>(), i3 = SIMD16<Int32>()
                    for k in 0..<8 {
                        let w = wb + 64 * k
                        i0 &+= GEMMKernel.pairs(w, xb0 + 64 * k)
                        i1 &+= GEMMKernel.pairs(w, xb1 + 64 * k)
                        i2 &+= GEMMKernel.pairs(w, xb2 + 64 * k)
                        i3 &+= GEMMKernel.pairs(w, xb3 + 64 * k)
                    }
                    if F.hasMins {
                        let m = minima[b], xo = b * BlockLayout.Q8_K.bytes
                        let ms = SIMD4<Int32>(KQuantGEMV.minSum(m, xr + xo), KQuantGEMV.minSum(m, xr + xrb + xo),
                                              KQuantGEMV.minSum(m, xr + 2 * xrb + xo), KQuantGEMV.minSum(m, xr + 3 * xrb + xo))
                        acc = acc.addingProduct(SIMD4<Float>(ms), dx * -scales[2 * b + 1])
                    }
                    acc = acc.addingProduct(SIMD4<Float>(Lanes.sum(i0, i1, i2, i3)), dx * scales[2 * b])
                }
                let v = acc
                for j in 0..<4 { out[j * outStride + r] = v[j] }
            }
        }
    }
}
