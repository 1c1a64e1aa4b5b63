// Bookkeeping shared by the KIVI-style key stores (per-channel groups of G tokens: KIVIKeyStore for
// uniform widths, KIVIMixKeyStore for allocated widths; KIVI arXiv 2402.02750). Source: this project.
// Positions start..<end are held: relative position r = p − start belongs to group r / G; groups
// 0..<quantizedGroups are quantized (one block per group and head, [scales f16 × d][zeros f16 × d]…,
// the rest laid out by the subclass), the rest (start + quantizedGroups·G ..< end) sit in an f16 tail.
// A group is quantized once all its G tokens are older than the last R tokens, so the tail holds at
// most R + G − 1 tokens between writes.
// Rings: quantized groups live in slot g % groupSlots with groupSlots = ⌈capacity / G⌉ + 1, which
// keeps every position ≥ end − capacity (what a sliding-window layer may still read); the tail lives
// in slot p % (R + G).
// Scoring walks 16-position tiles: the subclass decodes a tile into f32 [d, 16], which is rotated
// when the keys are pre-RoPE (`tileRoPE`) and scored for every query row with TileDot.
// Subclasses override encodeGroup, decodePosition and decodeTile.
import GodwitKernels

class KIVIGroupedKeyStore: ScalarTwinKeyStore {
    let geometry: KVStoreGeometry
    let groupSize: Int
    let residual: Int
    /// Bytes of one group of one head.
    let groupBytes: Int
    let groupSlots: Int
    let tailSlots: Int
    /// [headCount, groupSlots, groupBytes]
    let groups: UnsafeMutableRawPointer
    /// [headCount, tailSlots, headDim] f16
    let tail: UnsafeMutableRawPointer
    /// Staging for one group's floats while quantizing: [groupSize, headDim]
    let staging: UnsafeMutablePointer<Float>
    private(set) var start = 0
    private(set) var end = 0
    private(set) var quantizedGroups = 0
    /// Positions below this are held (and counted) but ignored by the group statistics: a wrapper
    /// keeps them exactly (PreRoPEKeyStore's sink) and never reads them from here.
    var excludeBefore = 0
    /// RoPE for keys written before RoPE (set by PreRoPEKeyStore; nil: post-RoPE keys).
    var tileRoPE: TileRoPE?

    init(_ g: KVStoreGeometry, groupSize: Int, residual: Int, groupBytes: Int) {
        geometry = g
        self.groupSize = groupSize
        self.residual = residual
        self.groupBytes = groupBytes
        groupSlots = (g.capacity + groupSize - 1) / groupSize + 1
        tailSlots = residual + groupSize
        // 64 bytes past the last group: tile decoders load 16 bytes at a channel's chunk (KIVITrellisChannels).
        groups = .allocate(byteCount: g.headCount * groupSlots * groupBytes + 64, alignment: 64)
        tail = .allocate(byteCount: max(1, g.headCount * tailSlots * g.headDim * 2), alignment: 64)
        staging = .allocate(capacity: groupSize * g.headDim)
    }

    deinit {
        groups.deallocate()
        tail.deallocate()
        staging.deallocate()
    }

    var headDim: Int { geometry.headDim }
    var quantizedEnd: Int { start + quantizedGroups * groupSize }

    var allocatedBytes: Int { geometry.headCount * (groupSlots * groupBytes + tailSlots * headDim * 2) }

    /// Quantized groups ⌊max(0, t − R) / G⌋ at groupBytes each, the remaining tokens as f16.
    func bytesHeld(tokens: Int) -> Int {
        let t = max(0, tokens)
        let q = max(0, t - residual) / groupSize
        return geometry.headCount * (q * groupBytes + (t - q * groupSize) * headDim * 2)
    }

    /// The query in f32, padded to 64 bytes.
    var preparedQueryBytes: Int { (headDim * 4 + 63) / 64 * 64 }

    @inline(__always) func groupBlock(head: Int, group: Int) -> UnsafeMutableRawPointer {
        groups + (head * groupSlots + group % groupSlots) * groupBytes
    }

