// Reference quantizers, bit-identical to ggml's `quantize_row_*_ref` as built for x86-64.
// Source: ggml/src/ggml-quants.c (quantize_row_q4_0_ref … q8_1_ref, quantize_row_q8_K_ref,
// quantize_iq4_nl -> QuantizeReference+IQ4NL.swift) and ggml.c (ggml_fp32_to_fp16_row,
// ggml_fp32_to_bf16_row_ref).
//
// Exactness notes (read off the C, checked against libggml-base.so on random and edge-case data):
// - ggml-base is compiled without -march, so no FMA contraction: every a*b+c below is two roundings,
//   in the C's order. Swift does not contract either.
// - q4_0/q5_0 pick the value of largest magnitude (first one on ties) and use d = max/-8 (-16);
//   the quant is `(int8_t)(x·id + 8.5f)` (truncation), clamped to 15 (31). q4_1/q5_1 truncate
//   `(x − min)·id + 0.5f`; q5_1 does not clamp. q8_0/q8_1 use `roundf` (ties away from zero) of
//   x·(1/d). q8_K uses ggml's `nearest_int` (magic-number round to nearest even) of x·(−127/max).
// - C float -> int8 conversions of out-of-range values are undefined; x86 `cvttss2si` yields
//   0x80000000, whose low byte is 0. `truncatingToInt8` reproduces that, so NaN/∞ inputs give the
//   same bytes as ggml on x86 instead of trapping.
// Deviation: q8_K leaves `bsums` untouched for an all-zero block in ggml; here they are zeroed.
import GodwitGGUF

/// Quantizes `count` floats at `src` into ggml blocks of `type` at `dst`, reproducing ggml's
/// `quantize_row_*_ref` bit for bit. Supported: f32, f16, bf16, q8_0, q8_1, q4_0, q4_1, q5_0, q5_1,
/// iq4_nl (ggml's `quantize_iq4_nl` without importance weights: best-scale search, ntry = 7) and q8_K.
/// `dst` must hold `type.rowBytes(count)` bytes.
public func quantizeRowReference(type: GGMLType, src: UnsafePointer<Float>, dst: UnsafeMutableRawPointer,
                                 count: Int) throws(KernelError) {
    guard count >= 0, count % type.blockSize == 0 else { throw .countNotBlockMultiple(type: type, count: count) }
    let nb = count / type.blockSize
    switch type {
    case .f32: dst.copyMemory(from: src, byteCount: 4 * count)
    case .f16: for i in 0..<count { dst.storeBytes(of: floatToHalf(src[i]), toByteOffset: 2 * i, as: UInt16.self) }
    case .bf16: for i in 0..<count { dst.storeBytes(of: floatToBF16(src[i]), toByteOffset: 2 * i, as: UInt16.self) }
    case .q8_0: for b in 0..<nb { QuantizeReference.q8_0(src + 32 * b, dst + BlockLayout.Q8_0.bytes * b) }
    case .q8_1: for b in 0..<nb { QuantizeReference.q8_1(src + 32 * b, dst + BlockLayout.Q8_1.bytes * b) }
    case .q4_0: for b in 0..<nb { QuantizeReference.q4_0(src + 32 * b, dst + BlockLayout.Q4_0.bytes * b) }
    case .q4_1: for b in 0..<nb { QuantizeReference.q4_1(src + 32 * b, dst + BlockLayout.Q4_1.bytes * b) }
    case .q5_0: for b in 0..<nb { QuantizeReference.q5_0(src + 32 * b, dst + BlockLayout.Q5_0.bytes * b) }
    case .q5_1: for b in 0..<nb { QuantizeReference.q5_1(src + 32 * b, dst + BlockLayout.Q5_1.bytes * b) }
    case .iq4_nl: quantizeRowIQ4NL(src: src, dst: dst, count: count, ntry: 7)
    case .q8_K: for b in 0..<nb { QuantizeReference.q8_K(src + 256 * b, dst + BlockLayout.Q8_K.bytes * b) }
    default: throw .unsupportedType(type, operation: "quantizeRowReference")
    }
}

/// The per-block reference quantizers (one ggml block each).
enum QuantizeReference {
    /// C's `(int32_t)f` on x86-64 (`cvttss2si`): truncation; NaN and out-of-range give Int32.min.
    @inline(__always) static func truncatingToInt32(_ f: Float) -> Int32 {
        guard f > -2147483904, f < 2147483648 else { return Int32.min }  // also rejects NaN
        return Int32(f)
    }

