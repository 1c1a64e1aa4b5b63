// Activations quantized once per step into the encoding the weights multiply (ggml's vec_dot_type).
// Source: ggml-cpu/arch/x86/quants.c `quantize_row_q8_0` / `quantize_row_q8_1` (the AVX versions:
// d = amax/127 rounded to f16, x·(127/amax) rounded to nearest even, q8_1's s = f16(d·Σq)) and
// ggml-quants.c `quantize_row_q8_K_ref` (what ggml-cpu uses for q8_K on x86).
// Deviations: none in the ggml rows. Besides them the buffer keeps derived data for the fast
// products (not part of the ggml layout, rebuilt by every `quantize`):
//   rowScale [maxRows, blocks] Float   d of each block
//   rowSum   [maxRows, blocks] Float   q8_0: d·Σq (exact integer sum), q8_1: s, q8_K: unused
//   rowQuants [min(maxRows, gemmMinRows − 1), cols] Int16  q8_K only, for rows < gemmMinRows: the
//            quants widened to Int16, the memory operand of the small-batch k-quant kernel
//   when rows ≥ WeightMatrix.gemmMinRows (quantized types), a token-interleaved panel for the GEMM:
//   panel      [tiles, cols/2, 32, 2] Int16: the quants of each column pair (k, k+1) of 32 tokens
//              side by side (tile = 32 tokens, zero-padded), so a 64-byte load holds 16 tokens'
//              pairs: the operand layout of `vpdpwssd`
//   panelScale [tiles, blocks, 32] Float  d per token (0 for padding)
//   panelSum   [tiles, blocks, 32] Float  q8_1: s per token
//   panelMins  [tiles, blocks, 8, 32] Int16  q8_K: Σq over each 32 values (bsums[2j] + bsums[2j+1])
import GodwitGGUF

/// Activations of up to `maxRows` tokens x `cols` features in one ActivationType.
/// Layout: [rows, rowBytes] contiguous; rowBytes = cols / blockSize * typeSize.
public final class ActivationBuffer: @unchecked Sendable {
    public let type: ActivationType
    public let cols: Int
    public let maxRows: Int
    public let rowBytes: Int
    /// Rows quantized by the last `quantize`.
    public private(set) var rows: Int = 0

    /// Tokens per GEMM panel tile.
    static let tile = 32

    let blocks: Int
    let data: UnsafeMutableRawPointer
    let rowScale: UnsafeMutablePointer<Float>
    let rowSum: UnsafeMutablePointer<Float>
    let rowQuants: UnsafeMutablePointer<Int16>
    let panel: UnsafeMutableRawPointer
    let panelScale: UnsafeMutablePointer<Float>
    let panelSum: UnsafeMutablePointer<Float>
    let panelMins: UnsafeMutablePointer<Int16>
    /// A zeroed row standing in for the padding tokens of the last panel tile.
    let zeroRow: UnsafeMutableRawPointer
    /// Whether the panel holds rows 0..<rows (built when rows ≥ WeightMatrix.gemmMinRows, not for f32).
    private(set) var hasPanel = false

