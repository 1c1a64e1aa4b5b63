// Errors of the weight-format kernels (GodwitKernels). Messages name the operation and the value.
// Source: none (Godwit's own); ggml asserts on these conditions instead.
import GodwitGGUF

public enum KernelError: Error, Equatable, CustomStringConvertible {
    /// A weight matrix of a type the matrix products do not implement.
    case unsupportedWeightType(GGMLType)
    /// A (de)quantization of a type this module has no codec for.
    case unsupportedType(GGMLType, operation: String)
    /// A value count that is not a whole number of blocks of `type`.
    case countNotBlockMultiple(type: GGMLType, count: Int)
    /// Matrix dimensions that are negative or overflow a byte count.
    case invalidShape(rows: Int, cols: Int)

    public var description: String {
        switch self {
        case .unsupportedWeightType(let t):
            "matrix product: weight type \(t) is not supported (supported: f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, iq4_nl, q4_K, q5_K, q6_K)"
        case .unsupportedType(let t, let op):
            "\(op): type \(t) is not supported"
        case .countNotBlockMultiple(let t, let n):
            "\(t) stores values in blocks of \(t.blockSize); \(n) values is not a multiple of \(t.blockSize)"
        case .invalidShape(let r, let c):
            "weight matrix: invalid shape \(r) rows × \(c) columns"
        }
    }
}
