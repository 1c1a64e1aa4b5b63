// TurboQuant key storage laid out for scoring 16 positions per SIMD vector. Source: TurboQuantScheme.swift
// (TurboQuant, arXiv 2504.19874, Algorithm 1: the same f16 scale and b-bit Lloyd–Max codes per head
// vector), rearranged like TiledFP8KeyStore.swift / TiledBlockKeyStore.swift.
//
// Layout: [headCount, tiles, tile], tiles = ⌈capacity / 16⌉, slot s = p % capacity in tile s / 16,
// lane s % 16. A tile holds scale [16] f16 (32 bytes), then the codes of its 16 lanes, 2·b bytes per
// dimension (the same 2 + headDim·b/8 bytes per position as a record):
//   turbo4: [d/2 pairs, 16 lanes] u8: low nibble = dim 2p, high nibble = dim 2p + 1;
//   turbo2: [d/4 quads, 16 lanes] u8: bits 2k..2k+1 = dim 4p + k;
//   turbo3: [d/8 groups, 3, 16 lanes] u8: a 2-bit plane of dims 8g..8g+3 (as turbo2), one of dims
//           8g+4..8g+7, then a 1-bit plane (bit k = bit 2 of dim 8g + k's code).
// So 16 bytes zero-extended (`vpmovzxbd`) and shifted give the codes of one dimension of 16 positions,
// and one `vpermps` (CodeLookup.lookup16, the centroids held in a register, repeated to 16 entries so
// that only the low b bits of an index count) turns them into centroids; times the lanes' scales this is
// the tile's keys [d, 16] f32, decoded once and shared by the query rows. A query then scores 16 positions
// with broadcast FMAs (no horizontal sum per (query, position)) in the summation order of the row kernel
// it replaced (VectorRowKernels.dot on the decoded row scale·c): scores are bitwise the row kernel's.
// Values stay in records (TurboStore).
import GodwitKernels

final class TiledTurboKeyStore: ScalarTwinKeyStore {
    let geometry: KVStoreGeometry
    let encoder: TurboEncoder
    let bits: Int
    /// The centroids repeated to 16 entries: entry k = centroid[k mod 2^bits].
    let lookupTable: SIMD16<Float>
    /// [headCount, tiles, tileBytes] (layout above).
    let storage: UnsafeMutableRawPointer
    let tiles: Int
    /// Bytes of one tile: 16 · (2 + headDim·bits/8).
    let tileBytes: Int
    /// 16, kept opaque to the optimizer (see `scoreTile`).
    let lanes16: Int

    init(_ g: KVStoreGeometry, _ book: TurboCodebook, scale: TurboScale) {
        precondition(g.headDim % 16 == 0 && [2, 3, 4].contains(book.bits), "TiledTurboKeyStore: 2/3/4 bits, head dim a multiple of 16")
        geometry = g
        encoder = TurboEncoder(book, scale: scale)
        bits = book.bits
        lookupTable = encoder.lookupTable
        tiles = (g.capacity + 15) / 16
        tileBytes = 16 * TurboRecord.bytes(headDim: g.headDim, bits: book.bits)
        lanes16 = 16
        // Not zero-filled: pages are committed as positions are written.
        storage = .allocate(byteCount: max(1, tiles * tileBytes * g.headCount), alignment: 64)
    }

    deinit { storage.deallocate() }

    var allocatedBytes: Int { tiles * tileBytes * geometry.headCount }
    func bytesHeld(tokens: Int) -> Int {
        min(tokens, geometry.capacity) * TurboRecord.bytes(headDim: geometry.headDim, bits: bits) * geometry.headCount
    }
    /// Prepared query: the f32 query [headDim] (rotated by the cache).
    var preparedQueryBytes: Int { geometry.headDim * 4 }

    @inline(__always) func tile(head: Int, slot: Int) -> UnsafeMutableRawPointer {
        storage + (head * tiles + slot / 16) * tileBytes
    }

    /// Where the code of dimension i of a lane lives in a tile's code area: byte offset (of lane 0) and
    /// bit shift of its low part, and for turbo3 the bit shift of its high bit in the 1-bit plane.
    @inline(__always) static func codePlace(_ i: Int, bits: Int) -> (byte: Int, shift: Int, width: Int, high: (byte: Int, shift: Int)?) {
        switch bits {
        case 4: return ((i / 2) * 16, 4 * (i % 2), 4, nil)
        case 2: return ((i / 4) * 16, 2 * (i % 4), 2, nil)
        default:
            let g = i / 8, k = i % 8
            return (g * 48 + (k / 4) * 16, 2 * (k % 4), 2, (g * 48 + 32, k))
        }
    }

