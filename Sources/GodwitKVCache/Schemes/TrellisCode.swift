// Trellis-coded quantization (TCQ) for the tcq{b} schemes: a bitshift trellis with tail-biting and a
// trained codebook of 1024 levels built from two 32-entry tables, searched by the Viterbi algorithm.
// Sources: Tseng, Sun, Hou, De Sa, "QTIP: Quantization with Trellises and Incoherence Processing",
// arXiv 2406.11235 (§3: the bitshift trellis, its tail-biting approximation, lookup-table codes);
// Marcellin & Fischer, "Trellis Coded Quantization of Memoryless and Gauss–Markov Sources",
// IEEE Trans. Commun. 38(1), 1990 (TCQ gains over Lloyd–Max on memoryless sources).
// The trellis: a state has L = 10 bits; coordinate i of a d-vector spends k bits b_i and has the state
//   s_i = ((s_{i−1} << k) | b_i) mod 2^L,   s_{−1} = s_{d−1} (tail-biting: exactly k·d bits per vector),
// reconstructed as level(s_i) = low[s_i mod 32] + high[s_i >> 5]. The Viterbi search finds the path
// minimizing Σ (y_i − level(s_i))².
// Packing (TrellisBits): b_i at bits [k·(d−1−i), k·(d−1−i) + k) of a little-endian bit string of k·d
// bits (coordinates stored in reverse), so s_i is the L-bit window starting at bit k·(d−1−i), read
// circularly: a decoder gets any coordinate from one shifted word and two 32-entry lookups (`vpermi2ps`).
// Deviations from QTIP: L = 10 (QTIP uses 16 with computed codes; 16 bits make the search 64× dearer,
// and it runs on every cached token) and an additive lookup codebook trained here: level(s) = low[s mod 32]
// + high[s >> 5] decodes with two in-register permutes instead of a gather from a 1024-entry table
// (a gather per 16 values ran attention at 0.67× of f16), and trains to about the error of a free table
// (N(0, 1), k = 3: free 1024-entry 0.019, additive 0.021, free 256-entry (L = 8) 0.022; Lloyd–Max 0.0345).
// Training is deterministic: uniformly random unit vectors scaled by √d (SplitMix64 + Box–Muller),
// tables started at N(0, ½) draws, then 24 rounds of (tail-biting Viterbi; low and high refitted by
// alternating least squares over the coded coordinates).
// Tail-biting: QTIP's two-pass approximation — pass 1 unconstrained on the vector rotated by d/2, whose
// path's state at the last coordinate (mid-sequence there) fixes the overlap (its low L − k bits = the
// first state's high L − k bits) for pass 2. (Taking the overlap from the end of an unrotated pass cost
// 10 % more error.)
import CGodwit
import Foundation
import GodwitKernels

/// A trained codebook of the k-bit trellis for d-vectors: one level per L-bit state,
/// level(s) = low[s mod 32] + high[s >> 5].
public struct TrellisCodebook: Sendable, Equatable {
    /// L: bits per state.
    public static let stateBits = 10
    public static let states = 1 << stateBits
    /// Bits of a state indexing `low` (the rest index `high`).
    public static let lowBits = 5
    /// Training set size (coordinates: 2048 vectors at d = 64), rounds, and seed (ASCII "tcq").
    static let coordinates = 131_072
    static let rounds = 24
    static let seed: UInt64 = 0x74_6371

    public let dim: Int
    public let bits: Int
    /// [32] and [32]: the two tables (in units of a coordinate of a unit vector scaled by √dim, ≈ N(0, 1)).
    public let low: [Float]
    public let high: [Float]
    /// [1024] level(s) = low[s mod 32] + high[s >> 5] (Float sum), per state.
    public let levels: [Float]
    /// Mean squared error per coordinate on the training set at the last round (scaled units).
    public let mse: Double

    private static let cache = CodebookCache<TrellisCodebook>()

    /// The shared codebook for (dim, bits): the stored result of the training for the common head dims
    /// (`pretrained`, TrellisCodebook+Pretrained.swift), else trained once per process (~1–2 s).
    /// bits ∈ 2…4; dim a multiple of 16.
    public static func shared(dim: Int, bits: Int) throws(KVCacheError) -> TrellisCodebook {
        try check(dim: dim, bits: bits)
        return cache.codebook(dim: dim, bits: bits) { pretrained(dim: dim, bits: bits) ?? TrellisCodebook(training: dim, bits: bits) }
    }

