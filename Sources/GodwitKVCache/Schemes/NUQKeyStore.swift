// Key store of the KVQuant-style schemes (NUQScheme.swift; KVQuant, arXiv 2401.18079). Keys arrive
// before RoPE; each channel is normalized with the layer's offline thresholds, x = (k − mid)/half
// ([lower, upper] → [−1, 1]), and coded as the nearest of 2^bits per-layer centroids. Channels
// outside [lower, upper] are outliers, kept exactly as f16 with their index (up to
// NUQKeyRecord.outlierCapacity per vector; beyond that the largest |x| win and the rest are
// clamped to the end centroids). Position 0 (the attention sink) is kept as f16.
// Layout: 16-position tiles, [headCount, tiles, 16 · NUQKeyRecord.bytes] (slot s in tile s / 16,
// lane s % 16; the same bytes per position as one record):
//   codes [headDim, 2·bits bytes]: channel c's codes of the 16 lanes in one chunk, packed like a
//         KIVI 16-code chunk (4-bit: byte i = lane i | lane i+8 << 4; 3-bit: a 2-bit chunk + a 1-bit plane)
//   side  [16, 1 + 3·capacity]: per lane [count UInt8][capacity × index UInt8][capacity × f16 value]
// Scoring a tile: each channel's 16 codes index a 16-float table holding that channel's
// centroid·half + mid (one `vpermps`, CodeLookup), the lanes' outliers are patched in, the tile is
// rotated with RoPE (TileRoPE) and each query row gets 16 scores from TileDot.
// Deviation from the reference: one dense code per channel for outliers too (the reference zeroes
// them in the dense matrix), and the sink is kept in f16 rather than in the dense-and-sparse format.
import GodwitKernels

/// [headCount, tiles, 16 · NUQKeyRecord.bytes] tiles + sink [headCount, headDim] f16.
final class NUQKeyStore: KeyStore {
    let geometry: KVStoreGeometry
    let record: NUQKeyRecord
    let storage: UnsafeMutableRawPointer
    let headBytes: Int
    /// Position 0 of each head as f16: [headCount, headDim].
    let sink: UnsafeMutablePointer<UInt16>
    let normalization: NUQKeyNormalization
    let codebook: NUQCodebook
    let angles: RoPEAngleTable?
    let tileRoPE: TileRoPE?
    let tiles: Int
    /// Bytes of one tile's codes (headDim · 2·bits) and of one lane's outlier side record.
    let codeTileBytes: Int
    let sideBytes: Int
    /// Per channel of every head, the decoded value of each code: centroid·half + mid, padded to 16:
    /// [headCount · headDim, 16] f32.
    let levels: UnsafeMutablePointer<Float>

