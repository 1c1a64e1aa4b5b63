import ArgumentParser
import Foundation
import Godwit
import GodwitKVCache

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text after a prompt. Only the generated text goes to stdout; timings and KV memory go to stderr.")

    @OptionGroup var model: ModelOptions
    @Option(name: [.customShort("p"), .customLong("prompt")], help: "The prompt.")
    var prompt: String?
    @Option(name: [.customShort("f"), .customLong("file")], help: "Read the prompt from a file.")
    var file: String?
    @Option(name: [.customShort("n"), .customLong("n-predict")], help: "Tokens to generate (-1: until end of generation or a full context).")
    var count: Int = 128
    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var context: ContextOptions
    @OptionGroup var cache: CacheOptions

    func validate() throws {
        if prompt == nil && file == nil { throw ValidationError("give a prompt with -p TEXT or -f FILE") }
        if prompt != nil && file != nil { throw ValidationError("give either -p or -f, not both") }
        if count < -1 { throw ValidationError("--n-predict must be ≥ -1, got \(count)") }
    }

    func run() async throws {
        let text: String
        if let file {
            guard let s = try? String(contentsOfFile: file, encoding: .utf8) else { throw ValidationError("cannot read prompt file \(file)") }
            text = s
        } else {
            text = prompt!
        }
        let lm = try loadModel(model.model)
        let calibration = try cache.loadCalibration()
        let session: Session
        do {
            session = try lm.makeSession(SessionConfiguration(contextLength: context.contextSize, batchSize: context.batchSize,
                                                              threads: context.threads, cache: cache.configuration,
                                                              calibration: calibration))
        } catch { throw ValidationError(error.description) }
        let maxTokens = count < 0 ? session.contextLength : count
        let params = sampling.parameters
        do {
            let stream = session.generate(prompt: text, maxTokens: maxTokens, sampling: params)
            for try await piece in stream { writeOut(piece) }
        } catch let e as GodwitError {
            writeOut("\n")
            printError("error: \(e.description)")
            reportStats(session)
            throw ExitCode.failure
        }
        writeOut("\n")
        reportStats(session)
    }
}

/// Prints prompt/generation speed and the cache's memory to stderr.
func reportStats(_ session: Session) {
    let t = session.timings
    printError(String(format: "prompt:     %5d tokens in %7.3f s (%8.2f t/s)", t.promptTokens, t.promptSeconds, t.promptTokensPerSecond))
    printError(String(format: "generation: %5d tokens in %7.3f s (%8.2f t/s)", t.generatedTokens, t.generationSeconds, t.generationTokensPerSecond))
    let m = session.cacheMemory
    let schemes = session.cacheSchemes(layer: 0)
    printError(String(format: "KV cache:   %@/%@, %d tokens cached, %.2f MiB held (K %.2f MiB, V %.2f MiB), %.2f MiB allocated, %.2f bits/value",
                      schemes.key, schemes.value, m.tokens, mib(m.logicalBytes), mib(m.keyLogicalBytes), mib(m.valueLogicalBytes),
                      mib(m.allocatedBytes), m.bitsPerValue))
}

func mib(_ bytes: Int) -> Double { Double(bytes) / 1_048_576 }
