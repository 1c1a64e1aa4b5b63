// Attention computed directly on the encoded cache with an online (flash-attention) softmax:
// scores come from the key store (which may quantize the query once and use integer dots), the
// weighted value sum accumulates straight from the value store, one tile of positions at a time.
// No step materializes the cache as floats.
//
// One canonical order of operations per query row, whatever the batch or thread count, so a token's
// output is bitwise the same decoded alone or inside a prompt batch:
// - keys are visited in chunks of `decodeChunk` positions aligned to multiples of it, each chunk in
//   tiles of `tile` positions aligned to multiples of `tile` (a row's keys outside its causal /
//   window range are masked inside a tile; splits at the ring's end only split the store calls);
// - within a chunk, an online softmax from scratch; chunk states are then merged in chunk order by
//   `mergeRow` (running max, sum, accumulator).
// Work split: decode (1 token): tasks = KV heads × chunks, partial states saved and merged at the
// end (flash-decoding); prompt batches: tasks = KV heads × blocks of tokens, each task walking the
// chunks of its keys and merging as it goes.
// Query heads h·G ..< (h+1)·G share KV head h (grouped-query attention, G = heads / kvHeads).
import GodwitKernels

/// Per-thread scratch for attention, sized once for the largest layer and batch.
final class AttentionScratch {
    static let tile = 64
    static let maxRows = 64
    static let decodeChunk = 256

    struct Thread {
        /// [maxRows, preparedBytes]; a layer uses its key store's own stride (≤ preparedBytes)
        let prepared: UnsafeMutableRawPointer
        /// [maxKeyDim]
        let query: UnsafeMutablePointer<Float>
        /// [maxRows, tile]
        let scores: UnsafeMutablePointer<Float>
        /// [maxRows] running max and sum
        let runningMax: UnsafeMutablePointer<Float>
        let runningSum: UnsafeMutablePointer<Float>
        /// [maxRows, maxValueDim]
        let acc: UnsafeMutablePointer<Float>
        /// Merged state over the chunks done so far (prompt batches): [maxRows, maxValueDim], [maxRows] ×2
        let mergedAcc: UnsafeMutablePointer<Float>
        let mergedMax: UnsafeMutablePointer<Float>
        let mergedSum: UnsafeMutablePointer<Float>
    }

    let threads: [Thread]
    /// Decode partials: [maxTasks, maxGroup, maxValueDim + 2] (acc, then max, sum).
    let partials: UnsafeMutablePointer<Float>
    let partialStride: Int
    let maxGroupRows: Int
    let preparedBytes: Int

    init(layers: [KVLayerCache], maxBatch: Int, threads count: Int) {
        let maxKeyDim = layers.map(\.spec.keyDim).max() ?? 0
        let maxValueDim = layers.map(\.spec.valueDim).max() ?? 0
        preparedBytes = ((layers.map(\.keys.preparedQueryBytes).max() ?? 0) + 63) / 64 * 64
        let rows = Self.maxRows
        var ts = [Thread]()
        for _ in 0..<max(1, count) {
            ts.append(Thread(
                prepared: .allocate(byteCount: rows * preparedBytes, alignment: 64),
                query: .allocate(capacity: maxKeyDim + 16),
                scores: .allocate(capacity: rows * Self.tile),
                runningMax: .allocate(capacity: rows),
                runningSum: .allocate(capacity: rows),
                acc: .allocate(capacity: rows * maxValueDim + 16),
                mergedAcc: .allocate(capacity: rows * maxValueDim + 16),
                mergedMax: .allocate(capacity: rows),
                mergedSum: .allocate(capacity: rows)))
        }
        threads = ts
        // A decode query spans at most `capacity` positions, in aligned chunks: one more than capacity/chunk.
        let maxChunks = layers.map { (($0.capacity + Self.decodeChunk - 1) / Self.decodeChunk + 1) * $0.spec.kvHeads }.max() ?? 1
        maxGroupRows = Self.maxRows
        partialStride = maxValueDim + 2
        partials = .allocate(capacity: max(1, maxChunks) * Self.maxRows * partialStride)
    }

