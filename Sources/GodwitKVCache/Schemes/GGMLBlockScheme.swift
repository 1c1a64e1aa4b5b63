// llama.cpp's quantized cache types (`-ctk/-ctv q8_0|q4_0|q4_1|q5_0|q5_1|iq4_nl`): ggml block
// layouts, byte-identical, 32 values per block (8.5, 4.5, 5.0, 5.5, 6.0, 4.5 bits per value).
// Encoding is ggml's CPU `from_float` for the type (the set_rows path of llama.cpp's cache):
// `quantizeRowCPU` (q8_0: the x86 AVX quantizer; q4_0 … q5_1: the reference quantizers), and for
// iq4_nl the search with ntry = −1 that ggml-cpu uses.
// Rotation: llama.cpp's Hadamard rule (KVScheme.parityRotation).
// Scores: the query is quantized once per step to the format's dot type (q8_0 / q8_1, as llama.cpp's
// vec_dot does); per block the integer products are summed exactly, then scaled by d_k·d_q (+ m·s)
// — GGMLBlockScores.swift.
// Values: rows decoded into the same tile and accumulated as llama.cpp's flash-attention CPU kernel
// does (v_to_float + mad), in position order.
// Store layout: [headCount, capacity, rowBytes], rowBytes = headDim/32 · block bytes; q8_0/q4_0
// keys in 16-position tiles of the same bytes (TiledBlockKeyStore.swift).
import GodwitGGUF
import GodwitKernels

public struct GGMLBlockScheme: KVScheme {
    public let type: GGMLType

    /// The cache types llama.cpp accepts for -ctk/-ctv among ggml's 32-value blocks.
    public static let supported: [GGMLType] = [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .iq4_nl]

    public init(_ type: GGMLType) {
        precondition(Self.supported.contains(type), "not a ggml cache block type: \(type)")
        self.type = type
    }

    public var name: String { type.name }
    public var summary: String {
        "ggml \(type.name) blocks of 32 values (\(String(format: "%.1f", type.bitsPerValue)) bpv), integer dots with a q8 query"
    }
    public var source: String { "llama.cpp / ggml block_\(type.name) (ggml-common.h), -ctk/-ctv \(type.name)" }
    public var isQuantized: Bool { true }

    public func bitsPerValue(headDim: Int, role: KVRole, options: KVSchemeOptions) -> Double { type.bitsPerValue }

    public func unsupportedReason(role: KVRole, headDim: Int) -> String? {
        headDim % 32 == 0 ? nil : "the head dim must be a multiple of the 32-value block"
    }

    public func rotation(role: KVRole, headDim: Int, options: KVSchemeOptions) -> (any KVRotation)? {
        parityRotation(role: role, headDim: headDim, options: options)
    }

    /// q8_0 / q4_0 keys live in 16-position tiles (TiledBlockKeyStore, same bytes, same scores);
    /// the other formats and all values are row-major (BlockStore).
    public func makeKeyStore(_ context: KVStoreContext) throws(KVCacheError) -> any KeyStore {
        if TiledBlockKeyStore.supports(type) && context.geometry.headDim % 32 == 0 {
            return TiledBlockKeyStore(context.geometry, type: type)
        }
        return try makeStore(context)
    }
    public func makeValueStore(_ context: KVStoreContext) throws(KVCacheError) -> any ValueStore { try makeStore(context) }

    private func makeStore(_ context: KVStoreContext) throws(KVCacheError) -> any KeyStore & ValueStore {
        let g = context.geometry
        if let why = unsupportedReason(role: context.role, headDim: g.headDim) {
            throw .unsupportedHeadDim(scheme: name, role: context.role, headDim: g.headDim, reason: why)
        }
        switch type {
        case .q8_0: return BlockStore<Q8_0Cache>(g)
        case .q4_0: return BlockStore<Q4_0Cache>(g)
        case .q4_1: return BlockStore<Q4_1Cache>(g)
        case .q5_0: return BlockStore<Q5_0Cache>(g)
        case .q5_1: return BlockStore<Q5_1Cache>(g)
        default: return BlockStore<IQ4_NLCache>(g)
        }
    }
}

/// Quantized block storage for keys or values. [headCount, capacity, rowBytes]
final class BlockStore<F: CacheBlockFormat>: KeyStore, ValueStore {
    let geometry: KVStoreGeometry
    let storage: UnsafeMutableRawPointer
    let rowBytes: Int
    let headBytes: Int
    let blocks: Int

    init(_ g: KVStoreGeometry) {
        geometry = g
        blocks = g.headDim / 32
        rowBytes = blocks * F.type.typeSize
        headBytes = rowBytes * g.capacity
        storage = .allocate(byteCount: max(1, headBytes * g.headCount), alignment: 64)
    }

    deinit { storage.deallocate() }

    var allocatedBytes: Int { headBytes * geometry.headCount }
    func bytesHeld(tokens: Int) -> Int { min(tokens, geometry.capacity) * rowBytes * geometry.headCount }
    var keyInput: KeyInput { .postRoPE }
    /// The q8-quantized query as exact integer codes [headDim] f32, then per block d [blocks] and
    /// s [blocks] (q8_1; 0 for q8_0) — see GGMLBlockScores.swift. Rounded up to 64 bytes.
    var preparedQueryBytes: Int { ((geometry.headDim + 2 * blocks) * 4 + 63) / 64 * 64 }

