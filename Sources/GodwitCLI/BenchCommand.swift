import ArgumentParser
import Foundation
import Godwit
import GodwitEval
import GodwitKVCache

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Prompt-processing and generation speed, with llama-bench's tests and output fields.",
        discussion: """
        Every combination of the listed values is run: pp<P> (evaluate P random tokens) and tg<N>
        (generate N tokens one at a time), both after a context prefilled to each depth -d.
        Lists are comma-separated, e.g. -d 0,4096 -ctk f16,q8_0,q4_0. JSON output uses
        llama-bench's field names (n_prompt, n_gen, n_depth, type_k, type_v, n_threads, avg_ts, stddev_ts).
        """)

    @OptionGroup var model: ModelOptions
    @Option(name: [.customShort("p"), .customLong("n-prompt")], help: "Prompt sizes (0 = no pp test).")
    var prompts: String = "512"
    @Option(name: [.customShort("n"), .customLong("n-gen")], help: "Generation lengths (0 = no tg test).")
    var gens: String = "128"
    @Option(name: [.customShort("d"), .customLong("n-depth")], help: "Context depths prefilled before each test.")
    var depths: String = "0"
    @Option(name: [.customLong("ctk", withSingleDash: true), .customLong("cache-type-k")], help: "K cache types.")
    var keyTypes: String = "f16"
    @Option(name: [.customLong("ctv", withSingleDash: true), .customLong("cache-type-v")], help: "V cache types.")
    var valueTypes: String = "f16"
    @Option(name: [.customShort("t"), .customLong("threads")], help: "Thread counts.")
    var threads: String = "\(SessionConfiguration.defaultThreadCount)"
    @Option(name: [.customShort("b"), .customLong("batch-size")], help: "Batch size for prompt processing.")
    var batchSize: Int = 512
    @Option(name: [.customShort("r"), .customLong("repetitions")], help: "Repetitions per test.")
    var repetitions: Int = 5
    @Option(name: [.customShort("o"), .customLong("output")], help: "Output format: md or json.")
    var output: String = "md"
    @Option(name: .customLong("kv-group-size"), help: "Tokens per group for per-channel key quantization (KIVI).")
    var groupSize: Int = 32
    @Option(name: .customLong("kv-residual"), help: "Recent tokens kept in full precision until their group fills (KIVI).")
    var residual: Int = 32
    @Option(name: .customLong("kv-calibration"),
            help: "Calibration file from `godwit calibrate` (nuq, kivi{b}mix, kivi{b}tcq), or a model name (smollm2, gemma3) for the file scripts/calibrate.sh writes.")
    var calibration: String?
    @Option(name: .customLong("kv-layers"), parsing: .singleValue,
            help: "Per-layer override LAYERS=K[/V], repeatable; negative indices count from the end (e.g. 0,1,-2,-1=q8_0).")
    var layerOverrides: [String] = []
    @Option(name: .customLong("kv-sink"), help: "Keep the first S tokens in f16 (global layers only).")
    var sink: Int = 0
    @Option(name: .customLong("kv-window"), help: "Keep the most recent W tokens in f16.")
    var window: Int = 0
    @Flag(name: .customLong("no-kv-rotation"), help: "Do not rotate quantized K/V (llama.cpp rotates them with a Hadamard matrix).")
    var noRotation = false

    /// The parsed --kv-layers overrides; every scheme they name must be registered.
    func overrides() throws -> [KVLayerOverride] {
        var list = [KVLayerOverride]()
        for spec in layerOverrides {
            let o: KVLayerOverride
            do { o = try KVLayerOverride.parse(spec) } catch { throw ValidationError("--kv-layers: \(error.description)") }
            _ = try names([o.keyScheme, o.valueScheme].compactMap { $0 }.joined(separator: ","), "--kv-layers")
            list.append(o)
        }
        return list
    }

    func ints(_ s: String, _ flag: String) throws -> [Int] {
        let v = s.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !v.isEmpty, v.allSatisfy({ $0 != nil && $0! >= 0 }) else { throw ValidationError("\(flag) takes comma-separated non-negative integers, got '\(s)'") }
        return v.map { $0! }
    }

    func names(_ s: String, _ flag: String) throws -> [String] {
        let v = s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        for n in v {
            do { _ = try KVSchemeRegistry.shared.scheme(named: n) } catch { throw ValidationError("\(flag): \(error.description)") }
        }
        return v
    }

    func validate() throws {
        _ = try ints(prompts, "-p"); _ = try ints(gens, "-n"); _ = try ints(depths, "-d")
        let t = try ints(threads, "-t")
        if t.contains(0) { throw ValidationError("-t: thread counts must be positive") }
        _ = try names(keyTypes, "-ctk"); _ = try names(valueTypes, "-ctv")
        if repetitions <= 0 { throw ValidationError("-r must be positive, got \(repetitions)") }
        if batchSize <= 0 { throw ValidationError("-b must be positive, got \(batchSize)") }
        if !["md", "json"].contains(output) { throw ValidationError("-o must be md or json, got '\(output)'") }
        if groupSize <= 0 { throw ValidationError("--kv-group-size must be positive, got \(groupSize)") }
        if residual < 0 { throw ValidationError("--kv-residual must be ≥ 0, got \(residual)") }
        if sink < 0 { throw ValidationError("--kv-sink must be ≥ 0, got \(sink)") }
        if window < 0 { throw ValidationError("--kv-window must be ≥ 0, got \(window)") }
        _ = try overrides()
    }

    func run() async throws {
        let lm = try loadModel(model.model)
        var tests = [BenchmarkTest]()
        for k in try names(keyTypes, "-ctk") {
            for v in try names(valueTypes, "-ctv") {
                for t in try ints(threads, "-t") {
                    for d in try ints(depths, "-d") {
                        for p in try ints(prompts, "-p") where p > 0 {
                            tests.append(BenchmarkTest(prompt: p, generate: 0, depth: d, keyType: k, valueType: v, threads: t, batchSize: batchSize))
                        }
                        for n in try ints(gens, "-n") where n > 0 {
                            tests.append(BenchmarkTest(prompt: 0, generate: n, depth: d, keyType: k, valueType: v, threads: t, batchSize: batchSize))
                        }
                    }
                }
            }
        }
        var options = KVSchemeOptions()
        options.groupSize = groupSize
        options.residual = residual
        options.rotation = !noRotation
        options.calibrationPath = calibration.map(CalibrationLocator.path)
        var loadedCalibration: KVCalibration?
        if let calibration {
            loadedCalibration = try CalibrationLocator.load(calibration)
        }
        let layerList = try overrides()
        var results = [BenchmarkResult]()
        for (i, t) in tests.enumerated() {
            do {
                results.append(try Benchmark.run(model: lm, test: t, repetitions: repetitions, options: options,
                                                 calibration: loadedCalibration, overrides: layerList, sinkTokens: sink,
                                                 windowTokens: window) { printError("bench \(i + 1)/\(tests.count): \($0)") })
            } catch let e as CustomStringConvertible {
                throw ValidationError(e.description)
            }
        }
        print(output == "json" ? try Benchmark.json(results, model: lm) : Benchmark.markdown(results, model: lm))
    }
}
