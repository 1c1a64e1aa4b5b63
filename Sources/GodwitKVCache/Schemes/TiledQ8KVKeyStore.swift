// Q8_KV key storage laid out for scoring 16 positions per SIMD vector. Source: Q8KVScheme.swift
// (ik_llama.cpp GGML_TYPE_Q8_KV: the same records — an f32 scale per head vector and one int8 code
// per value), rearranged like TiledBlockKeyStore.swift.
//
// Layout: [headCount, tiles, tile], tiles = ⌈capacity / 16⌉, slot s = p % capacity in tile s / 16,
// lane s % 16. A tile holds
//   d     [16 lanes] f32                        (64 bytes)
//   codes [headDim, 16 lanes] int8              (16 · headDim bytes)  → 4 + headDim bytes per position,
// as a Q8KVRecord. Dimension i of 16 consecutive slots is one 16-byte load, so a query row gets the
// integer dots of 16 positions with headDim broadcast FMAs (TileDot.sums) and no horizontal sum per
// (query, position).
//
// Numerics equal Q8KVStore's row formula bitwise: Σ_i k_i·q_i is an integer of magnitude
// ≤ headDim · 127² < 2²⁴ (headDim ≤ 1024, checked by `supports`), hence exact in f32 in any
// summation order and equal to Float(Int32 dot); the score is then isum · (d_k·d_q), the same two
// rounded products. Each score still depends only on its own key and query (split independence).
import GodwitKernels

final class TiledQ8KVKeyStore: KeyStore {
    let geometry: KVStoreGeometry
    /// [headCount, tiles, tileBytes]: per tile d [16] f32, then codes [headDim, 16] int8.
    let storage: UnsafeMutableRawPointer
    let tiles: Int
    /// Bytes of one tile: 16 · (4 + headDim).
    let tileBytes: Int
    /// Byte offset of the f32 query codes in a prepared query (after its Q8KVRecord, 64-byte aligned).
    let queryCodesOffset: Int

    /// Head dims whose integer dots stay exact in f32 (headDim · 127² < 2²⁴) and fill 8-dim FMA chains.
    static func supports(headDim: Int) -> Bool { headDim > 0 && headDim % 32 == 0 && headDim <= 1024 }

    init(_ g: KVStoreGeometry) {
        precondition(Self.supports(headDim: g.headDim), "TiledQ8KVKeyStore: head dim a multiple of 32, at most 1024")
        geometry = g
        tiles = (g.capacity + 15) / 16
        tileBytes = 16 * Q8KVRecord.bytes(headDim: g.headDim)
        queryCodesOffset = (Q8KVRecord.bytes(headDim: g.headDim) + 63) / 64 * 64
        // Not zero-filled: pages are committed as positions are written.
        storage = .allocate(byteCount: max(1, tiles * tileBytes * g.headCount), alignment: 64)
    }

    deinit { storage.deallocate() }

    var allocatedBytes: Int { tiles * tileBytes * geometry.headCount }
    func bytesHeld(tokens: Int) -> Int { min(tokens, geometry.capacity) * Q8KVRecord.bytes(headDim: geometry.headDim) * geometry.headCount }
    /// Prepared query: [Q8KVRecord (4 + headDim bytes), padded to 64][codes: headDim] f32 (the int8
    /// codes as exact floats, for the tile FMAs).
    var preparedQueryBytes: Int { queryCodesOffset + geometry.headDim * 4 }

    @inline(__always) func tile(head: Int, slot: Int) -> UnsafeMutableRawPointer {
        storage + (head * tiles + slot / 16) * tileBytes
    }

