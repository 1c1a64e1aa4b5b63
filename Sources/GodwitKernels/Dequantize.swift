// Fast dequantizers: 16 values per step in SIMD16 lanes. Scalar twins: DequantizeReference.swift.
// Source: ggml/src/ggml-quants.c dequantize_row_* (same float operations, so the results are
// identical to the reference: Swift does not fuse a*b+c into an FMA).
// Layouts: BlockLayouts.swift. Every function decodes one block `p` into `y` [values per block].
import GodwitGGUF

/// Decodes `count` values of `type` at `src` (ggml blocks) into floats at `dst` [count], with
/// SIMD kernels; results equal `dequantizeRowReference`. Types as `dequantizeRowReference`.
public func dequantizeRow(type: GGMLType, src: UnsafeRawPointer, dst: UnsafeMutablePointer<Float>,
                          count: Int) throws(KernelError) {
    guard count >= 0, count % type.blockSize == 0 else { throw .countNotBlockMultiple(type: type, count: count) }
    guard let geometry = BlockLayout.geometry(type) else { throw .unsupportedType(type, operation: "dequantizeRow") }
    let nb = count / geometry.values, bytes = geometry.bytes
    switch type {
    case .f32: UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: 4 * count)
    case .f16: halfToFloat(src, dst, count: count)
    case .bf16: bf16ToFloat(src, dst, count: count)
    case .q8_0: for b in 0..<nb { Dequantize.q8(src + b * bytes, BlockLayout.Q8_0.d, BlockLayout.Q8_0.qs, dst + 32 * b) }
    case .q8_1: for b in 0..<nb { Dequantize.q8(src + b * bytes, BlockLayout.Q8_1.d, BlockLayout.Q8_1.qs, dst + 32 * b) }
    case .q4_0: for b in 0..<nb { Dequantize.q4_0(src + b * bytes, dst + 32 * b) }
    case .q4_1: for b in 0..<nb { Dequantize.q4_1(src + b * bytes, dst + 32 * b) }
    case .q5_0: for b in 0..<nb { Dequantize.q5_0(src + b * bytes, dst + 32 * b) }
    case .q5_1: for b in 0..<nb { Dequantize.q5_1(src + b * bytes, dst + 32 * b) }
    case .iq4_nl: for b in 0..<nb { Dequantize.iq4_nl(src + b * bytes, dst + 32 * b) }
    case .q4_K: for b in 0..<nb { Dequantize.q4_K(src + b * bytes, dst + 256 * b) }
    case .q5_K: for b in 0..<nb { Dequantize.q5_K(src + b * bytes, dst + 256 * b) }
    case .q6_K: for b in 0..<nb { Dequantize.q6_K(src + b * bytes, dst + 256 * b) }
    case .q8_K: for b in 0..<nb { Dequantize.q8_K(src + b * bytes, dst + 256 * b) }
    default: throw .unsupportedType(type, operation: "dequantizeRow")
    }
}

/// Per-block SIMD decoders (`p` = one block, `y` = its values).
/// Decodes `rows` rows of `count` values each, `rowBytes` apart at `src`, into dst [rows, count]:
/// the same values as `dequantizeRow` per row, with one type dispatch for all of them (cache tiles).
public func dequantizeRows(type: GGMLType, src: UnsafeRawPointer, rowBytes: Int, rows: Int,
                           dst: UnsafeMutablePointer<Float>, count: Int) throws(KernelError) {
    guard count >= 0, count % type.blockSize == 0 else { throw .countNotBlockMultiple(type: type, count: count) }
    guard let geometry = BlockLayout.geometry(type) else { throw .unsupportedType(type, operation: "dequantizeRows") }
    let nb = count / geometry.values, bytes = geometry.bytes
    @inline(__always) func each(_ decode: (UnsafeRawPointer, UnsafeMutablePointer<Float>) -> Void) {
        for r in 0..<rows {
            let s = src + r * rowBytes, y = dst + r * count
            for b in 0..<nb { decode(s + b * bytes, y + 32 * b) }
        }
    }
    switch type {
    case .q8_0: each { Dequantize.q8($0, BlockLayout.Q8_0.d, BlockLayout.Q8_0.qs, $1) }
    case .q8_1: each { Dequantize.q8($0, BlockLayout.Q8_1.d, BlockLayout.Q8_1.qs, $1) }
    case .q4_0: each { Dequantize.q4_0($0, $1) }
    case .q4_1: each { Dequantize.q4_1($0, $1) }
    case .q5_0: each { Dequantize.q5_0($0, $1) }
    case .q5_1: each { Dequantize.q5_1($0, $1) }
    case .iq4_nl: each { Dequantize.iq4_nl($0, $1) }
    default:
        for r in 0..<rows { try dequantizeRow(type: type, src: src + r * rowBytes, dst: dst + r * count, count: count) }
    }
}

