/// How the next token is chosen. Defaults follow llama.cpp's `common_params_sampling`
/// (temp 0.8, top-k 40, top-p 0.95, min-p 0.05, repeat penalty 1.0 over the last 64 tokens).
public struct SamplingParameters: Sendable, Equatable {
    /// 0 (or below) means greedy: always the most likely token.
    public var temperature: Float = 0.8
    /// Keep the k most likely tokens (0: all).
    public var topK: Int = 40
    /// Keep the smallest set whose probability reaches p (1: all).
    public var topP: Float = 0.95
    /// Drop tokens less likely than minP × the most likely one (0: none).
    public var minP: Float = 0.05
    /// Penalize tokens seen in the last `repeatLastN` tokens (1: off).
    public var repeatPenalty: Float = 1.0
    public var repeatLastN: Int = 64
    /// Random seed; nil picks one from the system generator.
    public var seed: UInt64? = nil

    public init() {}

    /// Greedy decoding (temperature 0).
    public static var greedy: SamplingParameters {
        var p = SamplingParameters()
        p.temperature = 0
        return p
    }

    /// Throws for values outside their meaningful ranges.
    public func validate() throws(GodwitError) {
        if !temperature.isFinite { throw .invalidParameter(name: "temperature", value: "\(temperature)", reason: "must be finite") }
        if topK < 0 { throw .invalidParameter(name: "top-k", value: "\(topK)", reason: "must be ≥ 0") }
        if !(topP > 0 && topP <= 1) { throw .invalidParameter(name: "top-p", value: "\(topP)", reason: "must be in (0, 1]") }
        if !(minP >= 0 && minP <= 1) { throw .invalidParameter(name: "min-p", value: "\(minP)", reason: "must be in [0, 1]") }
        if !(repeatPenalty > 0) || !repeatPenalty.isFinite {
            throw .invalidParameter(name: "repeat-penalty", value: "\(repeatPenalty)", reason: "must be positive")
        }
        if repeatLastN < 0 { throw .invalidParameter(name: "repeat-last-n", value: "\(repeatLastN)", reason: "must be ≥ 0") }
    }
}
