// Scores of the ggml block caches: integer-exact block dot products, as ggml's vec_dot computes
// them (ggml/src/ggml-cpu/quants.c *_generic), per key row k and q8-quantized query q:
//   q8_0, q4_0, q5_0, iq4_nl (q8_0 query):  acc += (d_k·d_q)·Σ_i k_i·q_i
//   q4_1, q5_1 (q8_1 query):                acc += (d_k·d_q)·Σ_i k_i·q_i + m_k·s_q
// over the blocks in order, from acc = 0. The block sum Σ k_i·q_i is an integer below 2²⁴ in
// magnitude, so it is computed exactly in f32 from the codes (k_i, q_i as floats; any summation
// order gives the same integer); only the per-block scaling and the running sum round. Results
// therefore do not depend on how positions or query rows are grouped.
// Key rows are decoded 16 positions at a time (codes, d, m) into a stack tile shared by every query
// row of the call; the query is decoded once per step (`prepareQuery`).
// Deviation: llama.cpp's AVX2 vec_dot scales 8 lanes of partial integer sums per block and adds
// the lanes at the end; the per-block order here is the generic one (equal to rounding).
import GodwitKernels

extension BlockStore {
    /// Quantizes q to the query type and stores [codes: headDim][d: blocks][s: blocks] as f32.
    func prepareQuery(_ q: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) {
        let d = geometry.headDim
        let out = dst.assumingMemoryBound(to: Float.self)
        withUnsafeTemporaryAllocation(byteCount: blocks * F.queryType.typeSize, alignment: 16) { tmp in
            try! quantizeRowCPU(type: F.queryType, src: q, dst: tmp.baseAddress!, count: d)
            try! decodeBlockCodes(type: F.queryType, src: tmp.baseAddress!, rowBytes: 0, rows: 1, count: d,
                                  codes: out, scales: out + d, mins: out + d + blocks)
        }
    }

    func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                into out: UnsafeMutablePointer<Float>, outStride: Int) {
        let d = geometry.headDim, nb = blocks, span = Self.span
        let qStride = preparedQueryBytes
        let hasMin = F.type == .q4_1 || F.type == .q5_1
        withUnsafeTemporaryAllocation(of: Float.self, capacity: span * (d + 2 * nb)) { buffer in
            let codes = buffer.baseAddress!, scales = codes + span * d, mins = scales + span * nb
            var j0 = 0
            while j0 < positions.count {
                let n = min(span, positions.count - j0)
                try! decodeBlockCodes(type: F.type, src: row(head: head, position: positions.lowerBound + j0), rowBytes: rowBytes,
                                      rows: n, count: d, codes: codes, scales: scales, mins: mins)
                for j in 0..<n {
                    let k = UnsafeRawPointer(codes + j * d), dk = scales + j * nb, mk = mins + j * nb
                    for g in 0..<queryCount {
                        let q = queries + g * qStride
                        let dq = (q + d * 4).assumingMemoryBound(to: Float.self), sq = dq + nb
                        var acc: Float = 0
                        for b in 0..<nb {
                            let o = b * 128
                            let v = (q.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self) * k.load(fromByteOffset: o, as: SIMD16<Float>.self))
                                .addingProduct(q.loadUnaligned(fromByteOffset: o + 64, as: SIMD16<Float>.self),
                                               k.load(fromByteOffset: o + 64, as: SIMD16<Float>.self))
                            let isum = FloatStoreKernels.hsum(v)
                            if hasMin {
                                acc += dk[b] * dq[b] * isum + mk[b] * sq[b]
                            } else {
                                acc += dk[b] * dq[b] * isum
                            }
                        }
                        out[g * outStride + j0 + j] = acc
                    }
                }
                j0 += n
            }
        }
    }
}