    @inline(__always) func tailVector(head: Int, position: Int) -> UnsafeMutableRawPointer {
        tail + (head * tailSlots + position % tailSlots) * headDim * 2
    }

    // MARK: Subclass hooks

    /// Encodes one group of one head: staging [groupSize, headDim] f32 (rows < skip belong to the
    /// wrapper's sink and must not widen the statistics) into block [groupBytes].
    func encodeGroup(_ staging: UnsafePointer<Float>, skip: Int, head: Int, into block: UnsafeMutableRawPointer) {
        preconditionFailure("KIVIGroupedKeyStore.encodeGroup is abstract")
    }

    /// The key at offset `r` (0..<groupSize) of a quantized group block: out [headDim].
    func decodePosition(_ block: UnsafeRawPointer, offset r: Int, into out: UnsafeMutablePointer<Float>) {
        preconditionFailure("KIVIGroupedKeyStore.decodePosition is abstract")
    }

    /// Tile m (positions 16m…16m+15 of the group) into tile [d, 16] f32; scales/zeros: the block's [d] as f32.
    func decodeTile(_ block: UnsafeRawPointer, tile m: Int, scales: UnsafePointer<Float>, zeros: UnsafePointer<Float>,
                    into tile: UnsafeMutableRawPointer) {
        preconditionFailure("KIVIGroupedKeyStore.decodeTile is abstract")
    }

