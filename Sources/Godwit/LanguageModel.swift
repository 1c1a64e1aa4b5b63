// The entry point of the library: a GGUF model with its tokenizer, ready to open sessions.
//
//     let model = try LanguageModel.load()                       // the default model (smollm2)
//     let session = try model.makeSession(.init(cache: .init(keyScheme: "q8_0", valueScheme: "q8_0")))
//     for try await text in session.generate(prompt: "The capital of France is", maxTokens: 32) {
//         print(text, terminator: "")
//     }
import Foundation
import GodwitGGUF
import GodwitKVCache
import GodwitModel
import GodwitTokenizer

public final class LanguageModel: @unchecked Sendable {
    public let path: String
    public let transformer: Transformer
    public let tokenizer: Tokenizer
    /// The GGUF's Jinja chat template, if any.
    public let chatTemplateSource: String?

    public var config: ModelConfig { transformer.config }
    public var gguf: GGUFFile { transformer.file }

    /// Loads a model by path, or by known short name ("smollm2", "gemma3"), or the default when nil.
    public static func load(_ spec: String? = nil) throws(GodwitError) -> LanguageModel {
        try LanguageModel(path: try ModelLocator.resolve(spec))
    }

    public init(path: String) throws(GodwitError) {
        try CPUCheck.verify()
        self.path = path
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch { throw .gguf(error) }
        do { transformer = try Transformer(gguf: file) } catch { throw .model(error) }
        do { tokenizer = try Tokenizer(gguf: file) } catch { throw .tokenizer(error) }
        chatTemplateSource = file["tokenizer.chat_template"]?.stringValue
    }

    /// The chat format: `name` if given, else the one the GGUF's template uses.
    public func chatTemplate(named name: String? = nil) throws(GodwitError) -> ChatTemplate {
        if let name {
            guard let t = ChatTemplate(rawValue: name.lowercased()) else { throw .unsupportedChatTemplate(name) }
            return t
        }
        guard let source = chatTemplateSource else { throw .noChatTemplate(model: config.name) }
        guard let t = ChatTemplate.detect(jinja: source) else {
            throw .unsupportedChatTemplate(String(source.prefix(60)) + "…")
        }
        return t
    }

    /// Tokenizes text; by default adds BOS/EOS as the model says and parses special-token text.
    public func tokenize(_ text: String, addSpecial: Bool = true, parseSpecial: Bool = true) -> [Int32] {
        tokenizer.encode(text, addSpecial: addSpecial, parseSpecial: parseSpecial)
    }

    public func detokenize(_ tokens: [Int32]) -> String { tokenizer.decode(tokens) }

    /// Opens a session with its own KV cache.
    public func makeSession(_ configuration: SessionConfiguration = .init()) throws(GodwitError) -> Session {
        try Session(model: self, configuration: configuration)
    }

    /// KV bytes one token needs in every layer at f16 (for `inspect`).
    public var f16CacheBytesPerToken: Int {
        config.layerCount * config.kvHeadCount * (config.keyLength + config.valueLength) * 2
    }
}
