// q4_K and q6_K weight products in llama.cpp's exact float order (Numerics.ggml).
// Source: llama.cpp (llama-cpp-python 0.3.36 vendor tree) as built with -march=native on Zen 4
// (AVX2, AVX512F/BW/DQ/VL, AVX512-VNNI):
//   q4_K  ggml-cpu/repack.cpp `ggml_repack_get_optimal_repack_type` repacks every q4_K matrix with
//         a multiple of 8 rows (AVX2) to `block_q4_Kx8`; `forward_mul_mat` quantizes the first
//         n − n%4 activation rows with `ggml_quantize_mat_q8_K_4x8`, the rest with
//         `quantize_row_q8_K`, then runs `ggml_gemm_q4_K_8x8_q8_K` (arch/x86/repack.cpp, the
//         `__AVX512BW__ && __AVX512DQ__` branch, and its AVX2 twin for column remainders: the same
//         float order) on those n − n%4 rows when n > 3, and `ggml_gemv_q4_K_8x8_q8_K` (AVX2 branch)
//         on each remaining row.
//   q6_K  not repacked on x86. ggml-cpu.c `ggml_compute_forward_mul_mat` first tries
//         ggml-cpu/tiled (`ggml_compute_forward_mul_mat_tiled`: q6_K with ≥ 8 activation rows,
//         `tiled_run_micro_vnni_8x16<16, false, 32>`); llamafile's tinyBLAS has no q6_K, so fewer
//         rows use `ggml_vec_dot_q6_K_q8_K` (arch/x86/quants.c, `__AVX2__` branch) per (row, token).
// Activations: q8_K as `ActivationBuffer` writes it (`quantize_row_q8_K_ref`). The AVX2
// `ggml_quantize_mat_q8_K_4x8` rounds the same way (nearest even, d = 1/iscale) and differs only
// in which sign it picks when a block holds both +amax and −amax: that negates every quant and d
// together, which leaves every product below unchanged (IEEE rounding is sign-symmetric).
//
// Per weight row r and token t (integer sums are exact, so only the float steps are ordered):
//   q4_K block b: d_w, dmin_w (f16), sub-block j = 0..<8 of 32 values with 6-bit sc_j, m_j;
//     S_j = Σ q4·q8 over sub-block j, B_j = bsums[2j] + bsums[2j+1], d_x = q8_K d (f32)
//     gemv (one fmadd per block):  acc  = fma(Float(Σ_j sc_j·S_j), d_w·d_x, acc)
//                                  accm = fma(Float(Σ_j m_j·B_j), dmin_w·d_x, accm)
//     gemm (one fmadd per pair of sub-blocks, sb = 0..<4):
//                                  acc  = fma(Float(sc_2sb·S_2sb + sc_2sb+1·S_2sb+1), d_w·d_x, acc)
//                                  accm = fma(Float(m_2sb·B_2sb + m_2sb+1·B_2sb+1), dmin_w·d_x, accm)
//     result = acc − accm
//   q6_K block b: 16 sub-blocks of 16 with int8 scales sc_s, q6 codes u = 0..63 (value u − 32):
//     vec_dot (8 int32 lanes L): lane L = Σ_{n<2, g<4} sc[8n+2g+(L≥4)]·Σ_{e=4(L%4)..+3} u·q8 over
//       bytes 16(L≥4)+e of the 32 values at 128n+32g, minus 32·(sc[2L]·bsums[2L] + sc[2L+1]·bsums[2L+1]);
//       acc_L = fma(d_x·d_w, Float(lane L), acc_L); result = hsum_float_8(acc)
//     tiled: s1 = Σ_s sc_s·Σ (u − 32)·q8 (the whole block); acc = fma(Float(s1)·d_w, d_x, acc)
//       (the C writes `_mm512_add_ps(buf, _mm512_mul_ps(result, d1))`, which GCC contracts into an
//       FMA under -ffp-contract=fast; `GGMLExact.variant.fusedTiled`)
// Deviations: none known for these paths (Gemma 3 270M's logits match llama.cpp's to its 4 printed
// decimals at every prompt position of the reference set). Not reproduced: q4_K matrices whose row
// count is not a multiple of 8 (llama.cpp does not repack them: tiled or ggml_vec_dot_q4_K_q8_K;
// `hasGGMLProduct` is false and they use the fast kernels), and llama.cpp runs without the repack
// buffer (`--no-repack`). Scalar twins: the `…Reference` functions below
// (Tests/GodwitTests/ExactNumericsTests.swift).

