// Attention kernels of the float caches (f32 / f16 / bf16), specialized per element type.
// `FloatStore<E>` is a generic class, and a generic class's methods reached through the
// `KeyStore`/`ValueStore` witness tables run unspecialized: every 16-element load went through a
// witness call. The store therefore tests `E` once per call and enters one of these functions
// with a concrete type, which the optimizer specializes (no calls in the loops; checked with
// objdump: `vcvtph2ps zmm` + `vfmadd231ps zmm`).
//
// Each element is converted once per call, whatever the number of query rows (the rows of a
// prompt block or the G query heads of a KV head), and up to four rows share each loaded key or
// value chunk. The arithmetic per (row, position) is fixed — a dot is `acc = fma(q_c, k_c, acc)`
// over 16-lane chunks c in order from zero, then `tree hsum`, then a scalar tail; a value sum is
// `acc_c = fma(v_jc, w_j, acc_c)` over positions j in order — so a score or an accumulator does
// not depend on how many rows or positions a call covers (batch/decode and thread independence).

enum FloatStoreKernels {
    /// Largest head dim whose converted row fits the stack buffer below.
    static let maxStackDim = 256

    /// out[g·outStride + j] = q_g · k_j for g < rows, j < count.
    /// queries: [rows, d] f32 (`d·4` bytes apart); keys: [count, vectorBytes] elements of E.
    @inline(__always)
    static func scores<E: FloatCacheElement>(_: E.Type, queries: UnsafeRawPointer, rows: Int,
                                             keys: UnsafeRawPointer, vectorBytes: Int, count: Int, d: Int,
                                             out: UnsafeMutablePointer<Float>, outStride: Int) {
        let chunks = d / 16
        let qStride = d * 4
        withUnsafeTemporaryAllocation(byteCount: maxStackDim * 4, alignment: 16) { buffer in
            let row = buffer.baseAddress!
            var k = keys
            for j in 0..<count {
                // The key as f32: read in place for f32 storage, converted once otherwise.
                let kf: UnsafeRawPointer
                if E.byteSize == 4 || d > maxStackDim {
                    kf = k
                } else {
                    for c in 0..<chunks {
                        row.storeBytes(of: E.load16(k + c * 16 * E.byteSize), toByteOffset: c * 64, as: SIMD16<Float>.self)
                    }
                    kf = UnsafeRawPointer(row)
                }
                @inline(__always) func kc(_ c: Int) -> SIMD16<Float> {
                    (E.byteSize == 4 || d > maxStackDim) ? E.load16(kf + c * 16 * E.byteSize)
                        : kf.load(fromByteOffset: c * 64, as: SIMD16<Float>.self)
                }
                var g = 0
                while g + 4 <= rows {
                    let q0 = queries + g * qStride, q1 = q0 + qStride, q2 = q1 + qStride, q3 = q2 + qStride
                    var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
                    for c in 0..<chunks {
                        let kv = kc(c)
                        a0 = a0.addingProduct(q0.loadUnaligned(fromByteOffset: c * 64, as: SIMD16<Float>.self), kv)
                        a1 = a1.addingProduct(q1.loadUnaligned(fromByteOffset: c * 64, as: SIMD16<Float>.self), kv)
                        a2 = a2.addingProduct(q2.loadUnaligned(fromByteOffset: c * 64, as: SIMD16<Float>.self), kv)
                        a3 = a3.addingProduct(q3.loadUnaligned(fromByteOffset: c * 64, as: SIMD16<Float>.self), kv)
                    }
                    out[g * outStride + j] = tail(hsum(a0), q0, k, chunks * 16, d, E.self)
                    out[(g + 1) * outStride + j] = tail(hsum(a1), q1, k, chunks * 16, d, E.self)
                    out[(g + 2) * outStride + j] = tail(hsum(a2), q2, k, chunks * 16, d, E.self)
                    out[(g + 3) * outStride + j] = tail(hsum(a3), q3, k, chunks * 16, d, E.self)
                    g += 4
                }
                while g < rows {
                    let q0 = queries + g * qStride
                    var a0 = SIMD16<Float>()
                    for c in 0..<chunks {
                        a0 = a0.addingProduct(q0.loadUnaligned(fromByteOffset: c * 64, as: SIMD16<Float>.self), kc(c))
                    }
                    out[g * outStride + j] = tail(hsum(a0), q0, k, chunks * 16, d, E.self)
                    g += 1
                }
                k += vectorBytes
            }
        }
    }

