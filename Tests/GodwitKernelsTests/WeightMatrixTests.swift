// WeightMatrix.multiply (GEMV, 4-token GEMV, blocked GEMM) against multiplyReference for every
// weight type, on random blocks and activations, with row ranges that do not start at 0.
import Testing
import GodwitGGUF
import GodwitKernels

@Suite struct WeightMatrixTests {
    static let types: [GGMLType] = [.f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_nl, .q4_K, .q5_K, .q6_K]

    /// x.rows 1 and 3: GEMV; 5: one 4-token pass + GEMV; 17 and 40: blocked GEMM (one partial and
    /// two 32-token tiles); float weights use their 4×4 GEMM from 4 tokens. 37 rows with the range
    /// 5..<34 leave partial 4-row groups at both ends; 768 and 1280 columns are several GEMM K-chunks.
    @Test(arguments: types)
    func multiplyMatchesReference(_ type: GGMLType) throws {
        var rng = SeededGenerator(seed: 50 + UInt64(type.rawValue))
        for cols in [768, 1280] {
            let rows = 37, range = 5..<34, outStride = 41
            let wq = rng.blocks(type, count: rows * cols)
            try wq.withUnsafeBytes { wp in
                let m = try WeightMatrix(type: type, rows: rows, cols: cols, data: wp.baseAddress!)
                #expect(m.rowBytes == type.rowBytes(cols))
                for tokens in [1, 3, 5, 17, 40] {
                    let x = rng.gaussians(tokens * cols)
                    let act = ActivationBuffer(type: type.activationType, maxRows: 40, cols: cols)
                    x.withUnsafeBufferPointer { act.quantize($0.baseAddress!, rows: tokens, rowStride: cols) }
                    var fast = [Float](repeating: .nan, count: tokens * outStride), ref = fast
                    fast.withUnsafeMutableBufferPointer { m.multiply(act, rows: range, into: $0.baseAddress!, outStride: outStride) }
                    ref.withUnsafeMutableBufferPointer { m.multiplyReference(act, rows: range, into: $0.baseAddress!, outStride: outStride) }
                    // Tolerance from Σ|w|·|x| of each dot (float summation order differs).
                    let xd = try dequantized(act, tokens: tokens)
                    for t in 0..<tokens {
                        for r in 0..<outStride {
                            let i = t * outStride + r
                            guard range.contains(r) else {
                                #expect(fast[i].isNaN, "\(type) wrote outside the row range (row \(r))"); continue
                            }
                            var w = [Float](repeating: 0, count: cols)
                            w.withUnsafeMutableBufferPointer { m.dequantizeRow(r, into: $0.baseAddress!) }
                            var bound: Float = 0
                            for k in 0..<cols { bound += abs(w[k] * xd[t * cols + k]) }
                            let err = abs(fast[i] - ref[i])
                            #expect(err <= 2e-5 * bound + 1e-6,
                                    "\(type) cols \(cols) tokens \(tokens) row \(r) token \(t): \(fast[i]) vs \(ref[i]) (bound \(bound))")
                        }
                    }
                }
            }
        }
    }

    /// The activations as the kernels see them (dequantized ggml rows).
    func dequantized(_ a: ActivationBuffer, tokens: Int) throws -> [Float] {
        var y = [Float](repeating: 0, count: tokens * a.cols)
        try y.withUnsafeMutableBufferPointer { yp in
            for t in 0..<tokens {
                try dequantizeRowReference(type: a.type.ggmlType, src: a.row(t), dst: yp.baseAddress! + t * a.cols, count: a.cols)
            }
        }
        return y
    }

    /// One block pair computed by hand: q4_1 weights d = 0.5, m = −1, all quants 3 (value 0.5);
    /// activations all 1 (q8_1: d = 1/127, q = 127, s = 32): dot = 32 · 0.5 = 16.
    @Test func handComputedQ4_1() throws {
        var w = [UInt8](repeating: 0x33, count: 20)
        w[0] = 0x00; w[1] = 0x38   // 0.5
        w[2] = 0x00; w[3] = 0xBC   // −1
        let x = [Float](repeating: 1, count: 32)
        let act = ActivationBuffer(type: .q8_1, maxRows: 1, cols: 32)
        x.withUnsafeBufferPointer { act.quantize($0.baseAddress!, rows: 1, rowStride: 32) }
        var out: Float = 0, ref: Float = 0
        try w.withUnsafeBytes { wp in
            let m = try WeightMatrix(type: .q4_1, rows: 1, cols: 32, data: wp.baseAddress!)
            m.multiply(act, rows: 0..<1, into: &out, outStride: 1)
            m.multiplyReference(act, rows: 0..<1, into: &ref, outStride: 1)
        }
        // d_x = f16(1/127); the integer sum is 127·3·32 and s = f16(d_x·127·32) ≈ 32.
        #expect(abs(out - 16) < 0.02 && abs(ref - 16) < 0.02 && abs(out - ref) < 1e-5)
    }

    @Test func initValidates() {
        let p = UnsafeMutableRawPointer.allocate(byteCount: 1024, alignment: 64)
        defer { p.deallocate() }
        #expect(throws: KernelError.unsupportedWeightType(.q2_K)) { try WeightMatrix(type: .q2_K, rows: 1, cols: 256, data: p) }
        #expect(throws: KernelError.countNotBlockMultiple(type: .q4_0, count: 48)) { try WeightMatrix(type: .q4_0, rows: 1, cols: 48, data: p) }
        #expect(throws: KernelError.invalidShape(rows: -1, cols: 32)) { try WeightMatrix(type: .q8_0, rows: -1, cols: 32, data: p) }
        #expect(KernelError.unsupportedWeightType(.q2_K).description.contains("q2_K"))
        #expect(KernelError.countNotBlockMultiple(type: .q4_0, count: 48).description.contains("48"))
    }
}

