import GodwitGGUF
import GodwitKVCache
import GodwitModel
import GodwitTokenizer

/// Errors of the public API. Each names the operation and the value at fault.
public enum GodwitError: Error, CustomStringConvertible {
    case modelNotFound(path: String, hint: String)
    case unknownModelName(String, known: [String])
    case gguf(GGUFError)
    case model(ModelError)
    case tokenizer(TokenizerError)
    case cache(KVCacheError)
    case invalidParameter(name: String, value: String, reason: String)
    case contextFull(tokens: Int, contextLength: Int)
    case noChatTemplate(model: String)
    case unsupportedChatTemplate(String)
    case unsupportedCPU(missing: String)
    case emptyPrompt

    public var description: String {
        switch self {
        case .modelNotFound(let path, let hint): "model file not found: \(path)\n\(hint)"
        case .unknownModelName(let name, let known): "unknown model name '\(name)' (known: \(known.joined(separator: ", ")); or give a path to a .gguf file)"
        case .gguf(let e): e.description
        case .model(let e): e.description
        case .tokenizer(let e): e.description
        case .cache(let e): e.description
        case .invalidParameter(let name, let value, let reason): "invalid \(name) \(value): \(reason)"
        case .contextFull(let tokens, let ctx):
            "context is full: \(tokens) tokens do not fit in a context of \(ctx) (raise -c/--ctx-size)"
        case .noChatTemplate(let model):
            "model '\(model)' has no chat template (tokenizer.chat_template); name one with --chat-template chatml|gemma"
        case .unsupportedChatTemplate(let t): "unsupported chat template '\(t)' (supported: chatml, gemma)"
        case .unsupportedCPU(let missing):
            "this build of Godwit uses CPU instructions this machine lacks (\(missing)); rebuild with GODWIT_TARGET_CPU=x86-64 (portable) or GODWIT_TARGET_CPU=haswell (AVX2)"
        case .emptyPrompt: "the prompt is empty and the model adds no BOS token: nothing to condition on"
        }
    }
}
