// Q8_KV cache scheme `q8_kv`: int8 per value with one f32 scale per head vector, integer scores.
// Source: ik_llama.cpp GGML_TYPE_Q8_KV (ggml/src/iqk/iqk_quantize.cpp quantize_row_q8_KV, and the
// iqk flash-attention path that quantizes Q to Q8_KV and does int8·int8 dots per row).
// Deviations: the row meta is only the f32 scale (ik_llama also stores Σq as an int32 for its
// unsigned×signed SIMD trick; our s8×s8 loop does not need it), so bpv = 8 + 32/headDim.
// Encoding: d = absmax/127, q = round-to-nearest-even(x/d). The query is encoded the same way;
// score = Float(Σ q_k·q_q as Int32) · (d_k·d_q): each score depends only on its own key and query,
// so results are bit-identical however positions are split into ranges or threads.
// Layout: keys in 16-position tiles of the same bytes (TiledQ8KVKeyStore.swift; head dims ≤ 1024,
// beyond which the row store below scores them); values row-major [headCount, capacity, 4 + headDim]
// (Q8KVStore), accumulated 16 dims at a time in registers (FloatStoreKernels.accumulateColumns with
// Q8KVColumns: the same q · d products, one fma per term — bitwise the old decoded-row path).
// Rotation: llama.cpp's parity Hadamard rule (rotated K/V, as for q8_0).
import GodwitKernels

/// One Q8_KV record: [f32 scale][headDim int8]; 4 + headDim bytes. Prepared queries use the same record.
enum Q8KVRecord {
    static func bytes(headDim: Int) -> Int { 4 + headDim }
}

public struct Q8KVScheme: KVScheme {
    public init() {}
    public var name: String { "q8_kv" }
    public var summary: String { "int8 per value, one f32 absmax scale per head vector; int8 query, integer dots" }
    public var source: String { "ik_llama.cpp GGML_TYPE_Q8_KV (iqk_quantize.cpp quantize_row_q8_KV)" }
    public var isQuantized: Bool { true }

    public func bitsPerValue(headDim: Int, role: KVRole, options: KVSchemeOptions) -> Double {
        Double(Q8KVRecord.bytes(headDim: headDim) * 8) / Double(headDim)
    }

    public func unsupportedReason(role: KVRole, headDim: Int) -> String? {
        headDim > 0 && headDim % 32 == 0 ? nil : "the head dim must be a positive multiple of 32"
    }

    public func rotation(role: KVRole, headDim: Int, options: KVSchemeOptions) -> (any KVRotation)? {
        parityRotation(role: role, headDim: headDim, options: options)
    }

    public func makeKeyStore(_ context: KVStoreContext) throws(KVCacheError) -> any KeyStore {
        let g = context.geometry
        if unsupportedReason(role: context.role, headDim: g.headDim) == nil && TiledQ8KVKeyStore.supports(headDim: g.headDim) {
            return TiledQ8KVKeyStore(g)
        }
        return try makeStore(context)
    }
    public func makeValueStore(_ context: KVStoreContext) throws(KVCacheError) -> any ValueStore { try makeStore(context) }

    private func makeStore(_ context: KVStoreContext) throws(KVCacheError) -> Q8KVStore {
        let g = context.geometry
        if let why = unsupportedReason(role: context.role, headDim: g.headDim) {
            throw .unsupportedHeadDim(scheme: name, role: context.role, headDim: g.headDim, reason: why)
        }
        return Q8KVStore(g)
    }
}

/// Q8_KV storage for values (and keys of head dims TiledQ8KVKeyStore does not take).
/// Records [headCount, capacity, 4 + headDim] (Q8KVRecord).
final class Q8KVStore: KeyStore, ValueStore {
    let geometry: KVStoreGeometry
    let rows: VectorRecordStorage

    init(_ g: KVStoreGeometry) {
        geometry = g
        rows = VectorRecordStorage(g, recordBytes: Q8KVRecord.bytes(headDim: g.headDim))
    }

    deinit { rows.deallocate() }

    var allocatedBytes: Int { rows.allocatedBytes }
    func bytesHeld(tokens: Int) -> Int { rows.bytesHeld(tokens: tokens) }
    /// A Q8KVRecord, rounded up to 64 bytes.
    var preparedQueryBytes: Int { (Q8KVRecord.bytes(headDim: geometry.headDim) + 63) / 64 * 64 }

