// IEEE half <-> Float conversions, scalar and 16-lane.
// Source: ggml/src/ggml-impl.h `ggml_compute_fp16_to_fp32` / `ggml_compute_fp32_to_fp16` and
// ggml-cpu/simd-mappings.h (F16C `_cvtsh_ss` / `_cvtss_sh(x, 0)`).
// Deviations: none in value. float -> half rounds to nearest even (what both the software and the
// F16C paths of ggml do); a NaN becomes ggml's software result, the quiet NaN 0x7E00 with the sign
// kept (F16C would keep payload bits instead).
//
// Codegen (checked with objdump on znver4): the SIMD16 functions become one `vcvtph2ps zmm` /
// `vcvtps2ph ymm`; the scalar ones `vcvtph2ps xmm` / `vcvtps2ph xmm`. Without F16C (portable
// builds) they are compiler-rt calls, correct but slow.

/// Half (bit pattern) to Float.
@inlinable @inline(__always)
public func halfToFloat(_ h: UInt16) -> Float { Float(Float16(bitPattern: h)) }

/// Half to Float.
@inlinable @inline(__always)
public func halfToFloat(_ h: Float16) -> Float { Float(h) }

/// Float to half bit pattern, round to nearest even; NaN -> 0x7E00 | sign (as ggml).
@inlinable @inline(__always)
public func floatToHalf(_ x: Float) -> UInt16 {
    let h = Float16(x).bitPattern
    return x.isNaN ? (UInt16(truncatingIfNeeded: x.bitPattern >> 16) & 0x8000) | 0x7E00 : h
}

/// 16 halves (bit patterns) to Floats: one `vcvtph2ps zmm`.
@inlinable @inline(__always)
public func halfToFloat(_ h: SIMD16<UInt16>) -> SIMD16<Float> {
    halfToFloat(unsafeBitCast(h, to: SIMD16<Float16>.self))
}

/// 16 halves to Floats: one `vcvtph2ps zmm`.
@inlinable @inline(__always)
public func halfToFloat(_ h: SIMD16<Float16>) -> SIMD16<Float> {
    var r = SIMD16<Float>()
    for i in 0..<16 { r[i] = Float(h[i]) }
    return r
}

/// 16 Floats to half bit patterns, round to nearest even; NaN lanes -> 0x7E00 | sign.
@inlinable @inline(__always)
public func floatToHalf(_ x: SIMD16<Float>) -> SIMD16<UInt16> {
    var h = SIMD16<Float16>()
    for i in 0..<16 { h[i] = Float16(x[i]) }
    let bits = unsafeBitCast(x, to: SIMD16<UInt32>.self)
    let isNaN = (bits & 0x7fff_ffff) .> SIMD16<UInt32>(repeating: 0x7f80_0000)
    let canonical = ((bits &>> 16) & 0x8000) | 0x7E00
    let h16 = unsafeBitCast(h, to: SIMD16<UInt16>.self)
    var h32 = SIMD16<UInt32>()
    for i in 0..<16 { h32[i] = UInt32(h16[i]) }
    let fixed = h32.replacing(with: canonical, where: isNaN)
    var r = SIMD16<UInt16>()
    for i in 0..<16 { r[i] = UInt16(truncatingIfNeeded: fixed[i]) }
    return r
}

/// Converts `count` halves at `src` to Floats at `dst` (16 at a time, scalar tail).
@inlinable
public func halfToFloat(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    let d = UnsafeMutableRawPointer(dst)
    while i + 16 <= count {
        let h = src.loadUnaligned(fromByteOffset: 2 * i, as: SIMD16<Float16>.self)
        d.storeBytes(of: halfToFloat(h), toByteOffset: 4 * i, as: SIMD16<Float>.self)
        i += 16
    }
    while i < count { dst[i] = halfToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)); i += 1 }
}

/// Converts `count` Floats at `src` to halves at `dst` (ggml's `ggml_fp32_to_fp16_row`).
@inlinable
public func floatToHalf(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, count: Int) {
    var i = 0
    let s = UnsafeRawPointer(src)
    while i + 16 <= count {
        let h = floatToHalf(s.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self))
        dst.storeBytes(of: h, toByteOffset: 2 * i, as: SIMD16<UInt16>.self)
        i += 16
    }
    while i < count { dst.storeBytes(of: floatToHalf(src[i]), toByteOffset: 2 * i, as: UInt16.self); i += 1 }
}
