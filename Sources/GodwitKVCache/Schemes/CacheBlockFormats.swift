// The ggml 32-value block formats usable as cache rows, with the query encoding each one's dot
// product takes in llama.cpp (ggml-cpu type_traits: vec_dot_type): q8_0 for q8_0/q4_0/q5_0/iq4_nl,
// q8_1 for q4_1/q5_1. The block layouts themselves are declared once in GodwitKernels
// (BlockLayouts.swift, sizes pinned by BlockLayoutTests).
import GodwitGGUF

/// A ggml 32-value block format usable as a quantized cache row.
protocol CacheBlockFormat {
    static var type: GGMLType { get }
    /// The query encoding its dot product uses (q8_0 or q8_1).
    static var queryType: GGMLType { get }
}

enum Q8_0Cache: CacheBlockFormat { static let type = GGMLType.q8_0, queryType = GGMLType.q8_0 }
enum Q4_0Cache: CacheBlockFormat { static let type = GGMLType.q4_0, queryType = GGMLType.q8_0 }
enum Q4_1Cache: CacheBlockFormat { static let type = GGMLType.q4_1, queryType = GGMLType.q8_1 }
enum Q5_0Cache: CacheBlockFormat { static let type = GGMLType.q5_0, queryType = GGMLType.q8_0 }
enum Q5_1Cache: CacheBlockFormat { static let type = GGMLType.q5_1, queryType = GGMLType.q8_1 }
enum IQ4_NLCache: CacheBlockFormat { static let type = GGMLType.iq4_nl, queryType = GGMLType.q8_0 }
