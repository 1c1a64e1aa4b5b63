// KIVI key storage (arXiv 2402.02750, per-channel key quantization; deviations in KIVIScheme.swift).
// Positions start..<end are held: relative position r = p − start belongs to group r / G; groups
// 0..<quantizedGroups are quantized (KIVIKeyGroupLayout), the rest (start + quantizedGroups·G ..< end)
// sit in an f16 tail. A group is quantized once all its G tokens are older than the last R tokens,
// so the tail holds at most R + G − 1 tokens between writes.
// Rings: quantized groups live in slot g % groupSlots with groupSlots = ⌈capacity / G⌉ + 1, which
// keeps every position ≥ end − capacity (what a sliding-window layer may still read); the tail lives
// in slot p % (R + G).
// Codes are laid out in 16-position tiles (KIVIKeyGroupLayout; G a multiple of 16): one chunk holds
// one channel's codes of 16 consecutive positions, so scoring decodes a tile of 16 keys into f32
// [d, 16] once for all query rows and takes 16 dot products per query with TileDot.
import GodwitKernels

/// What PreRoPEKeyStore needs of a KIVI key store of any width.
protocol KIVIKeyStoreBase: ScalarTwinKeyStore {
    var excludeBefore: Int { get set }
    /// RoPE for keys written before RoPE (set by PreRoPEKeyStore; nil: post-RoPE keys).
    var tileRoPE: TileRoPE? { get set }
}

final class KIVIKeyStore<B: KIVIBitWidth>: ScalarTwinKeyStore, KIVIKeyStoreBase {
    let geometry: KVStoreGeometry
    let layout: KIVIKeyGroupLayout
    let residual: Int
    let groupSlots: Int
    let tailSlots: Int
    /// [headCount, groupSlots, layout.byteSize]
    let groups: UnsafeMutableRawPointer
    /// [headCount, tailSlots, headDim] f16
    let tail: UnsafeMutableRawPointer
    /// Staging for one group's floats while quantizing: [groupSize, headDim]
    let staging: UnsafeMutablePointer<Float>
    private(set) var start = 0
    private(set) var end = 0
    private(set) var quantizedGroups = 0
    /// Positions below this are held (and counted) but ignored by the group ranges: a wrapper keeps
    /// them exactly (PreRoPEKeyStore's sink) and never reads them from here.
    var excludeBefore = 0
    var tileRoPE: TileRoPE?

    init(_ g: KVStoreGeometry, groupSize: Int, residual: Int) {
        geometry = g
        layout = KIVIKeyGroupLayout(headDim: g.headDim, groupSize: groupSize, bits: B.bits)
        self.residual = residual
        groupSlots = (g.capacity + groupSize - 1) / groupSize + 1
        tailSlots = residual + groupSize
        groups = .allocate(byteCount: max(1, g.headCount * groupSlots * layout.byteSize), alignment: 64)
        tail = .allocate(byteCount: max(1, g.headCount * tailSlots * g.headDim * 2), alignment: 64)
        staging = .allocate(capacity: groupSize * g.headDim)
    }

    deinit {
        groups.deallocate()
        tail.deallocate()
        staging.deallocate()
    }

    var groupSize: Int { layout.groupSize }
    var headDim: Int { geometry.headDim }
    var quantizedEnd: Int { start + quantizedGroups * groupSize }

    var allocatedBytes: Int { geometry.headCount * (groupSlots * layout.byteSize + tailSlots * headDim * 2) }

    /// Quantized groups ⌊max(0, t − R) / G⌋ at layout.byteSize each, the remaining tokens as f16.
    func bytesHeld(tokens: Int) -> Int {
        let t = max(0, tokens)
        let q = max(0, t - residual) / groupSize
        return geometry.headCount * (q * layout.byteSize + (t - q * groupSize) * headDim * 2)
    }

    /// The query in f32, padded to 64 bytes.
    var preparedQueryBytes: Int { (headDim * 4 + 63) / 64 * 64 }

    @inline(__always) func groupBlock(head: Int, group: Int) -> UnsafeMutableRawPointer {
        groups + (head * groupSlots + group % groupSlots) * layout.byteSize
    }