    /// Trains from scratch, bypassing the cache (deterministic; tests compare the two).
    public static func compute(dim: Int, bits: Int) throws(KVCacheError) -> TrellisCodebook {
        try check(dim: dim, bits: bits)
        return TrellisCodebook(training: dim, bits: bits)
    }

    static func check(dim: Int, bits: Int) throws(KVCacheError) {
        guard (2...4).contains(bits) else { throw .invalidOption(name: "trellis bits", value: "\(bits)", reason: "must be 2, 3 or 4") }
        guard dim >= 16 && dim % 16 == 0 else {
            throw .invalidOption(name: "trellis dim", value: "\(dim)", reason: "must be a positive multiple of 16")
        }
    }

    init(dim: Int, bits: Int, low: [Float], high: [Float], mse: Double) {
        self.dim = dim
        self.bits = bits
        self.low = low
        self.high = high
        levels = Self.levels(low: low, high: high)
        self.mse = mse
    }

    static func levels(low: [Float], high: [Float]) -> [Float] {
        (0..<states).map { low[$0 & ((1 << lowBits) - 1)] + high[$0 >> lowBits] }
    }

    /// Valid (dim, bits) only (see `check`).
    init(training dim: Int, bits: Int) {
        var rng = TrellisRandom(seed: Self.seed ^ UInt64(dim << 8 | bits))
        let n = Self.coordinates / dim
        var data = [Float](repeating: 0, count: n * dim)
        for v in 0..<n {
            var ss = 0.0
            for i in 0..<dim {
                let z = rng.gaussian()
                data[v * dim + i] = Float(z)
                ss += z * z
            }
            let s = Float((Double(dim) / max(ss, 1e-30)).squareRoot())
            for i in 0..<dim { data[v * dim + i] *= s }
        }
        let lowCount = 1 << Self.lowBits, highCount = Self.states >> Self.lowBits
        var low = (0..<lowCount).map { _ in Float(rng.gaussian() * 0.7) }
        var high = (0..<highCount).map { _ in Float(rng.gaussian() * 0.7) }
        var mse = 0.0
        let search = TrellisSearch(dim: dim, bits: bits)
        defer { search.deallocate() }
        for _ in 0..<Self.rounds {
            search.setLevels(Self.levels(low: low, high: high))
            var sums = [Double](repeating: 0, count: Self.states), counts = [Double](repeating: 0, count: Self.states)
            var total = 0.0
            data.withUnsafeBufferPointer { d in
                for v in 0..<n {
                    let y = d.baseAddress! + v * dim
                    total += Double(search.run(y))
                    for i in 0..<dim {
                        let s = Int(search.states[i])
                        sums[s] += Double(y[i])
                        counts[s] += 1
                    }
                }
            }
            mse = total / Double(n * dim)
            // Alternating least squares: low[a] = mean of (y − high[b]) over states with low index a, then high.
            for _ in 0..<6 {
                var num = [Double](repeating: 0, count: lowCount), den = num
                for s in 0..<Self.states where counts[s] > 0 {
                    num[s & (lowCount - 1)] += sums[s] - counts[s] * Double(high[s >> Self.lowBits])
                    den[s & (lowCount - 1)] += counts[s]
                }
                for a in 0..<lowCount where den[a] > 0 { low[a] = Float(num[a] / den[a]) }
                var numH = [Double](repeating: 0, count: highCount), denH = numH
                for s in 0..<Self.states where counts[s] > 0 {
                    numH[s >> Self.lowBits] += sums[s] - counts[s] * Double(low[s & (lowCount - 1)])
                    denH[s >> Self.lowBits] += counts[s]
                }
                for b in 0..<highCount where denH[b] > 0 { high[b] = Float(numH[b] / denH[b]) }
            }
        }
        self.init(dim: dim, bits: bits, low: low, high: high, mse: mse)
    }
}

/// Box–Muller normals from SplitMix64 (the training set of TrellisCodebook).
struct TrellisRandom {
    var bits: SplitMix64
    init(seed: UInt64) { bits = SplitMix64(seed: seed) }

    mutating func next() -> UInt64 { bits.next() }

