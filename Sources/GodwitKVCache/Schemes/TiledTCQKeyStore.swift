// tcq key storage laid out for scoring 16 positions per SIMD vector. Source: TCQScheme.swift and
// TrellisCode.swift (the same f16 scale and k·d trellis bits per head vector; QTIP, arXiv 2406.11235),
// rearranged like TiledTurboKeyStore.swift.
//
// Layout, per head: bits [tiles, w, 16 lanes] u32 — word w of each lane's bit string (bits 32w..<32w+32
// of the TrellisBits string, w < W = k·d/32) — and scales [tiles, 16] f16; slot s = p % capacity in tile
// s / 16, lane s % 16. Coordinate i's state is the 10-bit window at bit o = k·(d−1−i), which lies in
// words o/32 and o/32 + 1 (mod W, the string is circular) at the same place in every lane: two aligned
// 16-lane loads and one funnel shift (`vpshrdvd`, CGodwit `godwit_funnel_right16`) give the 16 states,
// two `vpermi2ps` their levels. Up to 4 query rows (a decode step's query heads of one KV head) are
// scored while the tile decodes (`scoreTile`, levels never stored); more rows (prompt batches) share the
// tile's unscaled levels [d, 16] f32, decoded once (`decodeTile`, then TiledTurboKeyStore.scoreTile). Each
// score is multiplied by its lane's scale at the end (the scalar twin scales each coordinate first: equal
// up to rounding). Needs k·d a multiple of 32
// (every tcq width at head dims ≥ 32; tcq3 at d = 16 keeps row records, TCQKeyStore).
// Deviation from the row store: scores take two loads and a shift per 16 positions and coordinate, no
// per-position horizontal sum (the row store decoded and dotted one position at a time: 0.55–0.70× of f16).
import CGodwit
import GodwitKernels

final class TiledTCQKeyStore: TCQEncoding, HeadParallelWrite, ScalarTwinKeyStore {
    /// W = k·d/32 words per position.
    let words: Int
    let tiles: Int
    /// [headCount, tiles, W, 16] u32 (64-byte aligned: every 16-lane word load is aligned).
    let bitStorage: UnsafeMutableRawPointer
    /// [headCount, tiles, 16] f16 scales.
    let scales: UnsafeMutablePointer<UInt16>
    /// 16, kept opaque to the optimizer (TiledTurboKeyStore.scoreTile).
    let lanes16: Int

    /// Whether (head dim, bits) fits the tiled layout (k·d a multiple of 32).
    static func supports(headDim: Int, bits: Int) -> Bool { headDim * bits % 32 == 0 }

    override init(_ g: KVStoreGeometry, _ book: TrellisCodebook) {
        precondition(Self.supports(headDim: g.headDim, bits: book.bits) && book.dim == g.headDim,
                     "TiledTCQKeyStore: k·d must be a multiple of 32")
        words = g.headDim * book.bits / 32
        tiles = (g.capacity + 15) / 16
        lanes16 = 16
        // Not zero-filled: pages are committed as positions are written.
        bitStorage = .allocate(byteCount: max(1, g.headCount * tiles * words * 64), alignment: 64)
        scales = .allocate(capacity: max(1, g.headCount * tiles * 16))
        super.init(g, book)
    }

    deinit {
        bitStorage.deallocate()
        scales.deallocate()
    }

    var allocatedBytes: Int { geometry.headCount * tiles * 16 * TrellisRecord.bytes(headDim: geometry.headDim, bits: bits) }
    func bytesHeld(tokens: Int) -> Int {
        min(tokens, geometry.capacity) * TrellisRecord.bytes(headDim: geometry.headDim, bits: bits) * geometry.headCount
    }
    /// Prepared query: the f32 query [headDim] (rotated by the cache).
    var preparedQueryBytes: Int { geometry.headDim * 4 }

    @inline(__always) func tileBits(head: Int, tile: Int) -> UnsafeMutableRawPointer {
        bitStorage + ((head * tiles + tile) * words) * 64
    }

