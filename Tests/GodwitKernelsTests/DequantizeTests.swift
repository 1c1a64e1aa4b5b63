// Fast SIMD dequantizers against the scalar reference, on random blocks of every format.
import Testing
import GodwitGGUF
import GodwitKernels

@Suite struct DequantizeTests {
    static let formats: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q8_1, .q4_0, .q4_1, .q5_0, .q5_1, .iq4_nl, .q4_K, .q5_K, .q6_K, .q8_K]

    /// Same float operations in the same order: the results are bit-identical (Swift does not
    /// contract a*b+c into an FMA).
    @Test(arguments: formats)
    func fastEqualsReference(_ type: GGMLType) throws {
        var rng = SeededGenerator(seed: 20 + UInt64(type.rawValue))
        let n = 256 * 6 + (type.blockSize == 1 ? 7 : 0)   // a scalar tail for the plain types
        let q = rng.blocks(type, count: n)
        let ref = try referenceFloats(type, q, count: n)
        var fast = [Float](repeating: .nan, count: n)
        try q.withUnsafeBytes { qp in
            try fast.withUnsafeMutableBufferPointer { try dequantizeRow(type: type, src: qp.baseAddress!, dst: $0.baseAddress!, count: n) }
        }
        #expect(fast.map(\.bitPattern) == ref.map(\.bitPattern))
    }

    @Test(arguments: formats)
    func weightMatrixRowEqualsReference(_ type: GGMLType) throws {
        guard type.hasMatrixProduct else { return }
        var rng = SeededGenerator(seed: 30 + UInt64(type.rawValue))
        let rows = 3, cols = 512
        let q = rng.blocks(type, count: rows * cols)
        try q.withUnsafeBytes { qp in
            let m = try WeightMatrix(type: type, rows: rows, cols: cols, data: qp.baseAddress!)
            var y = [Float](repeating: 0, count: cols)
            y.withUnsafeMutableBufferPointer { m.dequantizeRow(2, into: $0.baseAddress!) }
            let ref = try referenceFloats(type, Array(q[(2 * m.rowBytes)...]), count: cols)
            #expect(y == ref)
        }
    }

    @Test func knownBlocks() throws {
        // q4_0, d = 2: value j = 2·(nibble − 8).
        let q4: [UInt8] = [0x00, 0x40] + (0..<16).map { UInt8($0 | (15 - $0) << 4) }
        let y = try referenceFloats(.q4_0, q4, count: 32)
        #expect(y[0] == -16 && y[15] == 14 && y[16] == 14 && y[31] == -16)
        // q8_K: d = 0.5, q = −4 … : value = d·q.
        var k = [UInt8](repeating: 0, count: BlockLayout.Q8_K.bytes)
        k[3] = 0x3F   // 0x3F000000 = 0.5
        k[4] = 0xFC   // −4
        #expect(try referenceFloats(.q8_K, k, count: 256)[0] == -2)
    }

    @Test func errors() {
        let src = [UInt8](repeating: 0, count: 64)
        var dst = [Float](repeating: 0, count: 64)
        #expect(throws: KernelError.countNotBlockMultiple(type: .q4_K, count: 64)) {
            try src.withUnsafeBytes { s in try dst.withUnsafeMutableBufferPointer { try dequantizeRow(type: .q4_K, src: s.baseAddress!, dst: $0.baseAddress!, count: 64) } }
        }
        #expect(throws: KernelError.unsupportedType(.q3_K, operation: "dequantizeRow")) {
            try src.withUnsafeBytes { s in try dst.withUnsafeMutableBufferPointer { try dequantizeRow(type: .q3_K, src: s.baseAddress!, dst: $0.baseAddress!, count: 0) } }
        }
    }
}
