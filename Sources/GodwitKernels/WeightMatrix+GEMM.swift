// Prompt GEMM for quantized weights: 4 weight rows × 32 tokens register tiles.
// Source: ggml-cpu/quants.c vec_dot_* math per block (d_w·d_x·Σq·x [+ m·s], k-quants with
// sub-block scales and mins); the blocking is Godwit's own (ggml-cpu instead repacks weights,
// ggml-cpu/repack.cpp).
// Deviation (rounding only): integer block sums are exact and scaled per block in a different order
// than ggml's; the q4_0/q5_0/q8_0/iq4_nl/q6_K offsets are folded into signed weights.
//
// Data:
//   W [rows, cols] ggml blocks. Per group of R = 4 rows and K-chunk of 256 values, the weights are
//   decoded once into signed Int16 (k-quants: sub-block scale folded in, |v| ≤ 4096) and every
//   pair (v[2k], v[2k+1]) is stored as a 64-byte splat: rep [chunkBlocks, R, pairsPerBlock, 16 × UInt32]
//   (32 KiB on the stack), with per-block d, m/dmin and mins.
//   Activations: ActivationBuffer's panel [tiles, cols/2, 32 tokens, 2] Int16, scales [tiles, blocks, 32].
// Micro-kernel per block: for each column pair, two 64-byte panel loads (tokens 0-15, 16-31) times
// the 4 rows' splats into 8 Int32 accumulators: one `vpdpwssd zmm` (32 multiply-adds) each. The
// product is written as 16 lanes of x[2i]·w[2i] + x[2i+1]·w[2i+1] over Int16 pointer loads, the
// shape LLVM's SLP vectorizer turns into `vpmaddwd`/`vpdpwssd` (a broadcast operand or SIMD-typed
// operands do not match; see docs/performance.md). Then per row Float acc += Float(isum)·(d_w·d_x)
// (+ m·s) into 8 Float accumulators held in registers for the whole K-chunk. Partial sums across
// K-chunks live in a stack buffer [R, tiles·32]; results are stored transposed into
// out[t·outStride + r]. Scalar twin: WeightMatrix+Reference.swift.

/// Eight Int32 accumulators: rows 0-3 × token halves a (0-15), b (16-31).
struct IntTile {
    var r0a = SIMD16<Int32>(), r0b = SIMD16<Int32>(), r1a = SIMD16<Int32>(), r1b = SIMD16<Int32>()
    var r2a = SIMD16<Int32>(), r2b = SIMD16<Int32>(), r3a = SIMD16<Int32>(), r3b = SIMD16<Int32>()
}

/// Eight Float accumulators (rows 0-3 × token halves), kept in registers across a K-chunk and
/// loaded from / stored to the [R, ld] partial-sum buffer around it.
struct FloatTile {
    var r0a: SIMD16<Float>, r0b: SIMD16<Float>, r1a: SIMD16<Float>, r1b: SIMD16<Float>
    var r2a: SIMD16<Float>, r2b: SIMD16<Float>, r3a: SIMD16<Float>, r3b: SIMD16<Float>

