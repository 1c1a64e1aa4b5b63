// Option groups shared by the commands.
import ArgumentParser
import Foundation
import Godwit
import GodwitKVCache

struct ModelOptions: ParsableArguments {
    @Option(name: [.customShort("m"), .customLong("model")],
            help: "Model: a .gguf path or a known name (smollm2, gemma3). Default: $GODWIT_MODEL or smollm2.")
    var model: String?
}

struct ContextOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .customLong("ctx-size")], help: "Context size in tokens (default: min(trained, 4096)).")
    var contextSize: Int?

    @Option(name: [.customShort("b"), .customLong("batch-size")], help: "Largest batch evaluated at once while reading a prompt.")
    var batchSize: Int = 512

    @Option(name: [.customShort("t"), .customLong("threads")], help: "Threads (default: one per core).")
    var threads: Int?

    func validate() throws {
        if let c = contextSize, c <= 0 { throw ValidationError("--ctx-size must be positive, got \(c)") }
        if batchSize <= 0 { throw ValidationError("--batch-size must be positive, got \(batchSize)") }
        if let t = threads, t <= 0 || t > 1024 { throw ValidationError("--threads must be 1…1024, got \(t)") }
    }
}

struct CacheOptions: ParsableArguments {
    @Option(name: [.customLong("ctk", withSingleDash: true), .customLong("cache-type-k")],
            help: "KV cache type for K (see `godwit schemes`).")
    var cacheTypeK: String = "f16"

    @Option(name: [.customLong("ctv", withSingleDash: true), .customLong("cache-type-v")],
            help: "KV cache type for V.")
    var cacheTypeV: String = "f16"

    @Flag(name: .customLong("no-kv-rotation"), help: "Do not rotate quantized K/V (llama.cpp rotates them with a Hadamard matrix).")
    var noRotation = false

    @Option(name: .customLong("kv-group-size"), help: "Tokens per group for per-channel key quantization (KIVI keys: a multiple of 16).")
    var groupSize: Int = 32

    @Option(name: .customLong("kv-residual"), help: "Recent tokens kept in full precision until their group fills (KIVI).")
    var residual: Int = 32

    @Option(name: .customLong("kv-calibration"),
            help: "Calibration file from `godwit calibrate` (nuq, kivi{b}mix, kivi{b}tcq), or a model name (smollm2, gemma3) for the file scripts/calibrate.sh writes.")
    var calibration: String?

    @Option(name: .customLong("kv-sink"), help: "Keep the first S tokens in f16 (global layers only).")
    var sink: Int = 0

    @Option(name: .customLong("kv-window"), help: "Keep the most recent W tokens in f16.")
    var window: Int = 0

    @Option(name: .customLong("kv-layers"), parsing: .singleValue,
            help: "Per-layer override LAYERS=K[/V], repeatable; negative indices count from the end (e.g. 0,1,-2,-1=q8_0).")
    var layerOverrides: [String] = []

    @Option(name: [.customLong("fa", withSingleDash: true), .customLong("flash-attn")],
            help: "Flash attention (online softmax): on (default, as llama.cpp's -fa auto on CPU) or off (full softmax rows, llama.cpp's -fa off numerics; f32/f16/bf16 caches). With --numerics ggml it picks which of llama.cpp's attention kernels is reproduced.")
    var flashAttention: String = "on"

    @Option(name: .customLong("numerics"),
            help: "Numerics: fast (default) or ggml (llama.cpp's CPU operation order, for token-exact comparisons: -fa on reproduces its flash-attention kernels on f16/f32/q8_0/q4_0/q5_0 caches, -fa off its full-softmax attention on f16/f32).")
    var numerics: String = "fast"

    var configuration: KVCacheConfiguration {
        var options = KVSchemeOptions()
        options.rotation = !noRotation
        options.groupSize = groupSize
        options.residual = residual
        options.calibrationPath = calibration.map(CalibrationLocator.path)
        return KVCacheConfiguration(keyScheme: cacheTypeK, valueScheme: cacheTypeV, options: options,
                                    overrides: layerOverrides.compactMap { try? KVLayerOverride.parse($0) },
                                    sinkTokens: sink, windowTokens: window,
                                    flashAttention: flashAttention != "off", numerics: Numerics(rawValue: numerics) ?? .fast)
    }

