// Float key storage (f32 / f16 / bf16) laid out for scoring 16 positions per SIMD vector.
// Layout: [headCount, tiles, headDim, 16] elements, tiles = ⌈capacity / 16⌉; slot s = p % capacity
// lives in tile s / 16, lane s % 16. So dimension i of 16 consecutive slots is one 16-lane load
// (32 bytes for f16), and a query row scores 16 positions with headDim broadcast FMAs and no
// horizontal sum per (query, position) — the cost that dominated prompt attention at depth.
//
// Numerics are bitwise those of the row-major kernel (FloatStoreKernels.scores): accumulator A_l
// holds lane l of the row-major dot's 16-lane accumulator (A_l = fma chain over chunks c of
// q[16c+l]·k[16c+l], from zero), and the tree A_l + A_{l+8} → +4 → +2 → +1 is `hsum`'s. Values stay
// row-major (FloatStore): their weighted sum already streams rows without reductions.
// Requires headDim % 16 == 0 (the scheme falls back to FloatStore otherwise).
import GodwitKernels

final class TiledFloatKeyStore<E: FloatCacheElement>: KeyStore {
    static var lanes: Int { 16 }
    let geometry: KVStoreGeometry
    let storage: UnsafeMutableRawPointer
    let tiles: Int
    /// Bytes of one tile [headDim, 16].
    let tileBytes: Int

    init(_ g: KVStoreGeometry) {
        precondition(g.headDim % 16 == 0, "TiledFloatKeyStore needs a head dim multiple of 16")
        geometry = g
        tiles = (g.capacity + 15) / 16
        tileBytes = g.headDim * 16 * E.byteSize
        // Not zero-filled: pages are committed as positions are written.
        storage = .allocate(byteCount: max(1, tiles * tileBytes * g.headCount), alignment: 64)
    }

    deinit { storage.deallocate() }

    var allocatedBytes: Int { tiles * tileBytes * geometry.headCount }
    func bytesHeld(tokens: Int) -> Int { min(tokens, geometry.capacity) * geometry.headDim * E.byteSize * geometry.headCount }
    var preparedQueryBytes: Int { geometry.headDim * 4 }

