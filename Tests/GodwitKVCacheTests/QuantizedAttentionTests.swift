import Foundation
import GodwitKVCache
import GodwitKernels
import Testing

/// Attention computed on each compressed scheme (as K, and as V) stays close to exact attention on
/// the unquantized vectors: finite everywhere, relative RMS error within a budget per bit width.
/// Covers a prompt batch and decode steps (the two attention paths).
@Suite struct QuantizedAttentionTests {
    static let budget: [String: Double] = ["f32": 1e-5, "f16": 2e-3, "bf16": 1e-2, "q8_0": 0.02,
                                           "q5_0": 0.08, "q5_1": 0.08, "q4_0": 0.15, "q4_1": 0.15, "iq4_nl": 0.15,
                                           "nuq4": 0.10, "nuq3": 0.16, "kivi4": 0.10, "kivi2": 0.45,
                                           "kivi3": 0.21, "kivi5": 0.055, "kivi6": 0.03, "kivi8": 0.01,
                                           "kivi2pre": 0.45, "kivi3pre": 0.21, "kivi4pre": 0.10, "kivi5pre": 0.055,
                                           "kivi6pre": 0.03, "kivi8pre": 0.01,
                                           "kivi2mix": 0.45, "kivi3mix": 0.21, "kivi4mix": 0.10, "kivi5mix": 0.055,
                                           "kivi2tcq": 0.45, "kivi3tcq": 0.21, "kivi4tcq": 0.10, "kivi5tcq": 0.055,
                                           "tcq4": 0.09, "tcq3": 0.17, "tcq2": 0.33,
                                           "fp8_e4m3": 0.04, "fp8_e5m2": 0.07, "q8_kv": 0.012, "turbo4": 0.12, "turbo3": 0.21, "turbo2": 0.38]

    @Test("Fused attention on each scheme tracks exact attention", arguments: KVSchemeRegistry.shared.names)
    func tracksExact(scheme: String) throws {
        let kvHeads = 2, dim = 64
        // Calibrated schemes (nuq3/nuq4; kivi{b}mix's query energies, flat) get parameters fitted on other samples of the same distribution.
        var calibrationRNG = TestRandom(seed: 1234)
        let calibration = KVCalibration(tensors: NUQCalibrator.layerTensors(
            layer: 0, keys: calibrationRNG.vectors(count: 300, dim: kvHeads * dim), keyChannels: kvHeads * dim,
            values: calibrationRNG.vectors(count: 300, dim: kvHeads * dim), valueHeadDim: dim)
            .merging([KIVIMixScheme.queryEnergyTensor(layer: 0): [Float](repeating: 1, count: kvHeads * dim)]) { a, _ in a })
        for (k, v) in [(scheme, "f32"), ("f32", scheme)] {
            // AttentionProbe: 4 query heads on 2 KV heads of dim 64, a 64-token batch then 6 decode steps.
            let error = try AttentionProbe.error(keyScheme: k, valueScheme: v, dim: dim, calibration: calibration)
            #expect(error.isFinite, "\(k)/\(v): non-finite attention output")
            print("\(k)/\(v): relative RMS error \(error)")
            let budget = try #require(Self.budget[scheme], "no attention error budget for \(scheme)")
            #expect(error <= budget, "\(k)/\(v): relative RMS error \(error)")
        }
    }
}
