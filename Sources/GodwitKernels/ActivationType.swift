// The encoding activations take to multiply a weight type: ggml's `vec_dot_type`
// (ggml-cpu/ggml-cpu.c `type_traits_cpu`).
// Deviation: f16 and bf16 weights multiply f32 activations here (ggml converts the activations to
// f16 / bf16 first), which is slightly more accurate and not bit-identical to ggml.
import GodwitGGUF

/// The encoding activations take to multiply a weight type (ggml's vec_dot_type).
public enum ActivationType: Sendable, Hashable {
    case f32, q8_0, q8_1, q8_K

    /// Values per block.
    public var blockSize: Int {
        switch self {
        case .f32: 1
        case .q8_0: BlockLayout.Q8_0.values
        case .q8_1: BlockLayout.Q8_1.values
        case .q8_K: BlockLayout.Q8_K.values
        }
    }

    /// Bytes per block.
    public var typeSize: Int {
        switch self {
        case .f32: 4
        case .q8_0: BlockLayout.Q8_0.bytes
        case .q8_1: BlockLayout.Q8_1.bytes
        case .q8_K: BlockLayout.Q8_K.bytes
        }
    }

    /// The ggml tensor type with this layout.
    public var ggmlType: GGMLType {
        switch self {
        case .f32: .f32
        case .q8_0: .q8_0
        case .q8_1: .q8_1
        case .q8_K: .q8_K
        }
    }
}

extension GGMLType {
    /// The activation encoding a weight of this type multiplies (ggml's vec_dot_type):
    /// f32/f16/bf16 -> .f32, q4_0/q5_0/q8_0/iq4_nl -> .q8_0, q4_1/q5_1 -> .q8_1,
    /// q4_K/q5_K/q6_K -> .q8_K. Types without a matrix product here report .f32; `WeightMatrix.init`
    /// rejects them.
    public var activationType: ActivationType {
        switch self {
        case .q4_0, .q5_0, .q8_0, .iq4_nl: .q8_0
        case .q4_1, .q5_1: .q8_1
        case .q4_K, .q5_K, .q6_K: .q8_K
        default: .f32
        }
    }

    /// Whether `WeightMatrix` implements products for this type.
    public var hasMatrixProduct: Bool {
        switch self {
        case .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_nl, .q4_K, .q5_K, .q6_K: true
        default: false
        }
    }
}