extension GGMLExact {
    /// How llama.cpp multiplies a q4_K matrix by `n` activation rows: whether row `t` goes through
    /// the repacked gemm (the first n − n%4 rows when n > 3) or the gemv.
    @inline(__always) public static func q4KUsesGemm(token t: Int, of n: Int) -> Bool { n > 3 && t < n - n % 4 }

    /// Whether llama.cpp multiplies a q6_K matrix by `n` activation rows with ggml-cpu/tiled (n ≥ 8)
    /// rather than one `ggml_vec_dot_q6_K_q8_K` per (row, token).
    @inline(__always) public static func q6KUsesTiled(rows n: Int) -> Bool { n >= 8 }

    // MARK: q4_K

    /// Per sub-block j of one q4_K block `wb` [d f16, dmin f16, scales 12 B, qs 128 B] against one
    /// q8_K block `xb` [d f32, qs 256 B, bsums 16 × i16]: sc_j·S_j and m_j·B_j (exact).
    @inline(__always)
    static func q4KSubBlocks(_ wb: UnsafeRawPointer, _ xb: UnsafeRawPointer) -> (scaled: SIMD8<Int32>, mins: SIMD8<Int32>) {
        let (sc, mn) = KQuantScales.unpack(wb + BlockLayout.Q4_K.scales)
        var s = SIMD8<Int32>()
        for i in 0..<4 {
            let a = wb.loadUnaligned(fromByteOffset: BlockLayout.Q4_K.qs + 32 * i, as: SIMD16<UInt8>.self)
            let b = wb.loadUnaligned(fromByteOffset: BlockLayout.Q4_K.qs + 32 * i + 16, as: SIMD16<UInt8>.self)
            let q = 4 + 64 * i
            let lo = Lanes.widen(a & 0x0F) &* Lanes.signedBytes(xb, q) &+ Lanes.widen(b & 0x0F) &* Lanes.signedBytes(xb, q + 16)
            let hi = Lanes.widen(a &>> 4) &* Lanes.signedBytes(xb, q + 32) &+ Lanes.widen(b &>> 4) &* Lanes.signedBytes(xb, q + 48)
            s[2 * i] = Lanes.sum(lo)
            s[2 * i + 1] = Lanes.sum(hi)
        }
        let bs = xb.loadUnaligned(fromByteOffset: BlockLayout.Q8_K.bsums, as: SIMD16<Int16>.self)
        var bj = SIMD8<Int32>()
        for j in 0..<8 { bj[j] = Int32(bs[2 * j]) &+ Int32(bs[2 * j + 1]) }
        var scw = SIMD8<Int32>(), mnw = SIMD8<Int32>()
        for j in 0..<8 { scw[j] = Int32(sc[j]); mnw[j] = Int32(mn[j]) }
        return (s &* scw, bj &* mnw)
    }

    @inline(__always) static func wrappingSum(_ v: SIMD8<Int32>) -> Int32 {
        let a = v.lowHalf &+ v.highHalf
        return a[0] &+ a[1] &+ a[2] &+ a[3]
    }

