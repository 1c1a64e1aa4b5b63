// `godwit calibrate`: fits the offline parameters of the KVQuant-style nuq3/nuq4 cache schemes
// (KVQuant, arXiv 2401.18079; github.com/SqueezeAILab/KVQuant) on calibration text.
// The model runs over chunks of `contextLength` tokens (tokenized like llama-perplexity: one
// trailing newline dropped, BOS as the model says, BOS replacing each chunk's first token) taken
// after skipping `skip` tokens of the text — so calibration never sees the evaluation tokens
// (perplexity uses the first chunks). A recording cache scheme (KVRecordingScheme, registered in a
// private registry) captures each layer's pre-RoPE keys and values (position 0 excluded); then
// NUQCalibrator fits per layer: key per-channel thresholds (0.5/99.5 percentiles) and key/value
// codebooks for 3 and 4 bits. The result is a KVCalibration written as a GGUF of f32 tensors.
import Foundation
import Godwit
import GodwitKernels

public struct CalibrationOptions: Sendable {
    /// Calibration tokens to run (rounded down to whole chunks).
    public var tokens = 16384
    /// Tokens of the tokenized text skipped first (use ≥ the evaluation span, e.g. 100000).
    public var skip = 0
    public var contextLength = 512
    public var batchSize = 512
    public var threads: Int? = nil
    public var bits = [3, 4]

    public init() {}
}

public struct CalibrationResult: Sendable {
    public let calibration: KVCalibration
    public let chunks: Int
    public let tokensUsed: Int
    /// Token index (in the tokenized text) of the first calibration token.
    public let firstToken: Int
    public let textTokens: Int
    public let seconds: Double
}

public enum Calibration {
    /// Runs the model over the calibration tokens of `text` and fits the nuq parameters.
    public static func run(model: LanguageModel, text: String, options o: CalibrationOptions,
                           progress: (String) -> Void = { _ in }) throws -> CalibrationResult {
        let c = o.contextLength
        guard c >= 2 else { throw EvalError.invalidOption(name: "context", value: "\(c)", reason: "must be at least 2") }
        guard o.tokens > 0 else { throw EvalError.invalidOption(name: "tokens", value: "\(o.tokens)", reason: "must be positive") }
        guard o.skip >= 0 else { throw EvalError.invalidOption(name: "skip", value: "\(o.skip)", reason: "must be ≥ 0") }
        guard o.batchSize > 0 else { throw EvalError.invalidOption(name: "batch size", value: "\(o.batchSize)", reason: "must be positive") }
        let start = DispatchTime.now().uptimeNanoseconds
        let body = text.hasSuffix("\n") ? String(text.dropLast()) : text
        let all = model.tokenize(body, addSpecial: true, parseSpecial: false)
        let available = max(0, all.count - o.skip)
        let chunks = min(o.tokens, available) / c
        guard chunks > 0 else {
            throw EvalError.calibrationTextTooShort(tokens: all.count, skip: o.skip, needed: o.skip + c)
        }
        let recording = KVRecording()
        let registry = KVSchemeRegistry(registerBuiltIns: true)
        registry.register(KVRecordingScheme(name: "calibration-recorder", recording: recording))
        let pool = ThreadPool(threads: o.threads ?? SessionConfiguration.defaultThreadCount)
        let state = try model.transformer.makeState(contextLength: c, maxBatch: min(o.batchSize, c),
                                                    cache: KVCacheConfiguration(keyScheme: "calibration-recorder", valueScheme: "calibration-recorder"),
                                                    pool: pool, registry: registry)
        let addBOS = model.tokenizer.addBOS, bos = model.tokenizer.bosID
        var dummy = [Float](repeating: 0, count: 1)
        for chunk in 0..<chunks {
            state.cache.reset()
            var ids = Array(all[o.skip + chunk * c..<o.skip + (chunk + 1) * c])
            if addBOS, let bos { ids[0] = bos }
            var done = 0
            while done < ids.count {
                let n = min(state.maxBatch, ids.count - done)
                try dummy.withUnsafeMutableBufferPointer { buf in
                    try model.transformer.forward(tokens: Array(ids[done..<done + n]), state: state, logitRows: 0..<0, logits: buf.baseAddress!)
                }
                done += n
            }
            progress("chunk \(chunk + 1)/\(chunks)")
        }
        let specs = model.transformer.cacheSpecs
        var tensors = [String: [Float]]()
        for (l, spec) in specs.enumerated() {
            let t = NUQCalibrator.layerTensors(layer: l, keys: recording.keys(layer: l), keyChannels: spec.kvHeads * spec.keyDim,
                                               values: recording.values(layer: l), valueHeadDim: spec.valueDim, bits: o.bits)
            tensors.merge(t) { a, _ in a }
            let q = recording.queryEnergy(layer: l)
            if !q.isEmpty { tensors[KIVIMixScheme.queryEnergyTensor(layer: l)] = q }
            recording.drop(layer: l)
            progress("fitted layer \(l + 1)/\(specs.count)")
        }
        let metadata: [String: String] = [
            "general.type": "godwit.kv-calibration",
            "godwit.calibration.schemes": (o.bits.map { "nuq\($0)" } + ["kivi{b}mix"]).joined(separator: ","),
            "godwit.calibration.source": "KVQuant-style (arXiv 2401.18079): per-channel key thresholds, k-means codebooks",
            "godwit.calibration.model": model.config.name,
            "godwit.calibration.tokens": "\(chunks * c)",
            "godwit.calibration.skip": "\(o.skip)",
            "godwit.calibration.context": "\(c)",
        ]
        return CalibrationResult(calibration: KVCalibration(tensors: tensors, metadata: metadata), chunks: chunks,
                                 tokensUsed: chunks * c, firstToken: o.skip, textTokens: all.count,
                                 seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
}