/// Decodes `rows` rows of `count` values of a 32-value block type into their integer codes, offset
/// applied (q4_0: q − 8, q5_0: q − 16, iq4_nl: the level), as exact floats in codes [rows, count],
/// with each block's d in scales [rows, count/32] and, in mins [rows, count/32], its m (q4_1, q5_1),
/// its s = d·Σq (q8_1) or 0. x = d·code (+ m). For integer-exact block dot products
/// (Σ code·code is an integer below 2²⁴, so any float summation order is exact).
public func decodeBlockCodes(type: GGMLType, src: UnsafeRawPointer, rowBytes: Int, rows: Int, count: Int,
                             codes: UnsafeMutablePointer<Float>, scales: UnsafeMutablePointer<Float>,
                             mins: UnsafeMutablePointer<Float>) throws(KernelError) {
    guard count >= 0, count % 32 == 0 else { throw .countNotBlockMultiple(type: type, count: count) }
    guard let geometry = BlockLayout.geometry(type), geometry.values == 32 else {
        throw .unsupportedType(type, operation: "decodeBlockCodes")
    }
    let nb = count / 32, bytes = geometry.bytes
    @inline(__always) func each(_ decode: (UnsafeRawPointer) -> (SIMD16<Int32>, SIMD16<Int32>, Float, Float)) {
        for r in 0..<rows {
            for b in 0..<nb {
                let (lo, hi, d, m) = decode(src + r * rowBytes + b * bytes)
                let y = UnsafeMutableRawPointer(codes + r * count + 32 * b)
                y.storeBytes(of: Lanes.float(lo), as: SIMD16<Float>.self)
                y.storeBytes(of: Lanes.float(hi), toByteOffset: 64, as: SIMD16<Float>.self)
                scales[r * nb + b] = d
                mins[r * nb + b] = m
            }
        }
    }
    let h = Dequantize.half
    switch type {
    case .q8_0: each { p in (Lanes.signedBytes(p, 2), Lanes.signedBytes(p, 18), h(p, 0), 0) }
    case .q8_1: each { p in (Lanes.signedBytes(p, 4), Lanes.signedBytes(p, 20), h(p, 0), h(p, 2)) }
    case .q4_0: each { p in let q = Lanes.bytes(p, 2); return ((q & 15) &- 8, (q &>> 4) &- 8, h(p, 0), 0) }
    case .q4_1: each { p in let q = Lanes.bytes(p, 4); return (q & 15, q &>> 4, h(p, 0), h(p, 2)) }
    case .q5_0: each { p in let (a, b) = Dequantize.q5(p, qh: 2, qs: 6); return (a &- 16, b &- 16, h(p, 0), 0) }
    case .q5_1: each { p in let (a, b) = Dequantize.q5(p, qh: 4, qs: 8); return (a, b, h(p, 0), h(p, 2)) }
    case .iq4_nl:
        each { p in
            let q = Lanes.bytes(p, 2)
            return (Lanes.iq4nlBiasedLevels(q & 15) &- 128, Lanes.iq4nlBiasedLevels(q &>> 4) &- 128, h(p, 0), 0)
        }
    default: throw .unsupportedType(type, operation: "decodeBlockCodes")
    }
}

