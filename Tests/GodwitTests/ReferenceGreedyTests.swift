import Foundation
import Godwit
import GodwitTestSupport
import Testing

/// 48-token greedy continuations against llama.cpp's (f16 cache, flash attention off, prompt as one
/// batch), with `numerics: .ggml` (llama.cpp's operation order) and flash attention off. Every product of both models has
/// an exact kernel (Gemma 3's q4_K in llama.cpp's repacked gemv/gemm order, q6_K in its vec_dot /
/// tiled order), so both follow llama.cpp token for token (measured 6/6 and 5/5; with `.fast`
/// Gemma gets 2/5).
@Suite(.serialized) struct ReferenceGreedyTests {
    static func matches(model name: String, numerics: Numerics = .ggml) throws -> (exact: Int, total: Int, report: [String]) {
        let model = try Fixtures.model(name)
        let reference = try Reference.greedy(name)
        var exact = 0
        var report = [String]()
        for c in reference.cases {
            // The references ran without flash attention; ggml numerics follow llama.cpp's -fa setting.
            let session = try model.makeSession(SessionConfiguration(contextLength: 256, threads: 2,
                                                                     cache: KVCacheConfiguration(flashAttention: numerics == .fast), numerics: numerics))
            let (tokens, _) = try session.generate(tokens: c.prompt_ids, maxTokens: c.greedy_ids.count, sampling: .greedy).run()
            if tokens == c.greedy_ids { exact += 1 } else {
                let firstDiff = zip(tokens, c.greedy_ids).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(tokens.count, c.greedy_ids.count)
                report.append("'\(c.prompt)': first difference at token \(firstDiff): \(model.detokenize(tokens).debugDescription)")
            }
        }
        return (exact, reference.cases.count, report)
    }

    @Test("SmolLM2 greedy continuations: at least 5 of 6 exact")
    func smollm2() throws {
        let (exact, total, report) = try Self.matches(model: "smollm2")
        print("smollm2 greedy: \(exact)/\(total) exact; \(report)")
        #expect(exact >= 5, "\(report)")
    }

    @Test("Gemma 3 greedy continuations: at least 4 of 5 exact")
    func gemma3() throws {
        let (exact, total, report) = try Self.matches(model: "gemma3")
        print("gemma3 greedy: \(exact)/\(total) exact; \(report)")
        #expect(exact >= 4, "\(report)")
    }
}
