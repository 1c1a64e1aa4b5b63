// Token sampling over a logits vector, in llama.cpp's default chain order (common/sampling.cpp):
// repetition penalty → top-k → top-p → min-p → temperature → draw. Temperature ≤ 0 is greedy
// (argmax of the penalized logits). The random generator is a seeded SplitMix64, so
// a seed reproduces a run of Godwit (not of llama.cpp, whose RNG is mt19937).
import GodwitKernels

public struct Sampler {
    public let parameters: SamplingParameters
    private var rng: SplitMix64
    /// Candidate indices and probabilities, reused between calls. [vocab]
    private var ids: [Int32] = []
    private var probs: [Float] = []

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        rng = SplitMix64(seed: parameters.seed ?? UInt64.random(in: 0...UInt64.max))
    }

    /// Picks the next token from `logits` [vocab]. `history` holds previous tokens (for penalties).
    /// Modifies `logits` in place when a penalty applies.
    public mutating func sample(logits: UnsafeMutablePointer<Float>, vocabularySize n: Int, history: ArraySlice<Int32>) -> Int32 {
        let p = parameters
        if p.repeatPenalty != 1, p.repeatLastN > 0 {
            var seen = Set<Int32>()
            for t in history.suffix(p.repeatLastN) where seen.insert(t).inserted && Int(t) < n {
                let l = logits[Int(t)]
                logits[Int(t)] = l > 0 ? l / p.repeatPenalty : l * p.repeatPenalty
            }
        }
        if p.temperature <= 0 { return Int32(VectorOps.argmax(logits, n)) }

        // Candidates sorted by logit, cut by top-k.
        if ids.count != n { ids = Array(0..<Int32(n)); probs = [Float](repeating: 0, count: n) }
        for i in 0..<n { ids[i] = Int32(i) }
        let k = p.topK > 0 ? min(p.topK, n) : n
        if k < n {
            // Partial selection of the k largest, then sort those.
            ids.withUnsafeMutableBufferPointer { buf in
                Self.selectTop(buf, k: k, logits: logits)
            }
        }
        var m = k
        ids.withUnsafeMutableBufferPointer { buf in
            buf[0..<m].sort { logits[Int($0)] > logits[Int($1)] }
        }
        // Softmax over the candidates (at temperature 1 for the filters, as llama.cpp does).
        let maxLogit = logits[Int(ids[0])]
        var sum: Float = 0
        for i in 0..<m { let e = FastMath.exp(logits[Int(ids[i])] - maxLogit); probs[i] = e; sum += e }
        for i in 0..<m { probs[i] /= sum }
        if p.topP < 1 {
            var cumulative: Float = 0
            for i in 0..<m {
                cumulative += probs[i]
                if cumulative >= p.topP { m = i + 1; break }
            }
        }
        if p.minP > 0 {
            let threshold = probs[0] * p.minP
            var keep = 1
            while keep < m && probs[keep] >= threshold { keep += 1 }
            m = keep
        }
        // Temperature, then draw.
        var total: Float = 0
        for i in 0..<m {
            let e = FastMath.exp((logits[Int(ids[i])] - maxLogit) / p.temperature)
            probs[i] = e
            total += e
        }
        let r = Float(rng.nextUnitDouble()) * total
        var acc: Float = 0
        for i in 0..<m {
            acc += probs[i]
            if r < acc { return ids[i] }
        }
        return ids[m - 1]
    }

    /// Moves the k largest logits' ids to the front (unordered), quickselect style.
    private static func selectTop(_ ids: UnsafeMutableBufferPointer<Int32>, k: Int, logits: UnsafePointer<Float>) {
        var lo = 0, hi = ids.count - 1
        while lo < hi {
            let pivot = logits[Int(ids[(lo + hi) / 2])]
            var i = lo, j = hi
            while i <= j {
                while logits[Int(ids[i])] > pivot { i += 1 }
                while logits[Int(ids[j])] < pivot { j -= 1 }
                if i <= j { ids.swapAt(i, j); i += 1; j -= 1 }
            }
            if k - 1 <= j { hi = j } else if k - 1 >= i { lo = i } else { return }
        }
    }
}
