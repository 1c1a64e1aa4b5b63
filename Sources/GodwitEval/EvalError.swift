/// Errors of the measurement tools; messages name the file, option or value at fault.
public enum EvalError: Error, CustomStringConvertible {
    case textTooShort(tokens: Int, needed: Int, context: Int)
    case cannotRead(path: String, reason: String)
    case cannotWrite(path: String, reason: String)
    case badLogitsFile(path: String, reason: String)
    case logitsMismatch(path: String, reason: String)
    case invalidOption(name: String, value: String, reason: String)
    case calibrationTextTooShort(tokens: Int, skip: Int, needed: Int)

    public var description: String {
        switch self {
        case .textTooShort(let tokens, let needed, let ctx):
            "the text tokenizes to \(tokens) tokens; perplexity with a context of \(ctx) needs at least \(needed)"
        case .cannotRead(let path, let reason): "cannot read \(path): \(reason)"
        case .cannotWrite(let path, let reason): "cannot write \(path): \(reason)"
        case .badLogitsFile(let path, let reason): "\(path) is not a llama.cpp logits file: \(reason)"
        case .logitsMismatch(let path, let reason): "logits file \(path) does not match this run: \(reason)"
        case .invalidOption(let name, let value, let reason): "invalid \(name) \(value): \(reason)"
        case .calibrationTextTooShort(let tokens, let skip, let needed):
            "calibration text has \(tokens) tokens; skipping \(skip) leaves less than one chunk (needs at least \(needed))"
        }
    }
}
