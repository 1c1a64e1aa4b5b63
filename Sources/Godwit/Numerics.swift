// The numerics mode as the library's users see it: `SessionConfiguration.numerics` and the CLI's
// `--numerics fast|ggml`. The type itself lives in GodwitKernels (GGMLExactNumerics.swift) so that
// the model and the KV cache can read it; it is re-exported here.
// Source: llama.cpp's CPU backend (see GodwitKernels/GGMLExact*.swift for files and deviations).
@_exported import enum GodwitKernels.Numerics

extension Numerics: CustomStringConvertible {
    public var description: String { rawValue }
}
