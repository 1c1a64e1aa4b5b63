// llama.cpp's KL-divergence base file (llama-perplexity --kl-divergence-base), so Godwit and
// llama.cpp can be compared in either direction:
//   "_logits_" | n_ctx: u32 | n_vocab: i32 | n_chunk: i32 | tokens: i32 [n_chunk · n_ctx]
//   then per chunk, per scored position (n_ctx − 1 − n_ctx/2 of them), nv = 2·⌈n_vocab/2⌉ + 4 u16:
//   [scale: f32][min_log_prob: f32][q: u16 × n_vocab (+ pad)], log p_i ≈ scale·q_i + min_log_prob,
//   with the range clipped to 16 nats below the top logit.
import Foundation

struct LogitsFileHeader: Equatable {
    let context: Int
    let vocabularySize: Int
    let chunks: Int
    let tokens: [Int32]

    var valuesPerRow: Int { 2 * ((vocabularySize + 1) / 2) + 4 }
    var rowsPerChunk: Int { context - 1 - context / 2 }
}

/// Writes a base logits file chunk by chunk.
final class LogitsFileWriter {
    let handle: FileHandle
    let header: LogitsFileHeader
    let path: String
    private var row: [UInt16]

    init(path: String, header: LogitsFileHeader) throws(EvalError) {
        self.path = path
        self.header = header
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw .cannotWrite(path: path, reason: "cannot create the file")
        }
        handle = h
        row = [UInt16](repeating: 0, count: header.valuesPerRow)
        var data = Data("_logits_".utf8)
        withUnsafeBytes(of: UInt32(header.context).littleEndian) { data.append(contentsOf: $0) }
        withUnsafeBytes(of: Int32(header.vocabularySize).littleEndian) { data.append(contentsOf: $0) }
        withUnsafeBytes(of: Int32(header.chunks).littleEndian) { data.append(contentsOf: $0) }
        header.tokens.withUnsafeBytes { data.append(contentsOf: $0) }
        handle.write(data)
    }

    /// Appends the scored rows of one chunk. logits: [rows, vocab].
    func append(logits: UnsafePointer<Float>, rows: Int) {
        let n = header.vocabularySize
        var data = Data(capacity: rows * header.valuesPerRow * 2)
        for r in 0..<rows {
            let l = logits + r * n
            var maxLogit = l[0], minLogit = l[0]
            for i in 1..<n { maxLogit = max(maxLogit, l[i]); minLogit = min(minLogit, l[i]) }
            minLogit = max(minLogit, maxLogit - 16)
            let lse = Float(LogSoftmax.logSumExp(l, n).lse - Double(maxLogit))
            let minLogProb = minLogit - maxLogit - lse
            let scale = (maxLogit - minLogit) / 65535
            row.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: scale, toByteOffset: 0, as: Float.self)
                raw.storeBytes(of: minLogProb, toByteOffset: 4, as: Float.self)
                let q = raw.baseAddress!.advanced(by: 8).assumingMemoryBound(to: UInt16.self)
                if scale > 0 {
                    let inv = 1 / scale
                    for i in 0..<n { q[i] = l[i] > minLogit ? UInt16(clamping: Int((inv * (l[i] - minLogit)).rounded(.toNearestOrEven))) : 0 }
                } else {
                    for i in 0..<n { q[i] = 0 }
                }
            }
            row.withUnsafeBytes { data.append(contentsOf: $0) }
        }
        handle.write(data)
    }

    func close() { try? handle.close() }
}

/// Reads a base logits file chunk by chunk.
final class LogitsFileReader {
    let handle: FileHandle
    let header: LogitsFileHeader
    let path: String

    init(path: String) throws(EvalError) {
        self.path = path
        guard let h = FileHandle(forReadingAtPath: path) else { throw .cannotRead(path: path, reason: "cannot open the file") }
        handle = h
        func read(_ n: Int) throws(EvalError) -> Data {
            let d = h.readData(ofLength: n)
            guard d.count == n else { throw .badLogitsFile(path: path, reason: "truncated header") }
            return d
        }
        guard try read(8) == Data("_logits_".utf8) else { throw .badLogitsFile(path: path, reason: "missing the _logits_ magic") }
        let ctx = Int(try read(4).withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })
        let vocab = Int(try read(4).withUnsafeBytes { $0.loadUnaligned(as: Int32.self) })
        let chunks = Int(try read(4).withUnsafeBytes { $0.loadUnaligned(as: Int32.self) })
        guard ctx > 1, ctx <= 1 << 24, vocab > 0, vocab <= 1 << 24, chunks > 0, chunks <= 1 << 20 else {
            throw .badLogitsFile(path: path, reason: "implausible n_ctx \(ctx), n_vocab \(vocab), n_chunk \(chunks)")
        }
        let tokenData = try read(ctx * chunks * 4)
        let tokens = tokenData.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
        header = LogitsFileHeader(context: ctx, vocabularySize: vocab, chunks: chunks, tokens: tokens)
    }

    /// The next chunk's rows: [rowsPerChunk, valuesPerRow] u16.
    func nextChunk() throws(EvalError) -> [UInt16] {
        let count = header.rowsPerChunk * header.valuesPerRow
        let d = handle.readData(ofLength: count * 2)
        guard d.count == count * 2 else { throw .badLogitsFile(path: path, reason: "truncated chunk data") }
        return d.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
    }

    func close() { try? handle.close() }
}
