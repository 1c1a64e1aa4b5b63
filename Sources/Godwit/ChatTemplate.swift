// Chat formats. Godwit does not run Jinja: it recognises the template a GGUF carries
// (`tokenizer.chat_template`) by its markers and renders the known formats natively.
//   chatml: <|im_start|>role\ncontent<|im_end|>\n … <|im_start|>assistant\n   (SmolLM2, Qwen)
//   gemma:  <start_of_turn>user\ncontent<end_of_turn>\n<start_of_turn>model\n  (Gemma; no system role:
//           a system message is prepended to the first user turn, as Gemma's template does)

public struct ChatMessage: Sendable, Equatable {
    public enum Role: String, Sendable { case system, user, assistant }
    public var role: Role
    public var content: String
    public init(_ role: Role, _ content: String) {
        self.role = role
        self.content = content
    }
}

public enum ChatTemplate: String, Sendable, CaseIterable {
    case chatml, gemma

    /// Recognises a Jinja chat template by its markers; nil when it is not a known format.
    public static func detect(jinja: String) -> ChatTemplate? {
        if jinja.contains("<|im_start|>") { return .chatml }
        if jinja.contains("<start_of_turn>") { return .gemma }
        return nil
    }

    /// The system prompt a ChatML template inserts when the conversation has none (SmolLM2 does).
    public static func defaultSystemPrompt(jinja: String) -> String? {
        guard let start = jinja.range(of: "'<|im_start|>system\n") else { return nil }
        let rest = jinja[start.upperBound...]
        guard let end = rest.range(of: "<|im_end|>") else { return nil }
        return String(rest[..<end.lowerBound])
    }

    /// The token text that ends a turn (an end-of-generation token for the model).
    public var endOfTurn: String {
        switch self {
        case .chatml: "<|im_end|>"
        case .gemma: "<end_of_turn>"
        }
    }

    /// Renders a whole conversation, optionally opening the assistant's turn.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) -> String {
        var out = ""
        var pendingSystem: String? = nil
        for m in messages {
            switch self {
            case .chatml:
                out += "<|im_start|>\(m.role.rawValue)\n\(m.content)<|im_end|>\n"
            case .gemma:
                switch m.role {
                case .system: pendingSystem = m.content
                case .user:
                    let content = pendingSystem.map { "\($0)\n\n\(m.content)" } ?? m.content
                    pendingSystem = nil
                    out += "<start_of_turn>user\n\(content)<end_of_turn>\n"
                case .assistant: out += "<start_of_turn>model\n\(m.content)<end_of_turn>\n"
                }
            }
        }
        if addGenerationPrompt { out += generationPrompt }
        return out
    }

    /// Opens the assistant's (model's) turn.
    public var generationPrompt: String {
        switch self {
        case .chatml: "<|im_start|>assistant\n"
        case .gemma: "<start_of_turn>model\n"
        }
    }

    /// Text to append after a generated reply whose end-of-turn token was sampled but not yet
    /// evaluated: closes the reply and renders the next user message, ready for the answer.
    public func continuation(user: String) -> String {
        endOfTurn + "\n" + render([ChatMessage(.user, user)])
    }
}
