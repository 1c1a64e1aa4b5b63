// Pre-RoPE wrapper for a post-RoPE-agnostic key store (used by kivi{b}r, KIVIScheme.swift): the inner
// store quantizes keys *before* RoPE (KVQuant, arXiv 2401.18079, §3.2: per-channel statistics are
// stable before RoPE mixes channel pairs with position-dependent angles), and RoPE is applied when
// scoring: the inner store rotates each decoded 16-position tile (TileRoPE.swift) before the dots;
// the angles of each slot's position are recorded when written (RoPEAngleTable, PreRoPEKeys.swift).
// The first `sinkTokens` positions (the attention sink; KVQuant keeps position 0 in full precision)
// are also kept as f16 here and read from there. The inner store still receives them (so its token
// groups stay aligned to position 0) but leaves them out of its group ranges (KIVIGroupedKeyStore.excludeBefore);
// their unused codes are counted in bytesHeld. Sliding-window layers get no sink (as with --kv-sink).
import GodwitKernels

final class PreRoPEKeyStore: ScalarTwinKeyStore {
    let geometry: KVStoreGeometry
    let inner: KIVIGroupedKeyStore
    let angles: RoPEAngleTable?
    let sinkTokens: Int
    /// [headCount, sinkTokens, headDim] f16
    let sink: UnsafeMutableRawPointer

    init(inner: KIVIGroupedKeyStore, rope: RotaryEmbedding?, sinkTokens: Int) {
        let g = inner.geometry
        geometry = g
        self.inner = inner
        self.sinkTokens = g.window == nil ? max(0, sinkTokens) : 0
        angles = rope.map { RoPEAngleTable(rope: $0, capacity: g.capacity) }
        sink = .allocate(byteCount: max(1, g.headCount * self.sinkTokens * g.headDim * 2), alignment: 64)
        inner.excludeBefore = self.sinkTokens
        inner.tileRoPE = angles.map { TileRoPE(angles: $0) }
    }

    deinit { sink.deallocate() }

    var keyInput: KeyInput { .preRoPE }
    var allocatedBytes: Int {
        inner.allocatedBytes + geometry.headCount * sinkTokens * geometry.headDim * 2 + (angles?.allocatedBytes ?? 0)
            + (inner.tileRoPE?.allocatedBytes ?? 0)
    }
    func bytesHeld(tokens: Int) -> Int {
        let t = max(0, tokens)
        return geometry.headCount * min(t, sinkTokens) * geometry.headDim * 2 + inner.bytesHeld(tokens: t)
    }
    var preparedQueryBytes: Int { geometry.headDim * 4 }

    @inline(__always) private func sinkVector(head: Int, position: Int) -> UnsafeMutableRawPointer {
        sink + (head * sinkTokens + position) * geometry.headDim * 2
    }

    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        let d = geometry.headDim
        var t = 0
        while t < count {
            let p = firstPosition + t
            angles?.fill(position: p)
            if p < sinkTokens {
                for h in 0..<geometry.headCount {
                    let dst = sinkVector(head: h, position: p)
                    for i in 0..<d { F16Element.store(src[t * tokenStride + h * d + i], dst + i * 2) }
                }
            }
            t += 1
        }
        inner.write(src, tokenStride: tokenStride, count: count, firstPosition: firstPosition)
    }

    func truncate(to count: Int) { inner.truncate(to: count) }

    /// Pre-RoPE keys (like the nuq key store's `read`).
    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim
        var j = 0
        for p in positions where p < sinkTokens {
            let v = sinkVector(head: head, position: p)
            for i in 0..<d { out[j * d + i] = F16Element.load(v + i * 2) }
            j += 1
        }
        let rest = min(max(positions.lowerBound, sinkTokens), positions.upperBound)..<positions.upperBound
        if !rest.isEmpty { inner.read(head: head, positions: rest, into: out + j * d) }
    }

    func prepareQuery(_ q: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) {
        dst.copyMemory(from: q, byteCount: geometry.headDim * 4)
    }

    /// Sink positions from the f16 copy (rotated one at a time); the rest by the inner store, which
    /// rotates its decoded tiles (TileRoPE).
    func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                into out: UnsafeMutablePointer<Float>, outStride: Int) {
        scores(queries: queries, queryCount: queryCount, head: head, positions: positions, into: out, outStride: outStride, scalar: false)
    }

    /// Same contract, the inner store's scalar twin for the non-sink positions.
    func scalarScores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                      into out: UnsafeMutablePointer<Float>, outStride: Int) {
        scores(queries: queries, queryCount: queryCount, head: head, positions: positions, into: out, outStride: outStride, scalar: true)
    }

    private func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                        into out: UnsafeMutablePointer<Float>, outStride: Int, scalar: Bool) {
        let d = geometry.headDim
        let sinkEnd = min(max(positions.lowerBound, sinkTokens), positions.upperBound)
        if positions.lowerBound < sinkEnd {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: d) { buf in
                let k = buf.baseAddress!
                for p in positions.lowerBound..<sinkEnd {
                    let v = sinkVector(head: head, position: p)
                    for i in 0..<d { k[i] = F16Element.load(v + i * 2) }
                    angles?.rotate(k, headDim: d, position: p)
                    let j = p - positions.lowerBound
                    for g in 0..<queryCount { out[g * outStride + j] = PreRoPEDot.dot(queries + g * d * 4, k, d) }
                }
            }
        }
        if sinkEnd < positions.upperBound, scalar {
            inner.scalarScores(queries: queries, queryCount: queryCount, head: head, positions: sinkEnd..<positions.upperBound,
                               into: out + (sinkEnd - positions.lowerBound), outStride: outStride)
        } else if sinkEnd < positions.upperBound {
            inner.scores(queries: queries, queryCount: queryCount, head: head, positions: sinkEnd..<positions.upperBound,
                         into: out + (sinkEnd - positions.lowerBound), outStride: outStride)
        }
    }
}
