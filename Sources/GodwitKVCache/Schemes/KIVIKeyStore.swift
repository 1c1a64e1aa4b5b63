// KIVI key storage (arXiv 2402.02750, per-channel key quantization; deviations in KIVIScheme.swift):
// uniform b-bit codes per channel and group. Groups, tail, rings and the tile walk: KIVIGroupedKeyStore.
// Codes are laid out in 16-position tiles (KIVIKeyGroupLayout; G a multiple of 16): one chunk holds
// one channel's codes of 16 consecutive positions, so scoring decodes a tile of 16 keys into f32
// [d, 16] once for all query rows and takes 16 dot products per query with TileDot.
import GodwitKernels

final class KIVIKeyStore<B: KIVIBitWidth>: KIVIGroupedKeyStore {
    let layout: KIVIKeyGroupLayout

    init(_ g: KVStoreGeometry, groupSize: Int, residual: Int) {
        layout = KIVIKeyGroupLayout(headDim: g.headDim, groupSize: groupSize, bits: B.bits)
        super.init(g, groupSize: groupSize, residual: residual, groupBytes: layout.byteSize)
    }

    /// Per channel: f16 scale and zero from the group's range, then the codes tile by tile.
    override func encodeGroup(_ staging: UnsafePointer<Float>, skip: Int, head: Int, into block: UnsafeMutableRawPointer) {
        let d = headDim, n = groupSize, bits = B.bits
        for c in 0..<d {
            let (s, z) = KIVICodes.parameters(staging + skip * d + c, count: n - skip, stride: d, bits: bits)
            block.storeBytes(of: s, toByteOffset: layout.scalesOffset + c * 2, as: UInt16.self)
            block.storeBytes(of: z, toByteOffset: layout.zerosOffset + c * 2, as: UInt16.self)
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16) { codeBuf in
            let codes = codeBuf.baseAddress!
            for c in 0..<d {
                let s = halfAt(block, layout.scalesOffset + c * 2), z = halfAt(block, layout.zerosOffset + c * 2)
                for m in 0..<n / 16 {
                    for l in 0..<16 { codes[l] = KIVICodes.encode(staging[(m * 16 + l) * d + c], scale: s, zero: z, bits: bits) }
                    KIVICodes.pack(codes, count: 16, bits: bits, into: block + layout.codesOffset + (m * d + c) * 2 * bits)
                }
            }
        }
    }

    /// The chunk holding channel c of group-relative tile m: 16 positions' codes (KIVIKeyGroupLayout).
    @inline(__always) private func chunk(_ block: UnsafeRawPointer, tile m: Int, channel c: Int) -> UnsafeRawPointer {
        block + layout.codesOffset + (m * headDim + c) * 2 * B.bits
    }

    override func decodePosition(_ block: UnsafeRawPointer, offset r: Int, into out: UnsafeMutablePointer<Float>) {
        let m = r / 16, lane = r % 16
        for c in 0..<headDim {
            let s = halfAt(block, layout.scalesOffset + c * 2), z = halfAt(block, layout.zerosOffset + c * 2)
            out[c] = s * Float(KIVICodes.code(chunk(block, tile: m, channel: c), channel: lane, bits: B.bits)) + z
        }
    }

    override func decodeTile(_ block: UnsafeRawPointer, tile m: Int, scales: UnsafePointer<Float>, zeros: UnsafePointer<Float>,
                             into tile: UnsafeMutableRawPointer) {
        let codes = chunk(block, tile: m, channel: 0), d = headDim
        switch B.bits {
        case 2: KIVITile.decode(KIVI2Bit.self, codes, scales, zeros, d, into: tile)
        case 3: KIVITile.decode(KIVI3Bit.self, codes, scales, zeros, d, into: tile)
        case 4: KIVITile.decode(KIVI4Bit.self, codes, scales, zeros, d, into: tile)
        case 5: KIVITile.decode(KIVI5Bit.self, codes, scales, zeros, d, into: tile)
        case 6: KIVITile.decode(KIVI6Bit.self, codes, scales, zeros, d, into: tile)
        default: KIVITile.decode(KIVI8Bit.self, codes, scales, zeros, d, into: tile)
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