    deinit {
        for t in threads {
            t.prepared.deallocate(); t.query.deallocate(); t.scores.deallocate()
            t.runningMax.deallocate(); t.runningSum.deallocate(); t.acc.deallocate()
            t.mergedAcc.deallocate(); t.mergedMax.deallocate(); t.mergedSum.deallocate()
        }
        partials.deallocate()
    }
}

extension KVCache {
    /// Attention of `n` query tokens at positions firstPosition..<firstPosition+n over the cached
    /// positions (causal; sliding-window layers see the last `window` positions, themselves included).
    /// queries: [n, heads, keyDim] after RoPE, `queryStride` floats per token (not modified).
    /// out: [n, heads, valueDim], `outStride` floats per token.
    public func attend(layer index: Int, queries: UnsafePointer<Float>, queryStride: Int, heads: Int,
                       tokens n: Int, firstPosition: Int, scale: Float,
                       into out: UnsafeMutablePointer<Float>, outStride: Int, pool: ThreadPool) {
        if usesExactAttention(layer: index) { attendExact(layer: index, queries: queries, queryStride: queryStride, heads: heads, tokens: n, firstPosition: firstPosition, scale: scale, into: out, outStride: outStride, pool: pool); return }
        if usesGGMLFlashF16(layer: index) { attendGGMLFlashF16(layer: index, queries: queries, queryStride: queryStride, heads: heads, tokens: n, firstPosition: firstPosition, scale: scale, into: out, outStride: outStride, pool: pool); return }
        if usesGGMLFlashAttention(layer: index) { attendGGMLFlash(layer: index, queries: queries, queryStride: queryStride, heads: heads, tokens: n, firstPosition: firstPosition, scale: scale, into: out, outStride: outStride, pool: pool); return }
        let layer = layers[index]
        let kvHeads = layer.spec.kvHeads
        let group = heads / kvHeads
        let s = attentionScratch
        let chunk = AttentionScratch.decodeChunk
        if n == 1 {
            let last = firstPosition
            let lo = layer.spec.window.map { max(0, last - $0 + 1) } ?? 0
            let firstChunk = lo / chunk
            let chunks = last / chunk - firstChunk + 1
            pool.parallelFor(kvHeads * chunks) { task, thread in
                let h = task / chunks, c = firstChunk + task % chunks
                let keyRange = max(lo, c * chunk)..<min(last + 1, (c + 1) * chunk)
                let scratch = s.threads[thread]
                self.prepareRows(layer, head: h, group: group, tokens: 0..<1, queries: queries, queryStride: queryStride,
                                 scale: scale, scratch: scratch)
                self.attendBlock(layer, head: h, group: group, tokens: 0..<1, firstPosition: firstPosition,
                                 keyRange: keyRange, scratch: scratch)
                // Save the partial state of each of the G rows.
                let dv = layer.spec.valueDim
                for g in 0..<group {
                    let p = s.partials + (task * group + g) * s.partialStride
                    p.update(from: scratch.acc + g * dv, count: dv)
                    p[dv] = scratch.runningMax[g]
                    p[dv + 1] = scratch.runningSum[g]
                }
            }
            mergeDecodePartials(layer, kvHeads: kvHeads, group: group, chunks: chunks, out: out)
        } else {
            let tokensPerBlock = max(1, AttentionScratch.maxRows / group)
            let blocks = (n + tokensPerBlock - 1) / tokensPerBlock
            let dv = layer.spec.valueDim
            pool.parallelFor(kvHeads * blocks) { task, thread in
                let h = task / blocks, b = task % blocks
                let tokens = (b * tokensPerBlock)..<min(n, (b + 1) * tokensPerBlock)
                let lastPos = firstPosition + tokens.upperBound - 1
                let lo = layer.spec.window.map { max(0, firstPosition + tokens.lowerBound - $0 + 1) } ?? 0
                let scratch = s.threads[thread]
                let rows = tokens.count * group
                self.prepareRows(layer, head: h, group: group, tokens: tokens, queries: queries, queryStride: queryStride,
                                 scale: scale, scratch: scratch)
                for r in 0..<rows { scratch.mergedMax[r] = -.infinity; scratch.mergedSum[r] = 0 }
                for c in (lo / chunk)...(lastPos / chunk) {
                    let keyRange = max(lo, c * chunk)..<min(lastPos + 1, (c + 1) * chunk)
                    self.attendBlock(layer, head: h, group: group, tokens: tokens, firstPosition: firstPosition,
                                     keyRange: keyRange, scratch: scratch)
                    for r in 0..<rows {
                        Self.mergeRow(acc: scratch.mergedAcc + r * dv, max: &scratch.mergedMax[r], sum: &scratch.mergedSum[r],
                                      partial: scratch.acc + r * dv, partialMax: scratch.runningMax[r],
                                      partialSum: scratch.runningSum[r], dv)
                    }
                }
                self.finishRows(layer, head: h, group: group, tokens: tokens, scratch: scratch, out: out, outStride: outStride)
            }
        }
    }

