import Foundation
import GodwitKernels
import GodwitKVCache
import Testing

/// nuq3 / nuq4 (KVQuant-style): record sizes, k-means, calibration fitting, round-trip budgets,
/// exact outliers, fast scores vs the scalar twin, pre-RoPE equivalence, bpv accounting, errors.
@Suite struct NUQTests {
    static let dim = 64, heads = 2

    /// A calibration fitted on synthetic keys/values (Gaussian with outlier channels), one layer.
    static func calibration(dim: Int = dim, heads: Int = heads, seed: UInt64 = 1) -> KVCalibration {
        var rng = TestRandom(seed: seed)
        let keys = rng.vectors(count: 600, dim: heads * dim)
        let values = rng.vectors(count: 600, dim: heads * dim)
        return KVCalibration(tensors: NUQCalibrator.layerTensors(layer: 0, keys: keys, keyChannels: heads * dim,
                                                                 values: values, valueHeadDim: dim))
    }

    static let rope = RotaryEmbedding(dimensions: 64, base: 10000, style: .neox)

    static func stores(bits: Int, dim: Int = dim, capacity: Int = 80, rope: RotaryEmbedding? = rope,
                       calibration: KVCalibration? = nil) throws -> (any KeyStore, any ValueStore) {
        let g = KVStoreGeometry(layer: 0, headCount: heads, headDim: dim, capacity: capacity)
        let s = NUQScheme(bits: bits)
        let cal = calibration ?? Self.calibration(dim: dim)
        let k = try s.makeKeyStore(KVStoreContext(geometry: g, role: .key, options: .init(), rope: rope, calibration: cal))
        let v = try s.makeValueStore(KVStoreContext(geometry: g, role: .value, options: .init(), rope: rope, calibration: cal))
        return (k, v)
    }

    @Test("Record sizes are pinned")
    func recordSizes() {
        #expect(NUQKeyRecord(headDim: 64, bits: 4).bytes == 45)
        #expect(NUQKeyRecord(headDim: 64, bits: 3).bytes == 37)
        #expect(NUQKeyRecord(headDim: 256, bits: 4).bytes == 177)
        #expect(NUQKeyRecord(headDim: 64, bits: 4).heldBytes(outliers: 1) == 36)
        #expect(NUQValueRecord(headDim: 64, bits: 4).bytes == 37)
        #expect(NUQValueRecord(headDim: 64, bits: 3).bytes == 29)
        #expect(NUQValueRecord(headDim: 256, bits: 4).bytes == 139)
        #expect(NUQScheme(bits: 4).bitsPerValue(headDim: 64, role: .value, options: .init()) == 4.625)
        #expect(NUQScheme(bits: 3).bitsPerValue(headDim: 64, role: .value, options: .init()) == 3.625)
    }