    /// `ggml_gemv_q4_K_8x8_q8_K` for one (row, token): w `blocks` q4_K blocks, x `blocks` q8_K blocks.
    @inline(__always)
    public static func dotQ4KGemv(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, blocks nb: Int) -> Float {
        var acc: Float = 0, accm: Float = 0
        for b in 0..<nb {
            let wb = w + BlockLayout.Q4_K.bytes * b, xb = x + BlockLayout.Q8_K.bytes * b
            let dx = xb.loadUnaligned(fromByteOffset: BlockLayout.Q8_K.d, as: Float.self)
            let (s, m) = q4KSubBlocks(wb, xb)
            acc = acc.addingProduct(Float(wrappingSum(s)), half(wb, BlockLayout.Q4_K.d) * dx)
            accm = accm.addingProduct(Float(wrappingSum(m)), half(wb, BlockLayout.Q4_K.dmin) * dx)
        }
        return acc - accm
    }

    /// `ggml_gemm_q4_K_8x8_q8_K` for one (row, token) (AVX512 and AVX2 branches alike).
    @inline(__always)
    public static func dotQ4KGemm(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, blocks nb: Int) -> Float {
        var acc: Float = 0, accm: Float = 0
        for b in 0..<nb {
            let wb = w + BlockLayout.Q4_K.bytes * b, xb = x + BlockLayout.Q8_K.bytes * b
            let dx = xb.loadUnaligned(fromByteOffset: BlockLayout.Q8_K.d, as: Float.self)
            let d = half(wb, BlockLayout.Q4_K.d) * dx, dm = half(wb, BlockLayout.Q4_K.dmin) * dx
            let (s, m) = q4KSubBlocks(wb, xb)
            for sb in 0..<4 {
                acc = acc.addingProduct(Float(s[2 * sb] &+ s[2 * sb + 1]), d)
                accm = accm.addingProduct(Float(m[2 * sb] &+ m[2 * sb + 1]), dm)
            }
        }
        return acc - accm
    }

    // MARK: q6_K

    /// The 8 int32 lanes of `ggml_vec_dot_q6_K_q8_K`'s `sumi` (after the −32·scale·bsums correction)
    /// for one q6_K block `wb` [ql 128 B, qh 64 B, scales 16 × i8, d f16] and q8_K block `xb`.
    @inline(__always)
    static func q6KLanes(_ wb: UnsafeRawPointer, _ xb: UnsafeRawPointer) -> SIMD8<Int32> {
        let L = BlockLayout.Q6_K.self
        var first = SIMD16<Int32>(), second = SIMD16<Int32>()   // bytes 0..<16 / 16..<32 of each 32-value chunk
        for n in 0..<2 {
            let h0 = wb.loadUnaligned(fromByteOffset: L.qh + 32 * n, as: SIMD16<UInt8>.self)
            let h1 = wb.loadUnaligned(fromByteOffset: L.qh + 32 * n + 16, as: SIMD16<UInt8>.self)
            for g in 0..<4 {
                let l0 = wb.loadUnaligned(fromByteOffset: L.ql + 64 * n + 32 * (g % 2), as: SIMD16<UInt8>.self)
                let l1 = wb.loadUnaligned(fromByteOffset: L.ql + 64 * n + 32 * (g % 2) + 16, as: SIMD16<UInt8>.self)
                let shift = UInt8(2 * g)
                let u0 = (g < 2 ? l0 & 0x0F : l0 &>> 4) | (((h0 &>> shift) & 3) &<< 4)
                let u1 = (g < 2 ? l1 & 0x0F : l1 &>> 4) | (((h1 &>> shift) & 3) &<< 4)
                let q = 4 + 128 * n + 32 * g
                let s0 = Int32(wb.load(fromByteOffset: L.scales + 8 * n + 2 * g, as: Int8.self))
                let s1 = Int32(wb.load(fromByteOffset: L.scales + 8 * n + 2 * g + 1, as: Int8.self))
                first = first &+ (Lanes.widen(u0) &* Lanes.signedBytes(xb, q)) &* s0
                second = second &+ (Lanes.widen(u1) &* Lanes.signedBytes(xb, q + 16)) &* s1
            }
        }
        var lanes = SIMD8<Int32>(lowHalf: quads(first), highHalf: quads(second))
        let bs = xb.loadUnaligned(fromByteOffset: BlockLayout.Q8_K.bsums, as: SIMD16<Int16>.self)
        for l in 0..<8 {
            let c = Int32(bs[2 * l]) &* Int32(wb.load(fromByteOffset: L.scales + 2 * l, as: Int8.self))
                &+ Int32(bs[2 * l + 1]) &* Int32(wb.load(fromByteOffset: L.scales + 2 * l + 1, as: Int8.self))
            lanes[l] = lanes[l] &- (c &<< 5)
        }
        return lanes
    }

