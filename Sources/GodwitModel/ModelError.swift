import GodwitGGUF
import GodwitKVCache
import GodwitKernels

/// Errors loading or running a model. Messages name the tensor, key or value at fault.
public enum ModelError: Error, CustomStringConvertible {
    case unsupportedArchitecture(String)
    case invalidHyperparameter(key: String, value: String, reason: String)
    case tensorShape(name: String, expected: [Int], found: [Int])
    case unsupportedTensorType(name: String, type: GGMLType)
    case tokenOutOfRange(token: Int32, vocabularySize: Int)
    case emptyBatch
    case gguf(GGUFError)
    case cache(KVCacheError)
    case kernel(KernelError)

    public var description: String {
        switch self {
        case .unsupportedArchitecture(let a):
            "unsupported model architecture '\(a)' (supported: \(ModelConfig.supportedArchitectures.joined(separator: ", ")))"
        case .invalidHyperparameter(let key, let value, let reason): "invalid model hyper-parameter \(key) = \(value): \(reason)"
        case .tensorShape(let name, let expected, let found): "tensor '\(name)' has shape \(found), expected \(expected)"
        case .unsupportedTensorType(let name, let type): "tensor '\(name)' has type \(type), which this engine cannot multiply"
        case .tokenOutOfRange(let t, let n): "token id \(t) is outside the vocabulary (0..<\(n))"
        case .emptyBatch: "no tokens to evaluate"
        case .gguf(let e): e.description
        case .cache(let e): e.description
        case .kernel(let e): e.description
        }
    }
}