    @inline(__always) init(_ p: UnsafeMutablePointer<Float>, _ ld: Int) {
        let r = UnsafeRawPointer(p)
        r0a = r.load(as: SIMD16<Float>.self); r0b = r.load(fromByteOffset: 64, as: SIMD16<Float>.self)
        r1a = r.load(fromByteOffset: 4 * ld, as: SIMD16<Float>.self); r1b = r.load(fromByteOffset: 4 * ld + 64, as: SIMD16<Float>.self)
        r2a = r.load(fromByteOffset: 8 * ld, as: SIMD16<Float>.self); r2b = r.load(fromByteOffset: 8 * ld + 64, as: SIMD16<Float>.self)
        r3a = r.load(fromByteOffset: 12 * ld, as: SIMD16<Float>.self); r3b = r.load(fromByteOffset: 12 * ld + 64, as: SIMD16<Float>.self)
    }

    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>, _ ld: Int) {
        let r = UnsafeMutableRawPointer(p)
        r.storeBytes(of: r0a, as: SIMD16<Float>.self); r.storeBytes(of: r0b, toByteOffset: 64, as: SIMD16<Float>.self)
        r.storeBytes(of: r1a, toByteOffset: 4 * ld, as: SIMD16<Float>.self); r.storeBytes(of: r1b, toByteOffset: 4 * ld + 64, as: SIMD16<Float>.self)
        r.storeBytes(of: r2a, toByteOffset: 8 * ld, as: SIMD16<Float>.self); r.storeBytes(of: r2b, toByteOffset: 8 * ld + 64, as: SIMD16<Float>.self)
        r.storeBytes(of: r3a, toByteOffset: 12 * ld, as: SIMD16<Float>.self); r.storeBytes(of: r3b, toByteOffset: 12 * ld + 64, as: SIMD16<Float>.self)
    }

    /// += Float(i)·(dx·d[r]) for the 4 rows.
    @inline(__always) mutating func add(_ i: IntTile, _ dxa: SIMD16<Float>, _ dxb: SIMD16<Float>, _ d: UnsafePointer<Float>) {
        r0a = r0a.addingProduct(Lanes.float(i.r0a), dxa * d[0]); r0b = r0b.addingProduct(Lanes.float(i.r0b), dxb * d[0])
        r1a = r1a.addingProduct(Lanes.float(i.r1a), dxa * d[1]); r1b = r1b.addingProduct(Lanes.float(i.r1b), dxb * d[1])
        r2a = r2a.addingProduct(Lanes.float(i.r2a), dxa * d[2]); r2b = r2b.addingProduct(Lanes.float(i.r2b), dxb * d[2])
        r3a = r3a.addingProduct(Lanes.float(i.r3a), dxa * d[3]); r3b = r3b.addingProduct(Lanes.float(i.r3b), dxb * d[3])
    }

    /// += s·m[r] for the 4 rows (q4_1/q5_1 mins against q8_1 sums).
    @inline(__always) mutating func addMins(_ sa: SIMD16<Float>, _ sb: SIMD16<Float>, _ m: UnsafePointer<Float>) {
        r0a = r0a.addingProduct(sa, SIMD16(repeating: m[0])); r0b = r0b.addingProduct(sb, SIMD16(repeating: m[0]))
        r1a = r1a.addingProduct(sa, SIMD16(repeating: m[1])); r1b = r1b.addingProduct(sb, SIMD16(repeating: m[1]))
        r2a = r2a.addingProduct(sa, SIMD16(repeating: m[2])); r2b = r2b.addingProduct(sb, SIMD16(repeating: m[2]))
        r3a = r3a.addingProduct(sa, SIMD16(repeating: m[3])); r3b = r3b.addingProduct(sb, SIMD16(repeating: m[3]))
    }
}

enum GEMMKernel {
    static let rowsPerTile = 4
    static let tokensPerTile = ActivationBuffer.tile
    /// K values per decoded chunk: the splat scratch is 4 rows × 128 pairs × 64 bytes = 32 KiB.
    static let chunkValues = 256

    @inline(__always) static func pair(_ x: UnsafePointer<Int16>, _ y: UnsafePointer<Int16>, _ i: Int) -> Int32 {
        Int32(x[2 * i]) &* Int32(y[2 * i]) &+ Int32(x[2 * i + 1]) &* Int32(y[2 * i + 1])
    }

    /// Lane i = a[2i]·b[2i] + a[2i+1]·b[2i+1] over 32 Int16 at `a` and `b`: one `vpmaddwd`.
    @inline(__always) static func pairs(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer) -> SIMD16<Int32> {
        let x = a.assumingMemoryBound(to: Int16.self), y = b.assumingMemoryBound(to: Int16.self)
        return SIMD16<Int32>(pair(x, y, 0), pair(x, y, 1), pair(x, y, 2), pair(x, y, 3),
                             pair(x, y, 4), pair(x, y, 5), pair(x, y, 6), pair(x, y, 7),
                             pair(x, y, 8), pair(x, y, 9), pair(x, y, 10), pair(x, y, 11),
                             pair(x, y, 12), pair(x, y, 13), pair(x, y, 14), pair(x, y, 15))
    }

    /// Σ over n column pairs of 4 rows × 32 tokens. `w` = splats of row 0's first pair (rows
    /// `ws` bytes apart, pairs 64 bytes apart), `p` = panel at the first pair (128 bytes per pair).
    @inline(__always) static func dot(_ w: UnsafeRawPointer, _ ws: Int, _ p: UnsafeRawPointer, _ n: Int) -> IntTile {
        var a = IntTile()
        for k in 0..<n {
            let xa = p + 128 * k, xb = xa + 64
            let w0 = w + 64 * k, w1 = w0 + ws, w2 = w1 + ws, w3 = w2 + ws
            a.r0a &+= pairs(xa, w0); a.r0b &+= pairs(xb, w0)
            a.r1a &+= pairs(xa, w1); a.r1b &+= pairs(xb, w1)
            a.r2a &+= pairs(xa, w2); a.r2b &+= pairs(xb, w2)
            a.r3a &+= pairs(xa, w3); a.r3b &+= pairs(xb, w3)
        }
        return a
    }

