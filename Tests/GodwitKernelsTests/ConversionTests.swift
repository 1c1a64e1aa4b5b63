// Float16 / bfloat16 conversions: scalar vs 16-lane, ggml's rounding and NaN handling.
import Testing
import GodwitKernels

@Suite struct ConversionTests {
    @Test func everyHalfRoundTripsThroughFloat() {
        for bits in 0...UInt16.max {
            let f = halfToFloat(bits)
            if f.isNaN { #expect(floatToHalf(f) == (bits & 0x8000) | 0x7E00); continue }
            #expect(floatToHalf(f) == bits)
        }
    }

    @Test func floatToHalfRoundsToNearestEvenLikeGGML() {
        #expect(floatToHalf(1.0) == 0x3C00)
        #expect(floatToHalf(1 + 1.0 / 2048) == 0x3C00)      // tie between 1 and 1+2^-10: even
        #expect(floatToHalf(1 + 3.0 / 2048) == 0x3C02)      // tie: up to even
        #expect(floatToHalf(65519) == 0x7BFF)
        #expect(floatToHalf(65520) == 0x7C00)               // rounds to infinity
        #expect(floatToHalf(-.infinity) == 0xFC00)
        #expect(floatToHalf(6e-8) == 0x0001)                // subnormal
        #expect(floatToHalf(Float(bitPattern: 0x7F80_0001)) == 0x7E00)   // NaN -> canonical quiet
        #expect(floatToHalf(Float(bitPattern: 0xFFC0_1234)) == 0xFE00)
    }

    @Test func bf16RoundsAndQuietsLikeGGML() {
        #expect(floatToBF16(1.0) == 0x3F80)
        #expect(floatToBF16(Float(bitPattern: 0x3F80_8000)) == 0x3F80)  // tie: even
        #expect(floatToBF16(Float(bitPattern: 0x3F81_8000)) == 0x3F82)  // tie: up to even
        #expect(floatToBF16(Float(bitPattern: 0x3F80_8001)) == 0x3F81)
        #expect(floatToBF16(Float(bitPattern: 0x7F80_0001)) == 0x7FC0)  // signalling NaN forced quiet
        #expect(floatToBF16(Float(bitPattern: 0xFFFF_FFFF)) == 0xFFFF)
        #expect(floatToBF16(.infinity) == 0x7F80)
        #expect(floatToBF16(Float(bitPattern: 0x7F7F_FFFF)) == 0x7F80)  // largest float rounds to inf
        #expect(bf16ToFloat(0x3F80) == 1)
        #expect(bf16ToFloat(0xC0A0) == -5)
    }

    @Test func simdConversionsMatchScalar() {
        var rng = SeededGenerator(seed: 2)
        for _ in 0..<2000 {
            var bits = SIMD16<UInt32>()
            for i in 0..<16 { bits[i] = UInt32.random(in: 0...UInt32.max, using: &rng) }
            if Bool.random(using: &rng) { bits &= 0x8FFF_FFFF }           // mostly finite, small values
            let x = unsafeBitCast(bits, to: SIMD16<Float>.self)
            let h = floatToHalf(x), b = floatToBF16(x)
            let hf = halfToFloat(h), bf = bf16ToFloat(b)
            for i in 0..<16 {
                #expect(h[i] == floatToHalf(x[i]))
                #expect(b[i] == floatToBF16(x[i]))
                #expect(hf[i].bitPattern == halfToFloat(h[i]).bitPattern)
                #expect(bf[i].bitPattern == bf16ToFloat(b[i]).bitPattern)
            }
        }
    }

    @Test func rowConversionsHandleTails() {
        var rng = SeededGenerator(seed: 3)
        let x = rng.gaussians(37)
        var h = [UInt16](repeating: 0, count: 37), b = h
        var back = [Float](repeating: 0, count: 37), backB = back
        x.withUnsafeBufferPointer { xp in
            h.withUnsafeMutableBytes { floatToHalf(xp.baseAddress!, $0.baseAddress!, count: 37) }
            b.withUnsafeMutableBytes { floatToBF16(xp.baseAddress!, $0.baseAddress!, count: 37) }
        }
        h.withUnsafeBytes { hp in back.withUnsafeMutableBufferPointer { halfToFloat(hp.baseAddress!, $0.baseAddress!, count: 37) } }
        b.withUnsafeBytes { bp in backB.withUnsafeMutableBufferPointer { bf16ToFloat(bp.baseAddress!, $0.baseAddress!, count: 37) } }
        for i in 0..<37 {
            #expect(h[i] == floatToHalf(x[i]) && b[i] == floatToBF16(x[i]))
            #expect(back[i] == halfToFloat(h[i]) && backB[i] == bf16ToFloat(b[i]))
        }
    }
}
