// Key storage of kivi{b}mix (KIVIMixScheme.swift): KIVI's per-channel groups of G tokens
// (KIVIKeyStore.swift: same rings, f16 tail and truncation rules) where each group hands its budget of
// b̄·d bits per position to the channels by KIVIBitAllocation, so wide channels get more levels and
// near-constant channels none. Source: this project (KIVI arXiv 2402.02750 + greedy bit allocation).
// Tiles: a group's codes are [G/16 tiles][d channels] chunks; channel c's chunk holds its 16 codes
// of width w_c as w_c bit planes (UInt16 j: bit l = bit j of lane l's code; 2·w_c bytes, none for
// w_c = 0), so every tile is 2·b̄·d bytes and any width decodes with one masked add per plane
// (CGodwit's godwit_mask_add16) — a switch over packed widths compiled to branchy lane loops.
import CGodwit
import GodwitKernels

/// One key group of one head (kivi{b}mix): [scales f16 × d][zeros f16 × d][widths u8 × d, padded to 16]
/// [codes: G/16 tiles × 2·bits·d bytes].
public struct KIVIMixGroupLayout: Sendable, Equatable {
    public let headDim: Int
    public let groupSize: Int
    /// Average bits per code (the budget per position is bits · headDim).
    public let bits: Int

    public init(headDim: Int, groupSize: Int, bits: Int) {
        self.headDim = headDim
        self.groupSize = groupSize
        self.bits = bits
    }

    public var scalesOffset: Int { 0 }
    public var zerosOffset: Int { headDim * 2 }
    public var widthsOffset: Int { headDim * 4 }
    public var codesOffset: Int { headDim * 4 + (headDim + 15) / 16 * 16 }
    /// Bytes of one 16-position tile: 16 · bits · headDim / 8.
    public var tileBytes: Int { 2 * bits * headDim }
    public var byteSize: Int { codesOffset + groupSize / 16 * tileBytes }
}

final class KIVIMixKeyStore: ScalarTwinKeyStore, KIVIKeyStoreBase {
    let geometry: KVStoreGeometry
    let layout: KIVIMixGroupLayout
    let residual: Int
    let groupSlots: Int
    let tailSlots: Int
    /// Error weight per channel [headCount, headDim] (nil: plain MSE).
    let channelWeights: [Float]?
    /// [headCount, groupSlots, layout.byteSize]
    let groups: UnsafeMutableRawPointer
    /// [headCount, tailSlots, headDim] f16
    let tail: UnsafeMutableRawPointer
    /// Staging for one group's floats while quantizing: [groupSize, headDim]
    let staging: UnsafeMutablePointer<Float>
    private(set) var start = 0
    private(set) var end = 0
    private(set) var quantizedGroups = 0
    var excludeBefore = 0
    var tileRoPE: TileRoPE?

