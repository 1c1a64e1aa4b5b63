// q8_0 / q4_0 key storage laid out for scoring 16 positions per SIMD vector (the ggml block caches'
// decode path). Source: ggml block_q8_0 / block_q4_0 (ggml-common.h) — the same bytes per block,
// rearranged; scores as GGMLBlockScores.swift (integer-exact block sums, then d_k·d_q scaling).
//
// Layout: [headCount, tiles, blocks, tile block], tiles = ⌈capacity / 16⌉, slot s = p % capacity in
// tile s / 16, lane s % 16. A tile block holds the 16 lanes' block of 32 values:
//   d     [16] f16                              (32 bytes)
//   q8_0: codes [32 dims, 16 lanes] int8        (512 bytes)  → 34 bytes per position, as block_q8_0
//   q4_0: nibbles [16, 16 lanes] u8: low = dim i, high = dim i + 16 (ggml's qs order), (256 bytes)
//                                                             → 18 bytes per position, as block_q4_0
// So dimension i of 16 consecutive slots is one 16-byte load, and a query row gets the integer block
// sums of 16 positions with 32 broadcast FMAs and no horizontal sum per (query, position) — the
// reduction that dominated BlockStore's scores at depth.
//
// Numerics equal BlockStore's bitwise: a block sum Σ k_i·q_i is an integer below 2²⁴ and therefore
// exact in f32 in any order; per position the score is acc = 0, acc = acc + (d_k·d_q)·isum over the
// blocks in order — the same rounded operations as the row kernel, lane by lane.
// Values stay row-major (BlockStore).
import GodwitGGUF
import GodwitKernels

final class TiledBlockKeyStore: KeyStore {
    let geometry: KVStoreGeometry
    let type: GGMLType
    let storage: UnsafeMutableRawPointer
    let blocks: Int
    let tiles: Int
    /// Bytes of the code part of one tile block: 512 (q8_0) or 256 (q4_0).
    let codeBytes: Int
    /// Bytes of one tile block: 32 bytes of scales + codes.
    let blockTileBytes: Int
    /// Bytes of one tile: blocks · blockTileBytes.
    let tileBytes: Int
    /// Values per block (32), kept opaque to the optimizer (see `TileDot.sums`).
    let blockDims: Int

    /// The formats this store lays out in tiles.
    static func supports(_ type: GGMLType) -> Bool { type == .q8_0 || type == .q4_0 }

    init(_ g: KVStoreGeometry, type: GGMLType) {
        precondition(Self.supports(type) && g.headDim % 32 == 0, "TiledBlockKeyStore: q8_0/q4_0 with 32-value blocks")
        geometry = g
        self.type = type
        blocks = g.headDim / 32
        tiles = (g.capacity + 15) / 16
        codeBytes = type == .q8_0 ? 512 : 256
        blockTileBytes = 32 + codeBytes
        tileBytes = blocks * blockTileBytes
        blockDims = 32
        // Not zero-filled: pages are committed as positions are written.
        storage = .allocate(byteCount: max(1, tiles * tileBytes * g.headCount), alignment: 64)
    }

    deinit { storage.deallocate() }

    var allocatedBytes: Int { tiles * tileBytes * geometry.headCount }
    func bytesHeld(tokens: Int) -> Int { min(tokens, geometry.capacity) * blocks * type.typeSize * geometry.headCount }
    /// As BlockStore: [codes: headDim][d: blocks][s: blocks] f32, rounded up to 64 bytes.
    var preparedQueryBytes: Int { ((geometry.headDim + 2 * blocks) * 4 + 63) / 64 * 64 }

    @inline(__always) func tile(head: Int, slot: Int) -> UnsafeMutableRawPointer {
        storage + (head * tiles + slot / 16) * tileBytes
    }