enum Dequantize {
    @inline(__always) static func half(_ p: UnsafeRawPointer, _ off: Int) -> Float {
        halfToFloat(p.loadUnaligned(fromByteOffset: off, as: UInt16.self))
    }
    @inline(__always) static func store(_ v: SIMD16<Float>, _ y: UnsafeMutablePointer<Float>, _ i: Int) {
        UnsafeMutableRawPointer(y + i).storeBytes(of: v, as: SIMD16<Float>.self)
    }

    /// q8_0 / q8_1: x = q·d.
    @inline(__always) static func q8(_ p: UnsafeRawPointer, _ dOff: Int, _ qsOff: Int, _ y: UnsafeMutablePointer<Float>) {
        let d = SIMD16<Float>(repeating: half(p, dOff))
        store(Lanes.float(Lanes.signedBytes(p, qsOff)) * d, y, 0)
        store(Lanes.float(Lanes.signedBytes(p, qsOff + 16)) * d, y, 16)
    }

    /// q4_0: x = (q − 8)·d.
    @inline(__always) static func q4_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let L = BlockLayout.Q4_0.self
        let d = SIMD16<Float>(repeating: half(p, L.d))
        let q = Lanes.bytes(p, L.qs)
        store(Lanes.float((q & 15) &- 8) * d, y, 0)
        store(Lanes.float((q &>> 4) &- 8) * d, y, 16)
    }

    /// q4_1: x = q·d + m.
    @inline(__always) static func q4_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let L = BlockLayout.Q4_1.self
        let d = SIMD16<Float>(repeating: half(p, L.d)), m = SIMD16<Float>(repeating: half(p, L.m))
        let q = Lanes.bytes(p, L.qs)
        store(Lanes.float(q & 15) * d + m, y, 0)
        store(Lanes.float(q &>> 4) * d + m, y, 16)
    }

    /// The 5-bit quants of a q5 block: values 0..<16 and 16..<32.
    @inline(__always) static func q5(_ p: UnsafeRawPointer, qh: Int, qs: Int) -> (SIMD16<Int32>, SIMD16<Int32>) {
        let h = p.loadUnaligned(fromByteOffset: qh, as: UInt32.self)
        let q = Lanes.bytes(p, qs)
        return ((q & 15) | Lanes.fifthBits(h, shift: 0), (q &>> 4) | Lanes.fifthBits(h, shift: 16))
    }

    /// q5_0: x = (q − 16)·d.
    @inline(__always) static func q5_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let L = BlockLayout.Q5_0.self
        let d = SIMD16<Float>(repeating: half(p, L.d))
        let (a, b) = q5(p, qh: L.qh, qs: L.qs)
        store(Lanes.float(a &- 16) * d, y, 0)
        store(Lanes.float(b &- 16) * d, y, 16)
    }

    /// q5_1: x = q·d + m.
    @inline(__always) static func q5_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let L = BlockLayout.Q5_1.self
        let d = SIMD16<Float>(repeating: half(p, L.d)), m = SIMD16<Float>(repeating: half(p, L.m))
        let (a, b) = q5(p, qh: L.qh, qs: L.qs)
        store(Lanes.float(a) * d + m, y, 0)
        store(Lanes.float(b) * d + m, y, 16)
    }

    /// iq4_nl: x = d·level[q].
    @inline(__always) static func iq4_nl(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let L = BlockLayout.IQ4_NL.self
        let d = SIMD16<Float>(repeating: half(p, L.d))
        let q = Lanes.bytes(p, L.qs)
        store(d * Lanes.float(Lanes.iq4nlBiasedLevels(q & 15) &- 128), y, 0)
        store(d * Lanes.float(Lanes.iq4nlBiasedLevels(q &>> 4) &- 128), y, 16)
    }

    /// q4_K: x = (d·sc_j)·q − dmin·m_j.
    @inline(__always) static func q4_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let L = BlockLayout.Q4_K.self
        let d = half(p, L.d), dmin = half(p, L.dmin)
        let (sc, mn) = KQuantScales.unpack(p + L.scales)
        for i in 0..<4 {
            let d0 = SIMD16<Float>(repeating: d * Float(sc[2 * i])), m0 = SIMD16<Float>(repeating: dmin * Float(mn[2 * i]))
            let d1 = SIMD16<Float>(repeating: d * Float(sc[2 * i + 1])), m1 = SIMD16<Float>(repeating: dmin * Float(mn[2 * i + 1]))
            for h in 0..<2 {
                let q = Lanes.bytes(p, L.qs + 32 * i + 16 * h)
                store(d0 * Lanes.float(q & 15) - m0, y, 64 * i + 16 * h)
                store(d1 * Lanes.float(q &>> 4) - m1, y, 64 * i + 32 + 16 * h)
            }
        }
    }

    /// q5_K: as q4_K plus 16 where the qh bit is set.
    @inline(__always) static func q5_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let L = BlockLayout.Q5_K.self
        let d = half(p, L.d), dmin = half(p, L.dmin)
        let (sc, mn) = KQuantScales.unpack(p + L.scales)
        for i in 0..<4 {
            let d0 = SIMD16<Float>(repeating: d * Float(sc[2 * i])), m0 = SIMD16<Float>(repeating: dmin * Float(mn[2 * i]))
            let d1 = SIMD16<Float>(repeating: d * Float(sc[2 * i + 1])), m1 = SIMD16<Float>(repeating: dmin * Float(mn[2 * i + 1]))
            for h in 0..<2 {
                let q = Lanes.bytes(p, L.qs + 32 * i + 16 * h)
                let qh = Lanes.bytes(p, L.qh + 16 * h)
                let a = (q & 15) | (((qh &>> Int32(2 * i)) & 1) &<< 4)
                let b = (q &>> 4) | (((qh &>> Int32(2 * i + 1)) & 1) &<< 4)
                store(d0 * Lanes.float(a) - m0, y, 64 * i + 16 * h)
                store(d1 * Lanes.float(b) - m1, y, 64 * i + 32 + 16 * h)
            }
        }
    }

    /// q6_K: x = (d·sc)·(q − 32), 16 values (one sub-block) per step.
    @inline(__always) static func q6_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let L = BlockLayout.Q6_K.self
        let d = half(p, L.d)
        for n in 0..<2 {
            for h in 0..<2 {
                let ql0 = Lanes.bytes(p, L.ql + 64 * n + 16 * h)
                let ql1 = Lanes.bytes(p, L.ql + 64 * n + 32 + 16 * h)
                let qh = Lanes.bytes(p, L.qh + 32 * n + 16 * h)
                let q0 = (ql0 & 15) | ((qh & 3) &<< 4), q1 = (ql1 & 15) | (((qh &>> 2) & 3) &<< 4)
                let q2 = (ql0 &>> 4) | (((qh &>> 4) & 3) &<< 4), q3 = (ql1 &>> 4) | (((qh &>> 6) & 3) &<< 4)
                @inline(__always) func emit(_ q: SIMD16<Int32>, _ g: Int) {
                    let s = Float(p.load(fromByteOffset: L.scales + 8 * n + 2 * g + h, as: Int8.self))
                    store(SIMD16<Float>(repeating: d * s) * Lanes.float(q &- 32), y, 128 * n + 32 * g + 16 * h)
                }
                emit(q0, 0); emit(q1, 1); emit(q2, 2); emit(q3, 3)
            }
        }
    }

    /// q8_K: x = d·q.
    @inline(__always) static func q8_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let L = BlockLayout.Q8_K.self
        let d = SIMD16<Float>(repeating: p.loadUnaligned(fromByteOffset: L.d, as: Float.self))
        for i in 0..<16 { store(d * Lanes.float(Lanes.signedBytes(p, L.qs + 16 * i)), y, 16 * i) }
    }
}
