import ArgumentParser
import Foundation
import Godwit

struct TokenizeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Tokenize text like llama-tokenize: with --ids, print the ids as a JSON array.")

    @OptionGroup var model: ModelOptions
    @Option(name: [.customShort("p"), .customLong("prompt")], help: "Text to tokenize.")
    var prompt: String?
    @Option(name: [.customShort("f"), .customLong("file")], help: "Read the text from a file.")
    var file: String?
    @Flag(name: .customLong("ids"), help: "Print only the token ids, as a JSON array.")
    var ids = false
    @Flag(name: .customLong("no-bos"), help: "Do not add BOS/EOS even if the model asks for them.")
    var noBOS = false
    @Flag(name: .customLong("no-parse-special"), help: "Treat special-token text as plain text.")
    var noParseSpecial = false
    @Flag(name: .customLong("show-count"), help: "Print the number of tokens (stderr).")
    var showCount = false

    func validate() throws {
        if (prompt == nil) == (file == nil) { throw ValidationError("give exactly one of -p TEXT or -f FILE") }
    }

    func run() async throws {
        let text: String
        if let file {
            guard let s = try? String(contentsOfFile: file, encoding: .utf8) else { throw ValidationError("cannot read \(file)") }
            text = s
        } else {
            text = prompt!
        }
        let lm = try loadModel(model.model)
        let tokens = lm.tokenize(text, addSpecial: !noBOS, parseSpecial: !noParseSpecial)
        if ids {
            print("[" + tokens.map(String.init).joined(separator: ", ") + "]")
        } else {
            for t in tokens {
                let piece = String(decoding: lm.tokenizer.piece(for: t, renderSpecial: true), as: UTF8.self)
                print(String(format: "%6d -> '%@'", t, piece))
            }
        }
        if showCount { printError("Total number of tokens: \(tokens.count)") }
    }
}