    /// Merges a partial softmax state (max m, sum s, accumulator a) into a running one, in place.
    /// The only way chunk states are combined, for decode and prompt batches alike.
    @inline(__always)
    static func mergeRow(acc: UnsafeMutablePointer<Float>, max M: inout Float, sum S: inout Float,
                         partial a: UnsafePointer<Float>, partialMax m: Float, partialSum s: Float, _ dv: Int) {
        guard m > -.infinity else { return }
        guard M > -.infinity else {
            acc.update(from: a, count: dv)
            M = m; S = s
            return
        }
        let nm = Swift.max(M, m)
        let fa = FastMath.exp(M - nm), fb = FastMath.exp(m - nm)
        for i in 0..<dv { acc[i] = (acc[i] * fa).addingProduct(a[i], fb) }
        S = (S * fa).addingProduct(s, fb)
        M = nm
    }

    /// Scales each row's query, rotates it like the keys and encodes it for the key store.
    func prepareRows(_ layer: KVLayerCache, head h: Int, group: Int, tokens: Range<Int>,
                     queries: UnsafePointer<Float>, queryStride: Int, scale: Float, scratch: AttentionScratch.Thread) {
        let dk = layer.spec.keyDim
        // The store reads its prepared queries `preparedQueryBytes` apart (layers may differ).
        let preparedBytes = layer.keys.preparedQueryBytes
        for r in 0..<tokens.count * group {
            let t = tokens.lowerBound + r / group, g = r % group
            let src = queries + t * queryStride + (h * group + g) * dk
            let q = scratch.query
            for i in 0..<dk { q[i] = src[i] * scale }
            layer.keyRotation?.apply(q, dim: dk)
            layer.keys.prepareQuery(q, into: scratch.prepared + r * preparedBytes)
        }
    }

