// iq4_nl reference quantizer: ggml's best-scale search, bit-identical to ggml on x86-64.
// Source: ggml/src/ggml-quants.c `quantize_row_iq4_nl_impl` (super_block_size = block_size = 32,
// no importance weights: weight[j] = x[j]²), `best_index_int8`, `quantize_iq4_nl` (ntry = 7, what
// llama-quantize uses) and `quantize_row_iq4_nl_ref` (ntry = −1, ggml-cpu's `from_float`).
// Operation order follows the C exactly (ggml-base is built without FMA contraction).
// Deviation: with ntry ≤ 0 an all-zero block leaves ggml's index array uninitialized (stale stack
// bytes end up in qs); here those quants are index 8 (the level nearest 0), as ntry > 0 produces.
// Either way d = 0, so the block decodes to zeros.

/// Quantizes `count` floats (a multiple of 32) to iq4_nl blocks at `dst` with ggml's search over
/// `2·ntry + 1` candidate scales: ntry = 7 reproduces `quantize_iq4_nl` (no imatrix), ntry = −1
/// reproduces `quantize_row_iq4_nl_ref`. Precondition: count % 32 == 0.
public func quantizeRowIQ4NL(src: UnsafePointer<Float>, dst: UnsafeMutableRawPointer, count: Int, ntry: Int) {
    precondition(count % 32 == 0, "iq4_nl rows are whole blocks of 32")
    for b in 0..<count / 32 {
        QuantizeReference.iq4_nl(src + 32 * b, dst + BlockLayout.IQ4_NL.bytes * b, ntry: ntry)
    }
}

extension QuantizeReference {
    /// ggml's `best_index_int8(16, kvalues_iq4nl, x)`: index of the nearest level (binary search;
    /// ties go to the upper level).
    @inline(__always) static func bestIndexIQ4NL(_ x: Float) -> Int {
        let v = IQ4NL.values
        if x <= Float(v[0]) { return 0 }
        if x >= Float(v[15]) { return 15 }
        var ml = 0, mu = 15
        while mu - ml > 1 {
            let mav = (ml + mu) / 2
            if x < Float(v[mav]) { mu = mav } else { ml = mav }
        }
        return x - Float(v[mu - 1]) < Float(v[mu]) - x ? mu - 1 : mu
    }

    /// One block of 32: quantize_row_iq4_nl_impl(32, 32, …, quant_weights = NULL, ntry).
    static func iq4_nl(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, ntry: Int) {
        let values = IQ4NL.values
        let v0 = Float(values[0])
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { L in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { weight in
                for j in 0..<32 { weight[j] = x[j] * x[j]; L[j] = 8 }
                var amax: Float = 0, max: Float = 0
                for j in 0..<32 where abs(x[j]) > amax { amax = abs(x[j]); max = x[j] }
                var scale: Float = 0
                if !(amax < 1e-15) {
                    var d = ntry > 0 ? -max / v0 : max / v0
                    var id = 1 / d
                    var sumqx: Float = 0, sumq2: Float = 0
                    for j in 0..<32 {
                        let l = bestIndexIQ4NL(id * x[j])
                        L[j] = UInt8(l)
                        let q = Float(values[l]), w = weight[j]
                        sumqx += w * q * x[j]
                        sumq2 += w * q * q
                    }
                    d = sumq2 > 0 ? sumqx / sumq2 : 0
                    var best = d * sumqx
                    if ntry > 0 {
                        for itry in -ntry...ntry {
                            id = Float(itry + Int(values[0])) / max
                            sumqx = 0; sumq2 = 0
                            for j in 0..<32 {
                                let q = Float(values[bestIndexIQ4NL(id * x[j])]), w = weight[j]
                                sumqx += w * q * x[j]
                                sumq2 += w * q * q
                            }
                            if sumq2 > 0 && sumqx * sumqx > best * sumq2 {
                                d = sumqx / sumq2
                                best = d * sumqx
                            }
                        }
                    }
                    scale = d
                }
                y.storeBytes(of: floatToHalf(scale), toByteOffset: BlockLayout.IQ4_NL.d, as: UInt16.self)
                if ntry > 0 {
                    let id: Float = scale != 0 ? 1 / scale : 0
                    for j in 0..<32 { L[j] = UInt8(bestIndexIQ4NL(id * x[j])) }
                }
                for j in 0..<16 {
                    y.storeBytes(of: L[j] | (L[16 + j] << 4), toByteOffset: BlockLayout.IQ4_NL.qs + j, as: UInt8.self)
                }
            }
        }
    }
}
