import Foundation
import Godwit
import GodwitTestSupport
import Testing

/// 48-token greedy continuations against llama.cpp's (f16 cache, flash attention off, prompt as one
/// batch), with `numerics: .ggml` (llama.cpp's operation order). SmolLM2's products all have exact
/// kernels (6/6); Gemma 3's q4_K (repacked in llama.cpp) and q6_K products do not yet, so its
/// continuations still drift (2/5, as with `.fast`).
@Suite(.serialized) struct ReferenceGreedyTests {
    static func matches(model name: String, numerics: Numerics = .ggml) throws -> (exact: Int, total: Int, report: [String]) {
        let model = try Fixtures.model(name)
        let reference = try Reference.greedy(name)
        var exact = 0
        var report = [String]()
        for c in reference.cases {
            let session = try model.makeSession(SessionConfiguration(contextLength: 256, threads: 2, numerics: numerics))
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
        // Known gap (issue 4 stays open): the ggml numerics mode reproduces llama.cpp's q4_1, q5_0,
        // q8_0 and f16 paths bit for bit, but not yet its repacked q4_K kernels (ggml-cpu/repack.cpp
        // gemv/gemm_q4_K_8x8_q8_K) nor the q6_K vec_dot; Gemma's k-quant products fall back to the
        // fast kernels, and the chaotic 8-bit activation rounding then flips continuations.
        withKnownIssue("Gemma 3's k-quant products are not yet ggml-exact", isIntermittent: true) {
            #expect(exact >= 4, "\(report)")
        }
    }
}
