// FP8 key storage laid out for scoring 16 positions per SIMD vector. Source: FP8Scheme.swift (the
// same records: an f16 scale per head vector and one OCP FP8 code per value), rearranged like
// TiledBlockKeyStore.swift.
//
// Layout: [headCount, tiles, tile], tiles = ⌈capacity / 16⌉, slot s = p % capacity in tile s / 16,
// lane s % 16. A tile holds scale [16] f16 (32 bytes), then codes [headDim, 16 lanes] u8: 16 bytes per
// dimension, so `decode16` turns dimension i of 16 positions into one f32 vector, and a query scores
// 16 positions with headDim broadcast FMAs and no horizontal sum per (query, position).
// Score per lane: (Σ_i q_i·(c_i·halfFactor)) · scale, the sum in 8 FMA chains added in order.
// Deviation from the row kernel it replaced (decoded row · query, then · scale): the summation order
// (rounding only). Values stay in FP8Store.
import GodwitKernels

final class TiledFP8KeyStore: KeyStore {
    let geometry: KVStoreGeometry
    let format: FP8Scheme.Format
    let storage: UnsafeMutableRawPointer
    let tiles: Int
    /// Bytes of one tile: 16 · (2 + headDim).
    let tileBytes: Int

    init(_ g: KVStoreGeometry, format: FP8Scheme.Format) {
        precondition(g.headDim % 16 == 0, "TiledFP8KeyStore needs a head dim multiple of 16")
        geometry = g
        self.format = format
        tiles = (g.capacity + 15) / 16
        tileBytes = 16 * FP8Record.bytes(headDim: g.headDim)
        // Not zero-filled: pages are committed as positions are written.
        storage = .allocate(byteCount: max(1, tiles * tileBytes * g.headCount), alignment: 64)
    }

    deinit { storage.deallocate() }

    var allocatedBytes: Int { tiles * tileBytes * geometry.headCount }
    func bytesHeld(tokens: Int) -> Int { min(tokens, geometry.capacity) * FP8Record.bytes(headDim: geometry.headDim) * geometry.headCount }
    /// Prepared query: the f32 query [headDim].
    var preparedQueryBytes: Int { geometry.headDim * 4 }

    @inline(__always) func tile(head: Int, slot: Int) -> UnsafeMutableRawPointer {
        storage + (head * tiles + slot / 16) * tileBytes
    }

    /// Encodes each vector as an FP8Store record, then scatters it into its lane.
    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        let d = geometry.headDim
        withUnsafeTemporaryAllocation(byteCount: FP8Record.bytes(headDim: d), alignment: 16) { buffer in
            let r = buffer.baseAddress!
            for t in 0..<count {
                let slot = (firstPosition + t) % geometry.capacity, lane = slot % 16
                for h in 0..<geometry.headCount {
                    let x = src + t * tokenStride + h * d
                    if format == .e4m3 { FP8Store.encode(FP8E4M3.self, x, d, into: r) } else { FP8Store.encode(FP8E5M2.self, x, d, into: r) }
                    let dst = tile(head: h, slot: slot)
                    dst.storeBytes(of: r.loadUnaligned(as: UInt16.self), toByteOffset: 2 * lane, as: UInt16.self)
                    for i in 0..<d { dst.storeBytes(of: r.load(fromByteOffset: 2 + i, as: UInt8.self), toByteOffset: 32 + 16 * i + lane, as: UInt8.self) }
                }
            }
        }
    }

    /// Gathers each record back and decodes it with FP8Store's scalar twin.
    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim
        withUnsafeTemporaryAllocation(byteCount: FP8Record.bytes(headDim: d), alignment: 16) { buffer in
            let r = buffer.baseAddress!
            for (j, p) in positions.enumerated() {
                let slot = p % geometry.capacity, lane = slot % 16
                let src = UnsafeRawPointer(tile(head: head, slot: slot))
                r.storeBytes(of: src.loadUnaligned(fromByteOffset: 2 * lane, as: UInt16.self), as: UInt16.self)
                for i in 0..<d { r.storeBytes(of: src.load(fromByteOffset: 32 + 16 * i + lane, as: UInt8.self), toByteOffset: 2 + i, as: UInt8.self) }
                if format == .e4m3 {
                    FP8Store.decodeScalar(FP8E4M3.self, UnsafeRawPointer(r), d, into: out + j * d)
                } else {
                    FP8Store.decodeScalar(FP8E5M2.self, UnsafeRawPointer(r), d, into: out + j * d)
                }
            }
        }
    }

    func prepareQuery(_ q: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) {
        dst.copyMemory(from: q, byteCount: geometry.headDim * 4)
    }

    func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                into out: UnsafeMutablePointer<Float>, outStride: Int) {
        let d = geometry.headDim
        // The tile's codes as f32 [d, 16] (times halfFactor), its scales [16], one result row [16].
        withUnsafeTemporaryAllocation(byteCount: (d + 2) * 64, alignment: 16) { buffer in
            let codes = buffer.baseAddress!, scales = codes + d * 64, lanes = scales + 64
            var j = 0
            while j < positions.count {
                let slot = (positions.lowerBound + j) % geometry.capacity
                let lane0 = slot % 16
                let n = min(16 - lane0, positions.count - j)
                let t = UnsafeRawPointer(tile(head: head, slot: slot))
                scales.storeBytes(of: halfToFloat(t.load(as: SIMD16<UInt16>.self)), as: SIMD16<Float>.self)
                if format == .e4m3 { Self.decodeColumns(FP8E4M3.self, t + 32, d, codes) } else { Self.decodeColumns(FP8E5M2.self, t + 32, d, codes) }
                for g in 0..<queryCount {
                    Self.scoreTile(queries + g * d * 4, UnsafeRawPointer(codes), d, UnsafeRawPointer(scales), into: lanes)
                    TileDot.copyLanes(UnsafeRawPointer(lanes), from: lane0, count: n, to: out + g * outStride + j)
                }
                j += n
            }
        }
    }

    /// codes [d, 16] u8 → [d, 16] f32 values / scale (code value · halfFactor).
    @inline(__always)
    static func decodeColumns<E: FP8Encoding>(_: E.Type, _ src: UnsafeRawPointer, _ d: Int, _ dst: UnsafeMutableRawPointer) {
        let f = SIMD16<Float>(repeating: E.halfFactor)
        for i in 0..<d { dst.storeBytes(of: E.decode16(src + 16 * i) * f, toByteOffset: 64 * i, as: SIMD16<Float>.self) }
    }

    /// out[lane] = (Σ_i q[i]·k[i, lane]) · scale[lane] over d (a multiple of 8) dims (`TileDot.sums`,
    /// then fma(s, scale, −0) = s·scale). Not inlined and writing through a pointer: inlined into the tile loop (or
    /// returning a SIMD16, which travels in four xmm registers) LLVM split the vectors into xmm pieces.
    @inline(never)
    static func scoreTile(_ q: UnsafeRawPointer, _ k: UnsafeRawPointer, _ d: Int, _ scale: UnsafeRawPointer,
                          into out: UnsafeMutableRawPointer) {
        let s = TileDot.sums(q, k, d)
        out.storeBytes(of: SIMD16<Float>(repeating: -0.0).addingProduct(s, scale.load(as: SIMD16<Float>.self)), as: SIMD16<Float>.self)
    }
}
