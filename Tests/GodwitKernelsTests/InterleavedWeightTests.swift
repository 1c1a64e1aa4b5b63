// q4_1 repacked in 16-row groups (WeightMatrix+Interleaved.swift): every product — the GEMV of one
// token, the per-token path of small batches, the blocked GEMM reading blocks back — and the row
// lookup are bitwise those of the row-major matrix, with rows that are not a multiple of 16 and
// ranges that start and end inside groups.
import Testing
import GodwitGGUF
import GodwitKernels

@Suite struct InterleavedWeightTests {
    @Test("Repacked q4_1 products are bitwise the row-major ones", arguments: [(37, 5..<34), (48, 0..<48), (64, 16..<48)])
    func bitwise(rows: Int, range: Range<Int>) throws {
        var rng = SeededGenerator(seed: 77 + UInt64(rows))
        let cols = 768, outStride = rows + 3
        let wq = rng.blocks(.q4_1, count: rows * cols)
        try wq.withUnsafeBytes { wp in
            let m = try WeightMatrix(type: .q4_1, rows: rows, cols: cols, data: wp.baseAddress!)
            #expect(m.canInterleave && m.interleavedByteCount == (rows + 15) / 16 * 16 * m.rowBytes)
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: m.interleavedByteCount, alignment: 64)
            defer { buffer.deallocate() }
            let il = m.repackInterleaved(into: buffer)
            #expect(il.interleaved != nil && m.interleaved == nil)
            for tokens in [1, 3, 17, 40] {
                let x = rng.gaussians(tokens * cols)
                let act = ActivationBuffer(type: .q8_1, maxRows: 40, cols: cols)
                x.withUnsafeBufferPointer { act.quantize($0.baseAddress!, rows: tokens, rowStride: cols) }
                var a = [Float](repeating: .nan, count: tokens * outStride), b = a
                a.withUnsafeMutableBufferPointer { m.multiply(act, rows: range, into: $0.baseAddress!, outStride: outStride) }
                b.withUnsafeMutableBufferPointer { il.multiply(act, rows: range, into: $0.baseAddress!, outStride: outStride) }
                for i in a.indices {
                    #expect(a[i].bitPattern == b[i].bitPattern, "rows \(rows) tokens \(tokens) output \(i): \(a[i]) vs \(b[i])")
                }
            }
            for r in [0, rows / 2, rows - 1] {
                var a = [Float](repeating: 0, count: cols), b = a
                a.withUnsafeMutableBufferPointer { m.dequantizeRow(r, into: $0.baseAddress!) }
                b.withUnsafeMutableBufferPointer { il.dequantizeRow(r, into: $0.baseAddress!) }
                #expect(a == b, "row \(r) read back from the interleaved layout")
            }
        }
    }
}
