import Foundation
import GodwitKVCache
import Testing

/// The OCP FP8 codecs (E4M3FN, E5M2): known code points, exhaustive round trips, round-to-nearest-even
/// at every midpoint, saturation, and the vectorized bit-trick decoder equal to the arithmetic one.
@Suite struct FP8CodecTests {
    static let formats: [FP8Scheme.Format] = [.e4m3, .e5m2]

    @Test("Known code points (OCP OFP8 spec tables)")
    func knownValues() {
        #expect(FP8Scheme.decode(0x7E, format: .e4m3) == 448)
        #expect(FP8Scheme.decode(0x01, format: .e4m3) == Float(sign: .plus, exponent: -9, significand: 1))
        #expect(FP8Scheme.decode(0x08, format: .e4m3) == Float(sign: .plus, exponent: -6, significand: 1))
        #expect(FP8Scheme.decode(0x38, format: .e4m3) == 1)
        #expect(FP8Scheme.decode(0xB8, format: .e4m3) == -1)
        #expect(FP8Scheme.decode(0x7F, format: .e4m3).isNaN)
        #expect(FP8Scheme.decode(0x7B, format: .e5m2) == 57344)
        #expect(FP8Scheme.decode(0x01, format: .e5m2) == Float(sign: .plus, exponent: -16, significand: 1))
        #expect(FP8Scheme.decode(0x3C, format: .e5m2) == 1)
        #expect(FP8Scheme.decode(0x7C, format: .e5m2) == .infinity)
        #expect(FP8Scheme.encode(1, format: .e4m3) == 0x38)
        #expect(FP8Scheme.encode(-448, format: .e4m3) == 0xFE)
    }

    @Test("Every finite code round-trips; the bit-trick decoder equals the arithmetic one", arguments: formats)
    func exhaustive(format: FP8Scheme.Format) {
        for c in 0..<256 {
            let code = UInt8(c)
            let x = FP8Scheme.decode(code, format: format)
            guard x.isFinite else { continue }
            #expect(FP8Scheme.encode(x, format: format) == code || (x == 0 && FP8Scheme.encode(x, format: format) & 0x7F == 0), "code \(c)")
            #expect(FP8Scheme.decodeFast(code, format: format).bitPattern == x.bitPattern, "code \(c): fast decode")
        }
    }

    @Test("Round to nearest, ties to even, between every pair of neighbours; saturation", arguments: formats)
    func rounding(format: FP8Scheme.Format) {
        let maxCode: UInt8 = format == .e4m3 ? 0x7E : 0x7B
        for c in 0..<Int(maxCode) {
            let a = FP8Scheme.decode(UInt8(c), format: format), b = FP8Scheme.decode(UInt8(c + 1), format: format)
            let mid = (a + b) / 2   // exact in f32
            let even = UInt8(c) & 1 == 0 ? UInt8(c) : UInt8(c + 1)
            #expect(FP8Scheme.encode(mid, format: format) == even, "midpoint of \(c) and \(c + 1)")
            #expect(FP8Scheme.encode(mid.nextDown, format: format) == UInt8(c))
            #expect(FP8Scheme.encode(mid.nextUp, format: format) == UInt8(c + 1))
            #expect(FP8Scheme.encode(-mid.nextUp, format: format) == 0x80 | UInt8(c + 1))
        }
        let maxValue = FP8Scheme.decode(maxCode, format: format)
        #expect(FP8Scheme.encode(maxValue * 4, format: format) == maxCode)
        #expect(FP8Scheme.encode(.infinity, format: format) == maxCode)
        #expect(FP8Scheme.encode(-.infinity, format: format) == 0x80 | maxCode)
        #expect(FP8Scheme.encode(.nan, format: format) == 0)
    }
}
