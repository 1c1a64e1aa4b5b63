// Key store of the KVQuant-style schemes (NUQScheme.swift; KVQuant, arXiv 2401.18079). Keys arrive
// before RoPE; each channel is normalized with the layer's offline thresholds, x = (k − mid)/half
// ([lower, upper] → [−1, 1]), and coded as the nearest of 2^bits per-layer centroids. Channels
// outside [lower, upper] are outliers, kept exactly as f16 with their index (up to
// NUQKeyRecord.outlierCapacity per vector; beyond that the largest |x| win and the rest are
// clamped to the end centroids). Position 0 (the attention sink) is kept as f16.
// Scoring: each position is decoded into a stack buffer (centroid · half + mid, outliers patched),
// rotated with RoPE for its position (RoPEAngleTable), and dotted with the G f32 queries.
// Deviation from the reference: one dense code per channel for outliers too (the reference zeroes
// them in the dense matrix), and the sink is kept in f16 rather than in the dense-and-sparse format.
import GodwitKernels

/// [headCount, capacity, NUQKeyRecord.bytes] records + sink [headCount, headDim] f16.
final class NUQKeyStore: KeyStore {
    let geometry: KVStoreGeometry
    let record: NUQKeyRecord
    let storage: UnsafeMutableRawPointer
    let headBytes: Int
    /// Position 0 of each head as f16: [headCount, headDim].
    let sink: UnsafeMutablePointer<UInt16>
    let normalization: NUQKeyNormalization
    let codebook: NUQCodebook
    let angles: RoPEAngleTable?

