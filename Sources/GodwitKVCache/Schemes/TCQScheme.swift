// Trellis-coded cache schemes `tcq2`, `tcq3`, `tcq4`: TurboQuant's random rotation, then the
// rotated head vector coded by a tail-biting bitshift trellis (TrellisCode.swift) instead of a scalar
// Lloyd–Max codebook — the same bits per value as turbo{b}, about a third less squared error.
// Sources: QTIP, arXiv 2406.11235 (bitshift trellis, tail-biting, lookup codes — see TrellisCode.swift);
// TurboQuant, arXiv 2504.19874 (random rotation + per-vector norm, TurboQuantScheme.swift).
// Per head vector x: u = x·√d/‖x‖ (coordinates ≈ N(0, 1) after the rotation); the Viterbi search picks
// the k·d trellis bits; stored scale (f16) ‖x‖²/⟨x, c⟩ (unbiased, as turbo's: ⟨x̂, x⟩ = ‖x‖²).
// Record [f16 scale][k·d/8 bytes], bpv = k + 16/d, identical in size to turbo{b}.
// Deviations: the rotation is turbo's R = H·D (random signs, then Walsh–Hadamard; seed "tcq"), applied by
// the cache through the rotation hook, so stores work in the rotated domain (values are summed there
// and the cache rotates the attention output back). The codebook is trained on random unit vectors
// (Gaussian-like coordinates), not on model data. Encoding runs a Viterbi search per head vector
// (2 passes × d steps × 1024 states), so appending is dearer than turbo's.
// Values keep row records (VectorRecordStorage) and decode 16 dims with two `vpermi2ps` into
// FloatStoreKernels' value sums; keys live in 16-position tiles (TiledTCQKeyStore) where k·d is a
// multiple of 32, else in row records decoded and dotted one row at a time (TCQKeyStore).
import GodwitKernels

public struct TCQScheme: KVScheme {
    public let bits: Int
    /// Seed of the random signs (ASCII "tcq").
    public static let seed: UInt64 = 0x74_6371

    /// bits ∈ {2, 3, 4}.
    public init(bits: Int) { self.bits = bits }

    public var name: String { "tcq\(bits)" }
    public var summary: String {
        "trellis-coded (bitshift trellis, 10-bit states, Viterbi): f16 scale + \(bits) bits per coordinate of the randomly rotated vector"
    }
    public var source: String { "QTIP, arXiv 2406.11235 (bitshift trellis TCQ, additive lookup codes, L = 10) on TurboQuant's rotation (arXiv 2504.19874)" }
    public var isQuantized: Bool { true }

    public func bitsPerValue(headDim: Int, role: KVRole, options: KVSchemeOptions) -> Double {
        RotatedVectorSchemes.bitsPerValue(headDim: headDim, bits: bits)
    }

    public func unsupportedReason(role: KVRole, headDim: Int) -> String? {
        RotatedVectorSchemes.unsupportedReason(bits: bits, headDim: headDim)
    }

    /// The scheme's own random rotation (RotatedVectorSchemes; the codebook assumes Gaussian-like coordinates).
    public func rotation(role: KVRole, headDim: Int, options: KVSchemeOptions) -> (any KVRotation)? {
        RotatedVectorSchemes.rotation(bits: bits, headDim: headDim, seed: Self.seed)
    }

    public func makeKeyStore(_ context: KVStoreContext) throws(KVCacheError) -> any KeyStore {
        let g = try validated(context)
        let book = try TrellisCodebook.shared(dim: g.headDim, bits: bits)
        return TiledTCQKeyStore.supports(headDim: g.headDim, bits: bits) ? TiledTCQKeyStore(g, book) : TCQKeyStore(g, book)
    }
    public func makeValueStore(_ context: KVStoreContext) throws(KVCacheError) -> any ValueStore {
        let g = try validated(context)
        return TCQValueStore(g, try TrellisCodebook.shared(dim: g.headDim, bits: bits))
    }

    private func validated(_ context: KVStoreContext) throws(KVCacheError) -> KVStoreGeometry {
        try RotatedVectorSchemes.geometry(context, scheme: name, bits: bits)
    }
}

/// What every tcq store holds: its geometry, the codebook, one encoder (with its search scratch) per head,
/// so heads encode in parallel (HeadParallelWrite), and the codebook's tables and lane layout for decoding.
class TCQEncoding {
    let geometry: KVStoreGeometry
    let codebook: TrellisCodebook
    let bits: Int
    /// [headCount]
    let encoders: [TrellisEncoder]
    /// The codebook's two 32-entry tables (TrellisColumns).
    let tables: TrellisTables
    /// Where 16 windows of a record chunk sit (TrellisLanes), built once per store.
    let lanes: TrellisLaneLayout

    init(_ g: KVStoreGeometry, _ book: TrellisCodebook) {
        geometry = g
        codebook = book
        bits = book.bits
        encoders = (0..<g.headCount).map { _ in TrellisEncoder(book, scale: .unbiased) }
        tables = TrellisTables(book)
        lanes = TrellisLanes.layout(bits: book.bits)
    }
}

/// Both row-record tcq stores: records [headCount, capacity, 2 + k·d/8] (TrellisRecord).
class TCQRecords: TCQEncoding, HeadParallelWrite {
    let rows: VectorRecordStorage

    override init(_ g: KVStoreGeometry, _ book: TrellisCodebook) {
        rows = VectorRecordStorage(g, recordBytes: TrellisRecord.bytes(headDim: g.headDim, bits: book.bits))
        super.init(g, book)
    }

