import ArgumentParser
import Foundation
import GodwitKVCache

struct SchemesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schemes",
        abstract: "List every registered KV cache scheme: name, parameters, bits per value at a head dim, source.")

    @Option(name: .customLong("head-dim"), help: "Head dim for the bits-per-value column.")
    var headDim: Int = 64
    @Flag(name: .customLong("json"), help: "Print JSON.")
    var json = false

    func validate() throws {
        if headDim <= 0 { throw ValidationError("--head-dim must be positive, got \(headDim)") }
    }

    func run() async throws {
        let options = KVSchemeOptions()
        var rows = [[String: Any]]()
        for s in KVSchemeRegistry.shared.all {
            let k = s.bitsPerValue(headDim: headDim, role: .key, options: options)
            let v = s.bitsPerValue(headDim: headDim, role: .value, options: options)
            rows.append(["name": s.name, "summary": s.summary, "source": s.source, "quantized": s.isQuantized,
                         "head_dim": headDim, "bpv_k": k, "bpv_v": v,
                         "supports_k": s.unsupportedReason(role: .key, headDim: headDim) == nil,
                         "supports_v": s.unsupportedReason(role: .value, headDim: headDim) == nil])
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("| scheme | K bpv | V bpv | what | source |")
            print("|---|---:|---:|---|---|")
            for r in rows {
                let k = (r["supports_k"] as! Bool) ? String(format: "%.3f", r["bpv_k"] as! Double) : "–"
                let v = (r["supports_v"] as! Bool) ? String(format: "%.3f", r["bpv_v"] as! Double) : "–"
                print("| \(r["name"]!) | \(k) | \(v) | \(r["summary"]!) | \(r["source"]!) |")
            }
            print("\nBits per value at head dim \(headDim), with default options (--kv-group-size 32, --kv-residual 32).")
        }
    }
}