    init(_ g: KVStoreGeometry, bits: Int, normalization: NUQKeyNormalization, codebook: NUQCodebook, rope: RotaryEmbedding?) {
        geometry = g
        record = NUQKeyRecord(headDim: g.headDim, bits: bits)
        headBytes = record.bytes * g.capacity
        storage = .allocate(byteCount: headBytes * g.headCount + 16, alignment: 64)
        // Zero counts: unwritten slots hold no outliers.
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: headBytes * g.headCount + 16)
        sink = .allocate(capacity: g.headCount * g.headDim)
        sink.initialize(repeating: 0, count: g.headCount * g.headDim)
        self.normalization = normalization
        self.codebook = codebook
        angles = rope.map { RoPEAngleTable(rope: $0, capacity: g.capacity) }
    }

    deinit { storage.deallocate(); sink.deallocate() }

    var keyInput: KeyInput { .preRoPE }
    var allocatedBytes: Int { headBytes * geometry.headCount + geometry.headCount * geometry.headDim * 2 }
    var preparedQueryBytes: Int { geometry.headDim * 4 }

    /// Calibrated parameters the store holds: mid and half per channel (f32) and the codebook(s).
    var parameterBytes: Int { normalization.channels * 2 * 4 + codebook.books * codebook.levels * 4 }

    /// Parameters (amortized: counted once) + sink (f16, position 0) + each later position's codes,
    /// count and used outlier slots.
    func bytesHeld(tokens: Int) -> Int {
        let n = min(tokens, geometry.capacity)
        guard n > 0 else { return 0 }
        var total = parameterBytes + geometry.headCount * geometry.headDim * 2
        for h in 0..<geometry.headCount {
            for s in 1..<max(1, n) { total += record.heldBytes(outliers: Int(slot(head: h, slot: s).load(fromByteOffset: record.countOffset, as: UInt8.self))) }
        }
        return total
    }

    @inline(__always) func slot(head: Int, slot s: Int) -> UnsafeMutableRawPointer { storage + head * headBytes + s * record.bytes }
    @inline(__always) func row(head: Int, position: Int) -> UnsafeMutableRawPointer { slot(head: head, slot: position % geometry.capacity) }

    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        let d = geometry.headDim
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: d) { codesBuf in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: d) { outBuf in
                let codes = codesBuf.baseAddress!, out = outBuf.baseAddress!
                for t in 0..<count {
                    let p = firstPosition + t
                    angles?.fill(position: p)
                    for h in 0..<geometry.headCount {
                        let k = src + t * tokenStride + h * d
                        if p == 0 {
                            for i in 0..<d { sink[h * d + i] = HalfConversion.toHalf(k[i]) }
                            row(head: h, position: p).storeBytes(of: 0, toByteOffset: record.countOffset, as: UInt8.self)
                            continue
                        }
                        encode(k, head: h, codes: codes, outliers: out, into: row(head: h, position: p))
                    }
                }
            }
        }
    }

    /// Encodes one pre-RoPE key k [headDim] of head `h` into a record.
    func encode(_ k: UnsafePointer<Float>, head h: Int, codes: UnsafeMutablePointer<UInt8>,
                outliers: UnsafeMutablePointer<Int>, into dst: UnsafeMutableRawPointer) {
        let d = geometry.headDim
        let mid = normalization.mid + h * d, inv = normalization.invHalf + h * d
        var n = 0
        for i in 0..<d {
            let x = (k[i] - mid[i]) * inv[i]
            codes[i] = codebook.encode(x, channel: h * d + i)
            if abs(x) > 1 { outliers[n] = i; n += 1 }
        }
        if n > record.outlierCapacity {
            // Keep the largest excursions.
            let chosen = (0..<n).map { outliers[$0] }
                .sorted { abs((k[$0] - mid[$0]) * inv[$0]) > abs((k[$1] - mid[$1]) * inv[$1]) || (abs((k[$0] - mid[$0]) * inv[$0]) == abs((k[$1] - mid[$1]) * inv[$1]) && $0 < $1) }
                .prefix(record.outlierCapacity).sorted()
            n = chosen.count
            for (j, c) in chosen.enumerated() { outliers[j] = c }
        }
        NUQCodes.pack(codes, count: d, bits: record.bits, into: dst)
        dst.storeBytes(of: UInt8(n), toByteOffset: record.countOffset, as: UInt8.self)
        for j in 0..<n {
            dst.storeBytes(of: UInt8(outliers[j]), toByteOffset: record.indexOffset + j, as: UInt8.self)
            dst.storeBytes(of: HalfConversion.toHalf(k[outliers[j]]), toByteOffset: record.valueOffset + 2 * j, as: UInt16.self)
        }
    }

    /// Decodes position p of head h (pre-RoPE) into k [headDim]: the fast path (16 channels at a time).
    @inline(__always) func decode(head h: Int, position p: Int, into k: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim
        if p == 0 {
            let s = UnsafeRawPointer(sink + h * d)
            var i = 0
            while i + 16 <= d {
                UnsafeMutableRawPointer(k).storeBytes(of: HalfConversion.toFloat(s.loadUnaligned(fromByteOffset: i * 2, as: SIMD16<UInt16>.self)),
                                                      toByteOffset: i * 4, as: SIMD16<Float>.self)
                i += 16
            }
            while i < d { k[i] = HalfConversion.toFloat(sink[h * d + i]); i += 1 }
            return
        }
        let r = UnsafeRawPointer(row(head: h, position: p))
        let mid = UnsafeRawPointer(normalization.mid + h * d), half = UnsafeRawPointer(normalization.half + h * d)
        let kr = UnsafeMutableRawPointer(k)
        let bits = record.bits, stride = codebook.stride
        let cb = codebook.centroids + h * d * stride
        var c0 = 0
        while c0 < d {
            let v = NUQCodes.load16(r, c0, bits: bits, codebook: cb, stride: stride)
            let x = mid.loadUnaligned(fromByteOffset: c0 * 4, as: SIMD16<Float>.self)
                .addingProduct(v, half.loadUnaligned(fromByteOffset: c0 * 4, as: SIMD16<Float>.self))
            kr.storeBytes(of: x, toByteOffset: c0 * 4, as: SIMD16<Float>.self)
            c0 += 16
        }
        let n = Int(r.load(fromByteOffset: record.countOffset, as: UInt8.self))
        for j in 0..<n {
            let i = Int(r.load(fromByteOffset: record.indexOffset + j, as: UInt8.self))
            k[i] = HalfConversion.toFloat(r.loadUnaligned(fromByteOffset: record.valueOffset + 2 * j, as: UInt16.self))
        }
    }

    /// Scalar twin of `decode`: channel by channel.
    func decodeReference(head h: Int, position p: Int, into k: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim
        if p == 0 { for i in 0..<d { k[i] = HalfConversion.toFloat(sink[h * d + i]) }; return }
        let r = UnsafeRawPointer(row(head: h, position: p))
        for i in 0..<d {
            k[i] = codebook.centroid(NUQCodes.code(r, i, bits: record.bits), channel: h * d + i) * normalization.half[h * d + i]
                + normalization.mid[h * d + i]
        }
        let n = Int(r.load(fromByteOffset: record.countOffset, as: UInt8.self))
        for j in 0..<n {
            let i = Int(r.load(fromByteOffset: record.indexOffset + j, as: UInt8.self))
            k[i] = HalfConversion.toFloat(r.loadUnaligned(fromByteOffset: record.valueOffset + 2 * j, as: UInt16.self))
        }
    }

    /// Outliers stored for a position (tests).
    func outliers(head h: Int, position p: Int) -> [(channel: Int, value: Float)] {
        guard p != 0 else { return [] }
        let r = UnsafeRawPointer(row(head: h, position: p))
        let n = Int(r.load(fromByteOffset: record.countOffset, as: UInt8.self))
        return (0..<n).map { j in
            (Int(r.load(fromByteOffset: record.indexOffset + j, as: UInt8.self)),
             HalfConversion.toFloat(r.loadUnaligned(fromByteOffset: record.valueOffset + 2 * j, as: UInt16.self)))
        }
    }

    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim
        for (j, p) in positions.enumerated() { decode(head: head, position: p, into: out + j * d) }
    }

    func prepareQuery(_ q: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) {
        dst.copyMemory(from: q, byteCount: geometry.headDim * 4)
    }

    func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                into out: UnsafeMutablePointer<Float>, outStride: Int) {
        let d = geometry.headDim
        withUnsafeTemporaryAllocation(of: Float.self, capacity: d + 16) { buf in
            let k = buf.baseAddress!
            for (j, p) in positions.enumerated() {
                decode(head: head, position: p, into: k)
                angles?.rotate(k, headDim: d, position: p)
                for g in 0..<queryCount { out[g * outStride + j] = PreRoPEDot.dot(queries + g * d * 4, k, d) }
            }
        }
    }

    /// Scalar twin of `scores`: reference decode, RoPE angles recomputed for the position, double dot.
    func scoresReference(queries: UnsafePointer<Float>, queryCount: Int, head: Int, positions: Range<Int>) -> [Double] {
        let d = geometry.headDim
        var result = [Double](repeating: 0, count: queryCount * positions.count)
        var k = [Float](repeating: 0, count: d)
        for (j, p) in positions.enumerated() {
            k.withUnsafeMutableBufferPointer { kp in
                decodeReference(head: head, position: p, into: kp.baseAddress!)
                if let rope = angles?.rope {
                    var c = [Float](repeating: 0, count: rope.dimensions / 2), s = c
                    c.withUnsafeMutableBufferPointer { cp in s.withUnsafeMutableBufferPointer { sp in
                        rope.table(position: p, cos: cp.baseAddress!, sin: sp.baseAddress!)
                        rope.apply(kp.baseAddress!, heads: 1, headDim: d, cos: cp.baseAddress!, sin: sp.baseAddress!)
                    } }
                }
            }
            for g in 0..<queryCount {
                var s = 0.0
                for i in 0..<d { s += Double(queries[g * d + i]) * Double(k[i]) }
                result[g * positions.count + j] = s
            }
        }
        return result
    }
}