    @inline(__always) func row(head: Int, position: Int) -> UnsafeMutableRawPointer {
        storage + head * headBytes + (position % geometry.capacity) * rowBytes
    }


    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        let d = geometry.headDim
        for t in 0..<count {
            for h in 0..<geometry.headCount {
                let s = src + t * tokenStride + h * d
                let dst = row(head: h, position: firstPosition + t)
                if F.type == .iq4_nl {
                    quantizeRowIQ4NL(src: s, dst: dst, count: d, ntry: -1)
                } else {
                    try! quantizeRowCPU(type: F.type, src: s, dst: dst, count: d)
                }
            }
        }
    }

    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim
        for (j, p) in positions.enumerated() {
            try! dequantizeRow(type: F.type, src: row(head: head, position: p), dst: out + j * d, count: d)
        }
    }

    /// Positions decoded per tile: [span, headDim] f32 on the stack (16 KiB at head dim 256).
    static var span: Int { 16 }

    /// Values: rows decoded span by span into a stack tile, then accumulated by every row of weights
    /// in position order (the same fma sequence per accumulator as one row at a time).
    func accumulate(weights: UnsafePointer<Float>, weightStride: Int, queryCount: Int, head: Int,
                    positions: Range<Int>, into acc: UnsafeMutablePointer<Float>, accStride: Int) {
        let d = geometry.headDim
        // q8_0 / q4_0: each 16-dim column decoded straight from the blocks (no row tile in between).
        if F.type == .q8_0 || F.type == .q4_0 {
            let v = UnsafeRawPointer(row(head: head, position: positions.lowerBound))
            if F.type == .q8_0 {
                BlockValueKernels.q8_0(weights: weights, weightStride: weightStride, rows: queryCount, values: v, rowBytes: rowBytes,
                                       count: positions.count, d: d, acc: acc, accStride: accStride)
            } else {
                BlockValueKernels.q4_0(weights: weights, weightStride: weightStride, rows: queryCount, values: v, rowBytes: rowBytes,
                                       count: positions.count, d: d, acc: acc, accStride: accStride)
            }
            return
        }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: Self.span * d) { buffer in
            let tile = buffer.baseAddress!
            var j0 = 0
            while j0 < positions.count {
                let n = min(Self.span, positions.count - j0)
                try! dequantizeRows(type: F.type, src: row(head: head, position: positions.lowerBound + j0), rowBytes: rowBytes,
                                    rows: n, dst: tile, count: d)
                FloatStoreKernels.accumulate(F32Element.self, weights: weights + j0, weightStride: weightStride, rows: queryCount,
                                             values: UnsafeRawPointer(tile), vectorBytes: d * 4, count: n, d: d,
                                             acc: acc, accStride: accStride)
                j0 += n
            }
        }
    }
}

/// Weighted value sums straight from q8_0 / q4_0 rows: 16 dims of a position are dequantized in
/// registers exactly as `dequantizeRows` does (codes as f32 times d, one rounding), then accumulated
/// as FloatStoreKernels does — bitwise the tile path's result without the [16, d] f32 round trip.
/// Non-generic so the kernels are compiled for their concrete format (BlockStore is generic).
/// values: [count, rowBytes] ggml blocks, positions contiguous.
enum BlockValueKernels {
    static func q8_0(weights: UnsafePointer<Float>, weightStride: Int, rows: Int, values: UnsafeRawPointer, rowBytes: Int,
                     count: Int, d: Int, acc: UnsafeMutablePointer<Float>, accStride: Int) {
        FloatStoreKernels.accumulateColumns(weights: weights, weightStride: weightStride, rows: rows, count: count, d: d,
                                            acc: acc, accStride: accStride, Q8_0Columns(values: values, rowBytes: rowBytes))
    }

    static func q4_0(weights: UnsafePointer<Float>, weightStride: Int, rows: Int, values: UnsafeRawPointer, rowBytes: Int,
                     count: Int, d: Int, acc: UnsafeMutablePointer<Float>, accStride: Int) {
        FloatStoreKernels.accumulateColumns(weights: weights, weightStride: weightStride, rows: rows, count: count, d: d,
                                            acc: acc, accStride: accStride, Q4_0Columns(values: values, rowBytes: rowBytes))
    }
}

/// q8_0 rows [count, rowBytes]: block_q8_0 = d f16, qs[32] int8 (BlockLayout.Q8_0); x = qs·d.
struct Q8_0Columns: ValueColumns {
    let values: UnsafeRawPointer
    let rowBytes: Int
    @inline(__always) func column(_ j: Int, _ i: Int) -> SIMD16<Float> {
        let block = values + j * rowBytes + (i / 32) * 34
        return Lanes.float(Lanes.signedBytes(block, 2 + i % 32)) * SIMD16<Float>(repeating: halfAt(block, 0))
    }
}

/// q4_0 rows [count, rowBytes]: block_q4_0 = d f16, qs[16] nibbles (BlockLayout.Q4_0): dims 0..<16 of
/// a block are the low nibbles, 16..<32 the high ones; x = (q − 8)·d.
struct Q4_0Columns: ValueColumns {
    let values: UnsafeRawPointer
    let rowBytes: Int
    @inline(__always) func column(_ j: Int, _ i: Int) -> SIMD16<Float> {
        let block = values + j * rowBytes + (i / 32) * 18
        let shift = SIMD16<Int32>(repeating: Int32(i & 16) >> 2)
        return Lanes.float(((Lanes.bytes(block, 2) &>> shift) & 15) &- 8) * SIMD16<Float>(repeating: halfAt(block, 0))
    }
}
