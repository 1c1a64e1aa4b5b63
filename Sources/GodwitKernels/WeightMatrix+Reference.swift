// Scalar twin of `multiply`: one (row, token) dot at a time, one ggml block at a time, reading
// only the ggml rows of both operands (none of the fast paths' derived data).
// Source: ggml-cpu/quants.c ggml_vec_dot_*_generic — integer sums per block, then
// q4_0/q8_0: sumi·(d_w·d_x)   q4_1/q5_1: (d_w·d_x)·sumi + m_w·s_x   q5_0: (d_w·d_x)·sumi
// iq4_nl: d_w·d_x·sumi   k-quants: d_w·d_x·Σ_j sc_j·sumi_j − dmin·d_x·Σ_j m_j·bsum_j;
// float types: Σ w·x in order.
// Deviation: k-quant integer sums are accumulated exactly in one Int32 (ggml's generic code keeps
// eight float partial sums), which changes only rounding.
import GodwitGGUF

extension WeightMatrix {
    /// Scalar twin of `multiply` (same math, obviously-correct loops).
    public func multiplyReference(_ x: ActivationBuffer, rows: Range<Int>, into out: UnsafeMutablePointer<Float>, outStride: Int) {
        checkShapes(x, rows)
        for t in 0..<x.rows {
            for r in rows { out[t * outStride + r] = referenceDot(row(r), x.row(t)) }
        }
    }

    /// W row `w` · activation row `x` (both in ggml layout).
    func referenceDot(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer) -> Float {
        let h = DequantizeReference.half
        var sumf: Float = 0
        switch type {
        case .f32, .f16, .bf16:
            for k in 0..<cols {
                let xv = x.loadUnaligned(fromByteOffset: 4 * k, as: Float.self)
                let wv: Float = switch type {
                case .f32: w.loadUnaligned(fromByteOffset: 4 * k, as: Float.self)
                case .f16: halfToFloat(w.loadUnaligned(fromByteOffset: 2 * k, as: UInt16.self))
                default: bf16ToFloat(w.loadUnaligned(fromByteOffset: 2 * k, as: UInt16.self))
                }
                sumf += wv * xv
            }
        case .q4_0, .q5_0, .q8_0, .iq4_nl, .q4_1, .q5_1:
            let hasMin = type == .q4_1 || type == .q5_1
            let xBytes = hasMin ? BlockLayout.Q8_1.bytes : BlockLayout.Q8_0.bytes
            let xqs = hasMin ? BlockLayout.Q8_1.qs : BlockLayout.Q8_0.qs
            let wBytes = type.typeSize
            for b in 0..<cols / 32 {
                let wb = w + b * wBytes, xb = x + b * xBytes
                var sumi: Int32 = 0
                for j in 0..<32 {
                    sumi &+= ReferenceDot.signedValue(type, wb, j) &* Int32(xb.load(fromByteOffset: xqs + j, as: Int8.self))
                }
                let dw = h(wb, 0), dx = h(xb, 0)
                switch type {
                case .q4_0, .q8_0: sumf += Float(sumi) * (dw * dx)
                case .q4_1, .q5_1: sumf += (dw * dx) * Float(sumi) + h(wb, 2) * h(xb, BlockLayout.Q8_1.s)
                default: sumf += (dw * dx) * Float(sumi)
                }
            }
        case .q4_K, .q5_K, .q6_K:
            let X = BlockLayout.Q8_K.self
            for b in 0..<cols / 256 {
                let wb = w + b * type.typeSize, xb = x + b * X.bytes
                let dx = xb.loadUnaligned(fromByteOffset: X.d, as: Float.self)
                var isum: Int32 = 0, msum: Int32 = 0
                for i in 0..<256 {
                    let (q, sc) = ReferenceDot.kQuant(type, wb, i)
                    isum &+= sc &* q &* Int32(xb.load(fromByteOffset: X.qs + i, as: Int8.self))
                }
                if type != .q6_K {
                    for j in 0..<8 {
                        let m = Int32(KQuantScales.scaleMin(j, wb + BlockLayout.Q4_K.scales).min)
                        let b0 = Int32(xb.loadUnaligned(fromByteOffset: X.bsums + 4 * j, as: Int16.self))
                        let b1 = Int32(xb.loadUnaligned(fromByteOffset: X.bsums + 4 * j + 2, as: Int16.self))
                        msum &+= m &* (b0 &+ b1)
                    }
                }
                let d = h(wb, type == .q6_K ? BlockLayout.Q6_K.d : 0) * dx
                sumf += d * Float(isum)
                if type != .q6_K { sumf -= h(wb, 2) * dx * Float(msum) }
            }
        default:
            preconditionFailure("unreachable: \(type) rejected by init")
        }
        return sumf
    }
}

enum ReferenceDot {
    /// Signed integer value `j` (0..<32) of a 32-value weight block (value = d·v [+ m]).
    static func signedValue(_ type: GGMLType, _ p: UnsafeRawPointer, _ j: Int) -> Int32 {
        switch type {
        case .q8_0:
            return Int32(p.load(fromByteOffset: BlockLayout.Q8_0.qs + j, as: Int8.self))
        case .q4_0, .q4_1, .iq4_nl:
            let qs = type == .q4_1 ? BlockLayout.Q4_1.qs : BlockLayout.Q4_0.qs
            let byte = p.load(fromByteOffset: qs + j % 16, as: UInt8.self)
            let q = j < 16 ? byte & 0xF : byte >> 4
            switch type {
            case .q4_0: return Int32(q) - 8
            case .q4_1: return Int32(q)
            default: return Int32(IQ4NL.values[Int(q)])
            }
        default:  // q5_0, q5_1
            let q0 = type == .q5_0
            let (a, b) = DequantizeReference.q5(p, qh: q0 ? BlockLayout.Q5_0.qh : BlockLayout.Q5_1.qh,
                                                qs: q0 ? BlockLayout.Q5_0.qs : BlockLayout.Q5_1.qs, j % 16)
            let q = j < 16 ? a : b
            return q0 ? q - 16 : q
        }
    }

    /// Quant and integer scale of value `i` of a k-quant super-block (q4_K/q5_K: q ≥ 0 with the
    /// 6-bit scale; q6_K: q − 32 with the int8 scale).
    static func kQuant(_ type: GGMLType, _ p: UnsafeRawPointer, _ i: Int) -> (q: Int32, scale: Int32) {
        switch type {
        case .q6_K:
            let (q, s) = DequantizeReference.q6(p, i)
            return (q, Int32(p.load(fromByteOffset: BlockLayout.Q6_K.scales + s, as: Int8.self)))
        default:
            let j = i / 32, l = i % 32, group = i / 64
            let L4 = BlockLayout.Q4_K.self, L5 = BlockLayout.Q5_K.self
            let qsOff = type == .q4_K ? L4.qs : L5.qs
            let byte = p.load(fromByteOffset: qsOff + 32 * group + l, as: UInt8.self)
            var q = Int32(j % 2 == 0 ? byte & 0xF : byte >> 4)
            if type == .q5_K, (p.load(fromByteOffset: L5.qh + l, as: UInt8.self) >> UInt8(j)) & 1 != 0 { q += 16 }
            return (q, Int32(KQuantScales.scaleMin(j, p + L4.scales).scale))
        }
    }
}
