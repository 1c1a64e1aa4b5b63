// Reference (scalar, obviously correct) dequantizers: one ggml block at a time, in the C's order of
// float operations, so the results equal ggml's `dequantize_row_*` exactly.
// Source: ggml/src/ggml-quants.c dequantize_row_q4_0 … q8_0, iq4_nl, q4_K, q5_K, q6_K, q8_K;
// ggml.c ggml_fp16_to_fp32_row / ggml_bf16_to_fp32_row.
// Deviation: ggml has no dequantize_row_q8_1; here it is x = d·q like q8_0.
import GodwitGGUF

/// Decodes `count` values of `type` at `src` (ggml blocks) into floats at `dst` [count].
/// Scalar reference for `dequantizeRow`. Supported: f32, f16, bf16, q8_0, q8_1, q4_0, q4_1, q5_0,
/// q5_1, iq4_nl, q4_K, q5_K, q6_K, q8_K.
public func dequantizeRowReference(type: GGMLType, src: UnsafeRawPointer, dst: UnsafeMutablePointer<Float>,
                                   count: Int) throws(KernelError) {
    guard count >= 0, count % type.blockSize == 0 else { throw .countNotBlockMultiple(type: type, count: count) }
    guard let geometry = BlockLayout.geometry(type) else {
        throw .unsupportedType(type, operation: "dequantizeRowReference")
    }
    let (values, bytes) = geometry
    for b in 0..<count / values {
        let p = src + b * bytes, y = dst + b * values
        switch type {
        case .f32: y[0] = p.loadUnaligned(as: Float.self)
        case .f16: y[0] = halfToFloat(p.loadUnaligned(as: UInt16.self))
        case .bf16: y[0] = bf16ToFloat(p.loadUnaligned(as: UInt16.self))
        case .q8_0: DequantizeReference.q8(p, BlockLayout.Q8_0.d, BlockLayout.Q8_0.qs, y)
        case .q8_1: DequantizeReference.q8(p, BlockLayout.Q8_1.d, BlockLayout.Q8_1.qs, y)
        case .q4_0: DequantizeReference.q4_0(p, y)
        case .q4_1: DequantizeReference.q4_1(p, y)
        case .q5_0: DequantizeReference.q5_0(p, y)
        case .q5_1: DequantizeReference.q5_1(p, y)
        case .iq4_nl: DequantizeReference.iq4_nl(p, y)
        case .q4_K: DequantizeReference.q4_K(p, y)
        case .q5_K: DequantizeReference.q5_K(p, y)
        case .q6_K: DequantizeReference.q6_K(p, y)
        case .q8_K: DequantizeReference.q8_K(p, y)
        default: throw .unsupportedType(type, operation: "dequantizeRowReference")
        }
    }
}

/// Per-block reference decoders: `p` = one block, `y` = its values.
enum DequantizeReference {
    @inline(__always) static func half(_ p: UnsafeRawPointer, _ off: Int) -> Float {
        halfToFloat(p.loadUnaligned(fromByteOffset: off, as: UInt16.self))
    }
    @inline(__always) static func byte(_ p: UnsafeRawPointer, _ off: Int) -> UInt8 {
        p.load(fromByteOffset: off, as: UInt8.self)
    }

    /// q8_0 / q8_1: x = q·d.
    static func q8(_ p: UnsafeRawPointer, _ dOff: Int, _ qsOff: Int, _ y: UnsafeMutablePointer<Float>) {
        let d = half(p, dOff)
        for j in 0..<32 { y[j] = Float(p.load(fromByteOffset: qsOff + j, as: Int8.self)) * d }
    }

