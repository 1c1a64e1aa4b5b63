// 16-lane widening, conversion and reduction helpers for the weight kernels (the widening and
// conversion ones are public and inlinable: the cache's tiled key stores use them too).
// Source: none (Godwit's own), following docs/performance.md: explicit element loops inside
// `@inline(__always)` functions, which LLVM turns into single vector instructions
// (`vpmovzxbd`, `vpmovsxbd`, `vcvtdq2ps`, …), where the stdlib's generic conversions stay loops.
//
// Integer products for the dots: a `SIMD16<Int32>` product whose operands are known to fit in 16
// bits, one of them non-negative (e.g. a zero-extended byte), lowers to `vpmaddwd`, and added to an
// accumulator to `vpdpwssd` (AVX512-VNNI). With both operands signed it stays `vpmulld`, so every
// kernel keeps one side of each product zero-extended.

public enum Lanes {
    /// Zero-extends 16 bytes (`vpmovzxbd`).
    @inlinable @inline(__always) public static func widen(_ v: SIMD16<UInt8>) -> SIMD16<Int32> {
        var r = SIMD16<Int32>()
        for i in 0..<16 { r[i] = Int32(v[i]) }
        return r
    }

    /// Sign-extends 16 bytes (`vpmovsxbd`).
    @inlinable @inline(__always) public static func widen(_ v: SIMD16<Int8>) -> SIMD16<Int32> {
        var r = SIMD16<Int32>()
        for i in 0..<16 { r[i] = Int32(v[i]) }
        return r
    }

    /// Sign-extends 16 shorts (`vpmovsxwd`).
    @inline(__always) static func widen(_ v: SIMD16<Int16>) -> SIMD16<Int32> {
        var r = SIMD16<Int32>()
        for i in 0..<16 { r[i] = Int32(v[i]) }
        return r
    }

    /// Truncates Int32 lanes to bytes (`vpmovdb`).
    @inline(__always) static func narrow(_ v: SIMD16<Int32>) -> SIMD16<Int8> {
        var r = SIMD16<Int8>()
        for i in 0..<16 { r[i] = Int8(truncatingIfNeeded: v[i]) }
        return r
    }

    /// Truncates Int32 lanes to Int16 (`vpmovdw`).
    @inline(__always) static func narrow16(_ v: SIMD16<Int32>) -> SIMD16<Int16> {
        var r = SIMD16<Int16>()
        for i in 0..<16 { r[i] = Int16(truncatingIfNeeded: v[i]) }
        return r
    }

    /// Wrapping sum of the 16 lanes as a tree (the stdlib's `wrappedSum` stays an out-of-line call).
    @inline(__always) static func sum(_ v: SIMD16<Int32>) -> Int32 {
        let a = v.lowHalf &+ v.highHalf
        let b = a.lowHalf &+ a.highHalf
        let c = b.lowHalf &+ b.highHalf
        return c.x &+ c.y
    }

    /// Largest |x| of 32 floats, as the bit pattern of a non-negative float (which orders like an
    /// unsigned integer): a scalar-looking loop that LLVM turns into `vpmaxud` + a reduction tree.
    @inline(__always) static func absMaxBits(_ v0: SIMD16<Float>, _ v1: SIMD16<Float>) -> UInt32 {
        let a0 = unsafeBitCast(v0, to: SIMD16<UInt32>.self) & 0x7fff_ffff
        let a1 = unsafeBitCast(v1, to: SIMD16<UInt32>.self) & 0x7fff_ffff
        var m: UInt32 = 0
        for i in 0..<16 { m = Swift.max(m, Swift.max(a0[i], a1[i])) }
        return m
    }

    /// Int32 lanes to Float (`vcvtdq2ps`).
    @inlinable @inline(__always) public static func float(_ v: SIMD16<Int32>) -> SIMD16<Float> {
        var r = SIMD16<Float>()
        for i in 0..<16 { r[i] = Float(v[i]) }
        return r
    }

    /// Loads 16 bytes at `p + offset` and zero-extends them.
    @inlinable @inline(__always) public static func bytes(_ p: UnsafeRawPointer, _ offset: Int) -> SIMD16<Int32> {
        widen(p.loadUnaligned(fromByteOffset: offset, as: SIMD16<UInt8>.self))
    }

    /// Loads 16 signed bytes at `p + offset` and sign-extends them.
    @inlinable @inline(__always) public static func signedBytes(_ p: UnsafeRawPointer, _ offset: Int) -> SIMD16<Int32> {
        widen(p.loadUnaligned(fromByteOffset: offset, as: SIMD16<Int8>.self))
    }

    /// Lane i = bit (shift + i) of `bits`, moved to bit 4 (the fifth bit of q5 quants); shift is 0 or 16.
    /// A test against per-lane bit masks plus a masked move (`vptestmd` + `vmovdqa32 {z}`): variable
    /// shifts by a lane-index vector made LLVM emit a dozen shuffles.
    @inline(__always) static func fifthBits(_ bits: UInt32, shift: UInt32) -> SIMD16<Int32> {
        let lane = SIMD16<UInt32>(1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7,
                                  1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12, 1 << 13, 1 << 14, 1 << 15)
        let hit = (SIMD16<UInt32>(repeating: bits) & (lane &<< shift)) .!= SIMD16<UInt32>()
        return SIMD16<Int32>().replacing(with: SIMD16<Int32>(repeating: 16), where: hit)
    }