    deinit { rows.deallocate() }

    var allocatedBytes: Int { rows.allocatedBytes }
    func bytesHeld(tokens: Int) -> Int { rows.bytesHeld(tokens: tokens) }

    func write(head h: Int, _ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        let d = geometry.headDim
        for t in 0..<count {
            encoders[h].encode(src + t * tokenStride + h * d, into: rows.record(head: h, position: firstPosition + t))
        }
    }

    /// Scalar twin decode (rotated domain): out = scale · level(state) per coordinate.
    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim, levels = codebook.levels
        for (j, p) in positions.enumerated() {
            let r = UnsafeRawPointer(rows.record(head: head, position: p))
            let scale = halfToFloat(r.loadUnaligned(as: UInt16.self))
            for i in 0..<d { out[j * d + i] = scale * levels[TrellisRecord.stateScalar(r, i, dim: d, bits: bits)] }
        }
    }
}

/// tcq value storage (rotated domain): FloatStoreKernels' value sums over TrellisColumns.
final class TCQValueStore: TCQRecords, ScalarTwinValueStore {
    func accumulate(weights: UnsafePointer<Float>, weightStride: Int, queryCount: Int, head: Int,
                    positions: Range<Int>, into acc: UnsafeMutablePointer<Float>, accStride: Int) {
        let d = geometry.headDim, stride = rows.recordBytes, tables = self.tables, lanes = self.lanes
        let first = UnsafeRawPointer(rows.record(head: head, position: positions.lowerBound))
        switch bits {
        case 2:
            FloatStoreKernels.accumulateColumns(weights: weights, weightStride: weightStride, rows: queryCount, count: positions.count, d: d,
                                                acc: acc, accStride: accStride, TrellisColumns<Trellis2Bit>(records: first, stride: stride, dim: d, tables: tables, lanes: lanes))
        case 3:
            FloatStoreKernels.accumulateColumns(weights: weights, weightStride: weightStride, rows: queryCount, count: positions.count, d: d,
                                                acc: acc, accStride: accStride, TrellisColumns<Trellis3Bit>(records: first, stride: stride, dim: d, tables: tables, lanes: lanes))
        default:
            FloatStoreKernels.accumulateColumns(weights: weights, weightStride: weightStride, rows: queryCount, count: positions.count, d: d,
                                                acc: acc, accStride: accStride, TrellisColumns<Trellis4Bit>(records: first, stride: stride, dim: d, tables: tables, lanes: lanes))
        }
    }

    /// Scalar twin: each value decoded by `read`, then acc += w·v element by element, positions in order.
    func scalarAccumulate(weights: UnsafePointer<Float>, weightStride: Int, queryCount: Int, head: Int,
                          positions: Range<Int>, into acc: UnsafeMutablePointer<Float>, accStride: Int) {
        scalarAccumulateFromRead(weights: weights, weightStride: weightStride, queryCount: queryCount, head: head,
                                 positions: positions, into: acc, accStride: accStride)
    }
}

/// tcq key storage in row records, where the tiled layout does not fit (k·d not a multiple of 32: tcq3 at
/// d = 16; rotated domain, queries arrive rotated): a key row is decoded 16 dims at a time
/// (TrellisColumns) into a stack row [d], then dotted with each prepared query [d] floats.
final class TCQKeyStore: TCQRecords, ScalarTwinKeyStore {
    var preparedQueryBytes: Int { geometry.headDim * 4 }

    func prepareQuery(_ q: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) {
        dst.copyMemory(from: q, byteCount: geometry.headDim * 4)
    }

    func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                into out: UnsafeMutablePointer<Float>, outStride: Int) {
        switch bits {
        case 2: scores(TrellisColumns<Trellis2Bit>.self, queries, queryCount, head, positions, out, outStride)
        case 3: scores(TrellisColumns<Trellis3Bit>.self, queries, queryCount, head, positions, out, outStride)
        default: scores(TrellisColumns<Trellis4Bit>.self, queries, queryCount, head, positions, out, outStride)
        }
    }

    @inline(__always)
    private func scores<W>(_: TrellisColumns<W>.Type, _ queries: UnsafeRawPointer, _ queryCount: Int, _ head: Int,
                           _ positions: Range<Int>, _ out: UnsafeMutablePointer<Float>, _ outStride: Int) {
        let d = geometry.headDim, qBytes = preparedQueryBytes
        let columns = TrellisColumns<W>(records: UnsafeRawPointer(rows.record(head: head, position: positions.lowerBound)),
                                        stride: rows.recordBytes, dim: d, tables: tables, lanes: lanes)
        withUnsafeTemporaryAllocation(byteCount: d * 4, alignment: 64) { buffer in
            let key = buffer.baseAddress!
            for j in 0..<positions.count {
                var i = 0
                while i < d {
                    key.storeBytes(of: columns.column(j, i), toByteOffset: i * 4, as: SIMD16<Float>.self)
                    i += 16
                }
                for g in 0..<queryCount {
                    out[g * outStride + j] = VectorRowKernels.dot(queries + g * qBytes, UnsafeRawPointer(key), d)
                }
            }
        }
    }

    /// Scalar twin: each key decoded by `read`, then a plain sequential dot.
    func scalarScores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                      into out: UnsafeMutablePointer<Float>, outStride: Int) {
        scalarScoresFromRead(queries: queries, queryCount: queryCount, head: head, positions: positions, into: out, outStride: outStride)
    }
}