    /// Stores `values` [2n] Int32 (each fitting in Int16) as n 64-byte splats of their Int16 pairs.
    @inline(__always) static func splatPairs(_ values: UnsafePointer<Int32>, _ n: Int, _ dst: UnsafeMutableRawPointer) {
        for k in 0..<n {
            let word = UInt32(truncatingIfNeeded: values[2 * k]) & 0xFFFF | UInt32(truncatingIfNeeded: values[2 * k + 1]) << 16
            dst.storeBytes(of: SIMD16<UInt32>(repeating: word), toByteOffset: 64 * k, as: SIMD16<UInt32>.self)
        }
    }

    /// acc += a·b
    @inline(__always) static func fma(_ acc: UnsafeMutablePointer<Float>, _ a: SIMD16<Float>, _ b: SIMD16<Float>) {
        let raw = UnsafeMutableRawPointer(acc)
        raw.storeBytes(of: raw.load(as: SIMD16<Float>.self).addingProduct(a, b), as: SIMD16<Float>.self)
    }

    /// Writes acc [R, ld] (tokens 0..<tokens) transposed into out[t·outStride + r0 + r], r < nr.
    @inline(__always) static func store(_ acc: UnsafeMutablePointer<Float>, _ ld: Int, _ nr: Int, _ tokens: Int,
                                        _ out: UnsafeMutablePointer<Float>, _ outStride: Int, _ r0: Int) {
        for t in 0..<tokens {
            for r in 0..<nr { out[t * outStride + r0 + r] = acc[r * ld + t] }
        }
    }
}

