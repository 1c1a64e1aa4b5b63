// KIVI key storage (arXiv 2402.02750, per-channel key quantization; deviations in KIVIScheme.swift).
// Positions start..<end are held: relative position r = p − start belongs to group r / G; groups
// 0..<quantizedGroups are quantized (KIVIKeyGroupLayout), the rest (start + quantizedGroups·G ..< end)
// sit in an f16 tail. A group is quantized once all its G tokens are older than the last R tokens,
// so the tail holds at most R + G − 1 tokens between writes.
// Rings: quantized groups live in slot g % groupSlots with groupSlots = ⌈capacity / G⌉ + 1, which
// keeps every position ≥ end − capacity (what a sliding-window layer may still read); the tail lives
// in slot p % (R + G).
// Scores without dequantizing: q·k_j = Σ_c (q_c·s_c)·code_jc + Σ_c q_c·z_c; per group and query the
// scaled query q⊙s and the constant are formed once, then each token is a float dot with its codes.
import GodwitKernels

/// What PreRoPEKeyStore needs of a KIVI key store of any width.
protocol KIVIKeyStoreBase: KeyStore {
    var excludeBefore: Int { get set }
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
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: d) { codeBuf in
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
                for j in 0..<n {
                    for c in 0..<d {
                        let s = halfAt(block, layout.scalesOffset + c * 2), z = halfAt(block, layout.zerosOffset + c * 2)
                        codes[c] = KIVICodes.encode(staging[j * d + c], scale: s, zero: z, bits: bits)
                    }
                    KIVICodes.pack(codes, count: d, bits: bits, into: block + layout.codesOffset + j * layout.codeRowBytes)
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

    /// Key of a held position: out [headDim].
    @inline(__always) private func dequantize(head: Int, position p: Int, into out: UnsafeMutablePointer<Float>) {
        if p >= quantizedEnd {
            let v = tailVector(head: head, position: p)
            for i in 0..<headDim { out[i] = F16Element.load(v + i * 2) }
            return
        }
        let r = p - start
        let block = UnsafeRawPointer(groupBlock(head: head, group: r / groupSize))
        let row = block + layout.codesOffset + (r % groupSize) * layout.codeRowBytes
        for c16 in 0..<headDim / 16 {
            var s = SIMD16<Float>(), z = SIMD16<Float>()
            for i in 0..<16 {
                s[i] = halfAt(block, layout.scalesOffset + (c16 * 16 + i) * 2)
                z[i] = halfAt(block, layout.zerosOffset + (c16 * 16 + i) * 2)
            }
            UnsafeMutableRawPointer(out).storeBytes(of: s * B.unpack16(row + c16 * B.chunkBytes) + z,
                                                    toByteOffset: c16 * 64, as: SIMD16<Float>.self)
        }
    }

    /// Scalar twin of `dequantize` (code by code, for `scalarScores`).
    private func dequantizeScalar(head: Int, position p: Int, into out: UnsafeMutablePointer<Float>) {
        guard p < quantizedEnd else { dequantize(head: head, position: p, into: out); return }
        let r = p - start
        let block = UnsafeRawPointer(groupBlock(head: head, group: r / groupSize))
        let row = block + layout.codesOffset + (r % groupSize) * layout.codeRowBytes
        for c in 0..<headDim {
            let s = halfAt(block, layout.scalesOffset + c * 2), z = halfAt(block, layout.zerosOffset + c * 2)
            out[c] = s * Float(KIVICodes.code(row, channel: c, bits: B.bits)) + z
        }
    }

    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        for (j, p) in positions.enumerated() { dequantize(head: head, position: p, into: out + j * headDim) }
    }

    func prepareQuery(_ q: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) {
        dst.copyMemory(from: q, byteCount: headDim * 4)
    }

    // MARK: Scores

    /// qs ← q ⊙ s for one group; returns Σ_c q_c·z_c. q, qs: [headDim] f32; block: a key group.
    @inline(__always) private func scaleQuery(_ q: UnsafeRawPointer, block: UnsafeRawPointer, into qs: UnsafeMutableRawPointer) -> Float {
        var accZ = SIMD16<Float>()
        for c in 0..<headDim / 16 {
            let qv = q.loadUnaligned(fromByteOffset: c * 64, as: SIMD16<Float>.self)
            let s = F16Element.load16(block + layout.scalesOffset + c * 32)
            let z = F16Element.load16(block + layout.zerosOffset + c * 32)
            qs.storeBytes(of: qv * s, toByteOffset: c * 64, as: SIMD16<Float>.self)
            accZ = accZ.addingProduct(qv, z)
        }
        return VectorOps.hsum(accZ)
    }

    /// Σ_c qs_c·code_c over one packed code row.
    @inline(__always) private func dotCodes(_ qs: UnsafeRawPointer, _ row: UnsafeRawPointer) -> Float {
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>()
        let chunks = headDim / 16
        var c = 0
        while c + 2 <= chunks {
            a0 = a0.addingProduct(qs.loadUnaligned(fromByteOffset: c * 64, as: SIMD16<Float>.self), B.unpack16(row + c * B.chunkBytes))
            a1 = a1.addingProduct(qs.loadUnaligned(fromByteOffset: c * 64 + 64, as: SIMD16<Float>.self),
                                  B.unpack16(row + (c + 1) * B.chunkBytes))
            c += 2
        }
        if c < chunks {
            a0 = a0.addingProduct(qs.loadUnaligned(fromByteOffset: c * 64, as: SIMD16<Float>.self), B.unpack16(row + c * B.chunkBytes))
        }
        return VectorOps.hsum(a0 + a1)
    }

    /// Σ_c q_c·k_c with an f16 key.
    @inline(__always) private func dotHalf(_ q: UnsafeRawPointer, _ k: UnsafeRawPointer) -> Float {
        var a0 = SIMD16<Float>()
        for c in 0..<headDim / 16 {
            a0 = a0.addingProduct(q.loadUnaligned(fromByteOffset: c * 64, as: SIMD16<Float>.self), F16Element.load16(k + c * 32))
        }
        return VectorOps.hsum(a0)
    }

    func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                into out: UnsafeMutablePointer<Float>, outStride: Int) {
        let lo = positions.lowerBound, hi = positions.upperBound
        let qBytes = preparedQueryBytes
        let qEnd = min(hi, quantizedEnd)
        var p = lo
        withUnsafeTemporaryAllocation(byteCount: headDim * 4, alignment: 64) { buf in
            let qs = buf.baseAddress!
            while p < qEnd {
                let g = (p - start) / groupSize
                let groupFirst = start + g * groupSize
                let stop = min(qEnd, groupFirst + groupSize)
                let block = UnsafeRawPointer(groupBlock(head: head, group: g))
                let rows = block + layout.codesOffset + (p - groupFirst) * layout.codeRowBytes
                for r in 0..<queryCount {
                    let c0 = scaleQuery(queries + r * qBytes, block: block, into: qs)
                    let o = out + r * outStride + (p - lo)
                    var row = rows
                    for j in 0..<(stop - p) {
                        o[j] = c0 + dotCodes(qs, row)
                        row += layout.codeRowBytes
                    }
                }
                p = stop
            }
        }
        while p < hi {
            let k = UnsafeRawPointer(tailVector(head: head, position: p))
            for r in 0..<queryCount { out[r * outStride + (p - lo)] = dotHalf(queries + r * qBytes, k) }
            p += 1
        }
    }

    func scalarScores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                      into out: UnsafeMutablePointer<Float>, outStride: Int) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: headDim) { buf in
            let k = buf.baseAddress!
            for (j, p) in positions.enumerated() {
                dequantizeScalar(head: head, position: p, into: k)
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