    /// Code of dimension i of `lane` (scalar; read-back and tests).
    @inline(__always) func code(_ t: UnsafeRawPointer, _ i: Int, lane: Int) -> Int {
        let p = Self.codePlace(i, bits: bits), codes = t + 32
        var c = (Int(codes.load(fromByteOffset: p.byte + lane, as: UInt8.self)) >> p.shift) & ((1 << p.width) - 1)
        if let h = p.high { c |= ((Int(codes.load(fromByteOffset: h.byte + lane, as: UInt8.self)) >> h.shift) & 1) << 2 }
        return c
    }

    /// Replaces the code of dimension i of `lane` (other lanes' bits untouched: a ring slot is overwritten).
    @inline(__always) func setCode(_ t: UnsafeMutableRawPointer, _ i: Int, lane: Int, _ c: Int) {
        let p = Self.codePlace(i, bits: bits), codes = t + 32
        @inline(__always) func put(_ byte: Int, _ shift: Int, _ width: Int, _ v: Int) {
            let mask = UInt8(((1 << width) - 1) << shift)
            let old = codes.load(fromByteOffset: byte + lane, as: UInt8.self)
            codes.storeBytes(of: (old & ~mask) | (UInt8(truncatingIfNeeded: v << shift) & mask), toByteOffset: byte + lane, as: UInt8.self)
        }
        put(p.byte, p.shift, p.width, c)
        if let h = p.high { put(h.byte, h.shift, 1, c >> 2) }
    }

