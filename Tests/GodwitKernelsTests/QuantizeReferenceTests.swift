// quantizeRowReference: hand-computed blocks (ggml's rounding rules made visible) and round-trip
// error budgets per bit width. Bit-exactness against libggml was checked outside the test suite
// (docs/performance.md, "Weight kernels"); these cases pin the rules that make it exact.
import Testing
import GodwitGGUF
import GodwitKernels

@Suite struct QuantizeReferenceTests {
    /// Relative RMS round-trip error budgets on N(0, 1) data (observed worst of 20 rows of 4096 in
    /// parentheses): f16 5e-4 (2.1e-4), bf16 3e-3 (1.7e-3), q8_0/q8_1 0.01 (0.0055), q8_K 0.012
    /// (0.0075), q5_0/q5_1 0.06 (0.043), q4_0/q4_1/iq4_nl 0.12 (0.089).
    static let budgets: [(GGMLType, Double)] = [
        (.f16, 5e-4), (.bf16, 3e-3), (.q8_0, 0.01), (.q8_1, 0.01), (.q8_K, 0.012),
        (.q5_0, 0.06), (.q5_1, 0.06), (.q4_0, 0.12), (.q4_1, 0.12), (.iq4_nl, 0.12),
    ]

    @Test(arguments: budgets.map(\.0))
    func roundTripErrorWithinBudget(_ type: GGMLType) throws {
        let budget = try #require(Self.budgets.first { $0.0 == type }).1
        var rng = SeededGenerator(seed: 10 + UInt64(type.rawValue))
        for _ in 0..<4 {
            let x = rng.gaussians(4096)
            let y = try referenceFloats(type, try referenceBytes(type, x), count: x.count)
            var e = 0.0, s = 0.0
            for i in 0..<x.count { e += Double((x[i] - y[i]) * (x[i] - y[i])); s += Double(x[i] * x[i]) }
            #expect((e / s).squareRoot() < budget, "\(type): relative RMS error \((e / s).squareRoot())")
        }
    }