    /// x [d] → record: f32 d = absmax/127, then round-to-nearest-even(x/d) as int8.
    static func encode(_ x: UnsafePointer<Float>, _ d: Int, into r: UnsafeMutableRawPointer) {
        var amax: Float = 0
        for i in 0..<d { amax = max(amax, abs(x[i])) }
        let scale = amax / 127
        let inv: Float = scale > 0 && scale.isFinite ? 1 / scale : 0
        r.storeBytes(of: inv == 0 ? 0 : scale, as: Float.self)
        let q = (r + 4).assumingMemoryBound(to: Int8.self)
        for i in 0..<d { q[i] = Int8(max(-127, min(127, (x[i] * inv).rounded(.toNearestOrEven)))) }
    }

    /// Σ over d (a multiple of 32) of a[i]·b[i], int8 × int8 in Int32 (exact).
    @inline(__always) static func dot(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ d: Int) -> Int32 {
        var s: Int32 = 0
        var i = 0
        while i < d { s &+= dotI8x32(a + i, b + i); i += 32 }
        return s
    }

    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        let d = geometry.headDim
        for t in 0..<count {
            for h in 0..<geometry.headCount {
                Self.encode(src + t * tokenStride + h * d, d, into: rows.record(head: h, position: firstPosition + t))
            }
        }
    }

    /// Scalar twin decode: out = q · scale per value.
    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim
        for (j, p) in positions.enumerated() {
            let r = UnsafeRawPointer(rows.record(head: head, position: p))
            let s = r.loadUnaligned(as: Float.self)
            for i in 0..<d { out[j * d + i] = Float(r.load(fromByteOffset: 4 + i, as: Int8.self)) * s }
        }
    }

    func prepareQuery(_ q: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) {
        Self.encode(q, geometry.headDim, into: dst)
    }

    func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                into out: UnsafeMutablePointer<Float>, outStride: Int) {
        let d = geometry.headDim
        let qBytes = preparedQueryBytes
        let stride = rows.recordBytes
        var k = UnsafeRawPointer(rows.record(head: head, position: positions.lowerBound))
        for j in 0..<positions.count {
            let dk = k.loadUnaligned(as: Float.self)
            for g in 0..<queryCount {
                let q = queries + g * qBytes
                out[g * outStride + j] = Float(Self.dot(k + 4, q + 4, d)) * (dk * q.loadUnaligned(as: Float.self))
            }
            k += stride
        }
    }

    /// Σ w · (q · d) per 16-dim column in registers (Q8KVColumns); positions never wrap in one call.
    func accumulate(weights: UnsafePointer<Float>, weightStride: Int, queryCount: Int, head: Int,
                    positions: Range<Int>, into acc: UnsafeMutablePointer<Float>, accStride: Int) {
        Q8KVValueKernel.accumulate(weights: weights, weightStride: weightStride, rows: queryCount,
                                   values: UnsafeRawPointer(rows.record(head: head, position: positions.lowerBound)),
                                   recordBytes: rows.recordBytes, count: positions.count, d: geometry.headDim,
                                   acc: acc, accStride: accStride)
    }
}

/// Non-generic entry so the column kernel is compiled once for Q8KVColumns.
enum Q8KVValueKernel {
    static func accumulate(weights: UnsafePointer<Float>, weightStride: Int, rows: Int, values: UnsafeRawPointer, recordBytes: Int,
                           count: Int, d: Int, acc: UnsafeMutablePointer<Float>, accStride: Int) {
        FloatStoreKernels.accumulateColumns(weights: weights, weightStride: weightStride, rows: rows, count: count, d: d,
                                            acc: acc, accStride: accStride, Q8KVColumns(values: values, recordBytes: recordBytes))
    }
}

/// Q8_KV rows [count, recordBytes] (Q8KVRecord: d f32, codes [headDim] int8); x = q · d.
struct Q8KVColumns: ValueColumns {
    let values: UnsafeRawPointer
    let recordBytes: Int
    @inline(__always) func column(_ j: Int, _ i: Int) -> SIMD16<Float> {
        let r = values + j * recordBytes
        return SIMD16<Float>(repeating: -0.0).addingProduct(Lanes.float(Lanes.signedBytes(r, 4 + i)),
                                                             SIMD16<Float>(repeating: r.loadUnaligned(as: Float.self)))
    }
}