    /// q4_0: x = (q − 8)·d.
    static func q4_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let L = BlockLayout.Q4_0.self
        let d = half(p, L.d)
        for j in 0..<16 {
            let q = byte(p, L.qs + j)
            y[j] = Float(Int32(q & 0xF) - 8) * d
            y[j + 16] = Float(Int32(q >> 4) - 8) * d
        }
    }

    /// q4_1: x = q·d + m.
    static func q4_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let L = BlockLayout.Q4_1.self
        let d = half(p, L.d), m = half(p, L.m)
        for j in 0..<16 {
            let q = byte(p, L.qs + j)
            y[j] = Float(q & 0xF) * d + m
            y[j + 16] = Float(q >> 4) * d + m
        }
    }

    /// The 5-bit quants of q5_0 / q5_1 (value j and j+16 for j < 16).
    @inline(__always) static func q5(_ p: UnsafeRawPointer, qh qhOff: Int, qs qsOff: Int, _ j: Int) -> (Int32, Int32) {
        let qh = p.loadUnaligned(fromByteOffset: qhOff, as: UInt32.self)
        let q = byte(p, qsOff + j)
        let h0 = Int32((qh >> UInt32(j)) & 1) << 4, h1 = Int32((qh >> UInt32(j + 16)) & 1) << 4
        return (Int32(q & 0xF) | h0, Int32(q >> 4) | h1)
    }

    /// q5_0: x = (q − 16)·d.
    static func q5_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let L = BlockLayout.Q5_0.self
        let d = half(p, L.d)
        for j in 0..<16 {
            let (a, b) = q5(p, qh: L.qh, qs: L.qs, j)
            y[j] = Float(a - 16) * d
            y[j + 16] = Float(b - 16) * d
        }
    }

    /// q5_1: x = q·d + m.
    static func q5_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let L = BlockLayout.Q5_1.self
        let d = half(p, L.d), m = half(p, L.m)
        for j in 0..<16 {
            let (a, b) = q5(p, qh: L.qh, qs: L.qs, j)
            y[j] = Float(a) * d + m
            y[j + 16] = Float(b) * d + m
        }
    }

    /// iq4_nl: x = d·level[q].
    static func iq4_nl(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let L = BlockLayout.IQ4_NL.self
        let d = half(p, L.d)
        for j in 0..<16 {
            let q = byte(p, L.qs + j)
            y[j] = d * Float(IQ4NL.values[Int(q & 0xF)])
            y[j + 16] = d * Float(IQ4NL.values[Int(q >> 4)])
        }
    }

    /// q4_K: x = (d·sc_j)·q − dmin·m_j over 8 sub-blocks of 32.
    static func q4_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let L = BlockLayout.Q4_K.self
        let d = half(p, L.d), dmin = half(p, L.dmin)
        for i in 0..<4 {
            let (sc0, m0) = KQuantScales.scaleMin(2 * i, p + L.scales)
            let (sc1, m1) = KQuantScales.scaleMin(2 * i + 1, p + L.scales)
            let d0 = d * Float(sc0), mm0 = dmin * Float(m0), d1 = d * Float(sc1), mm1 = dmin * Float(m1)
            for l in 0..<32 {
                let q = byte(p, L.qs + 32 * i + l)
                y[64 * i + l] = d0 * Float(q & 0xF) - mm0
                y[64 * i + 32 + l] = d1 * Float(q >> 4) - mm1
            }
        }
    }

    /// q5_K: as q4_K with the fifth bit from qh.
    static func q5_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let L = BlockLayout.Q5_K.self
        let d = half(p, L.d), dmin = half(p, L.dmin)
        for i in 0..<4 {
            let (sc0, m0) = KQuantScales.scaleMin(2 * i, p + L.scales)
            let (sc1, m1) = KQuantScales.scaleMin(2 * i + 1, p + L.scales)
            let d0 = d * Float(sc0), mm0 = dmin * Float(m0), d1 = d * Float(sc1), mm1 = dmin * Float(m1)
            for l in 0..<32 {
                let q = byte(p, L.qs + 32 * i + l), h = byte(p, L.qh + l)
                let a = Int32(q & 0xF) + ((h >> UInt8(2 * i)) & 1 != 0 ? 16 : 0)
                let b = Int32(q >> 4) + ((h >> UInt8(2 * i + 1)) & 1 != 0 ? 16 : 0)
                y[64 * i + l] = d0 * Float(a) - mm0
                y[64 * i + 32 + l] = d1 * Float(b) - mm1
            }
        }
    }

    /// The q6_K quant (q − 32, in −32..<32) and scale index of value `i` (0..<256).
    @inline(__always) static func q6(_ p: UnsafeRawPointer, _ i: Int) -> (q: Int32, scale: Int) {
        let L = BlockLayout.Q6_K.self
        let n = i / 128, g = (i % 128) / 32, l = i % 32
        let ql = byte(p, L.ql + 64 * n + 32 * (g % 2) + l)
        let qh = byte(p, L.qh + 32 * n + l)
        let lo = Int32(g < 2 ? ql & 0xF : ql >> 4)
        let hi = Int32((qh >> UInt8(2 * g)) & 3)
        return ((lo | hi << 4) - 32, 8 * n + 2 * g + l / 16)
    }

    /// q6_K: x = (d·sc)·(q − 32) over 16 sub-blocks of 16.
    static func q6_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let L = BlockLayout.Q6_K.self
        let d = half(p, L.d)
        for i in 0..<256 {
            let (q, s) = q6(p, i)
            y[i] = d * Float(p.load(fromByteOffset: L.scales + s, as: Int8.self)) * Float(q)
        }
    }

    /// q8_K: x = d·q (d is an f32).
    static func q8_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let L = BlockLayout.Q8_K.self
        let d = p.loadUnaligned(fromByteOffset: L.d, as: Float.self)
        for j in 0..<256 { y[j] = d * Float(p.load(fromByteOffset: L.qs + j, as: Int8.self)) }
    }
}
