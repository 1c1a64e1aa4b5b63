import ArgumentParser
import Foundation
import Godwit

struct ChatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Interactive chat with the model's chat template. Type a message and press Enter; an empty line or EOF ends.",
        discussion: "The conversation stays in the KV cache between turns: each turn only evaluates the new message.")

    @OptionGroup var model: ModelOptions
    @Option(name: .customLong("chat-template"), help: "Chat format when the model has none or to override it: chatml or gemma.")
    var chatTemplate: String?
    @Option(name: .customLong("system"), help: "System prompt (default: the template's own, if any).")
    var system: String?
    @Option(name: [.customShort("n"), .customLong("n-predict")], help: "Largest reply in tokens.")
    var count: Int = 512
    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var context: ContextOptions
    @OptionGroup var cache: CacheOptions
    @Flag(name: .customLong("verbose"), help: "Print timings after each reply (stderr).")
    var verbose = false

    func validate() throws {
        if let t = chatTemplate, ChatTemplate(rawValue: t.lowercased()) == nil {
            throw ValidationError("unsupported chat template '\(t)' (supported: chatml, gemma)")
        }
        if count <= 0 { throw ValidationError("--n-predict must be positive, got \(count)") }
    }

    func run() async throws {
        let lm = try loadModel(model.model)
        let template: ChatTemplate
        do { template = try lm.chatTemplate(named: chatTemplate) } catch { throw ValidationError(error.description) }
        let calibration = try cache.loadCalibration()
        let session: Session
        do {
            session = try lm.makeSession(SessionConfiguration(contextLength: context.contextSize, batchSize: context.batchSize,
                                                              threads: context.threads, cache: cache.configuration,
                                                              calibration: calibration))
        } catch { throw ValidationError(error.description) }
        let systemPrompt = system ?? lm.chatTemplateSource.flatMap(ChatTemplate.defaultSystemPrompt(jinja:))
        var first = true
        while true {
            // The "> " prompt only for a person at a terminal; piped input gets clean stderr.
            if isatty(STDIN_FILENO) != 0 { FileHandle.standardError.write(Data("> ".utf8)) }
            guard let line = readLine(strippingNewline: true), !line.isEmpty else { break }
            let text: String
            if first {
                var messages = [ChatMessage]()
                if let systemPrompt { messages.append(ChatMessage(.system, systemPrompt)) }
                messages.append(ChatMessage(.user, line))
                text = template.render(messages)
                first = false
            } else {
                text = template.continuation(user: line)
            }
            do {
                for try await piece in session.generate(prompt: text, maxTokens: count, sampling: sampling.parameters) {
                    writeOut(piece)
                }
            } catch let e as GodwitError {
                writeOut("\n")
                printError("error: \(e.description)")
                throw ExitCode.failure
            }
            writeOut("\n")
            if verbose { reportStats(session) }
        }
    }
}