    /// Uniform in (0, 1) (never 0: the logarithm below).
    mutating func uniform() -> Double { (Double(next() >> 11) + 0.5) / 9_007_199_254_740_992 }

    mutating func gaussian() -> Double {
        (-2 * Foundation.log(uniform())).squareRoot() * Foundation.cos(2 * Double.pi * uniform())
    }
}

/// The Viterbi search of the tail-biting k-bit trellis over a d-vector, with its scratch (one per
/// store or trainer; not shared between threads). Costs are kept as [2^k rows, 2^(L−k)] so that the
/// best predecessor of every state group is a vertical minimum of SIMD16 rows: the predecessors of
/// state s are (s >> k) | (j << (L − k)) for j < 2^k.
final class TrellisSearch {
    let dim: Int
    let bits: Int
    /// [2^L] levels.
    let levels: UnsafeMutablePointer<Float>
    /// [2^L] path costs per state (current step), and the next step's.
    private var cost: UnsafeMutablePointer<Float>
    private var next: UnsafeMutablePointer<Float>
    /// [2^(L−k) + 16] best predecessor cost per state group (padded for 16-lane loads).
    private let best: UnsafeMutablePointer<Float>
    /// [dim, 2^(L−k)] the j of the best predecessor per step and group.
    private let choice: UnsafeMutablePointer<UInt8>
    /// [dim] the states of the last search.
    let states: UnsafeMutablePointer<Int32>
    /// Lane t ← t >> k (best-cost expansion to the 16 states of a chunk).
    private let expand: SIMD16<Int32>
    /// [dim] y rotated by dim/2 (the first pass).
    private let rotated: UnsafeMutablePointer<Float>

    init(dim: Int, bits: Int) {
        self.dim = dim
        self.bits = bits
        let groups = TrellisCodebook.states >> bits
        levels = .allocate(capacity: TrellisCodebook.states)
        levels.initialize(repeating: 0, count: TrellisCodebook.states)
        cost = .allocate(capacity: TrellisCodebook.states)
        next = .allocate(capacity: TrellisCodebook.states)
        best = .allocate(capacity: groups + 16)
        best.initialize(repeating: 0, count: groups + 16)
        choice = .allocate(capacity: dim * groups)
        states = .allocate(capacity: dim)
        rotated = .allocate(capacity: dim)
        var e = SIMD16<Int32>()
        for t in 0..<16 { e[t] = Int32(t >> bits) }
        expand = e
    }

    convenience init(_ book: TrellisCodebook) {
        self.init(dim: book.dim, bits: book.bits)
        setLevels(book.levels)
    }

    func deallocate() {
        levels.deallocate(); cost.deallocate(); next.deallocate(); best.deallocate()
        choice.deallocate(); states.deallocate(); rotated.deallocate()
    }

    func setLevels(_ l: [Float]) {
        for s in 0..<TrellisCodebook.states { levels[s] = l[s] }
    }

    /// The tail-biting path for y [dim] into `states`; returns its squared error Σ (y_i − levels[s_i])².
    @discardableResult
    func run(_ y: UnsafePointer<Float>) -> Float {
        // Pass 1 on the window of `window` coordinates around the wrap (y rotated), so the last coordinate
        // sits mid-sequence, where the free path has settled (QTIP's tail-biting approximation); its state
        // there fixes the overlap of pass 2.
        let n = min(dim, Self.window), half = n / 2
        for i in 0..<n { rotated[i] = y[(i + dim - half) % dim] }
        _ = pass(rotated, count: n, overlap: nil)
        let overlap = Int(states[half - 1]) & ((1 << (TrellisCodebook.stateBits - bits)) - 1)
        return pass(y, count: dim, overlap: overlap).error
    }

    /// Coordinates of the first pass: 16 on each side of the wrap (the free path settles within a few
    /// states' spans; a whole rotated pass gave 1–2 % less error).
    static let window = 32

    /// The cost of a state the path may not take (finite, so sums stay ordered and never overflow).
    static let forbidden: Float = 1e30

    @inline(__always) private static func unsigned(_ v: SIMD16<Float>) -> SIMD16<UInt32> { unsafeBitCast(v, to: SIMD16<UInt32>.self) }

