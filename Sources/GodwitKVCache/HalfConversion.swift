// Float16 / bfloat16 conversions for cache storage. Written as bit manipulation on integer SIMD
// vectors (which Swift lowers to vector instructions) plus the scalar `Float16` type.
// TODO(kernels): replace with the GodwitKernels conversion helpers once they land.

enum HalfConversion {
    @inline(__always) static func toFloat(_ h: UInt16) -> Float { Float(Float16(bitPattern: h)) }
    @inline(__always) static func toHalf(_ x: Float) -> UInt16 { Float16(x).bitPattern }

    @inline(__always) static func toFloat(_ h: SIMD16<UInt16>) -> SIMD16<Float> {
        var r = SIMD16<Float>()
        for i in 0..<16 { r[i] = Float(Float16(bitPattern: h[i])) }
        return r
    }

    /// Round-to-nearest-even bf16 (ggml_compute_fp32_to_bf16), NaN kept quiet.
    @inline(__always) static func toBF16(_ x: Float) -> UInt16 {
        let u = x.bitPattern
        if (u & 0x7fff_ffff) > 0x7f80_0000 { return UInt16(truncatingIfNeeded: (u >> 16) | 64) }
        return UInt16(truncatingIfNeeded: (u &+ (0x7fff &+ ((u >> 16) & 1))) >> 16)
    }
}
