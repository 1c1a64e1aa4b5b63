import Foundation

/// Locations of the test inputs: the package root, the shared reference folder, the real models.
public enum TestPaths {
    /// The package root (two levels above this file's folder).
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `../shared` next to the checkout, `$GODWIT_SHARED_DIR`, or `/work/shared`, whichever exists first.
    public static let sharedDir: URL? = {
        let fm = FileManager.default
        var candidates = [URL]()
        if let env = ProcessInfo.processInfo.environment["GODWIT_SHARED_DIR"] { candidates.append(URL(fileURLWithPath: env)) }
        candidates.append(packageRoot.deletingLastPathComponent().appendingPathComponent("shared"))
        candidates.append(URL(fileURLWithPath: "/work/shared"))
        return candidates.first { fm.fileExists(atPath: $0.appendingPathComponent("reference").path) }
    }()

    /// A file under the shared folder, e.g. `reference/smollm2/tokenizer.json`. Fails loudly when absent.
    public static func shared(_ relative: String) throws -> URL {
        guard let dir = sharedDir else { throw TestDataError.missing("the shared reference folder (set GODWIT_SHARED_DIR)") }
        let url = dir.appendingPathComponent(relative)
        guard FileManager.default.fileExists(atPath: url.path) else { throw TestDataError.missing(url.path) }
        return url
    }

    /// The model cache used by scripts/fetch-model.sh.
    public static var modelsDir: URL {
        let env = ProcessInfo.processInfo.environment
        if let d = env["GODWIT_MODELS_DIR"] { return URL(fileURLWithPath: d) }
        let cache = env["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return cache.appendingPathComponent("godwit/models")
    }

    public static func model(_ fileName: String) throws -> String {
        let url = modelsDir.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw TestDataError.missing("\(url.path) — run scripts/fetch-model.sh all")
        }
        return url.path
    }

    public static func smolLM2() throws -> String { try model("SmolLM2-135M-Instruct.Q4_1.gguf") }
    public static func gemma3() throws -> String { try model("gemma-3-270m-q4_k_m.gguf") }
}

public enum TestDataError: Error, CustomStringConvertible {
    case missing(String)
    public var description: String {
        switch self { case .missing(let what): "missing test input: \(what)" }
    }
}
