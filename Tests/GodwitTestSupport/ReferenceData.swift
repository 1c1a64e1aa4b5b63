import Foundation

/// Golden outputs of llama.cpp from `../shared/reference/<model>/`.
public enum Reference {
    public struct TokenizerCase: Decodable, Sendable { public let text: String; public let ids: [Int32] }
    public struct TokenizerFile: Decodable, Sendable {
        public let model: String
        public let parse_special: Bool
        public let add_bos: Bool
        public let cases: [TokenizerCase]
    }

    public struct LogitsPosition: Decodable, Sendable {
        public let top_ids: [Int32]
        public let top_logits: [Float]
        public let logsumexp: Float
    }
    public struct LogitsCase: Decodable, Sendable {
        public let prompt: String
        public let ids: [Int32]
        public let positions: [LogitsPosition]
    }
    public struct LogitsFile: Decodable, Sendable { public let cases: [LogitsCase]; public let add_bos: Bool? }

    public struct GreedyCase: Decodable, Sendable {
        public let prompt: String
        public let prompt_ids: [Int32]
        public let greedy_ids: [Int32]
        public let greedy_text: String
    }
    public struct GreedyFile: Decodable, Sendable { public let cases: [GreedyCase]; public let add_bos: Bool? }

    public struct PerplexityEntry: Decodable, Sendable { public let ppl: Double; public let stderr: Double }

    static func load<T: Decodable>(_ type: T.Type, _ relative: String) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: TestPaths.shared(relative)))
    }

    public static func tokenizer(_ model: String) throws -> TokenizerFile { try load(TokenizerFile.self, "reference/\(model)/tokenizer.json") }
    public static func logits(_ model: String) throws -> LogitsFile { try load(LogitsFile.self, "reference/\(model)/logits.json") }
    public static func greedy(_ model: String) throws -> GreedyFile { try load(GreedyFile.self, "reference/\(model)/greedy.json") }

    /// PPL per "K/V" pair. For gemma3, `section` is "c512" or "c2048".
    public static func perplexity(_ model: String, section: String? = nil) throws -> [String: PerplexityEntry] {
        let data = try Data(contentsOf: TestPaths.shared("reference/\(model)/perplexity.json"))
        let obj = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let results = (section.map { (obj[$0] as! [String: Any])["results"] } ?? obj["results"]) as! [String: Any]
        var out = [String: PerplexityEntry]()
        for (k, v) in results {
            let d = v as! [String: Any]
            out[k] = PerplexityEntry(ppl: (d["ppl"] as! NSNumber).doubleValue, stderr: (d["stderr"] as! NSNumber).doubleValue)
        }
        return out
    }
}
