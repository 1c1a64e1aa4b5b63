// RoPE on a decoded key tile: the pre-RoPE key stores (kivi{b}pre, nuq; KVQuant, arXiv 2401.18079
// §3.2) decode 16 consecutive positions into an f32 tile [d, 16] (row i = dimension i, lane l =
// position) and rotate the whole tile before the query dots (TileDot), instead of rotating one key
// vector at a time. Source: this project; angles and pairing are RotaryEmbedding's (ggml's rope).
//
// Lane `lane` of the tile holds `position`, whose angles the RoPEAngleTable holds exactly as the
// post-RoPE path computes them; lane l holds position + (l − lane), whose angles come from the
// angle-addition formulas with b = θ_i·k, k = l − lane ∈ −15…15, tabulated once per store:
//   cos(a + b) = cos a·cos b − sin a·sin b,   sin(a + b) = sin a·cos b + cos a·sin b.
// RoPE's angle is linear in the position (θ_i·p with the linear frequency scale and the per-pair
// factors folded into θ_i), so this is the same rotation up to float rounding: the lanes other than
// `lane` differ from RotaryEmbedding.apply by a few ulps (tests compare within 1e-4).
import GodwitKernels

final class TileRoPE {
    let angles: RoPEAngleTable
    /// Rotated pairs (rope.dimensions / 2).
    let half: Int
    let neox: Bool
    /// cos(θ_i·k), sin(θ_i·k) for k = −16…15 at index k + 16: [half, 32] f32 each.
    let offsetCos: UnsafeMutablePointer<Float>
    let offsetSin: UnsafeMutablePointer<Float>

    init(angles: RoPEAngleTable) {
        self.angles = angles
        let rope = angles.rope
        half = rope.dimensions / 2
        neox = rope.style == .neox
        offsetCos = .allocate(capacity: max(1, half * 32))
        offsetSin = .allocate(capacity: max(1, half * 32))
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * max(1, half)) { buf in
            let c = buf.baseAddress!, s = c + half
            for k in 0...16 {
                rope.table(position: k, cos: c, sin: s)
                for i in 0..<half {
                    if k < 16 { offsetCos[i * 32 + 16 + k] = c[i]; offsetSin[i * 32 + 16 + k] = s[i] }
                    // cos is even, sin odd.
                    if k > 0 { offsetCos[i * 32 + 16 - k] = c[i]; offsetSin[i * 32 + 16 - k] = -s[i] }
                }
            }
        }
    }

    deinit { offsetCos.deallocate(); offsetSin.deallocate() }

    var allocatedBytes: Int { 2 * half * 32 * 4 }

    /// Rotates tile [d, 16] f32 in place; lane `lane` holds `position` (a position the angle table holds).
    @inline(__always)
    func rotate(_ tile: UnsafeMutableRawPointer, position: Int, lane: Int) {
        let s = (position % angles.capacity) * half
        Self.rotateTile(tile, angles.cos + s, angles.sin + s, offsetCos + (16 - lane), offsetSin + (16 - lane), half, neox)
    }

    /// Pair i (rows i, i + half for NeoX; 2i, 2i + 1 otherwise): with C = cos(a + b), S = sin(a + b)
    /// per lane, x ← x·C − y·S, y ← x·S + y·C. cb, sb: [half] base angles; oc, os: row i at i·32,
    /// lanes 0…15. Not inlined (see TileDot: inlined into the tile loops, LLVM split the vectors).
    @inline(never)
    static func rotateTile(_ tile: UnsafeMutableRawPointer, _ cb: UnsafePointer<Float>, _ sb: UnsafePointer<Float>,
                           _ oc: UnsafePointer<Float>, _ os: UnsafePointer<Float>, _ half: Int, _ neox: Bool) {
        let negativeZero = SIMD16<Float>(repeating: -0.0)
        for i in 0..<half {
            let ia = neox ? i : 2 * i, ib = neox ? i + half : 2 * i + 1
            let cj = UnsafeRawPointer(oc + i * 32).loadUnaligned(as: SIMD16<Float>.self)
            let sj = UnsafeRawPointer(os + i * 32).loadUnaligned(as: SIMD16<Float>.self)
            let c0 = SIMD16<Float>(repeating: cb[i]), s0 = SIMD16<Float>(repeating: sb[i])
            let nc0 = SIMD16<Float>(repeating: -cb[i]), ns0 = SIMD16<Float>(repeating: -sb[i])
            // a·b written as fma(a, b, −0), sums as fmas (stdlib SIMD `*`/`+` split into xmm pieces).
            let c = negativeZero.addingProduct(ns0, sj).addingProduct(c0, cj)
            let s = negativeZero.addingProduct(s0, cj).addingProduct(c0, sj)
            let ns = negativeZero.addingProduct(ns0, cj).addingProduct(nc0, sj)
            let x = tile.load(fromByteOffset: ia * 64, as: SIMD16<Float>.self)
            let y = tile.load(fromByteOffset: ib * 64, as: SIMD16<Float>.self)
            tile.storeBytes(of: negativeZero.addingProduct(x, c).addingProduct(y, ns), toByteOffset: ia * 64, as: SIMD16<Float>.self)
            tile.storeBytes(of: negativeZero.addingProduct(x, s).addingProduct(y, c), toByteOffset: ib * 64, as: SIMD16<Float>.self)
        }
    }
}