    /// Online-softmax attention of the rows (tokens × group) of one KV head over `keyRange` (inside
    /// one chunk), from prepared queries, leaving unnormalized accumulators, running max and running
    /// sum in `scratch`. Tiles are aligned to multiples of `tile` positions.
    func attendBlock(_ layer: KVLayerCache, head h: Int, group: Int, tokens: Range<Int>, firstPosition: Int,
                     keyRange: Range<Int>, scratch: AttentionScratch.Thread) {
        let spec = layer.spec
        let dv = spec.valueDim
        let rows = tokens.count * group
        for r in 0..<rows {
            scratch.runningMax[r] = -.infinity
            scratch.runningSum[r] = 0
        }
        (scratch.acc).initialize(repeating: 0, count: rows * dv)
        let tile = AttentionScratch.tile
        var start = keyRange.lowerBound
        while start < keyRange.upperBound {
            let end = min(keyRange.upperBound, (start / tile + 1) * tile)
            let count = end - start
            // No software prefetch: issuing the next tile's lines (1, 2 or 4 tiles ahead) measured
            // 0-7 % slower than the hardware prefetcher alone on these sequential per-head streams.
            // Never wrap around the ring inside one store call.
            let ringEnd = (start / layer.capacity + 1) * layer.capacity
            let split = min(end, ringEnd) - start
            layer.keys.scores(queries: scratch.prepared, queryCount: rows, head: h, positions: start..<(start + split),
                              into: scratch.scores, outStride: tile)
            if split < count {
                layer.keys.scores(queries: scratch.prepared, queryCount: rows, head: h, positions: (start + split)..<end,
                                  into: scratch.scores + split, outStride: tile)
            }
            for r in 0..<rows {
                let pos = firstPosition + tokens.lowerBound + r / group
                let lowest = spec.window.map { pos - $0 + 1 } ?? 0
                let sr = scratch.scores + r * tile
                // Valid keys: lowest ... pos.
                let validLo = max(0, lowest - start), validHi = min(count, pos - start + 1)
                if validHi <= validLo {
                    for j in 0..<count { sr[j] = 0 }
                    continue
                }
                let tileMax = VectorOps.max(sr + validLo, validHi - validLo)
                let oldMax = scratch.runningMax[r]
                let newMax = max(oldMax, tileMax)
                if newMax > oldMax && oldMax > -.infinity {
                    let factor = FastMath.exp(oldMax - newMax)
                    scratch.runningSum[r] *= factor
                    VectorOps.scale(scratch.acc + r * dv, by: factor, dv)
                }
                scratch.runningMax[r] = newMax
                let sum = VectorOps.expSubtract(sr + validLo, max: newMax, validHi - validLo)
                for j in 0..<validLo { sr[j] = 0 }
                for j in validHi..<max(validHi, count) { sr[j] = 0 }
                scratch.runningSum[r] += sum
            }
            layer.values.accumulate(weights: scratch.scores, weightStride: tile, queryCount: rows, head: h,
                                    positions: start..<(start + split), into: scratch.acc, accStride: dv)
            if split < count {
                layer.values.accumulate(weights: scratch.scores + split, weightStride: tile, queryCount: rows, head: h,
                                        positions: (start + split)..<end, into: scratch.acc, accStride: dv)
            }
            start = end
        }
    }

    /// Normalizes the rows of a finished block and writes them (rotated back) to the output.
    func finishRows(_ layer: KVLayerCache, head h: Int, group: Int, tokens: Range<Int>,
                    scratch: AttentionScratch.Thread, out: UnsafeMutablePointer<Float>, outStride: Int) {
        let dv = layer.spec.valueDim
        for r in 0..<tokens.count * group {
            let t = tokens.lowerBound + r / group, g = r % group
            let dst = out + t * outStride + (h * group + g) * dv
            let sum = scratch.mergedSum[r]
            let inv: Float = sum > 0 ? 1 / sum : 0
            let acc = scratch.mergedAcc + r * dv
            for i in 0..<dv { dst[i] = acc[i] * inv }
            layer.valueRotation?.applyInverse(dst, dim: dv)
        }
    }

    /// Combines per-chunk partial softmax states into the output of a single decode token, merging
    /// the chunks in order with `mergeRow` (as prompt batches do).
    func mergeDecodePartials(_ layer: KVLayerCache, kvHeads: Int, group: Int, chunks: Int, out: UnsafeMutablePointer<Float>) {
        let dv = layer.spec.valueDim
        let s = attentionScratch
        for h in 0..<kvHeads {
            for g in 0..<group {
                let dst = out + (h * group + g) * dv
                var m = -Float.infinity, total: Float = 0
                for c in 0..<chunks {
                    let p = s.partials + ((h * chunks + c) * group + g) * s.partialStride
                    Self.mergeRow(acc: dst, max: &m, sum: &total, partial: p, partialMax: p[dv], partialSum: p[dv + 1], dv)
                }
                let inv: Float = total > 0 ? 1 / total : 0
                for i in 0..<dv { dst[i] = dst[i] * inv }
                layer.valueRotation?.applyInverse(dst, dim: dv)
            }
        }
    }
}