    /// Encodes each vector of head h as a record (TrellisEncoder), then scatters its scale and words into its lane.
    func write(head h: Int, _ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        let d = geometry.headDim, w = words
        withUnsafeTemporaryAllocation(byteCount: TrellisRecord.bytes(headDim: d, bits: bits) + 8, alignment: 16) { buffer in
            let r = buffer.baseAddress!
            for t in 0..<count {
                let slot = (firstPosition + t) % geometry.capacity, lane = slot % 16
                encoders[h].encode(src + t * tokenStride + h * d, into: r)
                scales[(h * tiles + slot / 16) * 16 + lane] = r.loadUnaligned(as: UInt16.self)
                let dst = tileBits(head: h, tile: slot / 16)
                for k in 0..<w {
                    dst.storeBytes(of: r.loadUnaligned(fromByteOffset: 2 + 4 * k, as: UInt32.self), toByteOffset: (k * 16 + lane) * 4, as: UInt32.self)
                }
            }
        }
    }

    /// Scalar decode (rotated domain): the lane's bit string reassembled, then scale · level(state) per
    /// coordinate (TrellisBits.state, bit by bit).
    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim, levels = codebook.levels
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: words) { string in
            for (j, p) in positions.enumerated() {
                let slot = p % geometry.capacity, lane = slot % 16
                let src = UnsafeRawPointer(tileBits(head: head, tile: slot / 16))
                for k in 0..<words { string[k] = src.load(fromByteOffset: (k * 16 + lane) * 4, as: UInt32.self) }
                let scale = halfToFloat(scales[(head * tiles + slot / 16) * 16 + lane])
                let packed = UnsafeRawPointer(string.baseAddress!)
                for i in 0..<d { out[j * d + i] = scale * levels[TrellisBits.state(packed, i, dim: d, bits: bits)] }
            }
        }
    }

    func prepareQuery(_ q: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) {
        dst.copyMemory(from: q, byteCount: geometry.headDim * 4)
    }

    /// Scalar twin: each key decoded by `read`, then a plain sequential dot.
    func scalarScores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                      into out: UnsafeMutablePointer<Float>, outStride: Int) {
        scalarScoresFromRead(queries: queries, queryCount: queryCount, head: head, positions: positions, into: out, outStride: outStride)
    }

    func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                into out: UnsafeMutablePointer<Float>, outStride: Int) {
        let d = geometry.headDim, lanes16 = self.lanes16, tables = self.tables
        // The tile's levels [d, 16] f32, the partial sums [16, 16] of `scoreTile`, result rows [4, 16].
        withUnsafeTemporaryAllocation(byteCount: (d + 20) * 64, alignment: 64) { buffer in
            let levels = buffer.baseAddress!, partial = levels + d * 64, lanes = partial + 16 * 64
            var j = 0
            while j < positions.count {
                let slot = (positions.lowerBound + j) % geometry.capacity
                let lane0 = slot % 16, tile = slot / 16
                let n = min(16 - lane0, positions.count - j)
                let scale = halfToFloat(UnsafeRawPointer(scales + (head * tiles + tile) * 16).loadUnaligned(as: SIMD16<UInt16>.self))
                let src = UnsafeRawPointer(tileBits(head: head, tile: tile))
                if queryCount <= 4 {
                    // Decode: the query heads of a KV head, scored while the tile decodes.
                    Self.scoreTile(src, words: words, d: d, bits: bits, tables, queries: queries, rows: queryCount, into: lanes)
                    for g in 0..<queryCount {
                        let row = lanes + g * 64
                        row.storeBytes(of: row.load(as: SIMD16<Float>.self) * scale, as: SIMD16<Float>.self)
                        TileDot.copyLanes(UnsafeRawPointer(row), from: lane0, count: n, to: out + g * outStride + j)
                    }
                } else {
                    // Prompt batches: the tile decoded once for all query rows.
                    Self.decodeTile(src, words: words, d: d, bits: bits, tables, levels)
                    for g in 0..<queryCount {
                        TiledTurboKeyStore.scoreTile(queries + g * d * 4, UnsafeRawPointer(levels), d, lanes16, partial: partial, into: lanes)
                        lanes.storeBytes(of: lanes.load(as: SIMD16<Float>.self) * scale, as: SIMD16<Float>.self)
                        TileDot.copyLanes(UnsafeRawPointer(lanes), from: lane0, count: n, to: out + g * outStride + j)
                    }
                }
                j += n
            }
        }
    }

    /// The 16 states of coordinate i of a tile: the 10-bit windows at bit o = k·(d−1−i) (funnel shift of
    /// words o/32 and o/32 + 1, circularly).
    @inline(__always)
    static func states(_ src: UnsafeRawPointer, words: Int, d: Int, bits k: Int, _ i: Int) -> SIMD16<Int32> {
        let o = k * (d - 1 - i), w = o >> 5
        let next = w + 1 == words ? 0 : w + 1
        let lo = src.load(fromByteOffset: w * 64, as: SIMD16<Int32>.self)
        let hi = src.load(fromByteOffset: next * 64, as: SIMD16<Int32>.self)
        return godwit_funnel_right16(lo, hi, SIMD16<Int32>(repeating: Int32(o & 31)))
    }

    /// Unscaled scores of ≤ 4 query rows against a tile: out[g, lane] = Σ_i q_g[i]·level(s_i[lane]),
    /// levels decoded in registers (two FMA chains per row, even and odd i, added at the end). Rows past
    /// `rows` repeat the last one. queries: rows × [d] f32; out: [4, 16] f32.
    @inline(never)
    static func scoreTile(_ src: UnsafeRawPointer, words: Int, d: Int, bits k: Int, _ tables: TrellisTables,
                          queries: UnsafeRawPointer, rows: Int, into out: UnsafeMutableRawPointer) {
        let q0 = queries, q1 = queries + Swift.min(1, rows - 1) * d * 4
        let q2 = queries + Swift.min(2, rows - 1) * d * 4, q3 = queries + Swift.min(3, rows - 1) * d * 4
        @inline(__always) func qb(_ q: UnsafeRawPointer, _ i: Int) -> SIMD16<Float> {
            SIMD16<Float>(repeating: q.loadUnaligned(fromByteOffset: i * 4, as: Float.self))
        }
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        var b0 = SIMD16<Float>(), b1 = SIMD16<Float>(), b2 = SIMD16<Float>(), b3 = SIMD16<Float>()
        var i = 0
        while i < d {
            let x = tables.levels(states: states(src, words: words, d: d, bits: k, i))
            let y = tables.levels(states: states(src, words: words, d: d, bits: k, i + 1))
            a0 = a0.addingProduct(x, qb(q0, i)); b0 = b0.addingProduct(y, qb(q0, i + 1))
            a1 = a1.addingProduct(x, qb(q1, i)); b1 = b1.addingProduct(y, qb(q1, i + 1))
            a2 = a2.addingProduct(x, qb(q2, i)); b2 = b2.addingProduct(y, qb(q2, i + 1))
            a3 = a3.addingProduct(x, qb(q3, i)); b3 = b3.addingProduct(y, qb(q3, i + 1))
            i += 2
        }
        out.storeBytes(of: a0 + b0, as: SIMD16<Float>.self)
        out.storeBytes(of: a1 + b1, toByteOffset: 64, as: SIMD16<Float>.self)
        out.storeBytes(of: a2 + b2, toByteOffset: 128, as: SIMD16<Float>.self)
        out.storeBytes(of: a3 + b3, toByteOffset: 192, as: SIMD16<Float>.self)
    }

    /// A tile's bits [W, 16] u32 → unscaled levels [d, 16] f32: coordinate i's states are the 10-bit
    /// windows at bit k·(d−1−i) of each lane's circular string (funnel shift of words o/32 and o/32 + 1).
    @inline(never)
    static func decodeTile(_ src: UnsafeRawPointer, words: Int, d: Int, bits k: Int, _ tables: TrellisTables,
                           _ dst: UnsafeMutableRawPointer) {
        var i = 0
        while i < d {
            dst.storeBytes(of: tables.levels(states: states(src, words: words, d: d, bits: k, i)), toByteOffset: i * 64, as: SIMD16<Float>.self)
            i += 1
        }
    }
}
