// The `godwit` command: a thin layer over the Godwit library. Flag names follow llama.cpp where
// the concept is the same (-m, -p, -n, -c, -b, -t, -ctk, -ctv, --temp, --top-k, …).
import ArgumentParser
import Foundation
import Godwit

@main
struct GodwitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "godwit",
        abstract: "Long-context LLM inference in Swift with a quantized KV cache.",
        discussion: """
        Data flow: GGUF → tokenizer → model → KV cache → sampler → output.
        Without -m the default model is used (smollm2; fetch it with scripts/fetch-model.sh).
        """,
        subcommands: [GenerateCommand.self, ChatCommand.self, TokenizeCommand.self, InspectCommand.self, PerplexityCommand.self, BenchCommand.self, SchemesCommand.self, CalibrateCommand.self])
}

/// Writes to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Writes to standard output immediately (streamed text).
func writeOut(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}

/// Turns library errors into a clean one-line failure (no stack trace).
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ error: Error) { description = "\(error)" }
}

func loadModel(_ spec: String?) throws -> LanguageModel {
    do { return try LanguageModel.load(spec) } catch { throw ValidationError(error.description) }
}
