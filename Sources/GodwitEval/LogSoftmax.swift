// Log-softmax statistics of one logits row, as llama-perplexity computes them
// (tools/perplexity/perplexity.cpp: log_softmax): max subtraction, Σ exp in double.
import GodwitKernels
import Foundation

enum LogSoftmax {
    /// log Σ exp(logits) over [n], with the max and argmax.
    static func logSumExp(_ logits: UnsafePointer<Float>, _ n: Int) -> (lse: Double, max: Float, argmax: Int) {
        let m = VectorOps.max(logits, n)
        var argmax = 0
        for i in 0..<n where logits[i] == m { argmax = i; break }
        // Sum in float SIMD chunks of 4096, accumulated in double.
        var total = 0.0
        let chunk = 4096
        var start = 0
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: chunk) { buf in
            while start < n {
                let len = min(chunk, n - start)
                buf.baseAddress!.update(from: logits + start, count: len)
                total += Double(VectorOps.expSubtract(buf.baseAddress!, max: m, len))
                start += len
            }
            return (Double(m) + Foundation.log(total), m, argmax)
        }
    }
}
