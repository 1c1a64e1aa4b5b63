import Foundation
import Godwit
import GodwitEval
import GodwitKVCache
import Testing

/// `godwit bench` is a command, not a timed test: this only checks that a tiny setting runs and
/// produces a well-formed table and llama-bench-compatible JSON.
@Suite(.serialized) struct BenchmarkTests {
    @Test("A tiny benchmark runs and prints well-formed markdown and JSON")
    func tinyBench() throws {
        let model = try Fixtures.model("smollm2")
        var results = [BenchmarkResult]()
        for (p, n, d) in [(16, 0, 0), (0, 4, 0), (16, 0, 32), (0, 4, 32)] {
            let t = BenchmarkTest(prompt: p, generate: n, depth: d, keyType: "q8_0", valueType: "f16", threads: 2, batchSize: 16)
            results.append(try Benchmark.run(model: model, test: t, repetitions: 2))
        }
        #expect(results.map(\.test.name) == ["pp16", "tg4", "pp16 @ d32", "tg4 @ d32"])
        for r in results { #expect(r.samples.count == 2 && r.mean > 0 && r.standardDeviation >= 0) }

        let md = Benchmark.markdown(results, model: model).split(separator: "\n")
        #expect(md.count == 2 + results.count)
        for line in md { #expect(line.hasPrefix("|") && line.hasSuffix("|") && line.filter { $0 == "|" }.count == 10) }

        let json = try JSONSerialization.jsonObject(with: Data(try Benchmark.json(results, model: model).utf8)) as! [[String: Any]]
        #expect(json.count == results.count)
        for (row, r) in zip(json, results) {
            #expect(row["n_prompt"] as? Int == r.test.prompt)
            #expect(row["n_gen"] as? Int == r.test.generate)
            #expect(row["n_depth"] as? Int == r.test.depth)
            #expect(row["type_k"] as? String == "q8_0")
            #expect(row["type_v"] as? String == "f16")
            #expect(row["n_threads"] as? Int == 2)
            #expect((row["avg_ts"] as? Double ?? 0) > 0)
            #expect(row["stddev_ts"] is Double)
        }
    }

    @Test("Per-layer overrides, sinks and a window reach the benchmark's cache; a bad override throws")
    func overrides() throws {
        let model = try Fixtures.model("smollm2")
        let t = BenchmarkTest(prompt: 0, generate: 4, depth: 24, keyType: "tcq3", valueType: "q4_0", threads: 2, batchSize: 16)
        let layers = [try KVLayerOverride.parse("0,-1=q8_0/f16")]
        let r = try Benchmark.run(model: model, test: t, repetitions: 1, overrides: layers, sinkTokens: 4, windowTokens: 8)
        #expect(r.samples.count == 1 && r.mean > 0)
        #expect(throws: (any Error).self) {
            try Benchmark.run(model: model, test: t, repetitions: 1, overrides: [KVLayerOverride(layers: [0], keyScheme: "nope", valueScheme: nil)])
        }
    }
}