    /// Quantizes each token's row as ggml-cpu's from_float does (quantizeRowCPU), then scatters its blocks into lanes.
    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        let d = geometry.headDim, bytes = type.typeSize
        withUnsafeTemporaryAllocation(byteCount: blocks * bytes, alignment: 16) { buffer in
            let row = buffer.baseAddress!
            for t in 0..<count {
                let slot = (firstPosition + t) % geometry.capacity, lane = slot % 16
                for h in 0..<geometry.headCount {
                    try! quantizeRowCPU(type: type, src: src + t * tokenStride + h * d, dst: row, count: d)
                    let base = tile(head: h, slot: slot)
                    for b in 0..<blocks {
                        let blk = UnsafeRawPointer(row + b * bytes), dst = base + b * blockTileBytes
                        dst.storeBytes(of: blk.loadUnaligned(as: UInt16.self), toByteOffset: lane * 2, as: UInt16.self)
                        for i in 0..<(bytes - 2) {
                            dst.storeBytes(of: blk.load(fromByteOffset: 2 + i, as: UInt8.self), toByteOffset: 32 + i * 16 + lane, as: UInt8.self)
                        }
                    }
                }
            }
        }
    }

    /// Gathers one position's blocks back into a ggml row [blocks · typeSize] bytes.
    func gatherRow(head: Int, position p: Int, into row: UnsafeMutableRawPointer) {
        let bytes = type.typeSize
        let slot = p % geometry.capacity, lane = slot % 16
        let base = UnsafeRawPointer(tile(head: head, slot: slot))
        for b in 0..<blocks {
            let src = base + b * blockTileBytes, blk = row + b * bytes
            blk.storeBytes(of: src.loadUnaligned(fromByteOffset: lane * 2, as: UInt16.self), as: UInt16.self)
            for i in 0..<(bytes - 2) {
                blk.storeBytes(of: src.load(fromByteOffset: 32 + i * 16 + lane, as: UInt8.self), toByteOffset: 2 + i, as: UInt8.self)
            }
        }
    }

    /// Gathers each position's blocks back into a ggml row and dequantizes it.
    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim
        withUnsafeTemporaryAllocation(byteCount: blocks * type.typeSize, alignment: 16) { buffer in
            let row = buffer.baseAddress!
            for (j, p) in positions.enumerated() {
                gatherRow(head: head, position: p, into: row)
                try! dequantizeRow(type: type, src: UnsafeRawPointer(row), dst: out + j * d, count: d)
            }
        }
    }


    /// Quantizes q to q8_0 and stores [codes: headDim][d: blocks][s: blocks] as f32 (s unused: 0).
    func prepareQuery(_ q: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) {
        let d = geometry.headDim
        let out = dst.assumingMemoryBound(to: Float.self)
        withUnsafeTemporaryAllocation(byteCount: blocks * GGMLType.q8_0.typeSize, alignment: 16) { tmp in
            try! quantizeRowCPU(type: .q8_0, src: q, dst: tmp.baseAddress!, count: d)
            try! decodeBlockCodes(type: .q8_0, src: tmp.baseAddress!, rowBytes: 0, rows: 1, count: d,
                                  codes: out, scales: out + d, mins: out + d + blocks)
        }
    }

    func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                into out: UnsafeMutablePointer<Float>, outStride: Int) {
        let d = geometry.headDim, nb = blocks, qStride = preparedQueryBytes
        // The tile's codes as f32 [d, 16], its scales as f32 [blocks, 16], one spill row [16].
        withUnsafeTemporaryAllocation(byteCount: (d + nb + 1) * 64, alignment: 16) { buffer in
            let codes = buffer.baseAddress!, scales = codes + d * 64, lanes = scales + nb * 64
            var j = 0
            while j < positions.count {
                let slot = (positions.lowerBound + j) % geometry.capacity
                let lane0 = slot % 16
                let n = min(16 - lane0, positions.count - j)
                let t = UnsafeRawPointer(tile(head: head, slot: slot))
                if type == .q8_0 {
                    Self.decodeQ8_0(t, blocks: nb, blockTileBytes: blockTileBytes, codes: codes, scales: scales)
                } else {
                    Self.decodeQ4_0(t, blocks: nb, blockTileBytes: blockTileBytes, codes: codes, scales: scales)
                }
                for g in 0..<queryCount {
                    let q = queries + g * qStride
                    let dq = (q + d * 4).assumingMemoryBound(to: Float.self)
                    Self.scoreTile(q, UnsafeRawPointer(codes), UnsafeRawPointer(scales), dq, nb, blockDims, into: lanes)
                    TileDot.copyLanes(UnsafeRawPointer(lanes), from: lane0, count: n, to: out + g * outStride + j)
                }
                j += n
            }
        }
    }

    /// Scores of one prepared query against a decoded tile: per lane, acc = 0, then
    /// acc = acc + (d_k·d_q)·isum over the blocks in order. codes [nb·n, 16] f32, scales [nb, 16] f32,
    /// dq [nb]; the 16 scores go to `out` (returned, a SIMD16 travels in four xmm registers). Not
    /// inlined: inlined into the tile loop, LLVM scattered its vectors into xmm pieces (a call per
    /// query row and tile costs little beside nb·32 FMAs).
    @inline(never)
    static func scoreTile(_ q: UnsafeRawPointer, _ codes: UnsafeRawPointer, _ scales: UnsafeRawPointer,
                          _ dq: UnsafePointer<Float>, _ nb: Int, _ n: Int, into out: UnsafeMutableRawPointer) {
        var acc = SIMD16<Float>()
        for b in 0..<nb {
            // Integer block sums (exact: integers < 2²⁴, so the summation order does not matter).
            let isum = TileDot.sums(q + b * n * 4, codes + b * n * 64, n)
            acc = scaledAdd(acc, scales.load(fromByteOffset: b * 64, as: SIMD16<Float>.self), dq[b], isum)
        }
        out.storeBytes(of: acc, as: SIMD16<Float>.self)
    }

    /// acc + (dk·dq)·isum, rounded after each operation (no fusion), written with vector FMAs only:
    /// a·b = fma(a, b, −0) and x + y = fma(x, 1, y) are exact identities. The stdlib's SIMD `*` and `+`
    /// are element loops, which here made LLVM scatter the block loop into xmm pieces.
    @inline(__always)
    static func scaledAdd(_ acc: SIMD16<Float>, _ dk: SIMD16<Float>, _ dq: Float, _ isum: SIMD16<Float>) -> SIMD16<Float> {
        let negativeZero = SIMD16<Float>(repeating: -0.0)
        let scale = negativeZero.addingProduct(dk, SIMD16<Float>(repeating: dq))
        let term = negativeZero.addingProduct(scale, isum)
        return term.addingProduct(acc, SIMD16<Float>(repeating: 1))
    }

    /// q8_0 tile → codes [d, 16] f32, scales [blocks, 16] f32.
    @inline(__always)
    static func decodeQ8_0(_ t: UnsafeRawPointer, blocks: Int, blockTileBytes: Int,
                           codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer) {
        for b in 0..<blocks {
            let src = t + b * blockTileBytes
            scales.storeBytes(of: halfToFloat(src.load(as: SIMD16<UInt16>.self)), toByteOffset: b * 64, as: SIMD16<Float>.self)
            let dst = codes + b * 32 * 64
            for i in 0..<32 {
                dst.storeBytes(of: Lanes.float(Lanes.signedBytes(src, 32 + i * 16)), toByteOffset: i * 64, as: SIMD16<Float>.self)
            }
        }
    }

    /// q4_0 tile → codes (nibble − 8) [d, 16] f32, scales [blocks, 16] f32.
    @inline(__always)
    static func decodeQ4_0(_ t: UnsafeRawPointer, blocks: Int, blockTileBytes: Int,
                           codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer) {
        let eight = SIMD16<Int32>(repeating: 8)
        for b in 0..<blocks {
            let src = t + b * blockTileBytes
            scales.storeBytes(of: halfToFloat(src.load(as: SIMD16<UInt16>.self)), toByteOffset: b * 64, as: SIMD16<Float>.self)
            let dst = codes + b * 32 * 64
            for i in 0..<16 {
                let q = Lanes.bytes(src, 32 + i * 16)
                dst.storeBytes(of: Lanes.float((q & 15) &- eight), toByteOffset: i * 64, as: SIMD16<Float>.self)
                dst.storeBytes(of: Lanes.float((q &>> 4) &- eight), toByteOffset: (i + 16) * 64, as: SIMD16<Float>.self)
            }
        }
    }
}