    @inline(__always) private func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }

    /// One Viterbi pass, writing the best path to `states`. overlap nil: free start and end; overlap h:
    /// the first state's high L − k bits and the last state's low L − k bits are h (the path closes on
    /// itself). Returns the end state's low L − k bits and the path's squared error.
    /// y [count], count ≤ dim.
    private func pass(_ y: UnsafePointer<Float>, count: Int, overlap: Int?) -> (overlap: Int, error: Float) {
        let k = bits, prefix = TrellisCodebook.stateBits - k
        let groups = 1 << prefix, rows = 1 << k, n = TrellisCodebook.states
        let levels = self.levels, best = self.best, choice = self.choice, expand = self.expand
        var cost = self.cost, next = self.next
        defer { self.cost = cost; self.next = next }
        let y0 = SIMD16<Float>(repeating: y[0])
        for c in 0..<n / 16 {
            let e = y0 - load(levels + 16 * c)
            UnsafeMutableRawPointer(cost + 16 * c).storeBytes(of: e * e, as: SIMD16<Float>.self)
        }
        if let h = overlap {
            for s in 0..<n where s >> k != h { cost[s] = Self.forbidden }
        }
        let step = 16 >> k  // state groups per 16 states
        // Costs are ≥ 0, so their bit patterns order like the floats: the low k bits carry the row j and
        // one unsigned minimum gives the best cost and its j (costs lose 2^−(23−k) of relative precision).
        let mask = SIMD16<UInt32>(repeating: UInt32(rows - 1))
        for i in 1..<count {
            // best[u] = min_j cost[j·groups + u]; choice[i, u] = that j.
            for c in stride(from: 0, to: groups, by: 16) {
                var m = Self.unsigned(load(cost + c)) & ~mask
                for j in 1..<rows {
                    let v = (Self.unsigned(load(cost + j * groups + c)) & ~mask) | UInt32(j)
                    m.replace(with: v, where: v .< m)  // `pointwiseMin` was left as a generic call
                }
                UnsafeMutableRawPointer(best + c).storeBytes(of: unsafeBitCast(m, to: SIMD16<Float>.self), as: SIMD16<Float>.self)
                UnsafeMutableRawPointer(choice + i * groups + c).storeBytes(of: godwit_narrow16(unsafeBitCast(m & mask, to: SIMD16<Int32>.self)),
                                                                            as: SIMD16<UInt8>.self)
            }
            // next[s] = best[s >> k] + (y_i − levels[s])².
            let yi = SIMD16<Float>(repeating: y[i])
            for c in 0..<n / 16 {
                let b = CodeLookup.lookup16(load(best + c * step), expand)
                let e = yi - load(levels + 16 * c)
                UnsafeMutableRawPointer(next + 16 * c).storeBytes(of: b.addingProduct(e, e), as: SIMD16<Float>.self)
            }
            swap(&cost, &next)
        }
        var end = 0
        var endCost = Float.infinity
        if let h = overlap {
            for j in 0..<rows where cost[h | j << prefix] < endCost { endCost = cost[h | j << prefix]; end = h | j << prefix }
        } else {
            for s in 0..<n where cost[s] < endCost { endCost = cost[s]; end = s }
        }
        states[count - 1] = Int32(end)
        var s = end
        for i in stride(from: count - 1, to: 0, by: -1) {
            let u = s >> k
            s = u | Int(choice[i * groups + u]) << prefix
            states[i - 1] = Int32(s)
        }
        return (end & (groups - 1), endCost)
    }
}

/// One tcq record: [f16 scale][k·d/8 bytes: the trellis bits] — TurboRecord's size, 2 + k·d/8 bytes.
enum TrellisRecord {
    static func bytes(headDim: Int, bits: Int) -> Int { TurboRecord.bytes(headDim: headDim, bits: bits) }

    /// Scalar twin: the state of coordinate i of a record (see `TrellisBits.state`).
    static func stateScalar(_ r: UnsafeRawPointer, _ i: Int, dim: Int, bits: Int) -> Int {
        TrellisBits.state(r + 2, i, dim: dim, bits: bits)
    }
}

/// The bit string of a trellis path over d coordinates: k·d bits, b_i = s_i mod 2^k at bit k·(d−1−i).
enum TrellisBits {
    /// Writes the low k bits of each state (states [dim]) into packed [k·dim/8] bytes, which must be zero.
    static func pack(_ states: UnsafePointer<Int32>, dim: Int, bits k: Int, into packed: UnsafeMutablePointer<UInt8>) {
        for i in 0..<dim {
            PackedBits.put(Int(states[i]) & ((1 << k) - 1), bits: k, at: k * (dim - 1 - i), into: packed)
        }
    }