    /// Element 0 of slot `slot`'s lane in its tile; dimension i is `i · 16` elements further.
    @inline(__always) func element(head: Int, slot: Int) -> UnsafeMutableRawPointer {
        storage + (head * tiles + slot / 16) * tileBytes + (slot % 16) * E.byteSize
    }

    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        let d = geometry.headDim
        for t in 0..<count {
            let slot = (firstPosition + t) % geometry.capacity
            for h in 0..<geometry.headCount {
                let s = src + t * tokenStride + h * d
                let dst = element(head: h, slot: slot)
                for i in 0..<d { E.store(s[i], dst + i * 16 * E.byteSize) }
            }
        }
    }

    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim
        for (j, p) in positions.enumerated() {
            let e = element(head: head, slot: p % geometry.capacity)
            for i in 0..<d { out[j * d + i] = E.load(e + i * 16 * E.byteSize) }
        }
    }


    /// The query as f32 [headDim], rounded to the element type when `E.roundsQuery` (FloatStore's rule).
    func prepareQuery(_ q: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) {
        let out = dst.assumingMemoryBound(to: Float.self)
        for i in 0..<geometry.headDim {
            if E.roundsQuery {
                var bits: UInt32 = 0
                withUnsafeMutableBytes(of: &bits) { E.store(q[i], $0.baseAddress!) }
                out[i] = withUnsafeBytes(of: &bits) { E.load($0.baseAddress!) }
            } else {
                out[i] = q[i]
            }
        }
    }

    func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                into out: UnsafeMutablePointer<Float>, outStride: Int) {
        // Enter the kernel with a concrete element type (see FloatStoreKernels.swift).
        if E.self == F16Element.self {
            scoresTiles(F16Element.self, queries, queryCount, head, positions, out, outStride)
        } else if E.self == BF16Element.self {
            scoresTiles(BF16Element.self, queries, queryCount, head, positions, out, outStride)
        } else if E.self == F32Element.self {
            scoresTiles(F32Element.self, queries, queryCount, head, positions, out, outStride)
        } else {
            scoresTiles(E.self, queries, queryCount, head, positions, out, outStride)
        }
    }

    /// Walks the tiles that hold `positions` (which never wrap the ring inside one call).
    @inline(__always)
    private func scoresTiles<T: FloatCacheElement>(_: T.Type, _ queries: UnsafeRawPointer, _ rows: Int, _ head: Int,
                                                   _ positions: Range<Int>, _ out: UnsafeMutablePointer<Float>, _ outStride: Int) {
        let d = geometry.headDim
        withUnsafeTemporaryAllocation(byteCount: d * 64, alignment: 64) { buffer in
            let converted = buffer.baseAddress!
            var j = 0
            while j < positions.count {
                let slot = (positions.lowerBound + j) % geometry.capacity
                let lane0 = slot % 16
                let n = min(16 - lane0, positions.count - j)
                let tile = UnsafeRawPointer(storage + (head * tiles + slot / 16) * tileBytes)
                // The tile as f32 [d, 16]: in place for f32 storage, converted once for all rows otherwise.
                let kt: UnsafeRawPointer
                if T.byteSize == 4 {
                    kt = tile
                } else {
                    for i in 0..<d {
                        converted.storeBytes(of: T.load16(tile + i * 16 * T.byteSize), toByteOffset: i * 64, as: SIMD16<Float>.self)
                    }
                    kt = UnsafeRawPointer(converted)
                }
                for g in 0..<rows {
                    let s = Self.scoreTile(queries + g * d * 4, kt, d)
                    let o = out + g * outStride + j
                    if n == 16 {
                        UnsafeMutableRawPointer(o).storeBytes(of: s, as: SIMD16<Float>.self)
                    } else {
                        for l in 0..<n { o[l] = s[lane0 + l] }
                    }
                }
                j += n
            }
        }
    }

    /// Scores of one query row q [d] against the 16 positions of a tile kt [d, 16] f32: lane l of the
    /// result is q · k_l with the row-major kernel's exact operation order (see the file header).
    @inline(__always)
    static func scoreTile(_ q: UnsafeRawPointer, _ kt: UnsafeRawPointer, _ d: Int) -> SIMD16<Float> {
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        var a4 = SIMD16<Float>(), a5 = SIMD16<Float>(), a6 = SIMD16<Float>(), a7 = SIMD16<Float>()
        var a8 = SIMD16<Float>(), a9 = SIMD16<Float>(), a10 = SIMD16<Float>(), a11 = SIMD16<Float>()
        var a12 = SIMD16<Float>(), a13 = SIMD16<Float>(), a14 = SIMD16<Float>(), a15 = SIMD16<Float>()
        var c = 0
        while c < d {
            @inline(__always) func k(_ l: Int) -> SIMD16<Float> { kt.load(fromByteOffset: (c + l) * 64, as: SIMD16<Float>.self) }
            @inline(__always) func q1(_ l: Int) -> SIMD16<Float> {
                SIMD16<Float>(repeating: q.loadUnaligned(fromByteOffset: (c + l) * 4, as: Float.self))
            }
            a0 = a0.addingProduct(q1(0), k(0)); a1 = a1.addingProduct(q1(1), k(1))
            a2 = a2.addingProduct(q1(2), k(2)); a3 = a3.addingProduct(q1(3), k(3))
            a4 = a4.addingProduct(q1(4), k(4)); a5 = a5.addingProduct(q1(5), k(5))
            a6 = a6.addingProduct(q1(6), k(6)); a7 = a7.addingProduct(q1(7), k(7))
            a8 = a8.addingProduct(q1(8), k(8)); a9 = a9.addingProduct(q1(9), k(9))
            a10 = a10.addingProduct(q1(10), k(10)); a11 = a11.addingProduct(q1(11), k(11))
            a12 = a12.addingProduct(q1(12), k(12)); a13 = a13.addingProduct(q1(13), k(13))
            a14 = a14.addingProduct(q1(14), k(14)); a15 = a15.addingProduct(q1(15), k(15))
            c += 16
        }
        // hsum's tree, lane-wise: (l, l+8) → (l, l+4) → (l, l+2) → (0, 1).
        let b0 = a0 + a8, b1 = a1 + a9, b2 = a2 + a10, b3 = a3 + a11
        let b4 = a4 + a12, b5 = a5 + a13, b6 = a6 + a14, b7 = a7 + a15
        let c0 = b0 + b4, c1 = b1 + b5, c2 = b2 + b6, c3 = b3 + b7
        let d0 = c0 + c2, d1 = c1 + c3
        return d0 + d1
    }
}