    /// Encodes each vector as a Q8KVRecord (Q8KVStore.encode), then scatters it into its lane.
    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        let d = geometry.headDim
        withUnsafeTemporaryAllocation(byteCount: Q8KVRecord.bytes(headDim: d), alignment: 16) { buffer in
            let r = buffer.baseAddress!
            for t in 0..<count {
                let slot = (firstPosition + t) % geometry.capacity, lane = slot % 16
                for h in 0..<geometry.headCount {
                    Q8KVStore.encode(src + t * tokenStride + h * d, d, into: r)
                    let dst = tile(head: h, slot: slot)
                    dst.storeBytes(of: r.loadUnaligned(as: Float.self), toByteOffset: 4 * lane, as: Float.self)
                    for i in 0..<d { dst.storeBytes(of: r.load(fromByteOffset: 4 + i, as: UInt8.self), toByteOffset: 64 + 16 * i + lane, as: UInt8.self) }
                }
            }
        }
    }

    /// Scalar twin decode: out = q · d per value, gathered from the lanes.
    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim
        for (j, p) in positions.enumerated() {
            let slot = p % geometry.capacity, lane = slot % 16
            let t = UnsafeRawPointer(tile(head: head, slot: slot))
            let s = t.load(fromByteOffset: 4 * lane, as: Float.self)
            for i in 0..<d { out[j * d + i] = Float(t.load(fromByteOffset: 64 + 16 * i + lane, as: Int8.self)) * s }
        }
    }

    /// The query as a Q8KVRecord (Q8KVStore.encode), then its codes as f32.
    func prepareQuery(_ q: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) {
        let d = geometry.headDim
        Q8KVStore.encode(q, d, into: dst)
        var i = 0
        while i < d {
            dst.storeBytes(of: Lanes.float(Lanes.signedBytes(dst, 4 + i)), toByteOffset: queryCodesOffset + 4 * i, as: SIMD16<Float>.self)
            i += 16
        }
    }

    func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                into out: UnsafeMutablePointer<Float>, outStride: Int) {
        let d = geometry.headDim, qStride = preparedQueryBytes, qc = queryCodesOffset
        // The tile's codes as f32 [d, 16], one result row [16].
        withUnsafeTemporaryAllocation(byteCount: (d + 1) * 64, alignment: 64) { buffer in
            let codes = buffer.baseAddress!, lanes = codes + d * 64
            var j = 0
            while j < positions.count {
                let slot = (positions.lowerBound + j) % geometry.capacity
                let lane0 = slot % 16
                let n = min(16 - lane0, positions.count - j)
                let t = UnsafeRawPointer(tile(head: head, slot: slot))
                Self.decodeCodes(t + 64, d, into: codes)
                for g in 0..<queryCount {
                    let q = queries + g * qStride
                    Self.scoreTile(q + qc, UnsafeRawPointer(codes), d, t, q.loadUnaligned(as: Float.self), into: lanes)
                    TileDot.copyLanes(UnsafeRawPointer(lanes), from: lane0, count: n, to: out + g * outStride + j)
                }
                j += n
            }
        }
    }

    /// codes [d, 16] int8 → [d, 16] f32.
    @inline(__always)
    static func decodeCodes(_ src: UnsafeRawPointer, _ d: Int, into dst: UnsafeMutableRawPointer) {
        for i in 0..<d { dst.storeBytes(of: Lanes.float(Lanes.signedBytes(src, 16 * i)), toByteOffset: 64 * i, as: SIMD16<Float>.self) }
    }

    /// out[lane] = isum[lane] · (d_k[lane]·d_q), isum = Σ_i q[i]·k[i, lane] (exact integers,
    /// `TileDot.sums`); products as fma(a, b, −0) = a·b. q: [d] f32 codes; k: [d, 16] f32;
    /// dk: [16] f32. Not inlined and writing through a pointer (as TiledFP8KeyStore.scoreTile: inlined
    /// into the tile loop, LLVM split the vectors into xmm pieces).
    @inline(never)
    static func scoreTile(_ q: UnsafeRawPointer, _ k: UnsafeRawPointer, _ d: Int, _ dk: UnsafeRawPointer, _ dq: Float,
                          into out: UnsafeMutableRawPointer) {
        let isum = TileDot.sums(q, k, d)
        let negativeZero = SIMD16<Float>(repeating: -0.0)
        let scale = negativeZero.addingProduct(dk.load(as: SIMD16<Float>.self), SIMD16<Float>(repeating: dq))
        out.storeBytes(of: negativeZero.addingProduct(isum, scale), as: SIMD16<Float>.self)
    }
}
