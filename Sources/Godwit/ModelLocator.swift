// Where models live. `scripts/fetch-model.sh NAME` downloads a known model once into the model
// cache; commands without -m use the default model; `-m NAME` picks a known model by short name;
// anything else is a path. GODWIT_MODEL overrides the default, GODWIT_MODELS_DIR the cache folder.
import Foundation

public struct KnownModel: Sendable {
    public let name: String
    public let fileName: String
    public let description: String
    public let sha256: String
}

public enum ModelLocator {
    public static let known: [KnownModel] = [
        KnownModel(name: "smollm2", fileName: "SmolLM2-135M-Instruct.Q4_1.gguf",
                   description: "SmolLM2-135M-Instruct Q4_1 (Llama architecture, GPT-2 BPE, ChatML) — the default",
                   sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
        KnownModel(name: "gemma3", fileName: "gemma-3-270m-q4_k_m.gguf",
                   description: "Gemma 3 270M Q4_K_M (pretrained, SentencePiece, sliding-window layers, 32k context)",
                   sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
    ]
    public static let defaultModelName = "smollm2"

    /// The model cache folder (same rule as scripts/fetch-model.sh).
    public static var modelsDirectory: String {
        let env = ProcessInfo.processInfo.environment
        if let d = env["GODWIT_MODELS_DIR"], !d.isEmpty { return d }
        let cache = env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache")
        return (cache as NSString).appendingPathComponent("godwit/models")
    }

    /// Resolves `-m`: nil → GODWIT_MODEL or the default model; a known short name → its cached file;
    /// otherwise a path. Throws with the exact command to run when the file is missing.
    public static func resolve(_ spec: String?) throws(GodwitError) -> String {
        let env = ProcessInfo.processInfo.environment
        let chosen = spec ?? env["GODWIT_MODEL"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultModelName
        if let model = known.first(where: { $0.name == chosen.lowercased() }) {
            let path = (modelsDirectory as NSString).appendingPathComponent(model.fileName)
            guard FileManager.default.fileExists(atPath: path) else {
                throw .modelNotFound(path: path, hint: "fetch it once with: scripts/fetch-model.sh \(model.name)")
            }
            return path
        }
        guard FileManager.default.fileExists(atPath: chosen) else {
            if !chosen.contains("/") && !chosen.hasSuffix(".gguf") {
                throw .unknownModelName(chosen, known: known.map(\.name))
            }
            throw .modelNotFound(path: chosen, hint: "check the path, or use a known model: \(known.map(\.name).joined(separator: ", "))")
        }
        return chosen
    }
}
