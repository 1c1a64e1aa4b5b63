// KIVI value storage (arXiv 2402.02750, per-token value quantization; deviations in KIVIScheme.swift).
// Positions start..<quantizedEnd are quantized rows (KIVIValueRowLayout: b-bit codes, f16 scale/zero
// per group of Gv channels) in slot p % capacity; quantizedEnd..<end (the last R tokens) sit in an
// f16 tail, slot p % (R + 1).
// Accumulate: each row's 16-channel chunks are decoded in registers (s_g·code + z_g) and summed by
// FloatStoreKernels.accumulateColumns (64-dim slabs, the query rows' accumulators in registers).
import GodwitKernels

final class KIVIValueStore<B: KIVIBitWidth>: ScalarTwinValueStore {
    let geometry: KVStoreGeometry
    let layout: KIVIValueRowLayout
    let residual: Int
    let tailSlots: Int
    /// [headCount, capacity, layout.byteSize]
    let rows: UnsafeMutableRawPointer
    /// [headCount, tailSlots, headDim] f16
    let tail: UnsafeMutableRawPointer
    private(set) var start = 0
    private(set) var end = 0
    private(set) var quantizedEnd = 0

    init(_ g: KVStoreGeometry, channelGroup: Int, residual: Int) {
        geometry = g
        layout = KIVIValueRowLayout(headDim: g.headDim, channelGroup: channelGroup, bits: B.bits)
        self.residual = residual
        tailSlots = residual + 1
        rows = .allocate(byteCount: max(1, g.headCount * g.capacity * layout.byteSize), alignment: 64)
        tail = .allocate(byteCount: max(1, g.headCount * tailSlots * g.headDim * 2), alignment: 64)
    }

    deinit {
        rows.deallocate()
        tail.deallocate()
    }

    var headDim: Int { geometry.headDim }
    var allocatedBytes: Int { geometry.headCount * (geometry.capacity * layout.byteSize + tailSlots * headDim * 2) }

    /// max(0, t − R) quantized rows plus min(t, R) f16 rows.
    func bytesHeld(tokens: Int) -> Int {
        let t = max(0, tokens)
        let q = max(0, t - residual)
        return geometry.headCount * (q * layout.byteSize + (t - q) * headDim * 2)
    }

    @inline(__always) func row(head: Int, position: Int) -> UnsafeMutableRawPointer {
        rows + (head * geometry.capacity + position % geometry.capacity) * layout.byteSize
    }

    @inline(__always) func tailVector(head: Int, position: Int) -> UnsafeMutableRawPointer {
        tail + (head * tailSlots + position % tailSlots) * headDim * 2
    }

