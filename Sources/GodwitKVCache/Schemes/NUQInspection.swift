// Safe, public access to the scalar twins and side tables of the nuq stores (NUQKeyStore.swift,
// NUQValueStore.swift) for tests and diagnostics. Returns nil for stores of other schemes.

public enum NUQInspection {
    /// Outliers kept for one position of a nuq key store: (channel, exact f16 value).
    public static func keyOutliers(_ store: any KeyStore, head: Int, position: Int) -> [(channel: Int, value: Float)]? {
        (store as? NUQKeyStore)?.outliers(head: head, position: position)
    }

    /// Scalar twin of `scores`: q_g · RoPE(decoded key) in double, [queryCount, positions.count].
    /// queries: [queryCount, headDim] f32.
    public static func referenceScores(_ store: any KeyStore, queries: [Float], head: Int, positions: Range<Int>) -> [Double]? {
        guard let s = store as? NUQKeyStore else { return nil }
        let d = s.geometry.headDim
        precondition(queries.count % d == 0, "queries must be [count, headDim]")
        return queries.withUnsafeBufferPointer { s.scoresReference(queries: $0.baseAddress!, queryCount: queries.count / d, head: head, positions: positions) }
    }

    /// Scalar twin of the value decode of one position: [headDim].
    public static func referenceValue(_ store: any ValueStore, head: Int, position: Int) -> [Float]? {
        guard let s = store as? NUQValueStore else { return nil }
        var v = [Float](repeating: 0, count: s.geometry.headDim)
        v.withUnsafeMutableBufferPointer { s.decodeReference(head: head, position: position, into: $0.baseAddress!) }
        return v
    }
}
