// Trellis-coded key channels for kivi{b}tcq (KIVIMixKeyStore with `trellis`). Source: the bitshift
// trellis of TrellisCode.swift (QTIP, arXiv 2406.11235) applied along the tokens of one channel of a
// KIVI key group (arXiv 2402.02750) — this project's combination.
// A channel given width w ∈ {2, 3, 4} by the allocation is coded both ways and keeps the smaller
// squared error: KIVI's uniform min/max codes, or a trellis path over the group's G tokens:
// y_t = (x_t − mean)/std, Viterbi (tail-biting over the G tokens), then zero and scale refitted by
// least squares (x ≈ zero + scale·level). On SmolLM2's pre-RoPE keys the trellis cuts a channel's
// squared error to about 0.3× (2 bits) and 0.5× (3 bits) of the uniform codes; uniform codes win on
// channels with rare large values, which the Gaussian-trained levels clip.
// Layout (inside KIVIMixGroupLayout's tiles, the same 2·w bytes per channel and tile as bit planes):
// token l of a tile has its w-bit symbol at bit w·(15 − l) of the channel's chunk, so the state of
// token l is the L-bit window at that bit; windows of tokens 0… run past the chunk's top into the
// previous tile's chunk of the same channel (bit 16w ↦ its bit 0), circularly over the group.
// The width byte holds w | 0x80 for a trellis channel.
import GodwitKernels

final class KIVITrellisChannels {
    /// Widths that have a trellis code.
    static let widths = 2...4
    /// Width-byte flag of a trellis-coded channel.
    static let flag: UInt8 = 0x80
    /// Dimension of the unit vectors the level tables are trained on (≈ Gaussian coordinates).
    static let codebookDim = 256

    let groupSize: Int
    /// [3, 2^L] levels of widths 2, 3, 4 (row w − 2).
    let levels: UnsafeMutablePointer<Float>
    /// [3] the same codebooks' tables in registers (TrellisTables), entry w − 2.
    let tables: UnsafeMutablePointer<TrellisTables>
    /// [3] the byte picks and shifts of width w's windows (TrellisLanes), entry w − 2.
    let lanes: UnsafeMutablePointer<TrellisLaneLayout>
    /// Squared error per unit variance of each width's code (training), [KIVIBitAllocation.maxBits + 1], 0: none.
    let mse: [Float]
    /// One search per width over the group's tokens (dim = G).
    private let searches: [TrellisSearch]
    /// [G] the standardized channel.
    private let y: UnsafeMutablePointer<Float>

    init(groupSize: Int) throws(KVCacheError) {
        self.groupSize = groupSize
        levels = .allocate(capacity: 3 * TrellisCodebook.states)
        var m = [Float](repeating: 0, count: KIVIBitAllocation.maxBits + 1)
        var s = [TrellisSearch]()
        tables = .allocate(capacity: 3)
        lanes = .allocate(capacity: 3)
        for w in Self.widths {
            (lanes + (w - 2)).initialize(to: TrellisLanes.layout(bits: w))
            let book = try TrellisCodebook.shared(dim: Self.codebookDim, bits: w)
            for i in 0..<TrellisCodebook.states { levels[(w - 2) * TrellisCodebook.states + i] = book.levels[i] }
            (tables + (w - 2)).initialize(to: TrellisTables(book))
            m[w] = Float(book.mse)
            let search = TrellisSearch(dim: groupSize, bits: w)
            search.setLevels(book.levels)
            s.append(search)
        }
        mse = m
        searches = s
        y = .allocate(capacity: groupSize)
    }

    deinit {
        levels.deallocate()
        tables.deinitialize(count: 3)
        tables.deallocate()
        lanes.deinitialize(count: 3)
        lanes.deallocate()
        y.deallocate()
        for s in searches { s.deallocate() }
    }

    /// Codes channel x[j·stride], j < G, at width w (positions < skip are not coded); returns the f16
    /// scale and zero and the squared error over j ≥ skip. The path stays in the width's search until `pack`.
    func encode(_ x: UnsafePointer<Float>, stride: Int, skip: Int, width w: Int, mean: Float, variance: Float)
        -> (scale: UInt16, zero: UInt16, error: Float) {
        let n = groupSize, search = searches[w - 2]
        let inv = variance > 0 ? 1 / variance.squareRoot() : 0
        for j in 0..<n { y[j] = j < skip ? 0 : (x[j * stride] - mean) * inv }
        search.run(y)
        let table = levels + (w - 2) * TrellisCodebook.states
        // Least squares x ≈ z + s·c over j ≥ skip.
        var sc = 0.0, scc = 0.0, sx = 0.0, sxc = 0.0
        for j in skip..<n {
            let c = Double(table[Int(search.states[j])]), v = Double(x[j * stride])
            sc += c; scc += c * c; sx += v; sxc += v * c
        }
        let m = Double(n - skip)
        let cov = sxc - sx * sc / m, vc = scc - sc * sc / m
        let s = vc > 0 ? cov / vc : 0
        let scale = HalfConversion.toHalf(Float(s)), zero = HalfConversion.toHalf(Float((sx - s * sc) / m))
        let sf = halfToFloat(scale), zf = halfToFloat(zero)
        var e: Float = 0
        for j in skip..<n {
            let d = x[j * stride] - (zf + sf * table[Int(search.states[j])])
            e += d * d
        }
        return (scale, zero, e)
    }

    /// Writes the last `encode` path of width w: token j's symbol into tile j/16's chunk at
    /// codes + (j/16)·tileBytes, bit w·(15 − j mod 16). The chunks must be zero.
    func pack(width w: Int, into codes: UnsafeMutableRawPointer, tileBytes: Int) {
        let search = searches[w - 2]
        for j in 0..<groupSize {
            let b = Int(search.states[j]) & ((1 << w) - 1)
            let chunk = (codes + j / 16 * tileBytes).assumingMemoryBound(to: UInt8.self)
            PackedBits.put(b, bits: w, at: w * (15 - j % 16), into: chunk)
        }
    }

    /// Scalar twin: the state of token l of a tile, bit by bit from its chunk and the previous tile's.
    static func stateScalar(_ chunk: UnsafeRawPointer, previous: UnsafeRawPointer, lane l: Int, width w: Int) -> Int {
        var s = 0
        for t in 0..<TrellisCodebook.stateBits {
            var p = w * (15 - l) + t
            var src = chunk
            if p >= 16 * w { p -= 16 * w; src = previous }
            s |= Int((src.load(fromByteOffset: p >> 3, as: UInt8.self) >> UInt8(p & 7)) & 1) << t
        }
        return s
    }

    /// The levels of the 16 tokens of a tile: 16 bytes from the chunk (the 2w bytes of the channel, then
    /// whatever follows: loads may run 16 bytes past a group, KIVIGroupedKeyStore pads its buffer) with
    /// byte 2w replaced by the previous chunk's first byte (the windows of tokens 0… end there), one byte
    /// permute and per-lane shifts (TrellisLanes), two `vpermi2ps` (TrellisTables).
    @inline(__always)
    static func levels16(_ chunk: UnsafeRawPointer, previous: UnsafeRawPointer, width w: Int, tables: TrellisTables,
                         lanes: TrellisLaneLayout) -> SIMD16<Float> {
        var raw = chunk.loadUnaligned(as: SIMD16<UInt8>.self)
        raw[2 * w] = previous.load(as: UInt8.self)
        return tables.levels(states: TrellisLanes.states(raw, lanes))
    }
}
