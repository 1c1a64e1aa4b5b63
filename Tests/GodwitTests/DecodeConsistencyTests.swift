import Foundation
import Godwit
import GodwitTestSupport
import Testing

/// Evaluating a sequence in one batch and token by token must give the same log-probabilities
/// (up to float rounding of the different kernels).
@Suite(.serialized) struct DecodeConsistencyTests {
    @Test("Batch and token-by-token evaluation agree", arguments: ["smollm2"])
    func batchVersusDecode(model name: String) throws {
        let model = try Fixtures.model(name)
        let c = try Reference.greedy(name).cases[5]
        let tokens = c.prompt_ids + c.greedy_ids
        let batch = try model.makeSession(SessionConfiguration(contextLength: 128, threads: 2)).logProbabilities(tokens)
        let single = try model.makeSession(SessionConfiguration(contextLength: 128, batchSize: 1, threads: 2))
        var worst: Float = 0
        for (i, t) in tokens.enumerated() {
            let lp = try single.logProbabilities([t])[0]
            let top = batch[i].indices.max { batch[i][$0] < batch[i][$1] }!
            let d = abs(lp[top] - batch[i][top])
            worst = max(worst, d)
            if d > 0.05 { print("position \(i): batch \(batch[i][top]) decode \(lp[top])") }
        }
        print("\(name): worst top-1 log-prob difference batch vs decode = \(worst)")
        #expect(worst < 0.05)
    }
}