    /// The calibration named by --kv-calibration, loaded.
    func loadCalibration() throws -> KVCalibration? {
        guard let calibration else { return nil }
        return try CalibrationLocator.load(calibration)
    }

    func validate() throws {
        guard ["on", "off"].contains(flashAttention) else {
            throw ValidationError("-fa must be on or off, got '\(flashAttention)'")
        }
        guard Numerics(rawValue: numerics) != nil else {
            throw ValidationError("--numerics must be fast or ggml, got '\(numerics)'")
        }
        if groupSize <= 0 { throw ValidationError("--kv-group-size must be positive, got \(groupSize)") }
        if residual < 0 { throw ValidationError("--kv-residual must be ≥ 0, got \(residual)") }
        if sink < 0 { throw ValidationError("--kv-sink must be ≥ 0, got \(sink)") }
        if window < 0 { throw ValidationError("--kv-window must be ≥ 0, got \(window)") }
        var names = [("-ctk", cacheTypeK), ("-ctv", cacheTypeV)]
        for spec in layerOverrides {
            do {
                let o = try KVLayerOverride.parse(spec)
                if let k = o.keyScheme { names.append(("--kv-layers", k)) }
                if let v = o.valueScheme { names.append(("--kv-layers", v)) }
            } catch { throw ValidationError("--kv-layers: \(error.description)") }
        }
        for (flag, name) in names {
            do { _ = try KVSchemeRegistry.shared.scheme(named: name) } catch {
                throw ValidationError("\(flag): \(error.description)")
            }
        }
    }
}

struct SamplingOptions: ParsableArguments {
    @Option(name: .customLong("temp"), help: "Temperature (0 = greedy).")
    var temperature: Float = 0.8
    @Option(name: .customLong("top-k"), help: "Top-k sampling (0 = off).")
    var topK: Int = 40
    @Option(name: .customLong("top-p"), help: "Top-p (nucleus) sampling (1 = off).")
    var topP: Float = 0.95
    @Option(name: .customLong("min-p"), help: "Min-p sampling (0 = off).")
    var minP: Float = 0.05
    @Option(name: .customLong("repeat-penalty"), help: "Penalty for repeated tokens (1 = off).")
    var repeatPenalty: Float = 1.0
    @Option(name: .customLong("repeat-last-n"), help: "How many recent tokens the repeat penalty looks at.")
    var repeatLastN: Int = 64
    @Option(name: [.customShort("s"), .customLong("seed")], help: "Random seed (default: random).")
    var seed: UInt64?

    var parameters: SamplingParameters {
        var p = SamplingParameters()
        p.temperature = temperature
        p.topK = topK
        p.topP = topP
        p.minP = minP
        p.repeatPenalty = repeatPenalty
        p.repeatLastN = repeatLastN
        p.seed = seed
        return p
    }

    func validate() throws {
        do { try parameters.validate() } catch { throw ValidationError(error.description) }
    }
}

/// `--kv-calibration NAME|PATH`: a name without a slash or `.gguf` suffix means the file
/// `scripts/calibrate.sh NAME` writes, `$XDG_CACHE_HOME/godwit/calibration/NAME-nuq.gguf`.
enum CalibrationLocator {
    static func path(_ value: String) -> String {
        guard !value.contains("/"), !value.hasSuffix(".gguf") else { return value }
        let env = ProcessInfo.processInfo.environment
        let cache = env["XDG_CACHE_HOME"] ?? ((env["HOME"] ?? NSHomeDirectory()) + "/.cache")
        return "\(cache)/godwit/calibration/\(value)-nuq.gguf"
    }

    static func load(_ value: String) throws -> KVCalibration {
        let p = path(value)
        if p != value, !FileManager.default.fileExists(atPath: p) {
            throw ValidationError("--kv-calibration \(value): no calibration at \(p); create it with `bash scripts/calibrate.sh \(value)` "
                                  + "(or `godwit calibrate -m \(value) -f TEXT --skip 100000 -o \(p)`)")
        }
        do { return try KVCalibration.load(path: p) } catch { throw ValidationError(error.description) }
    }
}
