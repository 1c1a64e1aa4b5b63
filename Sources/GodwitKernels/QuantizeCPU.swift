// The quantizer llama.cpp's CPU backend actually runs for a type (`type_traits_cpu[type].from_float`):
// what `ggml_set_rows` writes into a quantized KV cache and what flash attention quantizes the
// query with.
// Source: ggml/src/ggml-cpu/ggml-cpu.c (type_traits_cpu), ggml-cpu/quants.c (quantize_row_q4_0 …
// q5_1 call the `_ref` quantizers), ggml-cpu/arch/x86/quants.c (`quantize_row_q8_0`,
// `quantize_row_q8_1`: the AVX path, id = 127/amax and round-to-nearest-even, not the reference's
// roundf of x·(1/d)) — llama-cpp-python 0.3.36 vendor tree, x86-64 build.
// Deviation: iq4_nl keeps `quantizeRowReference`'s search (callers that need ggml-cpu's ntry = −1
// call `quantizeRowIQ4NL` themselves).
import GodwitGGUF

/// Quantizes `count` floats at `src` into ggml blocks of `type` at `dst` as ggml-cpu's `from_float`
/// does on x86-64: q8_0 and q8_1 with the AVX quantizer (ActivationQuantizer), every other type
/// with its reference quantizer. `dst` must hold `type.rowBytes(count)` bytes.
public func quantizeRowCPU(type: GGMLType, src: UnsafePointer<Float>, dst: UnsafeMutableRawPointer,
                           count: Int) throws(KernelError) {
    switch type {
    case .q8_0, .q8_1:
        guard count >= 0, count % 32 == 0 else { throw .countNotBlockMultiple(type: type, count: count) }
        for b in 0..<count / 32 {
            _ = ActivationQuantizer.storeQ8Block(src + 32 * b, dst + b * type.typeSize, q81: type == .q8_1)
        }
    default:
        try quantizeRowReference(type: type, src: src, dst: dst, count: count)
    }
}