    init(_ g: KVStoreGeometry, bits: Int, groupSize: Int, residual: Int, channelWeights: [Float]? = nil) {
        geometry = g
        layout = KIVIMixGroupLayout(headDim: g.headDim, groupSize: groupSize, bits: bits)
        self.residual = residual
        self.channelWeights = channelWeights
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

    func bytesHeld(tokens: Int) -> Int {
        let t = max(0, tokens)
        let q = max(0, t - residual) / groupSize
        return geometry.headCount * (q * layout.byteSize + (t - q * groupSize) * headDim * 2)
    }

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

    /// Moves group `g` (all heads) from the f16 tail into its quantized block: channel statistics,
    /// widths (KIVIBitAllocation), per-channel scale/zero, codes.
    private func quantizeGroup(_ g: Int) {
        let d = headDim, n = groupSize
        let first = start + g * n
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * d + 16) { buf in
            let variance = buf.baseAddress!, range = variance + d, weight = range + d
            let codes = UnsafeMutableRawPointer(weight + d).assumingMemoryBound(to: UInt8.self)
            for h in 0..<geometry.headCount {
                for j in 0..<n {
                    let v = tailVector(head: h, position: first + j)
                    for i in 0..<d { staging[j * d + i] = F16Element.load(v + i * 2) }
                }
                let block = groupBlock(head: h, group: g)
                let widths = (block + layout.widthsOffset).assumingMemoryBound(to: UInt8.self)
                let skip = min(n - 1, max(0, excludeBefore - first))
                let m = Float(n - skip)
                for c in 0..<d {
                    var lo = Float.infinity, hi = -Float.infinity, sum: Float = 0
                    for j in skip..<n { let x = staging[j * d + c]; lo = min(lo, x); hi = max(hi, x); sum += x }
                    let mean = sum / m
                    var ss: Float = 0
                    for j in skip..<n { let e = staging[j * d + c] - mean; ss += e * e }
                    variance[c] = ss / m
                    range[c] = hi - lo
                    weight[c] = channelWeights?[h * d + c] ?? 1
                }
                KIVIBitAllocation.allocate(variance: variance, range: range, weight: channelWeights == nil ? nil : UnsafePointer(weight),
                                           count: d, budget: layout.bits * d, into: widths)
                for c in d..<(layout.codesOffset - layout.widthsOffset) { widths[c] = 0 }
                for c in 0..<d {
                    let w = Int(widths[c])
                    let (s, z): (UInt16, UInt16)
                    if w == 0 {
                        var sum: Float = 0
                        for j in skip..<n { sum += staging[j * d + c] }
                        (s, z) = (0, HalfConversion.toHalf(sum / m))
                    } else {
                        (s, z) = KIVICodes.parameters(staging + skip * d + c, count: n - skip, stride: d, bits: w)
                    }
                    block.storeBytes(of: s, toByteOffset: layout.scalesOffset + c * 2, as: UInt16.self)
                    block.storeBytes(of: z, toByteOffset: layout.zerosOffset + c * 2, as: UInt16.self)
                }
                for t in 0..<n / 16 {
                    var offset = layout.codesOffset + t * layout.tileBytes
                    for c in 0..<d {
                        let w = Int(widths[c])
                        guard w > 0 else { continue }
                        let s = halfAt(block, layout.scalesOffset + c * 2), z = halfAt(block, layout.zerosOffset + c * 2)
                        for l in 0..<16 { codes[l] = KIVICodes.encode(staging[(t * 16 + l) * d + c], scale: s, zero: z, bits: w) }
                        for j in 0..<w {
                            var plane: UInt16 = 0
                            for l in 0..<16 { plane |= UInt16((codes[l] >> UInt8(j)) & 1) << UInt16(l) }
                            block.storeBytes(of: plane, toByteOffset: offset + 2 * j, as: UInt16.self)
                        }
                        offset += 2 * w
                    }
                }
            }
        }
    }

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
    private func dequantize(head: Int, position p: Int, into out: UnsafeMutablePointer<Float>) {
        if p >= quantizedEnd {
            let v = tailVector(head: head, position: p)
            for i in 0..<headDim { out[i] = F16Element.load(v + i * 2) }
            return
        }
        let r = p - start
        let block = UnsafeRawPointer(groupBlock(head: head, group: r / groupSize))
        let lane = r % 16
        var offset = layout.codesOffset + (r % groupSize) / 16 * layout.tileBytes
        for c in 0..<headDim {
            let w = Int(block.load(fromByteOffset: layout.widthsOffset + c, as: UInt8.self))
            let s = halfAt(block, layout.scalesOffset + c * 2), z = halfAt(block, layout.zerosOffset + c * 2)
            var code = 0
            for j in 0..<w { code |= Int((block.load(fromByteOffset: offset + 2 * j, as: UInt16.self) >> UInt16(lane)) & 1) << j }
            out[c] = s * Float(code) + z
            offset += 2 * w
        }
    }

    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        for (j, p) in positions.enumerated() { dequantize(head: head, position: p, into: out + j * headDim) }
    }

    func prepareQuery(_ q: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) {
        dst.copyMemory(from: q, byteCount: headDim * 4)
    }

    // MARK: Scores

    /// As KIVIKeyStore.scores, with the tile decoded channel by channel at each channel's width.
    func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                into out: UnsafeMutablePointer<Float>, outStride: Int) {
        let lo = positions.lowerBound, hi = positions.upperBound
        let d = headDim, qBytes = preparedQueryBytes
        let qEnd = max(lo, min(hi, quantizedEnd))
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
                KIVIMixTile.decode(block + layout.codesOffset + (r % groupSize) / 16 * layout.tileBytes,
                                   (block + layout.widthsOffset).assumingMemoryBound(to: UInt8.self),
                                   UnsafeRawPointer(scales).assumingMemoryBound(to: Float.self),
                                   UnsafeRawPointer(zeros).assumingMemoryBound(to: Float.self), d, into: tile)
                tileRoPE?.rotate(tile, position: p, lane: lane0)
                for q in 0..<queryCount {
                    TileDot.scores(queries + q * qBytes, UnsafeRawPointer(tile), d, into: lanes)
                    TileDot.copyLanes(UnsafeRawPointer(lanes), from: lane0, count: n, to: out + q * outStride + (p - lo))
                }
                p += n
            }
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

/// The tile kernel of KIVIMixKeyStore.
enum KIVIMixTile {
    /// tile[c, l] = fma(s_c, code(c, l), z_c), code = Σ_j 2^j·bit_j(c, l) (exact): codes = one tile's chunks
    /// (channel c's w_c bit planes after channel c − 1's), widths [d], scales/zeros [d] f32, tile [d, 16] f32.
    @inline(never)
    static func decode(_ codes: UnsafeRawPointer, _ widths: UnsafePointer<UInt8>, _ scales: UnsafePointer<Float>,
                       _ zeros: UnsafePointer<Float>, _ d: Int, into tile: UnsafeMutableRawPointer) {
        var p = codes
        for c in 0..<d {
            let w = Int(widths[c])
            var code = SIMD16<Float>()
            var bit: Float = 1
            for j in 0..<w {
                code = godwit_mask_add16(code, p.loadUnaligned(fromByteOffset: 2 * j, as: UInt16.self), bit)
                bit += bit
            }
            let v = SIMD16<Float>(repeating: zeros[c]).addingProduct(SIMD16<Float>(repeating: scales[c]), code)
            tile.storeBytes(of: v, toByteOffset: c * 64, as: SIMD16<Float>.self)
            p += 2 * w
        }
    }
}
