import Foundation
import Godwit
import GodwitTestSupport
import Testing

/// Gemma 3's sliding-window layers (window 512) past the window: decoding token by token through
/// the ring must give the same log-probabilities as evaluating the whole sequence in one batch
/// (f16 cache), at every one of ≥ 1500 positions, within 0.02.
@Suite(.serialized) struct SlidingWindowTests {
    @Test("Token-by-token decoding past the window equals one-batch evaluation (Gemma 3, 1600 tokens)")
    func decodeEqualsBatch() throws {
        let model = try Fixtures.model("gemma3")
        let text = try String(contentsOf: TestPaths.shared("data/wikitext-2-test.txt"), encoding: .utf8)
        let tokens = Array(model.tokenize(text, addSpecial: true, parseSpecial: false).prefix(1600))
        let n = tokens.count, vocab = model.config.vocabularySize
        let decoder = try model.makeSession(SessionConfiguration(contextLength: n, batchSize: 1, threads: 2))
        let pass = 800   // two one-batch passes; each keeps 800 rows of logits (0.8 GB)
        var rows = [Float](repeating: 0, count: pass * vocab)
        var step = [Float](repeating: 0, count: vocab)
        var worst: Float = 0
        var worstPosition = 0
        for start in stride(from: 0, to: n, by: pass) {
            // The whole sequence in one batch, keeping the logits of positions start..<start+pass.
            let batch = try model.makeSession(SessionConfiguration(contextLength: n, batchSize: n, threads: 2))
            let end = min(n, start + pass)
            try rows.withUnsafeMutableBufferPointer { try batch.evaluate(tokens, outputRows: start..<end, into: $0) }
            for p in start..<end {
                try step.withUnsafeMutableBufferPointer { try decoder.evaluate([tokens[p]], outputRows: 0..<1, into: $0) }
                let a = logSoftmax(Array(rows[(p - start) * vocab..<(p - start + 1) * vocab])), b = logSoftmax(step)
                var d: Float = 0
                for i in 0..<vocab { d = max(d, abs(a[i] - b[i])) }
                if d > worst { worst = d; worstPosition = p }
            }
        }
        print("gemma3 decode vs batch over \(n) positions: max |Δ log p| = \(worst) at position \(worstPosition)")
        #expect(n >= 1500)
        #expect(worst <= 0.02)
    }
}