    init(_ g: KVStoreGeometry, bits: Int, normalization: NUQKeyNormalization, codebook: NUQCodebook, rope: RotaryEmbedding?) {
        geometry = g
        record = NUQKeyRecord(headDim: g.headDim, bits: bits)
        tiles = (g.capacity + 15) / 16
        codeTileBytes = g.headDim * 2 * bits
        sideBytes = record.bytes - record.codeBytes
        headBytes = record.bytes * 16 * tiles
        storage = .allocate(byteCount: headBytes * g.headCount + 16, alignment: 64)
        // Zero counts: unwritten slots hold no outliers.
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: headBytes * g.headCount + 16)
        sink = .allocate(capacity: g.headCount * g.headDim)
        sink.initialize(repeating: 0, count: g.headCount * g.headDim)
        self.normalization = normalization
        self.codebook = codebook
        angles = rope.map { RoPEAngleTable(rope: $0, capacity: g.capacity) }
        tileRoPE = angles.map { TileRoPE(angles: $0) }
        let channels = g.headCount * g.headDim
        levels = .allocate(capacity: max(1, channels * 16))
        levels.initialize(repeating: 0, count: max(1, channels * 16))
        for c in 0..<channels {
            for code in 0..<(1 << bits) {
                levels[c * 16 + code] = normalization.mid[c].addingProduct(codebook.centroid(code, channel: c), normalization.half[c])
            }
        }
    }

    deinit { storage.deallocate(); sink.deallocate(); levels.deallocate() }

    var keyInput: KeyInput { .preRoPE }
    var allocatedBytes: Int {
        headBytes * geometry.headCount + geometry.headCount * geometry.headDim * (2 + 64) + (tileRoPE?.allocatedBytes ?? 0)
    }
    var preparedQueryBytes: Int { geometry.headDim * 4 }

    /// Calibrated parameters the store holds: mid and half per channel (f32) and the codebook(s).
    var parameterBytes: Int { normalization.channels * 2 * 4 + codebook.books * codebook.levels * 4 }

    /// Parameters (amortized: counted once) + sink (f16, position 0) + each later position's codes,
    /// count and used outlier slots.
    func bytesHeld(tokens: Int) -> Int {
        let n = min(tokens, geometry.capacity)
        guard n > 0 else { return 0 }
        var total = parameterBytes + geometry.headCount * geometry.headDim * 2
        for h in 0..<geometry.headCount {
            for s in 1..<max(1, n) { total += record.heldBytes(outliers: Int(side(head: h, slot: s).load(as: UInt8.self))) }
        }
        return total
    }

    /// The tile holding slot s of head h.
    @inline(__always) func tile(head: Int, slot s: Int) -> UnsafeMutableRawPointer { storage + head * headBytes + (s / 16) * 16 * record.bytes }
    /// Slot s's outlier record: [count UInt8][capacity × index UInt8][capacity × f16].
    @inline(__always) func side(head: Int, slot s: Int) -> UnsafeMutableRawPointer { tile(head: head, slot: s) + codeTileBytes + (s % 16) * sideBytes }
    @inline(__always) func side(head: Int, position p: Int) -> UnsafeMutableRawPointer { side(head: head, slot: p % geometry.capacity) }

    /// Code of channel c at slot s.
    @inline(__always) func code(head: Int, slot s: Int, channel c: Int) -> Int {
        KIVICodes.code(tile(head: head, slot: s) + c * 2 * record.bits, channel: s % 16, bits: record.bits)
    }

    /// Sets the code of channel c at slot s (the other lanes of its chunk unchanged).
    func setCode(_ v: UInt8, head: Int, slot s: Int, channel c: Int) {
        let chunk = (tile(head: head, slot: s) + c * 2 * record.bits).assumingMemoryBound(to: UInt8.self)
        for (w, shift, offset) in KIVICodes.planes(bits: record.bits) {
            let (b, sh) = KIVICodes.place(s % 16, planeWidth: w)
            let mask = UInt8((1 << w) - 1) << UInt8(sh)
            chunk[offset + b] = (chunk[offset + b] & ~mask) | (((v >> UInt8(shift)) << UInt8(sh)) & mask)
        }
    }

    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        let d = geometry.headDim
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: d) { codesBuf in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: d) { outBuf in
                let codes = codesBuf.baseAddress!, out = outBuf.baseAddress!
                for t in 0..<count {
                    let p = firstPosition + t
                    angles?.fill(position: p)
                    for h in 0..<geometry.headCount {
                        let k = src + t * tokenStride + h * d
                        if p == 0 {
                            for i in 0..<d { sink[h * d + i] = HalfConversion.toHalf(k[i]) }
                            side(head: h, position: p).storeBytes(of: 0, as: UInt8.self)
                            continue
                        }
                        encode(k, head: h, codes: codes, outliers: out, slot: p % geometry.capacity)
                    }
                }
            }
        }
    }

    /// Encodes one pre-RoPE key k [headDim] of head `h` into its slot.
    func encode(_ k: UnsafePointer<Float>, head h: Int, codes: UnsafeMutablePointer<UInt8>,
                outliers: UnsafeMutablePointer<Int>, slot: Int) {
        let d = geometry.headDim
        let mid = normalization.mid + h * d, inv = normalization.invHalf + h * d
        var n = 0
        for i in 0..<d {
            let x = (k[i] - mid[i]) * inv[i]
            codes[i] = codebook.encode(x, channel: h * d + i)
            if abs(x) > 1 { outliers[n] = i; n += 1 }
        }
        if n > record.outlierCapacity {
            // Keep the largest excursions.
            let chosen = (0..<n).map { outliers[$0] }
                .sorted { abs((k[$0] - mid[$0]) * inv[$0]) > abs((k[$1] - mid[$1]) * inv[$1]) || (abs((k[$0] - mid[$0]) * inv[$0]) == abs((k[$1] - mid[$1]) * inv[$1]) && $0 < $1) }
                .prefix(record.outlierCapacity).sorted()
            n = chosen.count
            for (j, c) in chosen.enumerated() { outliers[j] = c }
        }
        for i in 0..<d { setCode(codes[i], head: h, slot: slot, channel: i) }
        let dst = side(head: h, slot: slot), cap = record.outlierCapacity
        dst.storeBytes(of: UInt8(n), as: UInt8.self)
        for j in 0..<n {
            dst.storeBytes(of: UInt8(outliers[j]), toByteOffset: 1 + j, as: UInt8.self)
            dst.storeBytes(of: HalfConversion.toHalf(k[outliers[j]]), toByteOffset: 1 + cap + 2 * j, as: UInt16.self)
        }
    }

    /// Decodes position p of head h (pre-RoPE) into k [headDim] (tests, `read`; scoring decodes tiles).
    func decode(head h: Int, position p: Int, into k: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim
        if p == 0 { for i in 0..<d { k[i] = HalfConversion.toFloat(sink[h * d + i]) }; return }
        let slot = p % geometry.capacity
        for i in 0..<d { k[i] = levels[(h * d + i) * 16 + code(head: h, slot: slot, channel: i)] }
        patchOutliers(head: h, slot: slot, into: k, stride: 1)
    }

    /// Writes slot s's outliers into k[index · stride].
    @inline(__always) func patchOutliers(head h: Int, slot s: Int, into k: UnsafeMutablePointer<Float>, stride: Int) {
        let r = UnsafeRawPointer(side(head: h, slot: s)), cap = record.outlierCapacity
        let n = Int(r.load(as: UInt8.self))
        for j in 0..<n {
            let i = Int(r.load(fromByteOffset: 1 + j, as: UInt8.self))
            k[i * stride] = HalfConversion.toFloat(r.loadUnaligned(fromByteOffset: 1 + cap + 2 * j, as: UInt16.self))
        }
    }

    /// Scalar twin of `decode`: channel by channel.
    func decodeReference(head h: Int, position p: Int, into k: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim
        if p == 0 { for i in 0..<d { k[i] = HalfConversion.toFloat(sink[h * d + i]) }; return }
        let slot = p % geometry.capacity
        for i in 0..<d {
            k[i] = codebook.centroid(code(head: h, slot: slot, channel: i), channel: h * d + i) * normalization.half[h * d + i]
                + normalization.mid[h * d + i]
        }
        patchOutliers(head: h, slot: slot, into: k, stride: 1)
    }

    /// Outliers stored for a position (tests).
    func outliers(head h: Int, position p: Int) -> [(channel: Int, value: Float)] {
        guard p != 0 else { return [] }
        let r = UnsafeRawPointer(side(head: h, position: p)), cap = record.outlierCapacity
        let n = Int(r.load(as: UInt8.self))
        return (0..<n).map { j in
            (Int(r.load(fromByteOffset: 1 + j, as: UInt8.self)),
             HalfConversion.toFloat(r.loadUnaligned(fromByteOffset: 1 + cap + 2 * j, as: UInt16.self)))
        }
    }

    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim
        for (j, p) in positions.enumerated() { decode(head: head, position: p, into: out + j * d) }
    }

    func prepareQuery(_ q: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) {
        dst.copyMemory(from: q, byteCount: geometry.headDim * 4)
    }

    func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                into out: UnsafeMutablePointer<Float>, outStride: Int) {
        let d = geometry.headDim, lo = positions.lowerBound, hi = positions.upperBound
        // tile [d, 16] f32, one row of 16 scores.
        withUnsafeTemporaryAllocation(byteCount: (d * 16 + 16) * 4, alignment: 16) { buffer in
            let t = buffer.baseAddress!, lanes = t + d * 64
            let tf = t.assumingMemoryBound(to: Float.self)
            var p = lo
            if p == 0 && p < hi {
                // The f16 sink, rotated on its own.
                decode(head: head, position: 0, into: tf)
                angles?.rotate(tf, headDim: d, position: 0)
                for g in 0..<queryCount { out[g * outStride] = PreRoPEDot.dot(queries + g * d * 4, tf, d) }
                p = 1
            }
            let levelRows = UnsafePointer(levels + head * d * 16)
            while p < hi {
                let slot = p % geometry.capacity, lane0 = slot % 16, n = min(16 - lane0, hi - p)
                let codes = UnsafeRawPointer(tile(head: head, slot: slot))
                if record.bits == 4 {
                    NUQTile.decode4(codes, levelRows, d, into: t)
                } else {
                    NUQTile.decode3(codes, levelRows, d, into: t)
                }
                for l in lane0..<lane0 + n { patchOutliers(head: head, slot: slot - lane0 + l, into: tf + l, stride: 16) }
                tileRoPE?.rotate(t, position: p, lane: lane0)
                for g in 0..<queryCount {
                    TileDot.scores(queries + g * d * 4, UnsafeRawPointer(t), d, into: lanes)
                    TileDot.copyLanes(UnsafeRawPointer(lanes), from: lane0, count: n, to: out + g * outStride + (p - lo))
                }
                p += n
            }
        }
    }

    /// Scalar twin of `scores`: reference decode, RoPE angles recomputed for the position, double dot.
    func scoresReference(queries: UnsafePointer<Float>, queryCount: Int, head: Int, positions: Range<Int>) -> [Double] {
        let d = geometry.headDim
        var result = [Double](repeating: 0, count: queryCount * positions.count)
        var k = [Float](repeating: 0, count: d)
        for (j, p) in positions.enumerated() {
            k.withUnsafeMutableBufferPointer { kp in
                decodeReference(head: head, position: p, into: kp.baseAddress!)
                if let rope = angles?.rope {
                    var c = [Float](repeating: 0, count: rope.dimensions / 2), s = c
                    c.withUnsafeMutableBufferPointer { cp in s.withUnsafeMutableBufferPointer { sp in
                        rope.table(position: p, cos: cp.baseAddress!, sin: sp.baseAddress!)
                        rope.apply(kp.baseAddress!, heads: 1, headDim: d, cos: cp.baseAddress!, sin: sp.baseAddress!)
                    } }
                }
            }
            for g in 0..<queryCount {
                var s = 0.0
                for i in 0..<d { s += Double(queries[g * d + i]) * Double(k[i]) }
                result[g * positions.count + j] = s
            }
        }
        return result
    }
}

