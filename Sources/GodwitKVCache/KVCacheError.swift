/// Errors of the KV cache: configuration problems (named scheme, value at fault) and misuse at run time.
public enum KVCacheError: Error, Equatable, CustomStringConvertible {
    case unknownScheme(String, known: [String])
    case unsupportedHeadDim(scheme: String, role: KVRole, headDim: Int, reason: String)
    case invalidOption(name: String, value: String, reason: String)
    case contextFull(layer: Int, position: Int, capacity: Int)
    case batchTooLarge(tokens: Int, maxBatch: Int)
    case missingCalibration(scheme: String, hint: String)
    case invalidCalibration(String)
    case invalidLayerOverride(String)

    public var description: String {
        switch self {
        case .unknownScheme(let name, let known):
            "unknown KV cache type '\(name)' (known: \(known.joined(separator: ", ")))"
        case .unsupportedHeadDim(let scheme, let role, let dim, let reason):
            "KV cache type '\(scheme)' cannot store \(role == .key ? "keys" : "values") of head dim \(dim): \(reason)"
        case .invalidOption(let name, let value, let reason): "invalid KV cache option \(name)=\(value): \(reason)"
        case .contextFull(let layer, let position, let capacity):
            "context is full: position \(position) does not fit in the \(capacity)-token cache of layer \(layer) (raise -c/--ctx-size)"
        case .batchTooLarge(let tokens, let maxBatch):
            "batch of \(tokens) tokens exceeds the session's maximum batch of \(maxBatch)"
        case .missingCalibration(let scheme, let hint): "KV cache type '\(scheme)' needs a calibration file: \(hint)"
        case .invalidCalibration(let reason): "invalid KV calibration: \(reason)"
        case .invalidLayerOverride(let reason): "invalid per-layer KV override: \(reason)"
        }
    }
}

/// Whether a store holds keys or values.
public enum KVRole: String, Sendable, CaseIterable {
    case key, value
}
