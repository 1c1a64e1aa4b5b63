// A quantized weight matrix in GGUF layout and the dispatch of its matrix products.
// Source: ggml-cpu/ggml-cpu.c `ggml_compute_forward_mul_mat` (rows of W dotted with quantized
// activation rows via the type's vec_dot) and the per-type vec_dot functions of ggml-cpu/quants.c.
// Deviations: f16/bf16 weights multiply f32 activations (ggml converts them to f16/bf16 first).
//
// Paths (all compute out[t·outStride + r] = W[r,:]·x[t,:]):
//   x.rows = 1             GEMV, 4 weight rows per pass streaming each row once, the activation
//                          block shared (WeightMatrix+GEMV*.swift); q4_1 repacked in 16-row groups:
//                          16 rows per vector (WeightMatrix+Interleaved.swift), also for 2-15 tokens
//   2 ≤ x.rows < 16        groups of 4 tokens share each decoded weight block (gemv32x4 / gemvK4),
//                          remaining tokens one GEMV each
//   x.rows ≥ 16            blocked GEMM: weights decoded once per 4 rows × 256 columns into 64-byte
//                          Int16-pair splats, dotted against ActivationBuffer's 32-token panel in
//                          4 rows × 32 tokens register tiles (WeightMatrix+GEMM.swift)
//   float weights          GEMM from 4 tokens: 4 rows × 4 tokens tiles on the activation rows
//                          (WeightMatrix+GEMMFloat.swift)
//   multiplyReference      scalar per-(row, token) block dots in ggml's order (+Reference.swift)
import CGodwit
import GodwitGGUF

/// A row-major quantized weight matrix in GGUF layout: `rows` rows, each `cols/blockSize` ggml blocks.
/// A GGUF tensor with dims [cols, rows] maps directly onto it.
public struct WeightMatrix: @unchecked Sendable {
    public let type: GGMLType
    public let rows: Int
    public let cols: Int
    public let rowBytes: Int
    public let data: UnsafeRawPointer
    /// The q4_1 weights repacked 16 rows at a time (`repackInterleaved`), which every fast product
    /// then reads instead of `data`; nil for row-major matrices. Owned by whoever repacked them.
    public internal(set) var interleaved: UnsafeRawPointer? = nil

    /// Activation row counts from which `multiply` uses the blocked GEMM for quantized weights (and
    /// `ActivationBuffer` builds its panel); below it the 4-token GEMV is as fast or faster
    /// (a 32-token tile costs the same for 1 or 32 tokens).
    public static let gemmMinRows = 16

    /// Validates that `type` has a matrix product here and that `cols` is a whole number of blocks.
    public init(type: GGMLType, rows: Int, cols: Int, data: UnsafeRawPointer) throws(KernelError) {
        guard type.hasMatrixProduct else { throw .unsupportedWeightType(type) }
        guard rows >= 0, cols >= 0 else { throw .invalidShape(rows: rows, cols: cols) }
        guard cols % type.blockSize == 0 else { throw .countNotBlockMultiple(type: type, count: cols) }
        guard let rb = type.rowBytes(cols), !rows.multipliedReportingOverflow(by: rb).overflow else {
            throw .invalidShape(rows: rows, cols: cols)
        }
        self.type = type
        self.rows = rows
        self.cols = cols
        self.rowBytes = rb
        self.data = data
    }

    /// Prefetches [p, p + bytes) one cache line at a time. The GEMV kernels read 4 rows at once, i.e.
    /// 4 interleaved streams of a few hundred bytes, which the hardware prefetcher does not follow
    /// (a 30 MB q8_0 GEMV ran at 5.7 GB/s instead of 16.7 GB/s); they prefetch the next 4 rows at
    /// the pace they read the current ones.
    @inline(__always) static func prefetch(_ p: UnsafeRawPointer, bytes: Int) {
        var o = 0
        while o < bytes { godwit_prefetch(p + o); o += 64 }
    }

    /// Start of row `r`.
    @inline(__always) func row(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }

    @inline(__always) func checkShapes(_ x: ActivationBuffer, _ rows: Range<Int>) {
        precondition(x.cols == cols, "multiply: activations have \(x.cols) columns, weights \(cols)")
        precondition(x.type == type.activationType, "multiply: \(type) weights need \(type.activationType) activations, got \(x.type)")
        precondition(rows.lowerBound >= 0 && rows.upperBound <= self.rows, "multiply: rows \(rows) outside 0..<\(self.rows)")
    }