    /// acc[g·accStride + i] += Σ_j w[g·weightStride + j] · v_j[i] for g < rows, i < d, j < count in order.
    /// values: [count, vectorBytes] elements of E.
    @inline(__always)
    static func accumulate<E: FloatCacheElement>(_: E.Type, weights: UnsafePointer<Float>, weightStride: Int, rows: Int,
                                                 values: UnsafeRawPointer, vectorBytes: Int, count: Int, d: Int,
                                                 acc: UnsafeMutablePointer<Float>, accStride: Int) {
        accumulateColumns(weights: weights, weightStride: weightStride, rows: rows, count: count, d: d & ~15,
                          acc: acc, accStride: accStride, FloatColumns<E>(values: values, vectorBytes: vectorBytes))
        // Scalar tail of head dims that are not a multiple of 16.
        var i = d & ~15
        while i < d {
            for g in 0..<rows {
                var s = acc[g * accStride + i]
                let w = weights + g * weightStride
                for j in 0..<count { s += w[j] * E.load(values + j * vectorBytes + i * E.byteSize) }
                acc[g * accStride + i] = s
            }
            i += 1
        }
    }

    /// The weighted sum of any value layout that can produce 16 dims of a position as f32:
    /// acc[g·accStride + i] += Σ_j w[g·weightStride + j] · column(j, i)[i′] for i′ < 16, over chunks
    /// i = 0, 16, … < d (d a multiple of 16), positions j < count in order (one fma per term, from the
    /// accumulator's value). `source.column(j, i)` is called once per (j, i) whatever the number of
    /// rows. (A protocol rather than a closure: a closure argument was left as a call per column.)
    @inline(__always)
    static func accumulateColumns<S: ValueColumns>(weights: UnsafePointer<Float>, weightStride: Int, rows: Int, count: Int, d: Int,
                                                   acc: UnsafeMutablePointer<Float>, accStride: Int, _ source: S) {
        if rows <= 4 && d % 64 == 0 {
            accumulateSlabs(weights: weights, weightStride: weightStride, rows: rows, count: count, d: d,
                            acc: acc, accStride: accStride, source)
            return
        }
        let span = 16  // positions per converted column block: 16 × 64 bytes stays a stack buffer
        withUnsafeTemporaryAllocation(byteCount: span * 64, alignment: 16) { buffer in
            let column = buffer.baseAddress!
            var i = 0
            while i + 16 <= d {
                var j0 = 0
                while j0 < count {
                    let n = min(span, count - j0)
                    // Chunk i of positions j0..<j0+n, as f32 [n, 16] (converted once for all rows).
                    for j in 0..<n {
                        column.storeBytes(of: source.column(j0 + j, i), toByteOffset: j * 64, as: SIMD16<Float>.self)
                    }
                    var g = 0
                    while g + 4 <= rows {
                        let p0 = UnsafeMutableRawPointer(acc + g * accStride + i), p1 = p0 + accStride * 4
                        let p2 = p1 + accStride * 4, p3 = p2 + accStride * 4
                        let w0 = weights + g * weightStride + j0, w1 = w0 + weightStride
                        let w2 = w1 + weightStride, w3 = w2 + weightStride
                        var s0 = p0.loadUnaligned(as: SIMD16<Float>.self), s1 = p1.loadUnaligned(as: SIMD16<Float>.self)
                        var s2 = p2.loadUnaligned(as: SIMD16<Float>.self), s3 = p3.loadUnaligned(as: SIMD16<Float>.self)
                        for j in 0..<n {
                            let x = column.load(fromByteOffset: j * 64, as: SIMD16<Float>.self)
                            s0 = s0.addingProduct(x, SIMD16<Float>(repeating: w0[j]))
                            s1 = s1.addingProduct(x, SIMD16<Float>(repeating: w1[j]))
                            s2 = s2.addingProduct(x, SIMD16<Float>(repeating: w2[j]))
                            s3 = s3.addingProduct(x, SIMD16<Float>(repeating: w3[j]))
                        }
                        p0.storeBytes(of: s0, as: SIMD16<Float>.self); p1.storeBytes(of: s1, as: SIMD16<Float>.self)
                        p2.storeBytes(of: s2, as: SIMD16<Float>.self); p3.storeBytes(of: s3, as: SIMD16<Float>.self)
                        g += 4
                    }
                    while g < rows {
                        let p0 = UnsafeMutableRawPointer(acc + g * accStride + i)
                        let w0 = weights + g * weightStride + j0
                        var s0 = p0.loadUnaligned(as: SIMD16<Float>.self)
                        for j in 0..<n {
                            s0 = s0.addingProduct(column.load(fromByteOffset: j * 64, as: SIMD16<Float>.self),
                                                  SIMD16<Float>(repeating: w0[j]))
                        }
                        p0.storeBytes(of: s0, as: SIMD16<Float>.self)
                        g += 1
                    }
                    j0 += n
                }
                i += 16
            }
        }
    }

    /// Adds the scalar tail (positions from..<d) of a dot to its SIMD part.
    @inline(__always)
    static func tail<E: FloatCacheElement>(_ s: Float, _ q: UnsafeRawPointer, _ k: UnsafeRawPointer, _ from: Int, _ d: Int,
                                           _: E.Type) -> Float {
        var s = s
        var i = from
        while i < d { s += q.loadUnaligned(fromByteOffset: i * 4, as: Float.self) * E.load(k + i * E.byteSize); i += 1 }
        return s
    }

