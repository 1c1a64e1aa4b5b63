// Key storage of kivi{b}mix (KIVIMixScheme.swift): KIVI's per-channel groups of G tokens (rings, f16
// tail, truncation and tile walk in KIVIGroupedKeyStore.swift) where each group hands its budget of
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

final class KIVIMixKeyStore: KIVIGroupedKeyStore {
    let layout: KIVIMixGroupLayout
    /// Error weight per channel [headCount, headDim] (nil: plain MSE).
    let channelWeights: [Float]?

    /// Trellis codes for widths 2…4 (kivi{b}tcq), or nil (kivi{b}mix: uniform codes only).
    let trellis: KIVITrellisChannels?

    init(_ g: KVStoreGeometry, bits: Int, groupSize: Int, residual: Int, channelWeights: [Float]? = nil,
         trellis: KIVITrellisChannels? = nil) {
        layout = KIVIMixGroupLayout(headDim: g.headDim, groupSize: groupSize, bits: bits)
        self.channelWeights = channelWeights
        self.trellis = trellis
        super.init(g, groupSize: groupSize, residual: residual, groupBytes: layout.byteSize)
    }

    /// Channel statistics, widths (KIVIBitAllocation), per-channel scale/zero, then the codes: bit planes,
    /// or (with `trellis`, widths 2…4) the trellis path when its squared error is the smaller.
    override func encodeGroup(_ staging: UnsafePointer<Float>, skip: Int, head h: Int, into block: UnsafeMutableRawPointer) {
        let d = headDim, n = groupSize
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * d + 16) { buf in
            let mean = buf.baseAddress!, range = mean + d, weight = range + d, variance = weight + d
            let codes = UnsafeMutableRawPointer(variance + d).assumingMemoryBound(to: UInt8.self)
            let widths = (block + layout.widthsOffset).assumingMemoryBound(to: UInt8.self)
            let m = Float(n - skip)
            for c in 0..<d {
                var lo = Float.infinity, hi = -Float.infinity, sum: Float = 0
                for j in skip..<n { let x = staging[j * d + c]; lo = min(lo, x); hi = max(hi, x); sum += x }
                mean[c] = sum / m
                range[c] = hi - lo
                weight[c] = channelWeights?[h * d + c] ?? 1
                guard trellis != nil else { continue }  // the variance is the trellis error model's
                var ss: Float = 0
                for j in skip..<n { let e = staging[j * d + c] - mean[c]; ss += e * e }
                variance[c] = ss / m
            }
            let weights: UnsafePointer<Float>? = channelWeights == nil ? nil : UnsafePointer(weight)
            if let trellis {
                trellis.mse.withUnsafeBufferPointer { t in
                    KIVIBitAllocation.allocate(range: range, variance: variance, trellisMSE: t.baseAddress!, weight: weights,
                                               count: d, budget: layout.bits * d, into: widths)
                }
            } else {
                KIVIBitAllocation.allocate(range: range, weight: weights, count: d, budget: layout.bits * d, into: widths)
            }
            for c in d..<(layout.codesOffset - layout.widthsOffset) { widths[c] = 0 }
            // Bit planes overwrite every byte a decode reads; trellis bits are ORed in (PackedBits), so zero them first.
            if trellis != nil { (block + layout.codesOffset).initializeMemory(as: UInt8.self, repeating: 0, count: n / 16 * layout.tileBytes) }
            var offset = 0  // channel c's chunk within a tile
            for c in 0..<d {
                let w = Int(widths[c])
                if w == 0 {
                    block.storeBytes(of: UInt16(0), toByteOffset: layout.scalesOffset + c * 2, as: UInt16.self)
                    block.storeBytes(of: HalfConversion.toHalf(mean[c]), toByteOffset: layout.zerosOffset + c * 2, as: UInt16.self)
                    continue
                }
                let x = staging + c
                let (s, z) = KIVICodes.parameters(x + skip * d, count: n - skip, stride: d, bits: w)
                let sf = halfToFloat(s), zf = halfToFloat(z)
                var coded = false
                if let trellis, KIVITrellisChannels.widths.contains(w) {
                    var uniformError: Float = 0
                    for j in skip..<n {
                        let e = x[j * d] - (sf * Float(KIVICodes.encode(x[j * d], scale: sf, zero: zf, bits: w)) + zf)
                        uniformError += e * e
                    }
                    let t = trellis.encode(x, stride: d, skip: skip, width: w, mean: mean[c], variance: variance[c])
                    if t.error < uniformError {
                        trellis.pack(width: w, into: block + layout.codesOffset + offset, tileBytes: layout.tileBytes)
                        block.storeBytes(of: t.scale, toByteOffset: layout.scalesOffset + c * 2, as: UInt16.self)
                        block.storeBytes(of: t.zero, toByteOffset: layout.zerosOffset + c * 2, as: UInt16.self)
                        widths[c] |= KIVITrellisChannels.flag
                        coded = true
                    }
                }
                if !coded {
                    block.storeBytes(of: s, toByteOffset: layout.scalesOffset + c * 2, as: UInt16.self)
                    block.storeBytes(of: z, toByteOffset: layout.zerosOffset + c * 2, as: UInt16.self)
                    for t in 0..<n / 16 {
                        for l in 0..<16 { codes[l] = KIVICodes.encode(x[(t * 16 + l) * d], scale: sf, zero: zf, bits: w) }
                        for j in 0..<w {
                            var plane: UInt16 = 0
                            for l in 0..<16 { plane |= UInt16((codes[l] >> UInt8(j)) & 1) << UInt16(l) }
                            block.storeBytes(of: plane, toByteOffset: layout.codesOffset + t * layout.tileBytes + offset + 2 * j, as: UInt16.self)
                        }
                    }
                }
                offset += 2 * w
            }
        }
    }

    override func decodePosition(_ block: UnsafeRawPointer, offset r: Int, into out: UnsafeMutablePointer<Float>) {
        let lane = r % 16, tiles = groupSize / 16
        var offset = layout.codesOffset + r / 16 * layout.tileBytes
        let previousTile = ((r / 16 + tiles - 1) % tiles - r / 16) * layout.tileBytes
        for c in 0..<headDim {
            let byte = block.load(fromByteOffset: layout.widthsOffset + c, as: UInt8.self)
            let w = Int(byte & ~KIVITrellisChannels.flag)
            let s = halfAt(block, layout.scalesOffset + c * 2), z = halfAt(block, layout.zerosOffset + c * 2)
            if byte & KIVITrellisChannels.flag != 0, let trellis {
                let state = KIVITrellisChannels.stateScalar(block + offset, previous: block + offset + previousTile, lane: lane, width: w)
                out[c] = s * trellis.levels[(w - 2) * TrellisCodebook.states + state] + z
            } else {
                var code = 0
                for j in 0..<w { code |= Int((block.load(fromByteOffset: offset + 2 * j, as: UInt16.self) >> UInt16(lane)) & 1) << j }
                out[c] = s * Float(code) + z
            }
            offset += 2 * w
        }
    }

    override func decodeTile(_ block: UnsafeRawPointer, tile m: Int, scales: UnsafePointer<Float>, zeros: UnsafePointer<Float>,
                             into tile: UnsafeMutableRawPointer) {
        let tiles = groupSize / 16
        if let trellis {
            KIVIMixTile.decodeTrellis(block + layout.codesOffset + m * layout.tileBytes,
                                      previousTile: ((m + tiles - 1) % tiles - m) * layout.tileBytes,
                                      (block + layout.widthsOffset).assumingMemoryBound(to: UInt8.self), scales, zeros, headDim,
                                      tables: trellis.tables, lanes: trellis.lanes, into: tile)
            return
        }
        KIVIMixTile.decode(block + layout.codesOffset + m * layout.tileBytes,
                           (block + layout.widthsOffset).assumingMemoryBound(to: UInt8.self), scales, zeros, headDim, into: tile)
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

    /// The same with trellis channels (width byte w | 0x80): their 16 levels from the chunk and the
    /// previous tile's chunk of the channel (`previousTile` bytes away), tile[c, l] = fma(s_c, level, z_c).
    @inline(never)
    static func decodeTrellis(_ codes: UnsafeRawPointer, previousTile: Int, _ widths: UnsafePointer<UInt8>, _ scales: UnsafePointer<Float>,
                              _ zeros: UnsafePointer<Float>, _ d: Int, tables: UnsafePointer<TrellisTables>,
                              lanes: UnsafePointer<TrellisLaneLayout>, into tile: UnsafeMutableRawPointer) {
        var p = codes
        for c in 0..<d {
            let byte = widths[c]
            let w = Int(byte & ~KIVITrellisChannels.flag)
            var code = SIMD16<Float>()
            if byte & KIVITrellisChannels.flag != 0 {
                code = KIVITrellisChannels.levels16(p, previous: p + previousTile, width: w, tables: tables[w - 2], lanes: lanes[w - 2])
            } else {
                var bit: Float = 1
                for j in 0..<w {
                    code = godwit_mask_add16(code, p.loadUnaligned(fromByteOffset: 2 * j, as: UInt16.self), bit)
                    bit += bit
                }
            }
            let v = SIMD16<Float>(repeating: zeros[c]).addingProduct(SIMD16<Float>(repeating: scales[c]), code)
            tile.storeBytes(of: v, toByteOffset: c * 64, as: SIMD16<Float>.self)
            p += 2 * w
        }
    }
}
