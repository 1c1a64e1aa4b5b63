// FP8 element codecs: OCP 8-bit floating point (OCP "OFP8" spec v1.0, 2023; the formats of
// arXiv 2209.05433 "FP8 Formats for Deep Learning"), as used by vLLM's and mistral.rs's fp8 KV caches.
//   E4M3FN: 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinities, S.1111.111 is NaN; max 448.
//   E5M2:   1 sign, 5 exponent (bias 15), 2 mantissa bits; IEEE-like (inf, NaN); max 57344.
// Encoding: round to nearest, ties to even, saturating to ±max (vLLM clamps to ±FP8_MAX before its
// conversion; CUDA's __nv_cvt_float_to_fp8 with __NV_SATFINITE does the same). Subnormals are kept.
// Deviations: NaN inputs encode as 0 and ±inf saturate (a cache must not poison attention).
// Fast decode ("bit trick"): an FP8 code placed in a binary16 bit pattern is exact —
//   E5M2 is the top byte of a binary16 (bits << 8);
//   E4M3: (sign << 15) | (magnitude << 7) is the binary16 2⁻⁸·x for normals and subnormals alike
//   (binary16's bias 15 = 7 + 8), so x = half · 256.
// One `vcvtph2ps` then converts 16 values. The scalar twin decodes arithmetically (and a 256-entry
// table built from it serves the tests).

import GodwitKernels

/// An OCP FP8 element format.
protocol FP8Encoding {
    /// Scheme name (`fp8_e4m3`, `fp8_e5m2`).
    static var name: String { get }
    static var exponentBits: Int { get }
    static var mantissaBits: Int { get }
    static var bias: Int { get }
    /// Largest finite magnitude code (0x7E for E4M3FN, 0x7B for E5M2).
    static var maxCode: UInt8 { get }
    /// Largest finite value (448, 57344).
    static var maxValue: Float { get }
    /// binary16 bit patterns of 16 codes (widened to 16 bits) such that value = half · halfFactor.
    static func halfBits(_ codes: SIMD16<UInt16>) -> SIMD16<UInt16>
    static var halfFactor: Float { get }
}

enum FP8E4M3: FP8Encoding {
    static let name = "fp8_e4m3"
    static let exponentBits = 4, mantissaBits = 3, bias = 7
    static let maxCode: UInt8 = 0x7E
    static let maxValue: Float = 448
    static let halfFactor: Float = 256
    @inline(__always) static func halfBits(_ c: SIMD16<UInt16>) -> SIMD16<UInt16> {
        ((c & 0x80) &<< 8) | ((c & 0x7F) &<< 7)
    }
}

enum FP8E5M2: FP8Encoding {
    static let name = "fp8_e5m2"
    static let exponentBits = 5, mantissaBits = 2, bias = 15
    static let maxCode: UInt8 = 0x7B
    static let maxValue: Float = 57344
    static let halfFactor: Float = 1
    @inline(__always) static func halfBits(_ c: SIMD16<UInt16>) -> SIMD16<UInt16> { c &<< 8 }
}

extension FP8Encoding {
    /// Float → code, round to nearest even, saturating at ±maxValue; NaN → 0.
    static func encode(_ x: Float) -> UInt8 {
        if x.isNaN { return 0 }
        let sign: UInt8 = x.sign == .minus ? 0x80 : 0
        let a = abs(x)
        guard a < maxValue else { return sign | maxCode }
        let m = mantissaBits
        let minNormalExponent = 1 - bias
        var code: Int
        if a < Float(sign: .plus, exponent: minNormalExponent, significand: 1) {
            // Subnormal range: multiples of 2^(1 − bias − m). Scaling by a power of two is exact.
            code = Int((a * Float(sign: .plus, exponent: bias - 1 + m, significand: 1)).rounded(.toNearestOrEven))
        } else {
            let e = Int(a.exponent)
            // q ∈ [2^m, 2^(m+1)]; reaching 2^(m+1) carries into the exponent field, as it should.
            let q = Int((a * Float(sign: .plus, exponent: m - e, significand: 1)).rounded(.toNearestOrEven))
            code = ((e + bias) << m) + q - (1 << m)
        }
        code = min(code, Int(maxCode))
        return sign | UInt8(code)
    }

    /// Code → float, arithmetically (the scalar twin of the bit-trick decoder). NaN/inf codes decode
    /// as NaN/inf, but `encode` never produces them.
    static func decode(_ c: UInt8) -> Float {
        let sign: Float = c & 0x80 != 0 ? -1 : 1
        let e = Int(c >> UInt8(mantissaBits)) & ((1 << exponentBits) - 1)
        let m = Int(c) & ((1 << mantissaBits) - 1)
        let allOnes = (1 << exponentBits) - 1
        if exponentBits == 4 && e == allOnes && m == (1 << mantissaBits) - 1 { return .nan }
        if exponentBits == 5 && e == allOnes { return m == 0 ? sign * .infinity : .nan }
        if e == 0 { return sign * Float(m) * Float(sign: .plus, exponent: 1 - bias - mantissaBits, significand: 1) }
        return sign * (1 + Float(m) / Float(1 << mantissaBits)) * Float(sign: .plus, exponent: e - bias, significand: 1)
    }

    /// All 256 codes decoded (scalar twin table): [256].
    static var table: [Float] { (0..<256).map { decode(UInt8($0)) } }

    /// 16 codes → floats (unscaled by the record's scale): widen, bit trick, one vcvtph2ps.
    @inline(__always) static func decode16(_ p: UnsafeRawPointer) -> SIMD16<Float> {
        let b = p.loadUnaligned(as: SIMD16<UInt8>.self)
        var w = SIMD16<UInt16>()
        for i in 0..<16 { w[i] = UInt16(b[i]) }
        return halfToFloat(halfBits(w))
    }
}