/// Tile decoders of NUQKeyStore: tile[c, l] = levels[c][code(c, l)] for c < d.
/// codes [d, 2·bits bytes], levels [d, 16] f32, tile [d, 16] f32.
enum NUQTile {
    @inline(never)
    static func decode4(_ codes: UnsafeRawPointer, _ levels: UnsafePointer<Float>, _ d: Int, into tile: UnsafeMutableRawPointer) {
        let table = UnsafeRawPointer(levels)
        for c in 0..<d {
            let x = codes.loadUnaligned(fromByteOffset: c * 8, as: SIMD8<UInt8>.self)
            let index = Lanes.widen(SIMD16<UInt8>(lowHalf: x & 15, highHalf: x &>> 4))
            tile.storeBytes(of: CodeLookup.lookup16(table.load(fromByteOffset: c * 64, as: SIMD16<Float>.self), index),
                            toByteOffset: c * 64, as: SIMD16<Float>.self)
        }
    }

    @inline(never)
    static func decode3(_ codes: UnsafeRawPointer, _ levels: UnsafePointer<Float>, _ d: Int, into tile: UnsafeMutableRawPointer) {
        let table = UnsafeRawPointer(levels)
        let bit = SIMD16<Int32>(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
        let zero = SIMD16<Int32>(repeating: 0), four = SIMD16<Int32>(repeating: 4)
        for c in 0..<d {
            let x = codes.loadUnaligned(fromByteOffset: c * 6, as: SIMD4<UInt8>.self)
            let lo = SIMD8<UInt8>(lowHalf: x & 3, highHalf: (x &>> 2) & 3)
            let hi = SIMD8<UInt8>(lowHalf: (x &>> 4) & 3, highHalf: x &>> 6)
            let plane = SIMD16<Int32>(repeating: Int32(codes.loadUnaligned(fromByteOffset: c * 6 + 4, as: UInt16.self)))
            let index = Lanes.widen(SIMD16<UInt8>(lowHalf: lo, highHalf: hi)) | zero.replacing(with: four, where: (plane & bit) .!= zero)
            tile.storeBytes(of: CodeLookup.lookup16(table.load(fromByteOffset: c * 64, as: SIMD16<Float>.self), index),
                            toByteOffset: c * 64, as: SIMD16<Float>.self)
        }
    }
}
