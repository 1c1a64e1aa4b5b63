import Foundation
import Godwit
import GodwitGGUF
import GodwitKernels
import GodwitTestSupport
import Testing

/// The llama.cpp-exact kernels (Numerics.ggml) against scalar twins written from ggml's C, bitwise.
@Suite struct ExactNumericsTests {
    /// SplitMix64, deterministic.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 24) }
        mutating func symmetric() -> Float { 2 * uniform() - 1 }
        mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }
    }

    static func half(_ x: Float) -> UInt16 { Float16(x).bitPattern }

    /// `blocks` random q4_1 (bytes 20) or q8_0 (34) weight blocks.
    static func weights(_ type: GGMLType, blocks: Int, _ r: inout Random) -> [UInt8] {
        var out = [UInt8]()
        for _ in 0..<blocks {
            let d = half(0.001 + 0.02 * r.uniform())
            out += [UInt8(d & 0xFF), UInt8(d >> 8)]
            if type == .q5_0 {
                for _ in 0..<20 { out.append(r.byte()) }
            } else if type == .q4_0 {
                for _ in 0..<16 { out.append(r.byte()) }
            } else if type == .q4_1 {
                let m = half(-0.1 * r.uniform())
                out += [UInt8(m & 0xFF), UInt8(m >> 8)]
                for _ in 0..<16 { out.append(r.byte()) }
            } else {
                for _ in 0..<32 { out.append(UInt8(bitPattern: Int8(truncatingIfNeeded: Int(r.byte() % 255) - 127))) }
            }
        }
        return out
    }

    @Test("Quantized vec_dot kernels equal their scalar twins bitwise", arguments: [GGMLType.q4_1, .q8_0, .q5_0, .q4_0])
    func quantizedDots(type: GGMLType) {
        var r = Random(state: 7)
        for cols in [32, 576, 1536] {
            let nb = cols / 32
            let x = ActivationBuffer(type: type == .q4_1 ? .q8_1 : .q8_0, maxRows: 1, cols: cols)
            for trial in 0..<20 {
                let scale: Float = trial % 2 == 0 ? 1 : 40
                let v = (0..<cols).map { _ in r.symmetric() * scale }
                v.withUnsafeBufferPointer { x.quantize($0.baseAddress!, rows: 1, rowStride: cols) }
                let w = Self.weights(type, blocks: nb, &r)
                w.withUnsafeBytes { wp in
                    let w = wp.baseAddress!, xr = x.row(0)
                    let fast = type == .q4_1 ? GGMLExact.dotQ4_1Q8_1(w, xr, blocks: nb)
                             : type == .q5_0 ? GGMLExact.dotQ5_0Q8_0(w, xr, blocks: nb)
                             : type == .q4_0 ? GGMLExact.dotQ4_0Q8_0(w, xr, blocks: nb) : GGMLExact.dotQ8_0Q8_0(w, xr, blocks: nb)
                    let twin = type == .q4_1 ? GGMLExact.dotQ4_1Q8_1Reference(w, xr, blocks: nb)
                             : type == .q5_0 ? GGMLExact.dotQ5_0Q8_0Reference(w, xr, blocks: nb)
                             : type == .q4_0 ? GGMLExact.dotQ4_0Q8_0Reference(w, xr, blocks: nb) : GGMLExact.dotQ8_0Q8_0Reference(w, xr, blocks: nb)
                    #expect(fast.bitPattern == twin.bitPattern, "\(type) cols \(cols): \(fast) vs \(twin)")
                }
            }
        }
    }

    /// `blocks` random q4_K (144 bytes) or q6_K (210 bytes) weight blocks with moderate f16 scales.
    static func kQuantWeights(_ type: GGMLType, blocks: Int, _ r: inout Random) -> [UInt8] {
        var out = [UInt8]()
        for _ in 0..<blocks {
            let d = half(0.0005 + 0.01 * r.uniform())
            if type == .q4_K {
                let dmin = half(0.0002 + 0.005 * r.uniform())
                out += [UInt8(d & 0xFF), UInt8(d >> 8), UInt8(dmin & 0xFF), UInt8(dmin >> 8)]
                for _ in 0..<(12 + 128) { out.append(r.byte()) }
            } else {
                for _ in 0..<192 { out.append(r.byte()) }
                for _ in 0..<16 { out.append(UInt8(bitPattern: Int8(truncatingIfNeeded: Int(r.byte() % 255) - 127))) }
                out += [UInt8(d & 0xFF), UInt8(d >> 8)]
            }
        }
        return out
    }

    @Test("k-quant products (repacked q4_K gemv/gemm, q6_K vec_dot/tiled) equal their scalar twins bitwise",
          arguments: [GGMLType.q4_K, .q6_K])
    func kQuantDots(type: GGMLType) throws {
        var r = Random(state: 17)
        for cols in [256, 1024, 2048] {
            let nb = cols / 256
            let x = ActivationBuffer(type: .q8_K, maxRows: 1, cols: cols)
            for trial in 0..<12 {
                let scale: Float = trial % 3 == 0 ? 1 : 30
                let v = (0..<cols).map { _ in r.symmetric() * scale }
                v.withUnsafeBufferPointer { x.quantize($0.baseAddress!, rows: 1, rowStride: cols) }
                let w = Self.kQuantWeights(type, blocks: nb, &r)
                var wf = [Float](repeating: 0, count: cols), xf = [Float](repeating: 0, count: cols)
                try w.withUnsafeBytes { try dequantizeRow(type: type, src: $0.baseAddress!, dst: &wf, count: cols) }
                try dequantizeRow(type: .q8_K, src: x.row(0), dst: &xf, count: cols)
                let exact = zip(wf, xf).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                let magnitude = zip(wf, xf).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
                w.withUnsafeBytes { wp in
                    let w = wp.baseAddress!, xr = x.row(0)
                    let pairs: [(String, Float, Float)] = type == .q4_K
                        ? [("gemv", GGMLExact.dotQ4KGemv(w, xr, blocks: nb), GGMLExact.dotQ4KGemvReference(w, xr, blocks: nb)),
                           ("gemm", GGMLExact.dotQ4KGemm(w, xr, blocks: nb), GGMLExact.dotQ4KGemmReference(w, xr, blocks: nb))]
                        : [("vec_dot", GGMLExact.dotQ6KVec(w, xr, blocks: nb), GGMLExact.dotQ6KVecReference(w, xr, blocks: nb)),
                           ("tiled", GGMLExact.dotQ6KTiled(w, xr, blocks: nb), GGMLExact.dotQ6KTiledReference(w, xr, blocks: nb))]
                    for (name, fast, twin) in pairs {
                        #expect(fast.bitPattern == twin.bitPattern, "\(type) \(name) cols \(cols): \(fast) vs \(twin)")
                        // The same product as dequantized weights · dequantized activations, up to float rounding.
                        #expect(abs(Double(fast) - exact) <= 1e-4 * magnitude + 1e-6, "\(type) \(name): \(fast) vs \(exact)")
                    }
                }
            }
        }
        #expect(GGMLExact.q4KUsesGemm(token: 3, of: 4) && !GGMLExact.q4KUsesGemm(token: 4, of: 5) && !GGMLExact.q4KUsesGemm(token: 0, of: 3))
        #expect(GGMLExact.q6KUsesTiled(rows: 8) && !GGMLExact.q6KUsesTiled(rows: 7))
    }

    @Test("ggml_v_expf equals its scalar twin bitwise, and is within 2 ulp of exp")
    func expf() {
        var inputs: [Float] = [0, -0.0, 1, -1, 0.5, -87.3, -88.5, -100, -103.9, -104, -150, -200, 80, 88.3, 88.7, 89, 100, 200, -.infinity]
        var r = Random(state: 11)
        for _ in 0..<4000 { inputs.append(r.symmetric() * 110) }
        while inputs.count % 16 != 0 { inputs.append(0) }
        for i in stride(from: 0, to: inputs.count, by: 16) {
            var v = SIMD16<Float>()
            for l in 0..<16 { v[l] = inputs[i + l] }
            let e = GGMLExact.expf(v)
            for l in 0..<16 {
                let twin = GGMLExact.expfReference(inputs[i + l])
                #expect(e[l].bitPattern == twin.bitPattern, "expf(\(inputs[i + l])): \(e[l]) vs \(twin)")
                let x = inputs[i + l]
                if x > -87, x < 88 {
                    let exact = Float(Foundation.exp(Double(x)))
                    #expect(abs(e[l] - exact) <= 2 * exact.ulp, "expf(\(x)) = \(e[l]), exp = \(exact)")
                }
            }
        }
        #expect(GGMLExact.expfReference(-.infinity) == 0)
        #expect(GGMLExact.expfReference(200) == .infinity)
    }

    @Test("f16 dot orders (vec_dot_f16, tinyBLAS) equal their scalar twins bitwise", arguments: [16, 64, 80, 256, 320])
    func f16Dots(n: Int) {
        var r = Random(state: UInt64(n))
        for _ in 0..<50 {
            let a = (0..<n).map { _ in GGMLExact.roundF16(r.symmetric()) }
            let b = (0..<n).map { _ in GGMLExact.roundF16(r.symmetric() * 3) }
            let vec = GGMLExact.dotF16Vec(a, b, n), vecTwin = GGMLExact.dotF16VecReference(a, b)
            #expect(vec.bitPattern == vecTwin.bitPattern)
            let tiny = GGMLExact.dotF16TinyBLAS(a, b, n), tinyTwin = GGMLExact.dotF16TinyBLASReference(a, b)
            #expect(tiny.bitPattern == tinyTwin.bitPattern)
            let exact = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            #expect(abs(Double(vec) - exact) < 1e-4 && abs(Double(tiny) - exact) < 1e-4)
        }
    }

    @Test("RMSNorm sums squares in double; SwiGLU uses ggml_v_expf")
    func normAndSwiGLU() {
        var r = Random(state: 3)
        let n = 576
        let x = (0..<n).map { _ in r.symmetric() * 4 }, w = (0..<n).map { _ in 0.5 + r.uniform() }
        var out = [Float](repeating: 0, count: n)
        GGMLExact.rmsNorm(x, weight: w, into: &out, count: n, eps: 1e-5)
        var sum = 0.0
        for v in x { sum += Double(v * v) }
        let scale = 1 / (Float(sum / Double(n)) + 1e-5).squareRoot()
        for i in 0..<n { #expect(out[i].bitPattern == (x[i] * scale * w[i]).bitPattern) }

        let m = 40   // a multiple of 16 plus a scalar tail
        let g = (0..<m).map { _ in r.symmetric() * 10 }, u = (0..<m).map { _ in r.symmetric() }
        var y = [Float](repeating: 0, count: m)
        GGMLExact.swiglu(gate: g, up: u, into: &y, count: m)
        for i in 0..<32 {
            let silu = g[i] / (1 + GGMLExact.expfReference(0 - g[i]))
            #expect(y[i].bitPattern == (silu * u[i]).bitPattern)
        }
        for i in 32..<m { #expect(abs(y[i] - g[i] / (1 + Foundation.exp(-g[i])) * u[i]) <= 2 * abs(y[i]).ulp) }
    }

    @Test("GeGLU reads GELU from the f16 table like ggml_vec_geglu_f32")
    func geglu() {
        let g: [Float] = [-11, -10, -3.3, -0.5, 0, 0.25, 1, 2.7, 9.99, 10, 12]
        let u = [Float](repeating: 1.5, count: g.count)
        var y = [Float](repeating: 0, count: g.count)
        GGMLExact.geglu(gate: g, up: u, into: &y, count: g.count)
        #expect(y[0] == 0 && y[1] == 0 && y[9] == 15 && y[10] == 18)
        for i in 2..<9 {
            let x = Float(Float16(g[i]))
            let gelu = 0.5 * Double(x) * (1 + Foundation.tanh(0.7978845608 * Double(x) * (1 + 0.044715 * Double(x * x))))
            #expect(abs(Double(y[i]) - gelu * 1.5) <= 2e-3 * max(1, abs(gelu)), "gelu(\(g[i]))")
            #expect(Float(Float16(y[i] / 1.5)) == y[i] / 1.5, "the table holds f16 values")
        }
    }

    @Test("Sessions accept numerics; ggml mode falls back to the fast kernels' shapes for other options")
    func configuration() {
        var c = SessionConfiguration(numerics: .ggml)
        #expect(c.numerics == .ggml && c.cache.numerics == .ggml)
        c.numerics = .fast
        #expect(c.cache.numerics == .fast)
        #expect(Numerics(rawValue: "ggml") == .ggml && Numerics(rawValue: "exact") == nil)
    }

    /// llama.cpp itself is not batch-independent: with 2+ query tokens its attention products run
    /// in tinyBLAS order, with one in ggml_vec_dot_f16 order (SmolLM2's quantized products are per
    /// (row, token) either way; k-quant ones are not, see GGMLExactKQuants.swift). ggml numerics reproduce that, so batch and decode differ, and the
    /// model's chaotic q8 roundings amplify it (measured: 0.23 on this sequence). A sanity bound.
    @Test("ggml numerics: prompt batch vs token-by-token decoding differ only by the attention order")
    func batchVersusDecode() throws {
        let model = try Fixtures.model("smollm2")
        let c = try Reference.greedy("smollm2").cases[5]
        let tokens = c.prompt_ids + c.greedy_ids
        let noFlash = KVCacheConfiguration(flashAttention: false)
        let batch = try model.makeSession(SessionConfiguration(contextLength: 128, threads: 2, cache: noFlash, numerics: .ggml)).logProbabilities(tokens)
        let single = try model.makeSession(SessionConfiguration(contextLength: 128, batchSize: 1, threads: 2, cache: noFlash, numerics: .ggml))
        var worst: Float = 0
        for (i, t) in tokens.enumerated() {
            let lp = try single.logProbabilities([t])[0]
            let top = batch[i].indices.max { batch[i][$0] < batch[i][$1] }!
            worst = max(worst, abs(lp[top] - batch[i][top]))
        }
        print("smollm2 (ggml): worst top-1 log-prob difference batch vs decode = \(worst)")
        #expect(worst < 0.5)
    }
}