    /// VectorOps.hsum's tree (lowHalf + highHalf), inlined here.
    @inline(__always)
    static func hsum(_ v: SIMD16<Float>) -> Float {
        let a = v.lowHalf + v.highHalf
        let b = a.lowHalf + a.highHalf
        let c = b.lowHalf + b.highHalf
        return c[0] + c[1]
    }
}

extension FloatStoreKernels {
    /// `accumulateColumns` for up to 4 rows (decode: the G query heads of a KV head) and d a multiple
    /// of 64: per 64-dim slab, positions stream in order and each one's 4 columns meet the rows'
    /// 4 × 4 accumulators held in registers — no column buffer, each position read once per slab.
    /// Every accumulator gets the same fma sequence as in `accumulateColumns` (bitwise equal).
    @inline(__always)
    static func accumulateSlabs<S: ValueColumns>(weights: UnsafePointer<Float>, weightStride: Int, rows: Int, count: Int, d: Int,
                                                 acc: UnsafeMutablePointer<Float>, accStride: Int, _ source: S) {
        // Rows past `rows` repeat the last row (its weights and accumulator).
        let w0 = weights, w1 = w0 + Swift.min(1, rows - 1) * weightStride
        let w2 = w0 + Swift.min(2, rows - 1) * weightStride, w3 = w0 + Swift.min(3, rows - 1) * weightStride
        var i = 0
        while i < d {
            @inline(__always) func at(_ g: Int, _ c: Int) -> UnsafeMutableRawPointer {
                UnsafeMutableRawPointer(acc + Swift.min(g, rows - 1) * accStride + i + 16 * c)
            }
            @inline(__always) func load(_ g: Int, _ c: Int) -> SIMD16<Float> { at(g, c).loadUnaligned(as: SIMD16<Float>.self) }
            var s00 = load(0, 0), s01 = load(0, 1), s02 = load(0, 2), s03 = load(0, 3)
            var s10 = load(1, 0), s11 = load(1, 1), s12 = load(1, 2), s13 = load(1, 3)
            var s20 = load(2, 0), s21 = load(2, 1), s22 = load(2, 2), s23 = load(2, 3)
            var s30 = load(3, 0), s31 = load(3, 1), s32 = load(3, 2), s33 = load(3, 3)
            for j in 0..<count {
                let x0 = source.column(j, i), x1 = source.column(j, i + 16)
                let x2 = source.column(j, i + 32), x3 = source.column(j, i + 48)
                let a = SIMD16<Float>(repeating: w0[j]), b = SIMD16<Float>(repeating: w1[j])
                let c = SIMD16<Float>(repeating: w2[j]), e = SIMD16<Float>(repeating: w3[j])
                s00 = s00.addingProduct(x0, a); s01 = s01.addingProduct(x1, a); s02 = s02.addingProduct(x2, a); s03 = s03.addingProduct(x3, a)
                s10 = s10.addingProduct(x0, b); s11 = s11.addingProduct(x1, b); s12 = s12.addingProduct(x2, b); s13 = s13.addingProduct(x3, b)
                s20 = s20.addingProduct(x0, c); s21 = s21.addingProduct(x1, c); s22 = s22.addingProduct(x2, c); s23 = s23.addingProduct(x3, c)
                s30 = s30.addingProduct(x0, e); s31 = s31.addingProduct(x1, e); s32 = s32.addingProduct(x2, e); s33 = s33.addingProduct(x3, e)
            }
            // A repeated row computed exactly the last row's values; storing in reverse keeps it harmless.
            @inline(__always) func store(_ g: Int, _ v0: SIMD16<Float>, _ v1: SIMD16<Float>, _ v2: SIMD16<Float>, _ v3: SIMD16<Float>) {
                at(g, 0).storeBytes(of: v0, as: SIMD16<Float>.self); at(g, 1).storeBytes(of: v1, as: SIMD16<Float>.self)
                at(g, 2).storeBytes(of: v2, as: SIMD16<Float>.self); at(g, 3).storeBytes(of: v3, as: SIMD16<Float>.self)
            }
            store(3, s30, s31, s32, s33); store(2, s20, s21, s22, s23)
            store(1, s10, s11, s12, s13); store(0, s00, s01, s02, s03)
            i += 64
        }
    }
}

/// A value layout that yields dims i..<i+16 of position j as f32 (i a multiple of 16).
protocol ValueColumns {
    func column(_ j: Int, _ i: Int) -> SIMD16<Float>
}

/// Row-major float values: [count, vectorBytes] elements of E.
struct FloatColumns<E: FloatCacheElement>: ValueColumns {
    let values: UnsafeRawPointer
    let vectorBytes: Int
    @inline(__always) func column(_ j: Int, _ i: Int) -> SIMD16<Float> { E.load16(values + j * vectorBytes + i * E.byteSize) }
}
