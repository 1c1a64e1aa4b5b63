// The schemes registered by default, in the order `godwit schemes` lists them: llama.cpp's types
// first (float, then ggml blocks), then the low-bit schemes beyond llama.cpp.
enum BuiltInSchemes {
    static var all: [any KVScheme] {
        [FloatScheme<F32Element>(), FloatScheme<F16Element>(), FloatScheme<BF16Element>()]
            + GGMLBlockScheme.supported.map { GGMLBlockScheme($0) }
            + VectorScaledSchemes.all
            + GroupedSchemes.all
            + CalibratedSchemes.all
    }
}