    @inline(__always) func tailVector(head: Int, position: Int) -> UnsafeMutableRawPointer {
        tail + (head * tailSlots + position % tailSlots) * headDim * 2
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

    /// Moves group `g` (all heads) from the f16 tail into its quantized block.
    private func quantizeGroup(_ g: Int) {
        let d = headDim, n = groupSize, bits = B.bits
        let first = start + g * n
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16) { codeBuf in
            let codes = codeBuf.baseAddress!
            for h in 0..<geometry.headCount {
                for j in 0..<n {
                    let v = tailVector(head: h, position: first + j)
                    for i in 0..<d { staging[j * d + i] = F16Element.load(v + i * 2) }
                }
                let block = groupBlock(head: h, group: g)
                // Positions below `excludeBefore` (a wrapper's f16 sink) do not widen the ranges.
                let skip = min(n - 1, max(0, excludeBefore - first))
                for c in 0..<d {
                    let (s, z) = KIVICodes.parameters(staging + skip * d + c, count: n - skip, stride: d, bits: bits)
                    block.storeBytes(of: s, toByteOffset: layout.scalesOffset + c * 2, as: UInt16.self)
                    block.storeBytes(of: z, toByteOffset: layout.zerosOffset + c * 2, as: UInt16.self)
                }
                for c in 0..<d {
                    let s = halfAt(block, layout.scalesOffset + c * 2), z = halfAt(block, layout.zerosOffset + c * 2)
                    for m in 0..<n / 16 {
                        for l in 0..<16 { codes[l] = KIVICodes.encode(staging[(m * 16 + l) * d + c], scale: s, zero: z, bits: bits) }
                        KIVICodes.pack(codes, count: 16, bits: bits, into: block + layout.codesOffset + (m * d + c) * 2 * bits)
                    }
                }
            }
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

    /// The chunk holding channel c of group-relative tile m: 16 positions' codes (KIVIKeyGroupLayout).
    @inline(__always) private func chunk(_ block: UnsafeRawPointer, tile m: Int, channel c: Int) -> UnsafeRawPointer {
        block + layout.codesOffset + (m * headDim + c) * 2 * B.bits
    }

    /// Key of a held position: out [headDim] (code by code: tests, truncation, the scalar twin).
    private func dequantize(head: Int, position p: Int, into out: UnsafeMutablePointer<Float>) {
        if p >= quantizedEnd {
            let v = tailVector(head: head, position: p)
            for i in 0..<headDim { out[i] = F16Element.load(v + i * 2) }
            return
        }
        let r = p - start
        let block = UnsafeRawPointer(groupBlock(head: head, group: r / groupSize))
        let m = (r % groupSize) / 16, lane = r % 16
        for c in 0..<headDim {
            let s = halfAt(block, layout.scalesOffset + c * 2), z = halfAt(block, layout.zerosOffset + c * 2)
            out[c] = s * Float(KIVICodes.code(chunk(block, tile: m, channel: c), channel: lane, bits: B.bits)) + z
        }
    }

    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        for (j, p) in positions.enumerated() { dequantize(head: head, position: p, into: out + j * headDim) }
    }

    func prepareQuery(_ q: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) {
        dst.copyMemory(from: q, byteCount: headDim * 4)
    }

    // MARK: Scores

    /// Quantized positions a tile (16 positions of one group) at a time: the tile is decoded once into
    /// f32 [d, 16] (s_c·code + z_c), rotated when the keys are pre-RoPE (`tileRoPE`), and each query
    /// row gets 16 scores from TileDot (no horizontal sums); f16 tail positions one at a time.
    func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                into out: UnsafeMutablePointer<Float>, outStride: Int) {
        let lo = positions.lowerBound, hi = positions.upperBound
        let d = headDim, qBytes = preparedQueryBytes
        let qEnd = max(lo, min(hi, quantizedEnd))
        // tile [d, 16] f32, the group's scales and zeros [d] f32 each, one row of 16 scores.
        withUnsafeTemporaryAllocation(byteCount: (d * 16 + 2 * d + 16) * 4, alignment: 16) { buffer in
            let tile = buffer.baseAddress!, scales = tile + d * 64, zeros = scales + d * 4, lanes = zeros + d * 4
            var p = lo, loaded = -1
            while p < qEnd {
                let r = p - start, g = r / groupSize
                let block = UnsafeRawPointer(groupBlock(head: head, group: g))
                if g != loaded {
                    for c in 0..<d / 16 {
                        scales.storeBytes(of: F16Element.load16(block + layout.scalesOffset + c * 32), toByteOffset: c * 64, as: SIMD16<Float>.self)
                        zeros.storeBytes(of: F16Element.load16(block + layout.zerosOffset + c * 32), toByteOffset: c * 64, as: SIMD16<Float>.self)
                    }
                    loaded = g
                }
                let lane0 = r % 16, n = min(16 - lane0, qEnd - p)
                let codes = chunk(block, tile: (r % groupSize) / 16, channel: 0)
                let sf = UnsafeRawPointer(scales).assumingMemoryBound(to: Float.self)
                let zf = UnsafeRawPointer(zeros).assumingMemoryBound(to: Float.self)
                switch B.bits {
                case 2: KIVITile.decode(KIVI2Bit.self, codes, sf, zf, d, into: tile)
                case 3: KIVITile.decode(KIVI3Bit.self, codes, sf, zf, d, into: tile)
                case 4: KIVITile.decode(KIVI4Bit.self, codes, sf, zf, d, into: tile)
                case 5: KIVITile.decode(KIVI5Bit.self, codes, sf, zf, d, into: tile)
                case 6: KIVITile.decode(KIVI6Bit.self, codes, sf, zf, d, into: tile)
                default: KIVITile.decode(KIVI8Bit.self, codes, sf, zf, d, into: tile)
                }
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

/// The tile kernels of KIVIKeyStore, entered with a concrete width (a generic class's methods run
/// unspecialized: every unpack was a witness call).
enum KIVITile {
    /// tile[c, l] = s_c·code(c, l) + z_c for c < d: codes [d, chunkBytes] (channel c's 16 positions per
    /// chunk), scales/zeros [d] f32, tile [d, 16] f32.
    @inline(never)
    static func decode<W: KIVIBitWidth>(_: W.Type, _ codes: UnsafeRawPointer, _ scales: UnsafePointer<Float>,
                                        _ zeros: UnsafePointer<Float>, _ d: Int, into tile: UnsafeMutableRawPointer) {
        for c in 0..<d {
            let v = SIMD16<Float>(repeating: zeros[c]).addingProduct(SIMD16<Float>(repeating: scales[c]), W.unpack16(codes + c * W.chunkBytes))
            tile.storeBytes(of: v, toByteOffset: c * 64, as: SIMD16<Float>.self)
        }
    }
}