    /// Encodes each vector as a TurboStore record (TurboEncoder), then scatters it into its lane.
    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        let d = geometry.headDim
        withUnsafeTemporaryAllocation(byteCount: TurboRecord.bytes(headDim: d, bits: bits) + 8, alignment: 16) { buffer in
            let r = buffer.baseAddress!
            for t in 0..<count {
                let slot = (firstPosition + t) % geometry.capacity, lane = slot % 16
                for h in 0..<geometry.headCount {
                    encoder.encode(src + t * tokenStride + h * d, d, into: r)
                    let dst = tile(head: h, slot: slot)
                    dst.storeBytes(of: r.loadUnaligned(as: UInt16.self), toByteOffset: 2 * lane, as: UInt16.self)
                    for i in 0..<d { setCode(dst, i, lane: lane, TurboEncoder.codeScalar(UnsafeRawPointer(r), i, bits: bits)) }
                }
            }
        }
    }

    /// Scalar decode (rotated domain): out = scale · centroid[code] per coordinate.
    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim, centroids = encoder.codebook.centroids
        for (j, p) in positions.enumerated() {
            let slot = p % geometry.capacity, lane = slot % 16
            let t = UnsafeRawPointer(tile(head: head, slot: slot))
            let scale = halfToFloat(t.loadUnaligned(fromByteOffset: 2 * lane, as: UInt16.self))
            for i in 0..<d { out[j * d + i] = scale * centroids[code(t, i, lane: lane)] }
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
        let d = geometry.headDim, bits = self.bits, lut = lookupTable, lanes16 = self.lanes16
        // The tile's keys [d, 16] f32, the partial sums [16, 16] of `scoreTile`, one result row [16].
        withUnsafeTemporaryAllocation(byteCount: (d + 17) * 64, alignment: 64) { buffer in
            let keys = buffer.baseAddress!, partial = keys + d * 64, lanes = partial + 16 * 64
            var j = 0
            while j < positions.count {
                let slot = (positions.lowerBound + j) % geometry.capacity
                let lane0 = slot % 16
                let n = min(16 - lane0, positions.count - j)
                let t = UnsafeRawPointer(tile(head: head, slot: slot))
                let scale = halfToFloat(t.load(as: SIMD16<UInt16>.self))
                // A constant width per arm, so each decoder's shifts are immediates.
                switch bits {
                case 2: Self.decodeTile2(t + 32, d, lut, scale, keys)
                case 3: Self.decodeTile3(t + 32, d, lut, scale, keys)
                default: Self.decodeTile4(t + 32, d, lut, scale, keys)
                }
                for g in 0..<queryCount {
                    Self.scoreTile(queries + g * d * 4, UnsafeRawPointer(keys), d, lanes16, partial: partial, into: lanes)
                    TileDot.copyLanes(UnsafeRawPointer(lanes), from: lane0, count: n, to: out + g * outStride + j)
                }
                j += n
            }
        }
    }

    /// Codes → keys of one dimension: table[x & 15] · scale, rounded as the row kernel's decoded row (the
    /// table repeats the centroids; fma(c, s, −0) = c·s).
    @inline(__always) static func keys(_ lut: SIMD16<Float>, _ scale: SIMD16<Float>, _ x: SIMD16<Int32>) -> SIMD16<Float> {
        SIMD16<Float>(repeating: -0.0).addingProduct(CodeLookup.lookup16(lut, x), scale)
    }

    /// turbo4 codes [d/2, 16] → keys [d, 16] f32.
    @inline(never)
    static func decodeTile4(_ codes: UnsafeRawPointer, _ d: Int, _ lut: SIMD16<Float>, _ scale: SIMD16<Float>,
                            _ dst: UnsafeMutableRawPointer) {
        var p = 0
        while p < d / 2 {
            let x = Lanes.bytes(codes, 16 * p)
            dst.storeBytes(of: keys(lut, scale, x), toByteOffset: 128 * p, as: SIMD16<Float>.self)
            dst.storeBytes(of: keys(lut, scale, x &>> 4), toByteOffset: 128 * p + 64, as: SIMD16<Float>.self)
            p += 1
        }
    }

    /// turbo2 codes [d/4, 16] → keys [d, 16] f32.
    @inline(never)
    static func decodeTile2(_ codes: UnsafeRawPointer, _ d: Int, _ lut: SIMD16<Float>, _ scale: SIMD16<Float>,
                            _ dst: UnsafeMutableRawPointer) {
        var p = 0
        while p < d / 4 {
            let x = Lanes.bytes(codes, 16 * p)
            dst.storeBytes(of: keys(lut, scale, x), toByteOffset: 256 * p, as: SIMD16<Float>.self)
            dst.storeBytes(of: keys(lut, scale, x &>> 2), toByteOffset: 256 * p + 64, as: SIMD16<Float>.self)
            dst.storeBytes(of: keys(lut, scale, x &>> 4), toByteOffset: 256 * p + 128, as: SIMD16<Float>.self)
            dst.storeBytes(of: keys(lut, scale, x &>> 6), toByteOffset: 256 * p + 192, as: SIMD16<Float>.self)
            p += 1
        }
    }

    /// turbo3 codes [d/8, 3, 16] → keys [d, 16] f32: index = low 2 bits | high bit << 2.
    @inline(never)
    static func decodeTile3(_ codes: UnsafeRawPointer, _ d: Int, _ lut: SIMD16<Float>, _ scale: SIMD16<Float>,
                            _ dst: UnsafeMutableRawPointer) {
        let three = SIMD16<Int32>(repeating: 3), four = SIMD16<Int32>(repeating: 4)
        var g = 0
        while g < d / 8 {
            let a = Lanes.bytes(codes, 48 * g), b = Lanes.bytes(codes, 48 * g + 16)
            let h = Lanes.bytes(codes, 48 * g + 32) &<< 2
            @inline(__always) func put(_ k: Int, _ low: SIMD16<Int32>, _ high: SIMD16<Int32>) {
                dst.storeBytes(of: keys(lut, scale, (low & three) | (high & four)), toByteOffset: 512 * g + 64 * k, as: SIMD16<Float>.self)
            }
            put(0, a, h); put(1, a &>> 2, h &>> 1); put(2, a &>> 4, h &>> 2); put(3, a &>> 6, h &>> 3)
            put(4, b, h &>> 4); put(5, b &>> 2, h &>> 5); put(6, b &>> 4, h &>> 6); put(7, b &>> 6, h &>> 7)
            g += 1
        }
    }

    /// out[lane] = q · k[·, lane] in the row kernel's order (VectorRowKernels.dot on the decoded row), so
    /// that every score is bitwise the row kernel's: for each m < 16, acc0 = fma chain over the even
    /// 16-dim chunks c of q[16c+m]·k[16c+m, lane], acc1 the same over the odd chunks, s_m = acc0 + acc1;
    /// then its hsum tree (s_m + s_{m+8}, then + 4, + 2, + 1). q: d f32; k: [d, 16] f32; partial:
    /// [16, 16] f32 scratch; sixteen = 16 from a stored property (a constant trip count gets unrolled into
    /// xmm pieces). Every addition is fma(x, 1, y) (a tree of stdlib `+` became xmm pieces). Not inlined
    /// and writing through a pointer, as in TiledFP8KeyStore.
    @inline(never)
    static func scoreTile(_ q: UnsafeRawPointer, _ k: UnsafeRawPointer, _ d: Int, _ sixteen: Int,
                          partial: UnsafeMutableRawPointer, into out: UnsafeMutableRawPointer) {
        let chunks = d / 16, one = SIMD16<Float>(repeating: 1)
        @inline(__always) func kc(_ i: Int) -> SIMD16<Float> { k.load(fromByteOffset: i * 64, as: SIMD16<Float>.self) }
        @inline(__always) func qb(_ i: Int) -> SIMD16<Float> { SIMD16<Float>(repeating: q.loadUnaligned(fromByteOffset: i * 4, as: Float.self)) }
        var m = 0
        while m < sixteen {
            // Classes m..<m+4 at once: eight independent FMA chains (a: even chunks, b: odd chunks).
            var a0 = SIMD16<Float>(), b0 = SIMD16<Float>(), a1 = SIMD16<Float>(), b1 = SIMD16<Float>()
            var a2 = SIMD16<Float>(), b2 = SIMD16<Float>(), a3 = SIMD16<Float>(), b3 = SIMD16<Float>()
            var c = 0
            while c + 2 <= chunks {
                let e = 16 * c + m, o = e + 16
                a0 = a0.addingProduct(qb(e), kc(e)); b0 = b0.addingProduct(qb(o), kc(o))
                a1 = a1.addingProduct(qb(e + 1), kc(e + 1)); b1 = b1.addingProduct(qb(o + 1), kc(o + 1))
                a2 = a2.addingProduct(qb(e + 2), kc(e + 2)); b2 = b2.addingProduct(qb(o + 2), kc(o + 2))
                a3 = a3.addingProduct(qb(e + 3), kc(e + 3)); b3 = b3.addingProduct(qb(o + 3), kc(o + 3))
                c += 2
            }
            if c < chunks {
                let e = 16 * c + m
                a0 = a0.addingProduct(qb(e), kc(e)); a1 = a1.addingProduct(qb(e + 1), kc(e + 1))
                a2 = a2.addingProduct(qb(e + 2), kc(e + 2)); a3 = a3.addingProduct(qb(e + 3), kc(e + 3))
            }
            partial.storeBytes(of: a0.addingProduct(b0, one), toByteOffset: m * 64, as: SIMD16<Float>.self)
            partial.storeBytes(of: a1.addingProduct(b1, one), toByteOffset: (m + 1) * 64, as: SIMD16<Float>.self)
            partial.storeBytes(of: a2.addingProduct(b2, one), toByteOffset: (m + 2) * 64, as: SIMD16<Float>.self)
            partial.storeBytes(of: a3.addingProduct(b3, one), toByteOffset: (m + 3) * 64, as: SIMD16<Float>.self)
            m += 4
        }
        @inline(__always) func s(_ i: Int) -> SIMD16<Float> { partial.load(fromByteOffset: i * 64, as: SIMD16<Float>.self) }
        let t0 = s(0).addingProduct(s(8), one), t1 = s(1).addingProduct(s(9), one)
        let t2 = s(2).addingProduct(s(10), one), t3 = s(3).addingProduct(s(11), one)
        let t4 = s(4).addingProduct(s(12), one), t5 = s(5).addingProduct(s(13), one)
        let t6 = s(6).addingProduct(s(14), one), t7 = s(7).addingProduct(s(15), one)
        let u0 = t0.addingProduct(t4, one), u1 = t1.addingProduct(t5, one)
        let u2 = t2.addingProduct(t6, one), u3 = t3.addingProduct(t7, one)
        let v0 = u0.addingProduct(u2, one), v1 = u1.addingProduct(u3, one)
        out.storeBytes(of: v0.addingProduct(v1, one), as: SIMD16<Float>.self)
    }
}