    @Test("k-means finds known clusters")
    func kmeansClusters() {
        var rng = TestRandom(seed: 3)
        let truth: [Float] = [-5, 0, 7]
        var data = [Float]()
        for c in truth { for _ in 0..<300 { data.append(c + 0.2 * rng.gaussian()) } }
        let c = KMeans1D.fit(values: data, k: 3)
        for (a, b) in zip(c, truth) { #expect(abs(a - b) < 0.05, "centroid \(a) vs \(b)") }
        // Weights pull a centroid toward heavy points.
        let w = KMeans1D.fit(values: [0, 1], weights: [3, 1], k: 1)
        #expect(abs(w[0] - 0.25) < 1e-6)
    }

    @Test("Codebooks are deterministic")
    func determinism() {
        #expect(Self.calibration() == Self.calibration())
        var rng = TestRandom(seed: 9)
        let data = (0..<2000).map { _ in rng.gaussian() }
        #expect(KMeans1D.fit(values: data, k: 16) == KMeans1D.fit(values: data, k: 16))
        let cb = Self.calibration().tensors[NUQTensorNames.keyCodebook(layer: 0, bits: 4)]!
        #expect(cb == cb.sorted() && cb.count == 16 && cb.allSatisfy { abs($0) <= 1 })
    }

    /// Measured relative RMS errors (synthetic Gaussian data with outlier channels, calibrated on
    /// other samples of the same distribution): keys nuq4 0.086, nuq3 0.168; values nuq4 0.075,
    /// nuq3 0.151 — budgets leave ~10% headroom. (A per-layer codebook over channels normalized
    /// to their 0.5/99.5 percentiles is close to Lloyd–Max on a Gaussian clipped at ±2.6σ.)
    static let budget: [Int: (key: Double, value: Double)] = [4: (0.095, 0.085), 3: (0.185, 0.17)]

    @Test("Round trip within the budget", arguments: [3, 4])
    func roundTrip(bits: Int) throws {
        let (ks, vs) = try Self.stores(bits: bits)
        var rng = TestRandom(seed: 42)
        let n = 80, w = Self.heads * Self.dim
        let keys = rng.vectors(count: n, dim: w), values = rng.vectors(count: n, dim: w)
        keys.withUnsafeBufferPointer { ks.write($0.baseAddress!, tokenStride: w, count: n, firstPosition: 0) }
        values.withUnsafeBufferPointer { vs.write($0.baseAddress!, tokenStride: w, count: n, firstPosition: 0) }
        for (store, data, budget, role) in [(ks as any KVStore, keys, Self.budget[bits]!.key, "K"), (vs, values, Self.budget[bits]!.value, "V")] {
            var worst = 0.0
            for h in 0..<Self.heads {
                var back = [Float](repeating: 0, count: (n - 1) * Self.dim)
                back.withUnsafeMutableBufferPointer { store.read(head: h, positions: 1..<n, into: $0.baseAddress!) }
                var orig = [Float]()
                for t in 1..<n { orig += data[(t * Self.heads + h) * Self.dim..<(t * Self.heads + h + 1) * Self.dim] }
                worst = max(worst, relativeRMSError(orig, back))
            }
            print("nuq\(bits) \(role) relative RMS error \(worst)")
            #expect(worst <= budget, "nuq\(bits) \(role): \(worst)")
        }
    }

    @Test("Outliers and the sink are kept exactly (f16)", arguments: [3, 4])
    func outliersExact(bits: Int) throws {
        let (ks, vs) = try Self.stores(bits: bits)
        var rng = TestRandom(seed: 11)
        let n = 20, w = Self.heads * Self.dim
        var keys = rng.vectors(count: n, dim: w)
        keys[5 * w + 7] = 40        // far outside every threshold
        let values = rng.vectors(count: n, dim: w)
        keys.withUnsafeBufferPointer { ks.write($0.baseAddress!, tokenStride: w, count: n, firstPosition: 0) }
        values.withUnsafeBufferPointer { vs.write($0.baseAddress!, tokenStride: w, count: n, firstPosition: 0) }
        let f16 = { (x: Float) in Float(Float16(x)) }
        #expect(NUQInspection.keyOutliers(ks, head: 0, position: 5)!.contains { $0.channel == 7 && $0.value == 40 })
        var k = [Float](repeating: 0, count: Self.dim), v = k
        for h in 0..<Self.heads {
            for p in 0..<n {
                k.withUnsafeMutableBufferPointer { ks.read(head: h, positions: p..<p + 1, into: $0.baseAddress!) }
                v.withUnsafeMutableBufferPointer { vs.read(head: h, positions: p..<p + 1, into: $0.baseAddress!) }
                let ko = Array(keys[(p * Self.heads + h) * Self.dim..<(p * Self.heads + h + 1) * Self.dim])
                let vo = Array(values[(p * Self.heads + h) * Self.dim..<(p * Self.heads + h + 1) * Self.dim])
                if p == 0 {
                    #expect(k == ko.map(f16) && v == vo.map(f16), "sink")
                    continue
                }
                for o in NUQInspection.keyOutliers(ks, head: h, position: p)! { #expect(k[o.channel] == f16(ko[o.channel])) }
                // The largest value magnitude is an outlier, kept exactly.
                let big = vo.indices.max { abs(vo[$0]) < abs(vo[$1]) }!
                #expect(v[big] == f16(vo[big]))
            }
        }
    }

    @Test("Fast scores and values equal their scalar twins", arguments: [3, 4], [RotaryEmbedding.Style.neox, .normal])
    func fastVersusTwin(bits: Int, style: RotaryEmbedding.Style) throws {
        let rope = RotaryEmbedding(dimensions: 64, base: 10000, style: style)
        let (ks, vs) = try Self.stores(bits: bits, rope: rope)
        var rng = TestRandom(seed: 21)
        let n = 70, w = Self.heads * Self.dim, d = Self.dim
        let keys = rng.vectors(count: n, dim: w), values = rng.vectors(count: n, dim: w)
        keys.withUnsafeBufferPointer { ks.write($0.baseAddress!, tokenStride: w, count: n, firstPosition: 0) }
        values.withUnsafeBufferPointer { vs.write($0.baseAddress!, tokenStride: w, count: n, firstPosition: 0) }
        let queries = rng.vectors(count: 3, dim: d, outliers: false)
        var prepared = [UInt8](repeating: 0, count: 3 * ks.preparedQueryBytes)
        prepared.withUnsafeMutableBytes { p in queries.withUnsafeBufferPointer { q in
            for g in 0..<3 { ks.prepareQuery(q.baseAddress! + g * d, into: p.baseAddress! + g * ks.preparedQueryBytes) }
        } }
        for h in 0..<Self.heads {
            // Whole range and ranges that start and end inside 16-position tiles.
            for range in [0..<n, 5..<40, 33..<70, 47..<48, 1..<17] {
                var fast = [Float](repeating: 0, count: 3 * range.count)
                prepared.withUnsafeBytes { p in fast.withUnsafeMutableBufferPointer {
                    ks.scores(queries: p.baseAddress!, queryCount: 3, head: h, positions: range, into: $0.baseAddress!, outStride: range.count)
                } }
                let ref = NUQInspection.referenceScores(ks, queries: queries, head: h, positions: range)!
                for i in 0..<3 * range.count {
                    #expect(abs(Double(fast[i]) - ref[i]) <= 1e-4 * max(1, abs(ref[i])), "score \(range) \(i): \(fast[i]) vs \(ref[i])")
                }
            }
            // Values: accumulate vs reference decode.
            let weights = (0..<3 * n).map { _ in rng.uniform() }
            var acc = [Float](repeating: 0, count: 3 * d)
            weights.withUnsafeBufferPointer { wp in acc.withUnsafeMutableBufferPointer {
                vs.accumulate(weights: wp.baseAddress!, weightStride: n, queryCount: 3, head: h, positions: 0..<n, into: $0.baseAddress!, accStride: d)
            } }
            for g in 0..<3 {
                var expect = [Double](repeating: 0, count: d)
                for p in 0..<n {
                    let row = NUQInspection.referenceValue(vs, head: h, position: p)!
                    for i in 0..<d { expect[i] += Double(weights[g * n + p]) * Double(row[i]) }
                }
                for i in 0..<d { #expect(abs(Double(acc[g * d + i]) - expect[i]) <= 1e-4 * max(1, abs(expect[i]))) }
            }
        }
    }

    @Test("A sliding-window ring (capacity not a multiple of 16) scores like a full store", arguments: [3, 4])
    func ring(bits: Int) throws {
        let window = 24, total = 100, d = Self.dim, w = Self.heads * Self.dim
        let ringGeometry = KVStoreGeometry(layer: 0, headCount: Self.heads, headDim: d, capacity: 40, window: window)
        let fullGeometry = KVStoreGeometry(layer: 0, headCount: Self.heads, headDim: d, capacity: 128)
        let s = NUQScheme(bits: bits), cal = Self.calibration(dim: d)
        let ring = try s.makeKeyStore(KVStoreContext(geometry: ringGeometry, role: .key, options: .init(), rope: Self.rope, calibration: cal))
        let full = try s.makeKeyStore(KVStoreContext(geometry: fullGeometry, role: .key, options: .init(), rope: Self.rope, calibration: cal))
        var rng = TestRandom(seed: 33)
        let keys = rng.vectors(count: total, dim: w)
        let q = rng.vectors(count: 2, dim: d, outliers: false)
        var prepared = [UInt8](repeating: 0, count: 2 * ring.preparedQueryBytes)
        prepared.withUnsafeMutableBytes { p in q.withUnsafeBufferPointer { qp in
            for g in 0..<2 { ring.prepareQuery(qp.baseAddress! + g * d, into: p.baseAddress! + g * ring.preparedQueryBytes) }
        } }
        var position = 0
        for n in [17, 1, 1, 9, 16, 3, 1, 20, 1, 1, 30] {
            keys.withUnsafeBufferPointer { k in
                for store in [ring, full] { store.write(k.baseAddress! + position * w, tokenStride: w, count: n, firstPosition: position) }
            }
            position += n
            let lo = max(0, position - window)
            // The ring's range may wrap: score it in two pieces, as the attention driver does.
            let wrap = (position / 40) * 40
            let pieces = lo < wrap && wrap < position ? [lo..<wrap, wrap..<position] : [lo..<position]
            for h in 0..<Self.heads {
                var a = [Float](repeating: 0, count: 2 * window), b = a
                prepared.withUnsafeBytes { p in
                    a.withUnsafeMutableBufferPointer { out in
                        for piece in pieces {
                            ring.scores(queries: p.baseAddress!, queryCount: 2, head: h, positions: piece,
                                        into: out.baseAddress! + (piece.lowerBound - lo), outStride: window)
                        }
                    }
                    b.withUnsafeMutableBufferPointer {
                        full.scores(queries: p.baseAddress!, queryCount: 2, head: h, positions: lo..<position, into: $0.baseAddress!, outStride: window)
                    }
                }
                for g in 0..<2 {
                    for j in 0..<(position - lo) {
                        let x = a[g * window + j], y = b[g * window + j]
                        #expect(abs(x - y) <= 1e-4 * max(1, abs(y)), "bits \(bits) at \(position) head \(h) j \(j): \(x) vs \(y)")
                    }
                }
            }
        }
        #expect(position == total)
    }

    @Test("Pre-RoPE keys rotated when scoring equal post-RoPE f32 keys (lossless twin, through the cache)")
    func preRoPEEquivalence() throws {
        let heads = 4, kvHeads = 2, d = 64, n = 70
        let rope = RotaryEmbedding(dimensions: d, base: 10000, style: .neox)
        let spec = KVLayerSpec(kvHeads: kvHeads, keyDim: d, valueDim: d, rope: rope)
        let registry = KVSchemeRegistry(registerBuiltIns: true)
        let recording = KVRecording()
        registry.register(KVRecordingScheme(name: "recorder", recording: recording))
        let pool = ThreadPool(threads: 2)
        var rng = TestRandom(seed: 77)
        let keys = rng.vectors(count: n, dim: kvHeads * d), values = rng.vectors(count: n, dim: kvHeads * d)
        let queries = rng.vectors(count: n, dim: heads * d, outliers: false)
        var outputs = [[Float]]()
        for scheme in ["f32", "recorder"] {
            let cache = try KVCache(specs: [spec], contextLength: 128, maxBatch: 64,
                                    configuration: KVCacheConfiguration(keyScheme: scheme, valueScheme: scheme), threads: 2, registry: registry)
            var out = [Float]()
            var position = 0
            for batch in [64] + Array(repeating: 1, count: n - 64) {
                // RoPE angles of the batch, as the model computes them.
                var cos = [Float](repeating: 0, count: batch * d / 2), sin = cos
                for t in 0..<batch { cos.withUnsafeMutableBufferPointer { c in sin.withUnsafeMutableBufferPointer { s in
                    rope.table(position: position + t, cos: c.baseAddress! + t * d / 2, sin: s.baseAddress! + t * d / 2) } } }
                var kb = Array(keys[position * kvHeads * d..<(position + batch) * kvHeads * d])
                var vb = Array(values[position * kvHeads * d..<(position + batch) * kvHeads * d])
                cos.withUnsafeBufferPointer { c in sin.withUnsafeBufferPointer { s in
                    kb.withUnsafeMutableBufferPointer { kp in vb.withUnsafeMutableBufferPointer { vp in
                        cache.write(layer: 0, keys: kp.baseAddress!, keyStride: kvHeads * d, values: vp.baseAddress!, valueStride: kvHeads * d,
                                    tokens: batch, firstPosition: position, angles: RoPEAngles(cos: c.baseAddress!, sin: s.baseAddress!, stride: d / 2))
                    } }
                } }
                var o = [Float](repeating: 0, count: batch * heads * d)
                let q = Array(queries[position * heads * d..<(position + batch) * heads * d])
                q.withUnsafeBufferPointer { qp in o.withUnsafeMutableBufferPointer { op in
                    cache.attend(layer: 0, queries: qp.baseAddress!, queryStride: heads * d, heads: heads, tokens: batch,
                                 firstPosition: position, scale: 0.125, into: op.baseAddress!, outStride: heads * d, pool: pool)
                } }
                cache.commit(firstPosition: position, tokens: batch)
                out += o
                position += batch
            }
            outputs.append(out)
        }
        #expect(relativeRMSError(outputs[0], outputs[1]) < 1e-6)
        // The recorder saw the pre-RoPE keys of positions 1…n−1.
        let keysSeen = recording.keys(layer: 0) == Array(keys[kvHeads * d..<n * kvHeads * d])
        let valuesSeen = recording.values(layer: 0) == Array(values[kvHeads * d..<n * kvHeads * d])
        #expect(keysSeen && valuesSeen)
    }

    @Test("bytesHeld counts the sink, codes, counts and the outliers actually stored", arguments: [3, 4])
    func bitsAccounting(bits: Int) throws {
        let (ks, vs) = try Self.stores(bits: bits)
        var rng = TestRandom(seed: 8)
        let n = 50, w = Self.heads * Self.dim
        let keys = rng.vectors(count: n, dim: w), values = rng.vectors(count: n, dim: w)
        keys.withUnsafeBufferPointer { ks.write($0.baseAddress!, tokenStride: w, count: n, firstPosition: 0) }
        values.withUnsafeBufferPointer { vs.write($0.baseAddress!, tokenStride: w, count: n, firstPosition: 0) }
        // Parameters counted once: key mid + half per channel and the codebook (f32); value codebook.
        var expectedKey = Self.heads * Self.dim * 2 + Self.heads * Self.dim * 8 + (1 << bits) * 4
        var outliers = 0
        for h in 0..<Self.heads { for p in 1..<n { let c = NUQInspection.keyOutliers(ks, head: h, position: p)!.count; outliers += c; expectedKey += Self.dim * bits / 8 + 1 + 3 * c } }
        #expect(ks.bytesHeld(tokens: n) == expectedKey)
        #expect(outliers > 0)
        let vr = NUQValueRecord(headDim: Self.dim, bits: bits)
        #expect(vs.bytesHeld(tokens: n) == (1 << bits) * 4 + Self.heads * (Self.dim * 2 + (n - 1) * (2 + Self.dim * bits / 8 + 3 * vr.outliers)))
        #expect(ks.bytesHeld(tokens: 0) == 0 && vs.bytesHeld(tokens: 0) == 0)
    }

    @Test("Without a calibration the scheme refuses, naming --kv-calibration and godwit calibrate", arguments: ["nuq3", "nuq4"])
    func missingCalibration(name: String) throws {
        let spec = KVLayerSpec(kvHeads: 2, keyDim: 64, valueDim: 64, rope: Self.rope)
        #expect {
            _ = try KVCache(specs: [spec], contextLength: 32, maxBatch: 8, configuration: KVCacheConfiguration(keyScheme: name, valueScheme: "f16"), threads: 1)
        } throws: { error in
            let text = "\(error)"
            return (error as? KVCacheError).map { if case .missingCalibration = $0 { true } else { false } } == true
                && text.contains("--kv-calibration") && text.contains("godwit calibrate") && text.contains(name)
        }
        // A calibration for another geometry is rejected with the tensor named.
        #expect(throws: KVCacheError.self) {
            _ = try KVCache(specs: [KVLayerSpec(kvHeads: 3, keyDim: 64, valueDim: 64, rope: Self.rope)], contextLength: 32, maxBatch: 8,
                            configuration: KVCacheConfiguration(keyScheme: name, valueScheme: name), threads: 1, calibration: Self.calibration())
        }
    }

    @Test("Calibration survives a GGUF write/load round trip")
    func calibrationFile() throws {
        let c = Self.calibration()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("nuq-test-\(getpid()).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try c.write(to: path)
        #expect(try KVCalibration.load(path: path) == c)
    }
}