    /// out[t * outStride + r] = dot(W[r, :], x[t, :]) for r in rows, t in 0..<x.rows. Thread-safe for disjoint row ranges.
    public func multiply(_ x: ActivationBuffer, rows: Range<Int>, into out: UnsafeMutablePointer<Float>, outStride: Int) {
        checkShapes(x, rows)
        if rows.isEmpty || x.rows == 0 { return }
        if x.type == .f32 ? x.rows >= 4 : x.hasPanel {
            gemm(x, rows: rows, into: out, outStride: outStride)
            return
        }
        var t = 0
        while t + 4 <= x.rows && gemv4(x, token: t, rows: rows, into: out + t * outStride, outStride: outStride) { t += 4 }
        while t < x.rows { gemv(x, token: t, rows: rows, into: out + t * outStride); t += 1 }
    }

    /// Four tokens t..<t+4 sharing each decoded weight block; false for formats without this path.
    func gemv4(_ x: ActivationBuffer, token t: Int, rows: Range<Int>, into out: UnsafeMutablePointer<Float>, outStride: Int) -> Bool {
        if interleaved != nil { return false }  // one interleaved GEMV per token
        switch type {
        case .q4_0: gemv32x4(Q4_0Format.self, x, t, rows, out, outStride)
        case .q4_1: gemv32x4(Q4_1Format.self, x, t, rows, out, outStride)
        case .q5_0: gemv32x4(Q5_0Format.self, x, t, rows, out, outStride)
        case .q5_1: gemv32x4(Q5_1Format.self, x, t, rows, out, outStride)
        case .q8_0: gemv32x4(Q8_0Format.self, x, t, rows, out, outStride)
        case .iq4_nl: gemv32x4(IQ4NLFormat.self, x, t, rows, out, outStride)
        case .q4_K: gemvK4(Q4KFormat.self, x, t, rows, out, outStride)
        case .q5_K: gemvK4(Q5KFormat.self, x, t, rows, out, outStride)
        case .q6_K: gemvK4(Q6KFormat.self, x, t, rows, out, outStride)
        default: return false
        }
        return true
    }

    /// One token: out[r] = W[r,:]·x[t,:] for r in rows.
    func gemv(_ x: ActivationBuffer, token t: Int, rows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        switch type {
        case .q4_0: gemv32(Q4_0Format.self, x, t, rows, out)
        case .q4_1:
            if interleaved != nil { gemvInterleavedQ4_1(x, t, rows, out) } else { gemv32(Q4_1Format.self, x, t, rows, out) }
        case .q5_0: gemv32(Q5_0Format.self, x, t, rows, out)
        case .q5_1: gemv32(Q5_1Format.self, x, t, rows, out)
        case .q8_0: gemv32(Q8_0Format.self, x, t, rows, out)
        case .iq4_nl: gemv32(IQ4NLFormat.self, x, t, rows, out)
        case .q4_K: gemvQ4K(x, t, rows, out)
        case .q5_K: gemvQ5K(x, t, rows, out)
        case .q6_K: gemvQ6K(x, t, rows, out)
        case .f32, .f16, .bf16: gemvFloat(x, t, rows, out)
        default: preconditionFailure("unreachable: \(type) rejected by init")
        }
    }

    /// All tokens of `x` (panel built): out[t·outStride + r] for r in rows.
    func gemm(_ x: ActivationBuffer, rows: Range<Int>, into out: UnsafeMutablePointer<Float>, outStride: Int) {
        switch type {
        case .q4_0: gemm32(Q4_0Format.self, x, rows, out, outStride)
        case .q4_1: gemm32(Q4_1Format.self, x, rows, out, outStride)
        case .q5_0: gemm32(Q5_0Format.self, x, rows, out, outStride)
        case .q5_1: gemm32(Q5_1Format.self, x, rows, out, outStride)
        case .q8_0: gemm32(Q8_0Format.self, x, rows, out, outStride)
        case .iq4_nl: gemm32(IQ4NLFormat.self, x, rows, out, outStride)
        case .q4_K: gemmK(Q4KFormat.self, x, rows, out, outStride)
        case .q5_K: gemmK(Q5KFormat.self, x, rows, out, outStride)
        case .q6_K: gemmK(Q6KFormat.self, x, rows, out, outStride)
        case .f32, .f16, .bf16: gemmFloat(x, rows, out, outStride)
        default: preconditionFailure("unreachable: \(type) rejected by init")
        }
    }

    /// Row r as floats (embedding lookup). [cols]
    public func dequantizeRow(_ r: Int, into dst: UnsafeMutablePointer<Float>) {
        precondition(r >= 0 && r < rows, "dequantizeRow: row \(r) outside 0..<\(rows)")
        // Cannot fail: init validated the type and the column count.
        if interleaved != nil {
            withUnsafeTemporaryAllocation(byteCount: rowBytes, alignment: 16) { tmp in
                try! GodwitKernels.dequantizeRow(type: type, src: interleavedRow(r, tmp.baseAddress!), dst: dst, count: cols)
            }
        } else {
            try! GodwitKernels.dequantizeRow(type: type, src: row(r), dst: dst, count: cols)
        }
    }
}
