// Value store of the KVQuant-style schemes (NUQScheme.swift; KVQuant, arXiv 2401.18079). Each
// head vector is normalized online per token: its ⌈1%·headDim⌉ largest magnitudes are outliers
// (kept exactly as f16 + index), the rest are divided by s = max |inlier| (stored as f16) and coded
// as the nearest of 2^bits per-layer centroids in [−1, 1]. Position 0 (the attention sink) is f16.
// Accumulation: 16 dims of a position at a time in registers (NUQValueColumns.swift: centroid · s by
// one vpermps lookup, outliers patched in), through FloatStoreKernels.accumulateColumns; the sink
// through the f16 kernel. Bitwise the decoded rows added with fma in position order.
// Deviations from the reference: absmax scaling per token instead of the reference's per-token
// min/max with offset (one f16 instead of two), a fixed outlier count per vector instead of a
// global threshold, and the sink kept in f16.
import GodwitKernels

/// [headCount, capacity, NUQValueRecord.bytes] records + sink [headCount, headDim] f16.
final class NUQValueStore: ValueStore {
    let geometry: KVStoreGeometry
    let record: NUQValueRecord
    let storage: UnsafeMutableRawPointer
    let headBytes: Int
    let sink: UnsafeMutablePointer<UInt16>
    let codebook: NUQCodebook
    /// The codebook as a 16-entry lookup table (NUQValueColumns.table).
    let table: SIMD16<Float>

    init(_ g: KVStoreGeometry, bits: Int, codebook: NUQCodebook) {
        geometry = g
        record = NUQValueRecord(headDim: g.headDim, bits: bits)
        headBytes = record.bytes * g.capacity
        storage = .allocate(byteCount: headBytes * g.headCount + 16, alignment: 64)
        sink = .allocate(capacity: g.headCount * g.headDim)
        sink.initialize(repeating: 0, count: g.headCount * g.headDim)
        self.codebook = codebook
        precondition(codebook.books == 1 && g.headDim % 16 == 0, "NUQValueStore: one shared codebook, head dim a multiple of 16")
        table = NUQValueColumns.table(codebook.centroids, bits: bits)
    }

    deinit { storage.deallocate(); sink.deallocate() }

    var allocatedBytes: Int { headBytes * geometry.headCount + geometry.headCount * geometry.headDim * 2 }

    /// Calibrated parameters the store holds: the codebook (f32).
    var parameterBytes: Int { codebook.books * codebook.levels * 4 }

    /// Codebook (amortized: counted once) + sink (f16, position 0) + one record per later position.
    func bytesHeld(tokens: Int) -> Int {
        let n = min(tokens, geometry.capacity)
        guard n > 0 else { return 0 }
        return parameterBytes + geometry.headCount * (geometry.headDim * 2 + (n - 1) * record.bytes)
    }