    @Test func f32CopiesAndRejectsPartialBlocks() throws {
        #expect(try referenceBytes(.f32, [1.5]) == [0, 0, 0xC0, 0x3F])
        var out = [UInt8](repeating: 0, count: 64)
        let x = [Float](repeating: 1, count: 33)
        #expect(throws: KernelError.countNotBlockMultiple(type: .q4_0, count: 33)) {
            try x.withUnsafeBufferPointer { xp in
                try out.withUnsafeMutableBytes { try quantizeRowReference(type: .q4_0, src: xp.baseAddress!, dst: $0.baseAddress!, count: 33) }
            }
        }
        #expect(throws: KernelError.unsupportedType(.q2_K, operation: "quantizeRowReference")) {
            try x.withUnsafeBufferPointer { xp in
                try out.withUnsafeMutableBytes { try quantizeRowReference(type: .q2_K, src: xp.baseAddress!, dst: $0.baseAddress!, count: 0) }
            }
        }
    }

    @Test func f16AndBF16() throws {
        #expect(try referenceBytes(.f16, [1, -2, 65520]) == [0x00, 0x3C, 0x00, 0xC0, 0x00, 0x7C])
        #expect(try referenceBytes(.bf16, [1, Float(bitPattern: 0x3F81_8000)]) == [0x80, 0x3F, 0x82, 0x3F])
    }

    /// x = j%16 − 8: the first largest magnitude is −8, so d = −8/−8 = 1 and q = (int8)(x + 8.5) = x + 8.
    @Test func q4_0() throws {
        let b = try referenceBytes(.q4_0, (0..<32).map { Float($0 % 16 - 8) })
        #expect(u16(b, 0) == 0x3C00)
        #expect(Array(b[2...]) == (0..<16).map { UInt8($0 | $0 << 4) })
        // Sign of d follows the extreme value: max = +8 gives d = −1, quants 16 − (x + 8) clamped to 15.
        let c = try referenceBytes(.q4_0, [8] + [Float](repeating: 0, count: 31))
        #expect(u16(c, 0) == 0xBC00)
        #expect(c[2] == 0x80 && c[3] == 0x88)  // 8·(−1) + 8.5 -> 0; 0·(−1) + 8.5 -> 8
    }

    /// q4_1 on 0…15 twice: d = 15/15 = 1, m = 0, q = (int8)(x + 0.5) = x.
    @Test func q4_1() throws {
        let b = try referenceBytes(.q4_1, (0..<32).map { Float($0 % 16) })
        #expect(u16(b, 0) == 0x3C00 && u16(b, 2) == 0x0000)
        #expect(Array(b[4...]) == (0..<16).map { UInt8($0 | $0 << 4) })
    }

    /// q5_0 on j − 16: d = −16/−16 = 1, q = j; values 16…31 carry the fifth bit (qh = 0xFFFF0000).
    @Test func q5_0() throws {
        let b = try referenceBytes(.q5_0, (0..<32).map { Float($0 - 16) })
        #expect(u16(b, 0) == 0x3C00)
        #expect(Array(b[2..<6]) == [0x00, 0x00, 0xFF, 0xFF])
        #expect(Array(b[6...]) == (0..<16).map { UInt8($0 | $0 << 4) })
    }

    /// q5_1 on 0…31: d = 1, m = 0, q = (uint8)(x + 0.5) = x.
    @Test func q5_1() throws {
        let b = try referenceBytes(.q5_1, (0..<32).map { Float($0) })
        #expect(u16(b, 0) == 0x3C00 && u16(b, 2) == 0)
        #expect(Array(b[4..<8]) == [0x00, 0x00, 0xFF, 0xFF])
        #expect(Array(b[8...]) == (0..<16).map { UInt8($0 | $0 << 4) })
    }

    /// amax = 127 gives d = 1; the reference rounds with roundf (ties away from zero): 2.5 -> 3,
    /// −0.5 -> −1 (the activation quantizer rounds these to even, see ActivationBufferTests).
    static let ties: [Float] = [127, 2.5, -2.5, 3.5, 0.5, -0.5, 1.5, -126.6] + [Float](repeating: 0.25, count: 24)

    @Test func q8_0() throws {
        let b = try referenceBytes(.q8_0, Self.ties)
        #expect(u16(b, 0) == 0x3C00)
        #expect(b[2..<10].map { Int8(bitPattern: $0) } == [127, 3, -3, 4, 1, -1, 2, -127])
        #expect(b[10...].allSatisfy { $0 == 0 })
    }

    @Test func q8_1() throws {
        let b = try referenceBytes(.q8_1, Self.ties)
        #expect(u16(b, 0) == 0x3C00)
        #expect(u16(b, 2) == floatToHalf(127 + 3 - 3 + 4 + 1 - 1 + 2 - 127))  // s = d·Σq = 6
        #expect(b[4..<12].map { Int8(bitPattern: $0) } == [127, 3, -3, 4, 1, -1, 2, -127])
    }

    /// q8_K: iscale = −127/max with max the first value of largest magnitude (+127 here), so the
    /// quants are negated, d = 1/iscale = −1, and rounding is nearest-even (2.5 -> −2).
    @Test func q8_K() throws {
        var x = [Float](repeating: 0, count: 256)
        x[0] = 127; x[1] = 2.5; x[2] = 3.5; x[3] = -127; x[16] = 1
        let b = try referenceBytes(.q8_K, x)
        let d = Float(bitPattern: UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24)
        #expect(d == -1)
        #expect(b[4..<8].map { Int8(bitPattern: $0) } == [-127, -2, -4, 127])
        #expect(Int16(bitPattern: u16(b, 260)) == -6)   // bsums[0] = −127 − 2 − 4 + 127
        #expect(Int16(bitPattern: u16(b, 262)) == -1)   // bsums[1]
        // An all-zero block is all zeros (d = 0, quants and sums 0).
        #expect(try referenceBytes(.q8_K, [Float](repeating: 0, count: 256)).allSatisfy { $0 == 0 })
    }

    /// iq4_nl on the table's own levels: the search finds d = 1 and every index exactly.
    @Test func iq4_nl() throws {
        let b = try referenceBytes(.iq4_nl, (0..<32).map { Float(IQ4NL.values[$0 % 16]) })
        #expect(u16(b, 0) == 0x3C00)
        #expect(Array(b[2...]) == (0..<16).map { UInt8($0 | $0 << 4) })
        // All zeros: d = 0 and every index is 8 (the level nearest 0), as ggml's ntry > 0 path.
        let z = try referenceBytes(.iq4_nl, [Float](repeating: 0, count: 32))
        #expect(u16(z, 0) == 0 && z[2...].allSatisfy { $0 == 0x88 })
    }
}