    /// iq4_nl levels + 128 (0..<256) of 16 nibbles (lanes 0..<16): a 16-byte table in four 32-bit
    /// constants, selected by q >> 2 (three blends) and shifted by 8·(q & 3): no per-lane loads.
    /// `@_transparent`: with `@inline(__always)` the performance inliner left calls in the big
    /// iq4_nl GEMV specializations.
    @_transparent static func iq4nlBiasedLevels(_ q: SIMD16<Int32>) -> SIMD16<Int32> {
        let u = unsafeBitCast(q, to: SIMD16<UInt32>.self)
        let sel = u &>> 2
        let w0 = SIMD16<UInt32>(repeating: 0x3F2D_1801)                                  // 1, 24, 45, 63
        let w1 = w0.replacing(with: SIMD16<UInt32>(repeating: 0x766A_5D4F), where: sel .== SIMD16(repeating: 1))  // 79, 93, 106, 118
        let w2 = w1.replacing(with: SIMD16<UInt32>(repeating: 0xA699_8D81), where: sel .== SIMD16(repeating: 2))  // 129, 141, 153, 166
        let word = w2.replacing(with: SIMD16<UInt32>(repeating: 0xF1D9_C5B5), where: sel .== SIMD16(repeating: 3)) // 181, 197, 217, 241
        return unsafeBitCast((word &>> ((u & 3) &<< 3)) & 0xFF, to: SIMD16<Int32>.self)
    }

    /// Exact sums of the lanes of four integer vectors: [Σa, Σb, Σc, Σd] (same shuffle tree as
    /// the Float version; integer addition makes the order irrelevant).
    @inline(__always) static func sum(_ a: SIMD16<Int32>, _ b: SIMD16<Int32>, _ c: SIMD16<Int32>,
                                      _ d: SIMD16<Int32>) -> SIMD4<Int32> {
        let a8 = a.lowHalf &+ a.highHalf, b8 = b.lowHalf &+ b.highHalf
        let c8 = c.lowHalf &+ c.highHalf, d8 = d.lowHalf &+ d.highHalf
        let ab = SIMD8<Int32>(lowHalf: a8.lowHalf, highHalf: b8.lowHalf) &+ SIMD8<Int32>(lowHalf: a8.highHalf, highHalf: b8.highHalf)
        let cd = SIMD8<Int32>(lowHalf: c8.lowHalf, highHalf: d8.lowHalf) &+ SIMD8<Int32>(lowHalf: c8.highHalf, highHalf: d8.highHalf)
        let x = SIMD8<Int32>(ab[0], ab[2], cd[0], cd[2], ab[4], ab[6], cd[4], cd[6])
              &+ SIMD8<Int32>(ab[1], ab[3], cd[1], cd[3], ab[5], ab[7], cd[5], cd[7])
        return SIMD4<Int32>(x[0], x[4], x[2], x[6]) &+ SIMD4<Int32>(x[1], x[5], x[3], x[7])
    }

    /// Sum of the 16 lanes as a tree (8 + 4 + 2 + 1).
    @inline(__always) static func sum(_ v: SIMD16<Float>) -> Float {
        let a = v.lowHalf + v.highHalf
        let b = a.lowHalf + a.highHalf
        let c = b.lowHalf + b.highHalf
        return c.x + c.y
    }

    /// Sums of the lanes of four vectors at once: [Σa, Σb, Σc, Σd]. Halves, then a transposing
    /// add tree with constant-index shuffles (~12 instructions instead of 4 separate reductions).
    @inline(__always) static func sum(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>,
                                      _ d: SIMD16<Float>) -> SIMD4<Float> {
        let a8 = a.lowHalf + a.highHalf, b8 = b.lowHalf + b.highHalf
        let c8 = c.lowHalf + c.highHalf, d8 = d.lowHalf + d.highHalf
        // [a 0-3 | b 0-3] and [c 0-3 | d 0-3]
        let ab = SIMD8<Float>(lowHalf: a8.lowHalf, highHalf: b8.lowHalf) + SIMD8<Float>(lowHalf: a8.highHalf, highHalf: b8.highHalf)
        let cd = SIMD8<Float>(lowHalf: c8.lowHalf, highHalf: d8.lowHalf) + SIMD8<Float>(lowHalf: c8.highHalf, highHalf: d8.highHalf)
        // [a01 a23 c01 c23 | b01 b23 d01 d23]
        let x = SIMD8<Float>(ab[0], ab[2], cd[0], cd[2], ab[4], ab[6], cd[4], cd[6])
              + SIMD8<Float>(ab[1], ab[3], cd[1], cd[3], ab[5], ab[7], cd[5], cd[7])
        return SIMD4<Float>(x[0], x[4], x[2], x[6]) + SIMD4<Float>(x[1], x[5], x[3], x[7])
    }
}