    /// C's `(int8_t)f` / `(uint8_t)f` as GCC compiles them on x86-64: low byte of `cvttss2si`.
    @inline(__always) static func truncatingToInt8(_ f: Float) -> Int8 { Int8(truncatingIfNeeded: truncatingToInt32(f)) }

    /// The element of largest magnitude, first one on ties (ggml's `amax`/`max` loop).
    @inline(__always) static func signedAbsMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var amax: Float = 0, max: Float = 0
        for j in 0..<n where amax < abs(x[j]) { amax = abs(x[j]); max = x[j] }
        return max
    }

    /// Smallest and largest element (ggml's min/max loop, starting from ±FLT_MAX).
    @inline(__always) static func minMax(_ x: UnsafePointer<Float>, _ n: Int) -> (Float, Float) {
        var mn = Float.greatestFiniteMagnitude, mx = -Float.greatestFiniteMagnitude
        for j in 0..<n {
            if x[j] < mn { mn = x[j] }
            if x[j] > mx { mx = x[j] }
        }
        return (mn, mx)
    }

    /// ggml's `MAX(amax, fabsf(v))` loop of q8_0/q8_1.
    @inline(__always) static func absMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var amax: Float = 0
        for j in 0..<n { let a = abs(x[j]); amax = amax > a ? amax : a }
        return amax
    }

    @inline(__always) static func store16(_ v: UInt16, _ p: UnsafeMutableRawPointer, _ off: Int) {
        p.storeBytes(of: v, toByteOffset: off, as: UInt16.self)
    }

    /// quantize_row_q4_0_ref, one block: d = max/−8, q = min(15, (int8)(x/d + 8.5)).
    static func q4_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let d = signedAbsMax(x, 32) / -8
        let id: Float = d != 0 ? 1 / d : 0
        store16(floatToHalf(d), y, BlockLayout.Q4_0.d)
        for j in 0..<16 {
            let xi0 = UInt8(truncatingIfNeeded: min(15, Int32(truncatingToInt8(x[j] * id + 8.5))))
            let xi1 = UInt8(truncatingIfNeeded: min(15, Int32(truncatingToInt8(x[j + 16] * id + 8.5))))
            y.storeBytes(of: xi0 | (xi1 &<< 4), toByteOffset: BlockLayout.Q4_0.qs + j, as: UInt8.self)
        }
    }

    /// quantize_row_q4_1_ref, one block: d = (max − min)/15, q = min(15, (int8)((x − min)/d + 0.5)).
    static func q4_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let (mn, mx) = minMax(x, 32)
        let d = (mx - mn) / 15
        let id: Float = d != 0 ? 1 / d : 0
        store16(floatToHalf(d), y, BlockLayout.Q4_1.d)
        store16(floatToHalf(mn), y, BlockLayout.Q4_1.m)
        for j in 0..<16 {
            let xi0 = UInt8(truncatingIfNeeded: min(15, Int32(truncatingToInt8((x[j] - mn) * id + 0.5))))
            let xi1 = UInt8(truncatingIfNeeded: min(15, Int32(truncatingToInt8((x[j + 16] - mn) * id + 0.5))))
            y.storeBytes(of: xi0 | (xi1 &<< 4), toByteOffset: BlockLayout.Q4_1.qs + j, as: UInt8.self)
        }
    }

    /// quantize_row_q5_0_ref, one block: d = max/−16, q = min(31, (int8)(x/d + 16.5)).
    static func q5_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let d = signedAbsMax(x, 32) / -16
        let id: Float = d != 0 ? 1 / d : 0
        store16(floatToHalf(d), y, BlockLayout.Q5_0.d)
        var qh: UInt32 = 0
        for j in 0..<16 {
            let xi0 = UInt8(truncatingIfNeeded: min(31, Int32(truncatingToInt8(x[j] * id + 16.5))))
            let xi1 = UInt8(truncatingIfNeeded: min(31, Int32(truncatingToInt8(x[j + 16] * id + 16.5))))
            y.storeBytes(of: (xi0 & 0xF) | ((xi1 & 0xF) &<< 4), toByteOffset: BlockLayout.Q5_0.qs + j, as: UInt8.self)
            qh |= UInt32((xi0 & 0x10) >> 4) << UInt32(j)
            qh |= UInt32((xi1 & 0x10) >> 4) << UInt32(j + 16)
        }
        y.storeBytes(of: qh, toByteOffset: BlockLayout.Q5_0.qh, as: UInt32.self)
    }

    /// quantize_row_q5_1_ref, one block: d = (max − min)/31, q = (uint8)((x − min)/d + 0.5), unclamped.
    static func q5_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let (mn, mx) = minMax(x, 32)
        let d = (mx - mn) / 31
        let id: Float = d != 0 ? 1 / d : 0
        store16(floatToHalf(d), y, BlockLayout.Q5_1.d)
        store16(floatToHalf(mn), y, BlockLayout.Q5_1.m)
        var qh: UInt32 = 0
        for j in 0..<16 {
            let xi0 = UInt8(bitPattern: truncatingToInt8((x[j] - mn) * id + 0.5))
            let xi1 = UInt8(bitPattern: truncatingToInt8((x[j + 16] - mn) * id + 0.5))
            y.storeBytes(of: (xi0 & 0xF) | ((xi1 & 0xF) &<< 4), toByteOffset: BlockLayout.Q5_1.qs + j, as: UInt8.self)
            qh |= UInt32((xi0 & 0x10) >> 4) << UInt32(j)
            qh |= UInt32((xi1 & 0x10) >> 4) << UInt32(j + 16)
        }
        y.storeBytes(of: qh, toByteOffset: BlockLayout.Q5_1.qh, as: UInt32.self)
    }

    /// quantize_row_q8_0_ref, one block: d = amax/127, q = roundf(x·(1/d)).
    static func q8_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let d = absMax(x, 32) / 127
        let id: Float = d != 0 ? 1 / d : 0
        store16(floatToHalf(d), y, BlockLayout.Q8_0.d)
        for j in 0..<32 {
            let q = truncatingToInt8((x[j] * id).rounded(.toNearestOrAwayFromZero))
            y.storeBytes(of: q, toByteOffset: BlockLayout.Q8_0.qs + j, as: Int8.self)
        }
    }

    /// quantize_row_q8_1_ref, one block: as q8_0, plus s = f16(d·Σq).
    static func q8_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let d = absMax(x, 32) / 127
        let id: Float = d != 0 ? 1 / d : 0
        store16(floatToHalf(d), y, BlockLayout.Q8_1.d)
        var sum: Int32 = 0
        for j in 0..<32 {
            let q = truncatingToInt8((x[j] * id).rounded(.toNearestOrAwayFromZero))
            y.storeBytes(of: q, toByteOffset: BlockLayout.Q8_1.qs + j, as: Int8.self)
            sum &+= Int32(q)
        }
        store16(floatToHalf(Float(sum) * d), y, BlockLayout.Q8_1.s)
    }

    /// ggml's `nearest_int`: round to nearest even through the 1.5·2^23 magic number (|f| ≤ 2^22).
    @inline(__always) static func nearestInt(_ f: Float) -> Int32 {
        let i = Int32(bitPattern: (f + 12582912).bitPattern)
        return (i & 0x007f_ffff) &- 0x0040_0000
    }

    /// quantize_row_q8_K_ref, one block of 256: iscale = −127/max, q = min(127, nearest_int(iscale·x)),
    /// bsums = sums of 16, d = 1/iscale.
    static func q8_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let L = BlockLayout.Q8_K.self
        var amax: Float = 0, max: Float = 0
        for j in 0..<256 where abs(x[j]) > amax { amax = abs(x[j]); max = x[j] }
        if amax == 0 {
            y.initializeMemory(as: UInt8.self, repeating: 0, count: L.bytes)
            return
        }
        let iscale = -127 / max
        for j in 0..<256 {
            let v = min(127, nearestInt(iscale * x[j]))
            y.storeBytes(of: Int8(truncatingIfNeeded: v), toByteOffset: L.qs + j, as: Int8.self)
        }
        for j in 0..<16 {
            var sum: Int32 = 0
            for i in 0..<16 { sum &+= Int32(y.load(fromByteOffset: L.qs + 16 * j + i, as: Int8.self)) }
            y.storeBytes(of: Int16(truncatingIfNeeded: sum), toByteOffset: L.bsums + 2 * j, as: Int16.self)
        }
        y.storeBytes(of: 1 / iscale, toByteOffset: L.d, as: Float.self)
    }
}
