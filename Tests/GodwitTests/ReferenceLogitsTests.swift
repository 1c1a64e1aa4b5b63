import Foundation
import Godwit
import GodwitTestSupport
import Testing

/// Our log-probabilities against llama.cpp's top-10 at every prompt position (f16 cache, whole
/// prompt in one batch). Tolerances from the foundation issue: max 0.75, mean 0.15 over the
/// reference top-10; top-1 agrees wherever llama.cpp's top-1/top-2 gap is ≥ 0.2.
@Suite(.serialized) struct ReferenceLogitsTests {
    struct Deviation {
        var maxDiff: Float = 0; var sum: Double = 0; var count = 0; var top1Misses: [String] = []
        /// Largest spread of (ours − llama.cpp) log-prob over one position's top-10: the logit error
        /// without the log-sum-exp (which both sides compute in their own float order).
        var maxLogitSpread: Float = 0
    }

    static func compare(model name: String, numerics: Numerics = .ggml) throws -> Deviation {
        let model = try Fixtures.model(name)
        let reference = try Reference.logits(name)
        var dev = Deviation()
        for c in reference.cases {
            // The references ran without flash attention; ggml numerics follow llama.cpp's -fa setting.
            let session = try model.makeSession(SessionConfiguration(contextLength: 128, threads: 2,
                                                                     cache: KVCacheConfiguration(flashAttention: numerics == .fast), numerics: numerics))
            let lp = try session.logProbabilities(c.ids)
            for (i, pos) in c.positions.enumerated() {
                let deltas = zip(pos.top_ids, pos.top_logits).map { lp[i][Int($0.0)] - ($0.1 - pos.logsumexp) }
                dev.maxLogitSpread = max(dev.maxLogitSpread, deltas.max()! - deltas.min()!)
                for (id, logit) in zip(pos.top_ids, pos.top_logits) {
                    let d = abs(lp[i][Int(id)] - (logit - pos.logsumexp))
                    dev.maxDiff = max(dev.maxDiff, d)
                    dev.sum += Double(d)
                    dev.count += 1
                }
                let ours = lp[i].indices.max { lp[i][$0] < lp[i][$1] }!
                if pos.top_logits[0] - pos.top_logits[1] >= 0.2 && ours != Int(pos.top_ids[0]) {
                    dev.top1Misses.append("\(c.prompt) @\(i): ours \(ours), llama.cpp \(pos.top_ids[0])")
                }
            }
        }
        return dev
    }

    /// In ggml numerics both models reproduce llama.cpp's logits (up to the reference's 4 decimals
    /// and the two sides' own log-sum-exp: SmolLM2 max 0.00035, Gemma 3 max 0.00054); the fast
    /// numerics are held to the original tolerances. (Gemma in fast numerics misses them: max 0.85,
    /// a top-1 miss on 'The three primary colors are'.)
    @Test("Log-probabilities match llama.cpp",
          arguments: [("smollm2", Numerics.ggml), ("smollm2", .fast), ("gemma3", .ggml)])
    func logits(model: String, numerics: Numerics) throws {
        let dev = try Self.compare(model: model, numerics: numerics)
        let mean = dev.sum / Double(dev.count)
        print("\(model) (\(numerics)): max |Δ log p| = \(dev.maxDiff), mean = \(mean) over \(dev.count) values; max top-10 logit spread \(dev.maxLogitSpread)")
        #expect(dev.maxDiff <= 0.75)
        #expect(mean <= 0.15)
        #expect(dev.top1Misses.isEmpty, "\(dev.top1Misses)")
        if numerics == .ggml {
            #expect(dev.maxLogitSpread <= 2e-4, "logits differ beyond the reference's rounding")
            #expect(dev.maxDiff <= 2e-3)
        }
    }
}
