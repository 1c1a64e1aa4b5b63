import Foundation
import Godwit
import GodwitTestSupport

/// Real models, loaded once per test process.
enum Fixtures {
    nonisolated(unsafe) private static var cache: [String: LanguageModel] = [:]
    private static let lock = NSLock()

    static func model(_ name: String) throws -> LanguageModel {
        lock.lock(); defer { lock.unlock() }
        if let m = cache[name] { return m }
        let path = name == "smollm2" ? try TestPaths.smolLM2() : try TestPaths.gemma3()
        let m = try LanguageModel(path: path)
        cache[name] = m
        return m
    }
}

/// Log-probabilities (logit − logsumexp) of a logits row.
func logSoftmax(_ row: [Float]) -> [Float] {
    let m = row.max()!
    let lse = m + Float(Foundation.log(row.reduce(0.0) { $0 + Foundation.exp(Double($1 - m)) }))
    return row.map { $0 - lse }
}