extension WeightMatrix {
    /// GEMM for 32-value block formats. out[t·outStride + r] for r in rows, t in 0..<x.rows.
    func gemm32<F: Block32Format>(_: F.Type, _ x: ActivationBuffer, _ rows: Range<Int>,
                                  _ out: UnsafeMutablePointer<Float>, _ outStride: Int) {
        let R = GEMMKernel.rowsPerTile, T = GEMMKernel.tokensPerTile
        let nb = cols / 32, cb = min(nb, GEMMKernel.chunkValues / 32)
        let tiles = (x.rows + T - 1) / T, ld = tiles * T
        let panel = UnsafeRawPointer(x.panel), pScale = x.panelScale, pSum = x.panelSum
        let tileBytes = cols * T * 2, blockRep = 16 * 64
        withUnsafeTemporaryAllocation(byteCount: cb * R * blockRep + 128 + 64, alignment: 64) { scratch in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: cb * R * 2 + R * ld) { fs in
                let rep = scratch.baseAddress!, values = (rep + cb * R * blockRep).assumingMemoryBound(to: Int32.self)
                let gathered = rep + cb * R * blockRep + 128   // one block read back from the interleaved layout
                let wd = fs.baseAddress!, wm = wd + cb * R, acc = wm + cb * R
                var r0 = rows.lowerBound
                while r0 < rows.upperBound {
                    let nr = min(R, rows.upperBound - r0)
                    acc.initialize(repeating: 0, count: R * ld)
                    var kb = 0
                    while kb < nb {
                        let n = min(cb, nb - kb)
                        // Prefetch what the next chunk decodes (these rows' next blocks, or the next rows).
                        let (pr, pk) = kb + n < nb ? (r0, kb + n) : (r0 + R, 0)
                        if interleaved == nil {
                            for r in 0..<R where pr + r < self.rows { Self.prefetch(row(pr + r) + pk * F.bytes, bytes: cb * F.bytes) }
                        }
                        // Decode rows r0..<r0+nr, blocks kb..<kb+n into splats (missing rows: zeros).
                        for bi in 0..<n {
                            for r in 0..<R {
                                let o = bi * R + r
                                if r < nr {
                                    let blk = interleaved.map { interleavedBlock($0, r0 + r, kb + bi, gathered) }
                                        ?? row(r0 + r) + (kb + bi) * F.bytes
                                    let (q0, q1) = F.quants(blk)
                                    let v = UnsafeMutableRawPointer(values)
                                    v.storeBytes(of: q0 &- F.bias, as: SIMD16<Int32>.self)
                                    v.storeBytes(of: q1 &- F.bias, toByteOffset: 64, as: SIMD16<Int32>.self)
                                    wd[o] = F.scale(blk); wm[o] = F.minimum(blk)
                                } else {
                                    values.initialize(repeating: 0, count: 32)
                                    wd[o] = 0; wm[o] = 0
                                }
                                GEMMKernel.splatPairs(values, 16, rep + o * blockRep)
                            }
                        }
                        for tl in 0..<tiles {
                            let pt = panel + tl * tileBytes
                            let at = acc + tl * T
                            var f = FloatTile(at, ld)
                            for bi in 0..<n {
                                let b = kb + bi
                                let i = GEMMKernel.dot(rep + bi * R * blockRep, blockRep, pt + b * 16 * 128, 16)
                                let sp = UnsafeRawPointer(pScale + (tl * nb + b) * T)
                                f.add(i, sp.load(as: SIMD16<Float>.self), sp.load(fromByteOffset: 64, as: SIMD16<Float>.self), wd + bi * R)
                                if F.hasMin {
                                    let sq = UnsafeRawPointer(pSum + (tl * nb + b) * T)
                                    f.addMins(sq.load(as: SIMD16<Float>.self), sq.load(fromByteOffset: 64, as: SIMD16<Float>.self), wm + bi * R)
                                }
                            }
                            f.store(at, ld)
                        }
                        kb += n
                    }
                    GEMMKernel.store(acc, ld, nr, x.rows, out, outStride, r0)
                    r0 += R
                }
            }
        }
    }

    /// GEMM for the k-quants (super-blocks of 256 against q8_K). Same tiling as `gemm32`, one
    /// super-block per K-chunk.
    func gemmK<F: KQuantFormat>(_: F.Type, _ x: ActivationBuffer, _ rows: Range<Int>,
                                _ out: UnsafeMutablePointer<Float>, _ outStride: Int) {
        let R = GEMMKernel.rowsPerTile, T = GEMMKernel.tokensPerTile
        let nb = cols / 256
        let tiles = (x.rows + T - 1) / T, ld = tiles * T
        let panel = UnsafeRawPointer(x.panel), pScale = x.panelScale, pMins = x.panelMins
        let tileBytes = cols * T * 2, rowRep = 128 * 64
        withUnsafeTemporaryAllocation(byteCount: R * rowRep + 1024, alignment: 64) { scratch in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * R + R * ld) { fs in
                withUnsafeTemporaryAllocation(of: Int32.self, capacity: 8 * R) { mins in
                    let rep = scratch.baseAddress!, values = (rep + R * rowRep).assumingMemoryBound(to: Int32.self)
                    let wd = fs.baseAddress!, wdm = wd + R, acc = wdm + R
                    let wmins = mins.baseAddress!
                    var r0 = rows.lowerBound
                    while r0 < rows.upperBound {
                        let nr = min(R, rows.upperBound - r0)
                        acc.initialize(repeating: 0, count: R * ld)
                        for b in 0..<nb {
                            let (pr, pb) = b + 1 < nb ? (r0, b + 1) : (r0 + R, 0)
                            for r in 0..<R where pr + r < self.rows { Self.prefetch(row(pr + r) + pb * F.bytes, bytes: F.bytes) }
                            for r in 0..<R {
                                if r < nr {
                                    let blk = row(r0 + r) + b * F.bytes
                                    _ = F.unpack(blk, into: values)
                                    (wd[r], wdm[r]) = F.scales(blk)
                                    if F.hasMins {
                                        let m = F.mins(blk)
                                        for j in 0..<8 { wmins[r * 8 + j] = Int32(m[j]) }
                                    }
                                } else {
                                    values.initialize(repeating: 0, count: 256)
                                    wd[r] = 0; wdm[r] = 0
                                    for j in 0..<8 { wmins[r * 8 + j] = 0 }
                                }
                                GEMMKernel.splatPairs(values, 128, rep + r * rowRep)
                            }
                            for tl in 0..<tiles {
                                let at = acc + tl * T
                                let i = GEMMKernel.dot(rep, rowRep, panel + tl * tileBytes + b * 128 * 128, 128)
                                let sp = UnsafeRawPointer(pScale + (tl * nb + b) * T)
                                let dxa = sp.load(as: SIMD16<Float>.self), dxb = sp.load(fromByteOffset: 64, as: SIMD16<Float>.self)
                                if F.hasMins {
                                    // acc −= d_x·dmin·Σ_j m_j·bsum32_j
                                    let mp = UnsafeRawPointer(pMins + (tl * nb + b) * 8 * T)
                                    for r in 0..<R {
                                        var ma = SIMD16<Int32>(), mb = SIMD16<Int32>()
                                        for j in 0..<8 {
                                            let m = SIMD16<Int32>(repeating: wmins[r * 8 + j])
                                            ma &+= Lanes.widen(mp.load(fromByteOffset: 2 * j * T, as: SIMD16<Int16>.self)) &* m
                                            mb &+= Lanes.widen(mp.load(fromByteOffset: 2 * j * T + 32, as: SIMD16<Int16>.self)) &* m
                                        }
                                        let dm = SIMD16<Float>(repeating: -wdm[r])
                                        GEMMKernel.fma(at + r * ld, Lanes.float(ma), dxa * dm)
                                        GEMMKernel.fma(at + r * ld + 16, Lanes.float(mb), dxb * dm)
                                    }
                                }
                                var f = FloatTile(at, ld)
                                f.add(i, dxa, dxb, wd)
                                f.store(at, ld)
                            }
                        }
                        GEMMKernel.store(acc, ld, nr, x.rows, out, outStride, r0)
                        r0 += R
                    }
                }
            }
        }
    }
}
