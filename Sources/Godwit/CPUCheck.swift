import CGodwit

/// Verifies that the CPU has every instruction-set feature this build was compiled for, so a
/// binary built with `-target-cpu native` on an AVX-512 machine stops with a clear message on an
/// older CPU instead of dying with an illegal instruction inside a kernel.
public enum CPUCheck {
    static let names: [(UInt32, String)] = [
        (GODWIT_FEATURE_AVX2, "AVX2"), (GODWIT_FEATURE_FMA, "FMA"),
        (GODWIT_FEATURE_F16C, "F16C"), (GODWIT_FEATURE_AVX512F, "AVX-512F"),
        (GODWIT_FEATURE_AVX512BW, "AVX-512BW"), (GODWIT_FEATURE_AVX512VNNI, "AVX-512 VNNI"),
        (GODWIT_FEATURE_AVX512BF16, "AVX-512 BF16"), (GODWIT_FEATURE_AVXVNNI, "AVX-VNNI"),
    ]

    /// Features the build uses, by name.
    public static var buildFeatures: [String] {
        let f = godwit_build_features()
        return names.filter { f & $0.0 != 0 }.map(\.1)
    }

    /// Throws `.unsupportedCPU` when the build uses a feature the CPU lacks.
    public static func verify() throws(GodwitError) {
        #if arch(x86_64)
        let missing = godwit_build_features() & ~godwit_cpu_features()
        if missing != 0 {
            throw .unsupportedCPU(missing: names.filter { missing & $0.0 != 0 }.map(\.1).joined(separator: ", "))
        }
        #endif
    }
}