    /// A buffer for `maxRows` tokens of `cols` features. `cols` must be a multiple of
    /// `type.blockSize` (precondition: the caller sizes buffers from validated weight matrices).
    public init(type: ActivationType, maxRows: Int, cols: Int) {
        precondition(maxRows >= 0 && cols >= 0 && cols % type.blockSize == 0,
                     "activation buffer: \(cols) columns is not a multiple of \(type) blocks of \(type.blockSize)")
        self.type = type
        self.cols = cols
        self.maxRows = maxRows
        blocks = cols / type.blockSize
        rowBytes = blocks * type.typeSize
        func bytes(_ n: Int) -> UnsafeMutableRawPointer {
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(n, 64), alignment: 64)
            p.initializeMemory(as: UInt8.self, repeating: 0, count: max(n, 64))
            return p
        }
        data = bytes(maxRows * rowBytes)
        let side = type == .f32 ? 0 : maxRows * blocks
        rowScale = bytes(4 * side).bindMemory(to: Float.self, capacity: max(side, 16))
        rowSum = bytes(4 * side).bindMemory(to: Float.self, capacity: max(side, 16))
        let wide = type == .q8_K ? min(maxRows, WeightMatrix.gemmMinRows - 1) * cols : 0
        rowQuants = bytes(2 * wide).bindMemory(to: Int16.self, capacity: max(wide, 32))
        let tiles = maxRows >= WeightMatrix.gemmMinRows && type != .f32 ? (maxRows + Self.tile - 1) / Self.tile : 0
        panel = bytes(tiles * Self.tile * cols * 2)
        let perTile = type == .f32 ? 0 : tiles * blocks * Self.tile
        panelScale = bytes(4 * perTile).bindMemory(to: Float.self, capacity: max(perTile, 16))
        panelSum = bytes(type == .q8_1 ? 4 * perTile : 0).bindMemory(to: Float.self, capacity: 16)
        let mins = type == .q8_K ? perTile * 8 : 0
        panelMins = bytes(2 * mins).bindMemory(to: Int16.self, capacity: max(mins, 32))
        zeroRow = bytes(rowBytes)
    }

    deinit {
        data.deallocate(); rowScale.deallocate(); rowSum.deallocate(); rowQuants.deallocate()
        panel.deallocate(); panelScale.deallocate(); panelSum.deallocate(); panelMins.deallocate(); zeroRow.deallocate()
    }

    /// Row `t` in ggml's block layout (f32: `cols` floats).
    @inline(__always)
    public func row(_ t: Int) -> UnsafeRawPointer { UnsafeRawPointer(data + t * rowBytes) }

    /// Quantizes rows 0..<rows of x ([rows, rowStride] floats) — like ggml's quantize_row_q8_0/q8_1/q8_K
    /// (the fast CPU versions' rounding). No allocation. Precondition: rows ≤ maxRows, rowStride ≥ cols.
    public func quantize(_ x: UnsafePointer<Float>, rows: Int, rowStride: Int) {
        precondition(rows >= 0 && rows <= maxRows && rowStride >= cols, "activation buffer: \(rows) rows > maxRows \(maxRows)")
        self.rows = rows
        for t in 0..<rows { quantizeRow(x + t * rowStride, t) }
        hasPanel = rows >= WeightMatrix.gemmMinRows && type != .f32
        if hasPanel { buildPanel() } else { widenRows() }
    }

    /// Scalar twin of `quantize` (same rounding, element by element); writes the same ggml rows and
    /// derived data, so products after either are identical.
    public func quantizeReference(_ x: UnsafePointer<Float>, rows: Int, rowStride: Int) {
        precondition(rows >= 0 && rows <= maxRows && rowStride >= cols, "activation buffer: \(rows) rows > maxRows \(maxRows)")
        self.rows = rows
        for t in 0..<rows { quantizeRowReference(x + t * rowStride, t) }
        hasPanel = rows >= WeightMatrix.gemmMinRows && type != .f32
        if hasPanel { buildPanel() } else { widenRows() }
    }

    // MARK: One row

    private func quantizeRow(_ x: UnsafePointer<Float>, _ t: Int) {
        let y = data + t * rowBytes
        switch type {
        case .f32: y.copyMemory(from: x, byteCount: 4 * cols)
        case .q8_0, .q8_1:
            let q81 = type == .q8_1, bytes = type.typeSize
            for b in 0..<blocks {
                let (d, sum) = ActivationQuantizer.storeQ8Block(x + 32 * b, y + b * bytes, q81: q81)
                rowScale[t * blocks + b] = d
                rowSum[t * blocks + b] = sum
            }
        case .q8_K:
            for b in 0..<blocks {
                let blk = y + b * BlockLayout.Q8_K.bytes
                ActivationQuantizer.q8KBlock(x + 256 * b, blk)
                rowScale[t * blocks + b] = blk.loadUnaligned(fromByteOffset: BlockLayout.Q8_K.d, as: Float.self)
            }
        }
    }

    private func quantizeRowReference(_ x: UnsafePointer<Float>, _ t: Int) {
        let y = data + t * rowBytes
        switch type {
        case .f32: for i in 0..<cols { y.storeBytes(of: x[i], toByteOffset: 4 * i, as: Float.self) }
        case .q8_0, .q8_1:
            let q81 = type == .q8_1, bytes = type.typeSize
            for b in 0..<blocks {
                let (d, sum) = ActivationQuantizer.storeQ8Block(x + 32 * b, y + b * bytes, q81: q81, reference: true)
                rowScale[t * blocks + b] = d
                rowSum[t * blocks + b] = sum
            }
        case .q8_K:
            for b in 0..<blocks {
                let blk = y + b * BlockLayout.Q8_K.bytes
                QuantizeReference.q8_K(x + 256 * b, blk)
                rowScale[t * blocks + b] = blk.loadUnaligned(fromByteOffset: BlockLayout.Q8_K.d, as: Float.self)
            }
        }
    }

    /// q8_K rows as Int16 (rowQuants) for the small-batch k-quant kernel.
    private func widenRows() {
        guard type == .q8_K else { return }
        for t in 0..<rows {
            for b in 0..<blocks {
                let src = row(t) + b * BlockLayout.Q8_K.bytes + BlockLayout.Q8_K.qs
                let dst = UnsafeMutableRawPointer(rowQuants + t * cols + 256 * b)
                for i in 0..<16 {
                    let q = src.loadUnaligned(fromByteOffset: 16 * i, as: SIMD16<Int8>.self)
                    dst.storeBytes(of: Lanes.narrow16(Lanes.widen(q)), toByteOffset: 32 * i, as: SIMD16<Int16>.self)
                }
            }
        }
    }

    // MARK: GEMM panel

    /// Rebuilds the token-interleaved panel from the ggml rows 0..<rows (layout in the file header).
    /// Padding tokens of the last tile read `zeroRow` (q = 0, scales 0).
    private func buildPanel() {
        let T = Self.tile, tiles = (rows + T - 1) / T
        let bs = type.blockSize, bytes = type.typeSize
        @inline(__always) func source(_ t: Int) -> UnsafeRawPointer { t < rows ? row(t) : UnsafeRawPointer(zeroRow) }
        let qs = type == .q8_0 ? BlockLayout.Q8_0.qs : type == .q8_1 ? BlockLayout.Q8_1.qs : BlockLayout.Q8_K.qs
        for tile in 0..<tiles {
            let t0 = tile * T
            // Word (pair p, token t) = q[2p] | q[2p+1] << 16 (Int16 halves) at p·128 + 4t.
            let p = panel + tile * cols * T * 2
            for t in 0..<T {
                let src = source(t0 + t)
                for b in 0..<blocks {
                    var k = 0
                    while k < bs {
                        let q = Lanes.widen(src.loadUnaligned(fromByteOffset: b * bytes + qs + k, as: SIMD16<Int8>.self))
                        let u = unsafeBitCast(q, to: SIMD16<UInt32>.self) & 0xFFFF
                        let dst = p + ((b * bs + k) / 2) * 4 * T + 4 * t
                        for i in 0..<8 {
                            dst.storeBytes(of: u[2 * i] | (u[2 * i + 1] &<< 16), toByteOffset: i * 4 * T, as: UInt32.self)
                        }
                        k += 16
                    }
                }
            }
            for t in 0..<T {
                let valid = t0 + t < rows
                let ps = panelScale + tile * blocks * T + t
                for b in 0..<blocks { ps[b * T] = valid ? rowScale[(t0 + t) * blocks + b] : 0 }
                if type == .q8_1 {
                    let pq = panelSum + tile * blocks * T + t
                    for b in 0..<blocks { pq[b * T] = valid ? rowSum[(t0 + t) * blocks + b] : 0 }
                }
                if type == .q8_K {
                    let src = source(t0 + t)
                    for b in 0..<blocks {
                        let bsums = src + b * bytes + BlockLayout.Q8_K.bsums
                        let pm = panelMins + (tile * blocks + b) * 8 * T + t
                        for j in 0..<8 {
                            pm[j * T] = bsums.loadUnaligned(fromByteOffset: 4 * j, as: Int16.self) &+
                                        bsums.loadUnaligned(fromByteOffset: 4 * j + 2, as: Int16.self)
                        }
                    }
                }
            }
        }
    }
}