    // MARK: Writing

    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        if firstPosition < end { truncate(to: firstPosition) }
        if end == start { start = firstPosition; end = firstPosition; quantizedGroups = 0 }
        while end < firstPosition { append(nil) }
        for t in 0..<count { append(src + t * tokenStride) }
    }

    /// Adds position `end` (zeros when `src` is nil; src [headCount, headDim]) and quantizes the
    /// groups that became old enough.
    private func append(_ src: UnsafePointer<Float>?) {
        let d = headDim
        for h in 0..<geometry.headCount {
            let dst = tailVector(head: h, position: end)
            for i in 0..<d { F16Element.store(src.map { $0[h * d + i] } ?? 0, dst + i * 2) }
        }
        end += 1
        while (quantizedGroups + 1) * groupSize <= end - start - residual {
            quantizeGroup(quantizedGroups)
            quantizedGroups += 1
        }
    }

    /// Moves group `g` (all heads) from the f16 tail into its quantized blocks.
    private func quantizeGroup(_ g: Int) {
        let d = headDim, n = groupSize
        let first = start + g * n
        let skip = min(n - 1, max(0, excludeBefore - first))
        for h in 0..<geometry.headCount {
            for j in 0..<n {
                let v = tailVector(head: h, position: first + j)
                for i in 0..<d { staging[j * d + i] = F16Element.load(v + i * 2) }
            }
            encodeGroup(staging, skip: skip, head: h, into: groupBlock(head: h, group: g))
        }
    }

    /// Forgets positions ≥ count. Going back into a quantized group dequantizes that group's
    /// surviving positions into the f16 tail (re-quantized when the group refills).
    func truncate(to count: Int) {
        guard count < end else { return }
        if count <= start { start = count; end = count; quantizedGroups = 0; return }
        if count < quantizedEnd {
            let g = (count - start) / groupSize
            let first = start + g * groupSize
            withUnsafeTemporaryAllocation(of: Float.self, capacity: headDim) { buf in
                for h in 0..<geometry.headCount {
                    for p in first..<count {
                        dequantize(head: h, position: p, into: buf.baseAddress!)
                        let dst = tailVector(head: h, position: p)
                        for i in 0..<headDim { F16Element.store(buf[i], dst + i * 2) }
                    }
                }
            }
            quantizedGroups = g
        }
        end = count
    }

    // MARK: Reading

    /// Key of a held position: out [headDim] (code by code: tests, truncation, the scalar twin).
    func dequantize(head: Int, position p: Int, into out: UnsafeMutablePointer<Float>) {
        if p >= quantizedEnd {
            let v = tailVector(head: head, position: p)
            for i in 0..<headDim { out[i] = F16Element.load(v + i * 2) }
            return
        }
        let r = p - start
        decodePosition(UnsafeRawPointer(groupBlock(head: head, group: r / groupSize)), offset: r % groupSize, into: out)
    }

    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        for (j, p) in positions.enumerated() { dequantize(head: head, position: p, into: out + j * headDim) }
    }

    func prepareQuery(_ q: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) {
        dst.copyMemory(from: q, byteCount: headDim * 4)
    }

    // MARK: Scores

    /// Quantized positions a tile (16 positions of one group) at a time: the tile is decoded once into
    /// f32 [d, 16] (decodeTile), rotated when the keys are pre-RoPE (`tileRoPE`), and each query
    /// row gets 16 scores from TileDot (no horizontal sums); f16 tail positions one at a time.
    func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                into out: UnsafeMutablePointer<Float>, outStride: Int) {
        let lo = positions.lowerBound, hi = positions.upperBound
        let d = headDim, qBytes = preparedQueryBytes
        let qEnd = max(lo, min(hi, quantizedEnd))
        // tile [d, 16] f32, the group's scales and zeros [d] f32 each, one row of 16 scores.
        withUnsafeTemporaryAllocation(byteCount: (d * 16 + 2 * d + 16) * 4, alignment: 16) { buffer in
            let tile = buffer.baseAddress!, scales = tile + d * 64, zeros = scales + d * 4, lanes = zeros + d * 4
            let sf = UnsafeRawPointer(scales).assumingMemoryBound(to: Float.self)
            let zf = UnsafeRawPointer(zeros).assumingMemoryBound(to: Float.self)
            var p = lo, loaded = -1
            while p < qEnd {
                let r = p - start, g = r / groupSize
                let block = UnsafeRawPointer(groupBlock(head: head, group: g))
                if g != loaded {
                    // Every layout starts with [scales f16 × d][zeros f16 × d].
                    for c in 0..<d / 16 {
                        scales.storeBytes(of: F16Element.load16(block + c * 32), toByteOffset: c * 64, as: SIMD16<Float>.self)
                        zeros.storeBytes(of: F16Element.load16(block + d * 2 + c * 32), toByteOffset: c * 64, as: SIMD16<Float>.self)
                    }
                    loaded = g
                }
                let lane0 = r % 16, n = min(16 - lane0, qEnd - p)
                decodeTile(block, tile: (r % groupSize) / 16, scales: sf, zeros: zf, into: tile)
                tileRoPE?.rotate(tile, position: p, lane: lane0)
                for q in 0..<queryCount {
                    TileDot.scores(queries + q * qBytes, UnsafeRawPointer(tile), d, into: lanes)
                    TileDot.copyLanes(UnsafeRawPointer(lanes), from: lane0, count: n, to: out + q * outStride + (p - lo))
                }
                p += n
            }
            // The f16 tail (rotated per position when pre-RoPE).
            while p < hi {
                let k = tile.assumingMemoryBound(to: Float.self)
                let v = UnsafeRawPointer(tailVector(head: head, position: p))
                for c in 0..<d / 16 { tile.storeBytes(of: F16Element.load16(v + c * 32), toByteOffset: c * 64, as: SIMD16<Float>.self) }
                tileRoPE?.angles.rotate(k, headDim: d, position: p)
                for q in 0..<queryCount { out[q * outStride + (p - lo)] = PreRoPEDot.dot(queries + q * qBytes, k, d) }
                p += 1
            }
        }
    }

    func scalarScores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                      into out: UnsafeMutablePointer<Float>, outStride: Int) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: headDim) { buf in
            let k = buf.baseAddress!
            for (j, p) in positions.enumerated() {
                dequantize(head: head, position: p, into: k)
                tileRoPE?.angles.rotate(k, headDim: headDim, position: p)
                for r in 0..<queryCount {
                    let q = (queries + r * preparedQueryBytes).assumingMemoryBound(to: Float.self)
                    var s: Float = 0
                    for c in 0..<headDim { s += q[c] * k[c] }
                    out[r * outStride + j] = s
                }
            }
        }
    }
}
