// Throughput benchmarks with llama-bench's tests and semantics (tools/llama-bench/llama-bench.cpp):
//   pp<P>: evaluate P random tokens in batches of -b, after a context prefilled to depth d;
//   tg<N>: generate N tokens one at a time (a random token per step, no sampling), after depth d.
// Each test runs once as warm-up, then `repetitions` times; the depth prefill is not timed
// (llama-bench restores a saved state; here the cache is truncated back to the depth, or refilled
// when a sliding-window ring cannot go back that far). Speeds are tokens per second, mean ± sd.
import Foundation
import Godwit
import GodwitKVCache
import GodwitKernels

public struct BenchmarkTest: Sendable, Hashable {
    public var prompt: Int
    public var generate: Int
    public var depth: Int
    public var keyType: String
    public var valueType: String
    public var threads: Int
    public var batchSize: Int

    public init(prompt: Int, generate: Int, depth: Int, keyType: String, valueType: String, threads: Int, batchSize: Int) {
        self.prompt = prompt
        self.generate = generate
        self.depth = depth
        self.keyType = keyType
        self.valueType = valueType
        self.threads = threads
        self.batchSize = batchSize
    }

    /// llama-bench's test name: "pp512", "tg128", with " @ d4096" at depth.
    public var name: String {
        (prompt > 0 ? "pp\(prompt)" : "tg\(generate)") + (depth > 0 ? " @ d\(depth)" : "")
    }
}

public struct BenchmarkResult: Sendable {
    public let test: BenchmarkTest
    /// Tokens per second of each repetition.
    public let samples: [Double]
    public var mean: Double { samples.reduce(0, +) / Double(max(1, samples.count)) }
    public var standardDeviation: Double {
        guard samples.count > 1 else { return 0 }
        let m = mean
        return (samples.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(samples.count - 1)).squareRoot()
    }
}

public enum Benchmark {
    /// Runs one test `repetitions` times after a warm-up. `progress` receives one-line status.
    /// `options` and `calibration` parameterize the schemes (KIVI group size and residual,
    /// KVQuant-style codebooks); the test names the K and V schemes, `overrides`, `sinkTokens` and
    /// `windowTokens` the per-layer schemes and f16 sinks/window (as `--kv-layers`, `--kv-sink`, `--kv-window`).
    public static func run(model: LanguageModel, test t: BenchmarkTest, repetitions: Int, seed: UInt64 = 1,
                           options: KVSchemeOptions = .init(), calibration: KVCalibration? = nil,
                           overrides: [KVLayerOverride] = [], sinkTokens: Int = 0, windowTokens: Int = 0,
                           progress: (String) -> Void = { _ in }) throws -> BenchmarkResult {
        let ctx = t.depth + t.prompt + t.generate + 1
        let cache = KVCacheConfiguration(keyScheme: t.keyType, valueScheme: t.valueType, options: options,
                                         overrides: overrides, sinkTokens: sinkTokens, windowTokens: windowTokens)
        let session = try model.makeSession(SessionConfiguration(contextLength: ctx, batchSize: t.batchSize,
                                                                 threads: t.threads, cache: cache, calibration: calibration))
        var rng = SplitMix64(seed: seed)
        let vocab = Int32(model.config.vocabularySize)
        func randomTokens(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(rng.next() % UInt64(vocab)) } }
        var depthTokens = randomTokens(t.depth)
        if let bos = model.tokenizer.bosID, model.tokenizer.addBOS, !depthTokens.isEmpty { depthTokens[0] = bos }
        var logit = [Float](repeating: 0, count: Int(vocab))

        func evaluate(_ tokens: [Int32]) throws {
            guard !tokens.isEmpty else { return }
            try logit.withUnsafeMutableBufferPointer { buf in
                try session.evaluate(tokens, outputRows: (tokens.count - 1)..<tokens.count, into: buf)
            }
        }
        func toDepth() throws {
            if session.tokens.count > t.depth, session.canTruncate(to: t.depth) {
                session.truncate(to: t.depth)
            } else {
                session.reset()
                try evaluate(depthTokens)
            }
        }
        func once() throws -> Double {
            try toDepth()
            let start = DispatchTime.now().uptimeNanoseconds
            if t.prompt > 0 {
                try evaluate(randomTokens(t.prompt))
            } else {
                for _ in 0..<t.generate { try evaluate(randomTokens(1)) }
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            return Double(t.prompt > 0 ? t.prompt : t.generate) / seconds
        }

        progress("\(t.name) \(t.keyType)/\(t.valueType): warm-up")
        _ = try once()
        var samples = [Double]()
        for r in 0..<repetitions {
            samples.append(try once())
            progress(String(format: "\(t.name) \(t.keyType)/\(t.valueType): run %d/%d %.2f t/s", r + 1, repetitions, samples.last!))
        }
        return BenchmarkResult(test: t, samples: samples)
    }

    /// The markdown table llama-bench prints.
    public static func markdown(_ results: [BenchmarkResult], model: LanguageModel) -> String {
        let size = String(format: "%.2f MiB", Double(model.transformer.weightBytes) / 1_048_576)
        let params = String(format: "%.2f M", Double(model.transformer.parameterCount) / 1e6)
        var lines = ["| model | size | params | backend | threads | type_k | type_v | test | t/s |",
                     "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
        for r in results {
            lines.append("| \(model.config.name) | \(size) | \(params) | Godwit CPU | \(r.test.threads) | \(r.test.keyType) | \(r.test.valueType) | \(r.test.name) | "
                         + String(format: "%.2f ± %.2f", r.mean, r.standardDeviation) + " |")
        }
        return lines.joined(separator: "\n")
    }

    /// An array of results with llama-bench's JSON field names.
    public static func json(_ results: [BenchmarkResult], model: LanguageModel) throws -> String {
        let rows: [[String: Any]] = results.map { r in
            [
                "model_filename": model.path,
                "model_type": model.config.name,
                "model_size": model.transformer.weightBytes,
                "model_n_params": model.transformer.parameterCount,
                "n_batch": r.test.batchSize,
                "n_threads": r.test.threads,
                "type_k": r.test.keyType,
                "type_v": r.test.valueType,
                "flash_attn": true,
                "n_prompt": r.test.prompt,
                "n_gen": r.test.generate,
                "n_depth": r.test.depth,
                "avg_ts": r.mean,
                "stddev_ts": r.standardDeviation,
                "samples_ts": r.samples,
                "backend": "Godwit CPU",
            ]
        }
        let data = try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
