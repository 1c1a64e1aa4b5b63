// Streaming generation as an AsyncSequence of text pieces. Each `next()` runs the model until a
// piece of complete UTF-8 text is ready (a character split across tokens is emitted once, whole),
// or generation ends: end-of-generation token, `maxTokens` reached. Speeds land in
// `session.timings`; the generated token ids in `tokens` of the iterator's `result`.
import Foundation
import GodwitTokenizer

/// Why generation stopped.
public enum StopReason: String, Sendable { case endOfGeneration, maxTokens }

public struct GenerationStream: AsyncSequence, Sendable {
    public typealias Element = String
    let session: Session
    let prompt: [Int32]
    let maxTokens: Int
    let sampling: SamplingParameters

    public func makeAsyncIterator() -> Iterator {
        Iterator(session: session, prompt: prompt, maxTokens: maxTokens, sampling: sampling)
    }

    /// Runs the whole generation synchronously, calling `onText` with each piece.
    @discardableResult
    public func run(_ onText: (String) -> Void = { _ in }) throws(GodwitError) -> (tokens: [Int32], stop: StopReason) {
        var it = makeAsyncIterator()
        while let piece = try it.step() { onText(piece) }
        return (it.generated, it.stopReason ?? .maxTokens)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let session: Session
        let prompt: [Int32]
        let maxTokens: Int
        var sampler: Sampler
        var decoder: StreamingDecoder
        var started = false
        var finished = false
        /// Tokens generated so far.
        public private(set) var generated: [Int32] = []
        public private(set) var stopReason: StopReason?

        init(session: Session, prompt: [Int32], maxTokens: Int, sampling: SamplingParameters) {
            self.session = session
            self.prompt = prompt
            self.maxTokens = maxTokens
            sampler = Sampler(sampling)
            decoder = StreamingDecoder(tokenizer: session.model.tokenizer)
        }

        public mutating func next() async throws -> String? { try step() }

        /// The synchronous step behind `next()`.
        public mutating func step() throws(GodwitError) -> String? {
            while !finished {
                let token: Int32
                if !started {
                    started = true
                    var input = prompt
                    if let p = session.pendingToken { input.insert(p, at: 0) }
                    guard !input.isEmpty || !session.tokens.isEmpty else { throw .emptyPrompt }
                    session.timings = Timings()
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    try session.feed(input)
                    session.setPending(nil)
                    session.timings.promptTokens = input.count
                    session.timings.promptSeconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                } else {
                    guard let p = session.pendingToken else { finished = true; break }
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    try session.feed([p])
                    session.setPending(nil)
                    session.timings.generatedTokens += 1
                    session.timings.generationSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                }
                if generated.count >= maxTokens {
                    stopReason = .maxTokens
                    finished = true
                    break
                }
                token = sampler.sample(logits: session.lastLogits, vocabularySize: session.vocabularySize,
                                       history: session.tokens[...])
                if session.model.tokenizer.isEndOfGeneration(token) {
                    stopReason = .endOfGeneration
                    finished = true
                    break
                }
                generated.append(token)
                session.setPending(token)
                if generated.count >= maxTokens {
                    stopReason = .maxTokens
                    finished = true
                }
                let text = decoder.append(token)
                if !text.isEmpty { return text }
            }
            let rest = decoder.flush()
            return rest.isEmpty ? nil : rest
        }
    }
}
