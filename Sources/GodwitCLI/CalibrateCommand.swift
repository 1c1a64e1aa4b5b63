// `godwit calibrate`: fits the KVQuant-style nuq3/nuq4 parameters (GodwitEval/Calibration.swift)
// and writes them as a GGUF calibration file for `--kv-calibration`.
import ArgumentParser
import Foundation
import Godwit
import GodwitEval

struct CalibrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Fit the offline parameters of the calibrated KV cache schemes (nuq3, nuq4, kivi{b}mix, kivi{b}tcq) and write a --kv-calibration file.",
        discussion: """
        Runs the model over --tokens tokens of the text, after skipping the first --skip tokens (keep the
        evaluation text out: perplexity uses the first chunks, so e.g. --skip 100000 on wikitext-2-test),
        records each layer's pre-RoPE keys and values, and fits per layer: per-channel key outlier
        thresholds (0.5%/99.5% percentiles) and 3- and 4-bit k-means codebooks for keys and values;
        and the mean squared query coordinate of every KV head and channel (the error weights of kivi{b}mix and kivi{b}tcq).
        Example: godwit calibrate -f wikitext-2-test.txt --skip 100000 -o smollm2-nuq.gguf
        """)

    @OptionGroup var model: ModelOptions
    @Option(name: [.customShort("f"), .customLong("file")], help: "Calibration text file.")
    var file: String
    @Option(name: [.customShort("o"), .customLong("output")], help: "Calibration file to write (GGUF).")
    var output: String
    @Option(name: .customLong("tokens"), help: "Calibration tokens (rounded down to whole chunks).")
    var tokens: Int = 16384
    @Option(name: .customLong("skip"), help: "Skip this many tokens of the tokenized text first.")
    var skip: Int = 0
    @Option(name: [.customShort("c"), .customLong("ctx-size")], help: "Tokens per chunk.")
    var contextSize: Int = 512
    @Option(name: [.customShort("t"), .customLong("threads")], help: "Threads (default: one per core).")
    var threads: Int?

    func validate() throws {
        if tokens <= 0 { throw ValidationError("--tokens must be positive, got \(tokens)") }
        if skip < 0 { throw ValidationError("--skip must be ≥ 0, got \(skip)") }
        if contextSize < 2 { throw ValidationError("--ctx-size must be at least 2, got \(contextSize)") }
        if let t = threads, t <= 0 || t > 1024 { throw ValidationError("--threads must be 1…1024, got \(t)") }
    }

    func run() async throws {
        let lm = try loadModel(model.model)
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw ValidationError("cannot read \(file)") }
        var o = CalibrationOptions()
        o.tokens = tokens
        o.skip = skip
        o.contextLength = contextSize
        o.threads = threads
        printError("calibrate: model \(lm.config.name), \(tokens) tokens after skipping \(skip), -c \(contextSize)")
        let result: CalibrationResult
        do {
            result = try Calibration.run(model: lm, text: text, options: o) { printError($0) }
        } catch let e as CustomStringConvertible {
            throw ValidationError(e.description)
        }
        var calibration = result.calibration
        calibration.metadata["godwit.calibration.text"] = URL(fileURLWithPath: file).lastPathComponent
        do { try calibration.write(to: output) } catch { throw ValidationError(error.description) }
        print("wrote \(output): \(calibration.tensors.count) tensors, \(result.tokensUsed) tokens "
              + "(\(result.chunks) chunks of \(contextSize), tokens \(result.firstToken)..<\(result.firstToken + result.tokensUsed) "
              + "of \(result.textTokens)), \(String(format: "%.1f", result.seconds)) s")
    }
}
