// bfloat16 <-> Float conversions, scalar and 16-lane.
// Source: ggml/src/ggml-impl.h `ggml_compute_bf16_to_fp32` / `ggml_compute_fp32_to_bf16`.
// Deviations: none. float -> bf16 rounds to nearest even on the dropped 16 bits; a NaN keeps its
// top bits and is forced quiet (bit 6 of the result set), exactly as ggml.
//
// Codegen: integer shifts and compares on SIMD16<UInt32> (`vpmovzxwd` + `vpslld`, and `vpsrld` +
// `vpaddd` + `vpcmpud` + blend + `vpmovdw` the other way); no calls.

/// bf16 (bit pattern) to Float: the bits become the top half of a Float.
@inlinable @inline(__always)
public func bf16ToFloat(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

/// Float to bf16 bit pattern, round to nearest even; NaN -> quiet NaN (ggml_compute_fp32_to_bf16).
@inlinable @inline(__always)
public func floatToBF16(_ x: Float) -> UInt16 {
    let u = x.bitPattern
    if (u & 0x7fff_ffff) > 0x7f80_0000 { return UInt16(truncatingIfNeeded: (u >> 16) | 64) }
    return UInt16(truncatingIfNeeded: (u &+ (0x7fff &+ ((u >> 16) & 1))) >> 16)
}

/// 16 bf16 values to Floats.
@inlinable @inline(__always)
public func bf16ToFloat(_ b: SIMD16<UInt16>) -> SIMD16<Float> {
    var u = SIMD16<UInt32>()
    for i in 0..<16 { u[i] = UInt32(b[i]) }
    return unsafeBitCast(u &<< 16, to: SIMD16<Float>.self)
}

/// 16 Floats to bf16, rounding and NaN handling as the scalar `floatToBF16`.
@inlinable @inline(__always)
public func floatToBF16(_ x: SIMD16<Float>) -> SIMD16<UInt16> {
    let u = unsafeBitCast(x, to: SIMD16<UInt32>.self)
    let rounded = (u &+ (0x7fff &+ ((u &>> 16) & 1))) &>> 16
    let quietNaN = (u &>> 16) | 64
    let r = rounded.replacing(with: quietNaN, where: (u & 0x7fff_ffff) .> SIMD16<UInt32>(repeating: 0x7f80_0000))
    var h = SIMD16<UInt16>()
    for i in 0..<16 { h[i] = UInt16(truncatingIfNeeded: r[i]) }
    return h
}

/// Converts `count` bf16 values at `src` to Floats at `dst`.
@inlinable
public func bf16ToFloat(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    let d = UnsafeMutableRawPointer(dst)
    while i + 16 <= count {
        let b = src.loadUnaligned(fromByteOffset: 2 * i, as: SIMD16<UInt16>.self)
        d.storeBytes(of: bf16ToFloat(b), toByteOffset: 4 * i, as: SIMD16<Float>.self)
        i += 16
    }
    while i < count { dst[i] = bf16ToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)); i += 1 }
}

/// Converts `count` Floats at `src` to bf16 at `dst` (ggml's `ggml_fp32_to_bf16_row_ref`).
@inlinable
public func floatToBF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, count: Int) {
    var i = 0
    let s = UnsafeRawPointer(src)
    while i + 16 <= count {
        let b = floatToBF16(s.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self))
        dst.storeBytes(of: b, toByteOffset: 2 * i, as: SIMD16<UInt16>.self)
        i += 16
    }
    while i < count { dst.storeBytes(of: floatToBF16(src[i]), toByteOffset: 2 * i, as: UInt16.self); i += 1 }
}