    /// `ggml_vec_dot_q6_K_q8_K` (AVX2 order): w `blocks` q6_K blocks, x `blocks` q8_K blocks.
    @inline(__always)
    public static func dotQ6KVec(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, blocks nb: Int) -> Float {
        var acc = SIMD8<Float>()
        for b in 0..<nb {
            let wb = w + BlockLayout.Q6_K.bytes * b, xb = x + BlockLayout.Q8_K.bytes * b
            let d = xb.loadUnaligned(fromByteOffset: BlockLayout.Q8_K.d, as: Float.self) * half(wb, BlockLayout.Q6_K.d)
            acc = acc.addingProduct(SIMD8<Float>(repeating: d), float8(q6KLanes(wb, xb)))
        }
        return hsum8(acc)
    }

    /// ggml-cpu/tiled's q6_K (VNNI microkernel) for one (row, token).
    @inline(__always)
    public static func dotQ6KTiled(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, blocks nb: Int) -> Float {
        let fused = variant.fusedTiled
        var acc: Float = 0
        for b in 0..<nb {
            let wb = w + BlockLayout.Q6_K.bytes * b, xb = x + BlockLayout.Q8_K.bytes * b
            let dx = xb.loadUnaligned(fromByteOffset: BlockLayout.Q8_K.d, as: Float.self)
            let result = Float(wrappingSum(q6KLanes(wb, xb))) * half(wb, BlockLayout.Q6_K.d)
            acc = fused ? acc.addingProduct(result, dx) : acc + result * dx
        }
        return acc
    }

    // MARK: Scalar twins, written from the C (element loops)

    /// Sub-block j of a q4_K block: (sc_j, m_j, S_j, B_j), element by element.
    static func q4KSubBlockReference(_ wb: UnsafeRawPointer, _ xb: UnsafeRawPointer, _ j: Int) -> (Int32, Int32, Int32, Int32) {
        let (sc, m) = KQuantScales.scaleMin(j, wb + BlockLayout.Q4_K.scales)
        var s: Int32 = 0
        for l in 0..<32 {
            let byte = wb.load(fromByteOffset: BlockLayout.Q4_K.qs + 32 * (j / 2) + l, as: UInt8.self)
            let q = Int32(j % 2 == 0 ? byte & 15 : byte >> 4)
            s += q * Int32(xb.load(fromByteOffset: BlockLayout.Q8_K.qs + 32 * j + l, as: Int8.self))
        }
        let bsum = { (i: Int) in Int32(xb.loadUnaligned(fromByteOffset: BlockLayout.Q8_K.bsums + 2 * i, as: Int16.self)) }
        return (Int32(sc), Int32(m), s, bsum(2 * j) + bsum(2 * j + 1))
    }

    /// Scalar twin of `dotQ4KGemv`.
    public static func dotQ4KGemvReference(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, blocks nb: Int) -> Float {
        var acc: Float = 0, accm: Float = 0
        for b in 0..<nb {
            let wb = w + 144 * b, xb = x + 292 * b
            var isum: Int32 = 0, imin: Int32 = 0
            for j in 0..<8 {
                let (sc, m, s, bs) = q4KSubBlockReference(wb, xb, j)
                isum += sc * s; imin += m * bs
            }
            let dx = xb.loadUnaligned(as: Float.self)
            acc = fma(Float(isum), half(wb, 0) * dx, acc)
            accm = fma(Float(imin), half(wb, 2) * dx, accm)
        }
        return acc - accm
    }