    @inline(__always) func row(head: Int, position: Int) -> UnsafeMutableRawPointer {
        storage + head * headBytes + (position % geometry.capacity) * record.bytes
    }

    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        let d = geometry.headDim
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: d) { codesBuf in
            let codes = codesBuf.baseAddress!
            for t in 0..<count {
                let p = firstPosition + t
                for h in 0..<geometry.headCount {
                    let v = src + t * tokenStride + h * d
                    if p == 0 {
                        for i in 0..<d { sink[h * d + i] = HalfConversion.toHalf(v[i]) }
                    } else {
                        encode(v, codes: codes, into: row(head: h, position: p))
                    }
                }
            }
        }
    }

    /// Channels of the `record.outliers` largest magnitudes of v [headDim] (ties: lower index), ascending.
    func outlierChannels(_ v: UnsafePointer<Float>) -> [Int] {
        var top = [Int]()
        for i in 0..<geometry.headDim {
            let m = abs(v[i])
            var at = top.count
            while at > 0 && abs(v[top[at - 1]]) < m { at -= 1 }
            if at < record.outliers { top.insert(i, at: at); if top.count > record.outliers { top.removeLast() } }
        }
        return top.sorted()
    }

    /// Encodes one value vector v [headDim] into a record.
    func encode(_ v: UnsafePointer<Float>, codes: UnsafeMutablePointer<UInt8>, into dst: UnsafeMutableRawPointer) {
        let d = geometry.headDim
        let out = outlierChannels(v)
        var m: Float = 0
        var j = 0
        for i in 0..<d {
            if j < out.count && out[j] == i { j += 1; continue }
            m = max(m, abs(v[i]))
        }
        let scaleBits = HalfConversion.toHalf(m)
        let s = HalfConversion.toFloat(scaleBits)
        let inv: Float = s > 0 ? 1 / s : 0
        for i in 0..<d { codes[i] = codebook.encode(v[i] * inv) }
        dst.storeBytes(of: scaleBits, as: UInt16.self)
        NUQCodes.pack(codes, count: d, bits: record.bits, into: dst + record.codeOffset)
        for (j, c) in out.enumerated() {
            dst.storeBytes(of: UInt8(c), toByteOffset: record.indexOffset + j, as: UInt8.self)
            dst.storeBytes(of: HalfConversion.toHalf(v[c]), toByteOffset: record.valueOffset + 2 * j, as: UInt16.self)
        }
    }

    /// Decodes position p of head h into v [headDim] (16 channels at a time).
    @inline(__always) func decode(head h: Int, position p: Int, into v: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim
        let vr = UnsafeMutableRawPointer(v)
        if p == 0 {
            let s = UnsafeRawPointer(sink + h * d)
            var i = 0
            while i + 16 <= d {
                vr.storeBytes(of: HalfConversion.toFloat(s.loadUnaligned(fromByteOffset: i * 2, as: SIMD16<UInt16>.self)),
                              toByteOffset: i * 4, as: SIMD16<Float>.self)
                i += 16
            }
            while i < d { v[i] = HalfConversion.toFloat(sink[h * d + i]); i += 1 }
            return
        }
        let r = UnsafeRawPointer(row(head: h, position: p))
        let scale = SIMD16<Float>(repeating: HalfConversion.toFloat(r.loadUnaligned(as: UInt16.self)))
        let codes = r + record.codeOffset
        let bits = record.bits, cb = codebook.centroids
        var c0 = 0
        while c0 < d {
            vr.storeBytes(of: NUQCodes.load16(codes, c0, bits: bits, codebook: cb) * scale, toByteOffset: c0 * 4, as: SIMD16<Float>.self)
            c0 += 16
        }
        for j in 0..<record.outliers {
            let i = Int(r.load(fromByteOffset: record.indexOffset + j, as: UInt8.self))
            v[i] = HalfConversion.toFloat(r.loadUnaligned(fromByteOffset: record.valueOffset + 2 * j, as: UInt16.self))
        }
    }

    /// Scalar twin of `decode`.
    func decodeReference(head h: Int, position p: Int, into v: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim
        if p == 0 { for i in 0..<d { v[i] = HalfConversion.toFloat(sink[h * d + i]) }; return }
        let r = UnsafeRawPointer(row(head: h, position: p))
        let s = HalfConversion.toFloat(r.loadUnaligned(as: UInt16.self))
        for i in 0..<d { v[i] = codebook.centroid(NUQCodes.code(r + record.codeOffset, i, bits: record.bits)) * s }
        for j in 0..<record.outliers {
            let i = Int(r.load(fromByteOffset: record.indexOffset + j, as: UInt8.self))
            v[i] = HalfConversion.toFloat(r.loadUnaligned(fromByteOffset: record.valueOffset + 2 * j, as: UInt16.self))
        }
    }

    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim
        for (j, p) in positions.enumerated() { decode(head: head, position: p, into: out + j * d) }
    }

    /// The sink (position 0, f16) through the float kernel, then the records through NUQValueColumns
    /// (bitwise the decoded rows added in position order; positions never wrap within one call).
    func accumulate(weights: UnsafePointer<Float>, weightStride: Int, queryCount: Int, head: Int,
                    positions: Range<Int>, into acc: UnsafeMutablePointer<Float>, accStride: Int) {
        let d = geometry.headDim
        var first = positions.lowerBound, w = weights
        if first == 0 && !positions.isEmpty {
            FloatStoreKernels.accumulate(F16Element.self, weights: w, weightStride: weightStride, rows: queryCount,
                                         values: UnsafeRawPointer(sink + head * d), vectorBytes: d * 2, count: 1, d: d,
                                         acc: acc, accStride: accStride)
            first += 1
            w += 1
        }
        guard first < positions.upperBound else { return }
        NUQValueKernel.accumulate(weights: w, weightStride: weightStride, rows: queryCount, count: positions.upperBound - first,
                                  d: d, acc: acc, accStride: accStride,
                                  NUQValueColumns(records: UnsafeRawPointer(row(head: head, position: first)), record: record, table: table))
    }
}
