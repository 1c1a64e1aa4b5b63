// KL divergence of a run against base log-probabilities, as llama-perplexity --kl-divergence
// computes it (tools/perplexity/perplexity.cpp: log_softmax with base_log_prob, kl_divergence):
// KL(base ‖ this) per scored token over the base tokens within 16 nats of the top, top-1
// agreement, PPL of both and their ratio.
import Foundation

/// Accumulated statistics over the scored tokens.
public struct KLDivergenceStats: Sendable {
    public var count = 0
    public var sumNLL = 0.0, sumNLL2 = 0.0
    public var sumNLLBase = 0.0, sumNLLBase2 = 0.0, sumNLLxBase = 0.0
    public var sumKLD = 0.0, sumKLD2 = 0.0
    public var sameTop = 0
    public var sumPDiff = 0.0, sumPDiff2 = 0.0
    public var maxPDiff: Float = 0
    /// Every token's KLD (for percentiles).
    public var values: [Float] = []

    public init() {}

    /// Adds one scored token: this run's logits row [vocab], the base row (u16 layout), the target token.
    mutating func add(logits: UnsafePointer<Float>, vocabularySize n: Int, base: UnsafePointer<UInt16>, token: Int) {
        let (lse, _, argmax) = LogSoftmax.logSumExp(logits, n)
        let scale = UnsafeRawPointer(base).loadUnaligned(as: Float.self)
        let minLogProb = UnsafeRawPointer(base).loadUnaligned(fromByteOffset: 4, as: Float.self)
        let q = base + 4
        let nll = lse - Double(logits[token])
        let nllBase = -Double(scale * Float(q[token]) + minLogProb)
        sumNLL += nll; sumNLL2 += nll * nll
        sumNLLBase += nllBase; sumNLLBase2 += nllBase * nllBase
        sumNLLxBase += nll * nllBase
        var kld = 0.0
        var baseMax = -Float.infinity, baseArgmax = 0
        for i in 0..<n {
            let lpBase = scale * Float(q[i]) + minLogProb
            if i == 0 || lpBase > baseMax { baseMax = lpBase; baseArgmax = i }
            if lpBase > -16 {
                let pBase = Foundation.exp(Double(lpBase))
                kld += pBase * (Double(lpBase) - (Double(logits[i]) - lse))
            }
        }
        sumKLD += kld; sumKLD2 += kld * kld
        if argmax == baseArgmax { sameTop += 1 }
        let pDiff = Float(Foundation.exp(-nll) - Foundation.exp(-nllBase))
        sumPDiff += Double(pDiff); sumPDiff2 += Double(pDiff * pDiff)
        maxPDiff = max(maxPDiff, abs(pDiff))
        values.append(Float(kld))
        count += 1
    }

    static func meanAndUncertainty(_ sum: Double, _ sum2: Double, _ count: Int) -> (Double, Double) {
        guard count > 0 else { return (0, 0) }
        let f = sum / Double(count)
        let v = sum2 / Double(count) - f * f
        return (f, v > 0 && count > 10 ? (v / Double(count - 1)).squareRoot() : 0)
    }

    public var perplexity: (value: Double, uncertainty: Double) {
        let (m, u) = Self.meanAndUncertainty(sumNLL, sumNLL2, count)
        return (Foundation.exp(m), Foundation.exp(m) * u)
    }
    public var basePerplexity: (value: Double, uncertainty: Double) {
        let (m, u) = Self.meanAndUncertainty(sumNLLBase, sumNLLBase2, count)
        return (Foundation.exp(m), Foundation.exp(m) * u)
    }
    /// ln(PPL / PPL_base) with its uncertainty (covariance-corrected, as llama.cpp).
    public var logPerplexityRatio: (value: Double, uncertainty: Double) {
        let a = Self.meanAndUncertainty(sumNLL, sumNLL2, count), b = Self.meanAndUncertainty(sumNLLBase, sumNLLBase2, count)
        var cov = 0.0
        if count >= 10 {
            cov = (sumNLLxBase / Double(count) - (sumNLL / Double(count)) * (sumNLLBase / Double(count))) / Double(count - 1)
        }
        return (a.0 - b.0, max(0, a.1 * a.1 + b.1 * b.1 - 2 * cov).squareRoot())
    }
    public var meanKLD: (value: Double, uncertainty: Double) { Self.meanAndUncertainty(sumKLD, sumKLD2, count) }
    public var sameTopFraction: Double { count > 0 ? Double(sameTop) / Double(count) : 0 }
    public var rmsPDiff: Double { count > 0 ? (sumPDiff2 / Double(count)).squareRoot() : 0 }

    /// KLD percentile (0…100) over the tokens seen.
    public func kldPercentile(_ p: Double) -> Float {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        let idx = min(sorted.count - 1, max(0, Int((p / 100 * Double(sorted.count - 1)).rounded())))
        return sorted[idx]
    }
}