    /// The state of coordinate i, bit by bit: the L-bit window at bit k·(d−1−i), read circularly.
    static func state(_ packed: UnsafeRawPointer, _ i: Int, dim: Int, bits: Int) -> Int {
        let total = dim * bits, start = bits * (dim - 1 - i)
        var s = 0
        for t in 0..<TrellisCodebook.stateBits {
            let p = (start + t) % total
            s |= Int((packed.load(fromByteOffset: p >> 3, as: UInt8.self) >> UInt8(p & 7)) & 1) << t
        }
        return s
    }
}

extension TrellisCodebook {
    /// The tail-biting trellis path of y [dim] (scaled units, coordinates ≈ N(0, 1)): its states and
    /// its bit string (k·dim/8 bytes, TrellisBits). For tests and inspection (allocates its scratch).
    public func quantize(_ y: [Float]) -> (states: [Int], packed: [UInt8]) {
        precondition(y.count == dim, "trellis quantize: \(y.count) values for dim \(dim)")
        let search = TrellisSearch(self)
        defer { search.deallocate() }
        y.withUnsafeBufferPointer { _ = search.run($0.baseAddress!) }
        var packed = [UInt8](repeating: 0, count: dim * bits / 8)
        packed.withUnsafeMutableBufferPointer { TrellisBits.pack(search.states, dim: dim, bits: bits, into: $0.baseAddress!) }
        return ((0..<dim).map { Int(search.states[$0]) }, packed)
    }

    /// The state of coordinate i read back from a bit string made by `quantize`.
    public func state(_ i: Int, in packed: [UInt8]) -> Int {
        precondition(packed.count == dim * bits / 8 && (0..<dim).contains(i))
        return packed.withUnsafeBytes { TrellisBits.state($0.baseAddress!, i, dim: dim, bits: bits) }
    }
}

/// Encodes head vectors into tcq records (TrellisRecord), with the search's scratch.
final class TrellisEncoder {
    let codebook: TrellisCodebook
    let search: TrellisSearch
    let scaleMode: TurboScale
    /// [dim] the scaled unit vector being searched.
    private let y: UnsafeMutablePointer<Float>

    init(_ book: TrellisCodebook, scale: TurboScale) {
        codebook = book
        search = TrellisSearch(book)
        scaleMode = scale
        y = .allocate(capacity: book.dim)
    }

    deinit {
        search.deallocate()
        y.deallocate()
    }

    /// x [d] → record: f16 scale, then the low k bits of the path's state s_i at bit k·(d−1−i) (TrellisRecord).
    /// Reconstruction: scale · level(s_i); the scale (TurboScale) makes ⟨x̂, x⟩ = ‖x‖² when unbiased.
    func encode(_ x: UnsafePointer<Float>, into r: UnsafeMutableRawPointer) {
        let d = codebook.dim, k = codebook.bits
        let packed = (r + 2).assumingMemoryBound(to: UInt8.self)
        for i in 0..<d * k / 8 { packed[i] = 0 }
        var ss = 0.0
        for i in 0..<d { ss += Double(x[i]) * Double(x[i]) }
        let norm = ss.squareRoot()
        guard norm > 0 && norm.isFinite else {
            r.storeBytes(of: UInt16(0), as: UInt16.self)
            return
        }
        let toUnit = Float(Double(d).squareRoot() / norm)
        for i in 0..<d { y[i] = x[i] * toUnit }
        search.run(y)
        TrellisBits.pack(search.states, dim: d, bits: k, into: packed)
        var cx = 0.0, cc = 0.0
        for i in 0..<d {
            let c = Double(codebook.levels[Int(search.states[i])])
            cx += c * Double(x[i])
            cc += c * c
        }
        var scale = norm / Double(d).squareRoot()
        if cx > 0 && cc > 0 {
            switch scaleMode {
            case .unbiased: scale = ss / cx
            case .leastSquares: scale = cx / cc
            case .plain: break
            }
        }
        r.storeBytes(of: floatToHalf(Float(min(scale, 65504))), as: UInt16.self)
    }
}