    // MARK: Writing

    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        if firstPosition < end { truncate(to: firstPosition) }
        if end == start { start = firstPosition; end = firstPosition; quantizedEnd = firstPosition }
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
        while quantizedEnd < end - residual {
            quantizeRow(quantizedEnd)
            quantizedEnd += 1
        }
    }

    /// Moves position p (all heads) from the f16 tail into its quantized row.
    private func quantizeRow(_ p: Int) {
        let d = headDim, gv = layout.channelGroup, bits = B.bits
        withUnsafeTemporaryAllocation(of: Float.self, capacity: d) { xb in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: d) { cb in
                let x = xb.baseAddress!, codes = cb.baseAddress!
                for h in 0..<geometry.headCount {
                    let v = tailVector(head: h, position: p)
                    for i in 0..<d { x[i] = F16Element.load(v + i * 2) }
                    let dst = row(head: h, position: p)
                    for g in 0..<layout.groups {
                        let (s, z) = KIVICodes.parameters(x + g * gv, count: gv, stride: 1, bits: bits)
                        dst.storeBytes(of: s, toByteOffset: layout.scalesOffset + g * 2, as: UInt16.self)
                        dst.storeBytes(of: z, toByteOffset: layout.zerosOffset + g * 2, as: UInt16.self)
                        let sf = HalfConversion.toFloat(s), zf = HalfConversion.toFloat(z)
                        for i in g * gv..<(g + 1) * gv { codes[i] = KIVICodes.encode(x[i], scale: sf, zero: zf, bits: bits) }
                    }
                    KIVICodes.pack(codes, count: d, bits: bits, into: dst)
                }
            }
        }
    }

    /// Forgets positions ≥ count (quantized rows below count stay as they are).
    func truncate(to count: Int) {
        guard count < end else { return }
        if count <= start { start = count; end = count; quantizedEnd = count; return }
        end = count
        quantizedEnd = min(quantizedEnd, count)
    }

    // MARK: Reading

    @inline(__always) private func dequantize(head: Int, position p: Int, into out: UnsafeMutablePointer<Float>) {
        if p >= quantizedEnd {
            let v = tailVector(head: head, position: p)
            for i in 0..<headDim { out[i] = F16Element.load(v + i * 2) }
            return
        }
        let r = UnsafeRawPointer(row(head: head, position: p))
        for c in 0..<headDim {
            let g = c / layout.channelGroup
            let s = halfAt(r, layout.scalesOffset + g * 2), z = halfAt(r, layout.zerosOffset + g * 2)
            out[c] = s * Float(KIVICodes.code(r, channel: c, bits: B.bits)) + z
        }
    }

    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        for (j, p) in positions.enumerated() { dequantize(head: head, position: p, into: out + j * headDim) }
    }

    // MARK: Accumulate

    func accumulate(weights: UnsafePointer<Float>, weightStride: Int, queryCount: Int, head: Int,
                    positions: Range<Int>, into acc: UnsafeMutablePointer<Float>, accStride: Int) {
        let lo = positions.lowerBound, hi = positions.upperBound
        let qEnd = max(lo, min(hi, quantizedEnd))
        if qEnd > lo {
            // Quantized rows through the shared value-sum kernel, entered with a concrete width (a
            // generic class's methods, and functions nested in them, run unspecialized).
            let src = UnsafeRawPointer(row(head: head, position: lo))
            let n = qEnd - lo
            switch B.bits {
            case 2: KIVIValueKernel.accumulate(KIVI2Bit.self, weights, weightStride, queryCount, src, layout, n, acc, accStride)
            case 3: KIVIValueKernel.accumulate(KIVI3Bit.self, weights, weightStride, queryCount, src, layout, n, acc, accStride)
            case 4: KIVIValueKernel.accumulate(KIVI4Bit.self, weights, weightStride, queryCount, src, layout, n, acc, accStride)
            case 5: KIVIValueKernel.accumulate(KIVI5Bit.self, weights, weightStride, queryCount, src, layout, n, acc, accStride)
            case 6: KIVIValueKernel.accumulate(KIVI6Bit.self, weights, weightStride, queryCount, src, layout, n, acc, accStride)
            default: KIVIValueKernel.accumulate(KIVI8Bit.self, weights, weightStride, queryCount, src, layout, n, acc, accStride)
            }
        }
        for r in 0..<queryCount {
            let w = weights + r * weightStride
            let a = UnsafeMutableRawPointer(acc + r * accStride)
            for p in qEnd..<hi {
                let wj = w[p - lo]
                if wj == 0 { continue }
                let v = UnsafeRawPointer(tailVector(head: head, position: p))
                let wv = SIMD16<Float>(repeating: wj)
                for c in 0..<headDim / 16 {
                    let sum = a.loadUnaligned(fromByteOffset: c * 64, as: SIMD16<Float>.self).addingProduct(wv, F16Element.load16(v + c * 32))
                    a.storeBytes(of: sum, toByteOffset: c * 64, as: SIMD16<Float>.self)
                }
            }
        }
    }

    func scalarAccumulate(weights: UnsafePointer<Float>, weightStride: Int, queryCount: Int, head: Int,
                          positions: Range<Int>, into acc: UnsafeMutablePointer<Float>, accStride: Int) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: headDim) { buf in
            let v = buf.baseAddress!
            for (j, p) in positions.enumerated() {
                dequantize(head: head, position: p, into: v)
                for r in 0..<queryCount {
                    let w = weights[r * weightStride + j]
                    for c in 0..<headDim { acc[r * accStride + c] += w * v[c] }
                }
            }
        }
    }
}

/// Quantized value rows [count, layout.byteSize] as 16-dim columns: s_g·code + z_g (g = the channel
/// group of dims i..<i+16), for FloatStoreKernels.accumulateColumns.
struct KIVIValueColumns<W: KIVIBitWidth>: ValueColumns {
    let rows: UnsafeRawPointer
    let layout: KIVIValueRowLayout
    @inline(__always) func column(_ j: Int, _ i: Int) -> SIMD16<Float> {
        let r = rows + j * layout.byteSize, g = i / layout.channelGroup
        let s = halfAt(r, layout.scalesOffset + g * 2), z = halfAt(r, layout.zerosOffset + g * 2)
        return SIMD16<Float>(repeating: z).addingProduct(SIMD16<Float>(repeating: s), W.unpack16(r + (i / 16) * W.chunkBytes))
    }
}

enum KIVIValueKernel {
    /// accumulateColumns over `count` quantized rows [count, layout.byteSize] of width W.
    @inline(never)
    static func accumulate<W: KIVIBitWidth>(_: W.Type, _ weights: UnsafePointer<Float>, _ weightStride: Int, _ rows: Int,
                                            _ src: UnsafeRawPointer, _ layout: KIVIValueRowLayout, _ count: Int,
                                            _ acc: UnsafeMutablePointer<Float>, _ accStride: Int) {
        FloatStoreKernels.accumulateColumns(weights: weights, weightStride: weightStride, rows: rows, count: count,
                                            d: layout.headDim, acc: acc, accStride: accStride,
                                            KIVIValueColumns<W>(rows: src, layout: layout))
    }
}