    /// Scalar twin of `dotQ4KGemm`.
    public static func dotQ4KGemmReference(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, blocks nb: Int) -> Float {
        var acc: Float = 0, accm: Float = 0
        for b in 0..<nb {
            let wb = w + 144 * b, xb = x + 292 * b
            let dx = xb.loadUnaligned(as: Float.self)
            for sb in 0..<4 {
                let (sc0, m0, s0, b0) = q4KSubBlockReference(wb, xb, 2 * sb)
                let (sc1, m1, s1, b1) = q4KSubBlockReference(wb, xb, 2 * sb + 1)
                acc = fma(Float(sc0 * s0 + sc1 * s1), half(wb, 0) * dx, acc)
                accm = fma(Float(m0 * b0 + m1 * b1), half(wb, 2) * dx, accm)
            }
        }
        return acc - accm
    }

    /// The q6_K code (0..63, value + 32) of value i and its scale, element by element.
    static func q6KCodeReference(_ wb: UnsafeRawPointer, _ i: Int) -> (u: Int32, scale: Int32) {
        let n = i / 128, g = (i % 128) / 32, l = i % 32
        let ql = wb.load(fromByteOffset: 64 * n + 32 * (g % 2) + l, as: UInt8.self)
        let qh = wb.load(fromByteOffset: 128 + 32 * n + l, as: UInt8.self)
        let u = Int32(g < 2 ? ql & 15 : ql >> 4) | Int32((qh >> UInt8(2 * g)) & 3) << 4
        return (u, Int32(wb.load(fromByteOffset: 192 + 8 * n + 2 * g + l / 16, as: Int8.self)))
    }

    /// Scalar twin of `dotQ6KVec`: the C's lanes, byte by byte.
    public static func dotQ6KVecReference(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, blocks nb: Int) -> Float {
        var acc = [Float](repeating: 0, count: 8)
        for b in 0..<nb {
            let wb = w + 210 * b, xb = x + 292 * b
            let d = xb.loadUnaligned(as: Float.self) * half(wb, 208)
            for lane in 0..<8 {
                var s: Int32 = 0
                for n in 0..<2 {
                    for g in 0..<4 {
                        for e in 4 * lane..<4 * lane + 4 {
                            let i = 128 * n + 32 * g + e
                            let (u, sc) = q6KCodeReference(wb, i)
                            s += sc * u * Int32(xb.load(fromByteOffset: 4 + i, as: Int8.self))
                        }
                    }
                }
                let bsum = { (i: Int) in Int32(xb.loadUnaligned(fromByteOffset: 260 + 2 * i, as: Int16.self)) }
                let scale = { (i: Int) in Int32(wb.load(fromByteOffset: 192 + i, as: Int8.self)) }
                s -= 32 * (bsum(2 * lane) * scale(2 * lane) + bsum(2 * lane + 1) * scale(2 * lane + 1))
                acc[lane] = fma(d, Float(s), acc[lane])
            }
        }
        return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
    }

    /// Scalar twin of `dotQ6KTiled` (`tiled_run_microtile_scalar`'s integer sums, the VNNI epilogue).
    public static func dotQ6KTiledReference(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, blocks nb: Int) -> Float {
        let fused = variant.fusedTiled
        var acc: Float = 0
        for b in 0..<nb {
            let wb = w + 210 * b, xb = x + 292 * b
            var s1: Int32 = 0
            for s in 0..<16 {
                var raw: Int32 = 0, bsum: Int32 = 0
                for e in 0..<16 {
                    let q8 = Int32(xb.load(fromByteOffset: 4 + 16 * s + e, as: Int8.self))
                    raw += q6KCodeReference(wb, 16 * s + e).u * q8
                    bsum += q8
                }
                s1 += q6KCodeReference(wb, 16 * s).scale * (raw - 32 * bsum)
            }
            let result = Float(s1) * half(wb, 208), d1 = xb.loadUnaligned(as: Float.self)
            acc = fused ? fma(result, d1, acc) : acc + result * d1
        }
        return acc
    }
}
