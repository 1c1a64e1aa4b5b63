// Rotary position embedding as ggml computes it (ggml-cpu/ops.cpp: rope_yarn, ggml_rope_cache_init,
// rotate_pairs). θ_i = pos · base^(−2i/n) · freqScale / freqFactor_i, built by repeated float
// multiplication like ggml so long positions round the same way. YaRN extrapolation (ext_factor ≠ 0)
// is not implemented: no supported model uses it.
import RealModule

/// RoPE parameters of one layer.
public struct RotaryEmbedding: Sendable, Equatable {
    /// Which coordinates form a rotating pair. In llama.cpp the style is fixed per architecture.
    public enum Style: String, Sendable { case normal, neox }

    /// Rotated dimensions per head (`rope.dimension_count`); the rest pass through.
    public let dimensions: Int
    public let base: Float
    /// Linear frequency scale (1 / `rope.scaling.factor`).
    public let frequencyScale: Float
    public let style: Style
    /// Per-pair divisors (Llama 3.x `rope_freqs` tensor), [dimensions/2], or empty.
    public let frequencyFactors: [Float]

    public init(dimensions: Int, base: Float, frequencyScale: Float = 1, style: Style, frequencyFactors: [Float] = []) {
        self.dimensions = dimensions
        self.base = base
        self.frequencyScale = frequencyScale
        self.style = style
        self.frequencyFactors = frequencyFactors
    }

    /// cos/sin of every pair's angle at `position`: cos, sin [dimensions/2].
    public func table(position: Int, cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
        let thetaScale = Float.pow(base, -2 / Float(dimensions))
        var theta = Float(position)
        for i in 0..<dimensions / 2 {
            let ff: Float = frequencyFactors.isEmpty ? 1 : frequencyFactors[i]
            let t = frequencyScale * (theta / ff)
            cos[i] = Float.cos(t)
            sin[i] = Float.sin(t)
            theta *= thetaScale
        }
    }

    /// Rotates `heads` vectors in place. x: [heads, headDim] (row stride headDim); cos/sin: [dimensions/2].
    @inline(__always)
    public func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim: Int,
                      cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        let half = dimensions / 2
        for h in 0..<heads {
            let v = x + h * headDim
            switch style {
            case .normal:
                for i in 0..<half {
                    let a = v[2 * i], b = v[2 * i + 1]
                    v[2 * i] = a * cos[i] - b * sin[i]
                    v[2 * i + 1] = a * sin[i] + b * cos[i]
                }
            case .neox:
                for i in 0..<half {
                    let a = v[i], b = v[i + half]
                    v[i] = a * cos[i] - b * sin[i]
                    v[i + half] = a * sin[i] + b * cos[i]
                }
            }
        }
    }
}
