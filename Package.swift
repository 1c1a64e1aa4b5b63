// swift-tools-version:6.0
//
// Godwit: long-context LLM inference in Swift around a quantized KV cache.
//
// Build flags. The hot targets (kernels, KV cache, model) are compiled for a specific CPU so that
// SIMD code becomes AVX-512/VNNI (x86-64) or NEON (arm64) instructions instead of library calls:
//   GODWIT_TARGET_CPU=native   (default on x86-64: the build machine's CPU, e.g. znver4)
//   GODWIT_TARGET_CPU=x86-64   portable x86-64 binary (no AVX; slow but runs anywhere)
//   GODWIT_TARGET_CPU=haswell  AVX2/FMA/F16C binary for pre-AVX-512 CPUs
//   GODWIT_TARGET_CPU=none     pass no -target-cpu at all (the default on arm64)
// A binary built for a CPU the machine lacks stops at start-up with a message naming the switch
// (see CGodwit's cpu check), never with an illegal instruction in the middle of a kernel.
//
// unsafeFlags make this package usable as a dependency only by path or branch, not by version;
// set GODWIT_SAFE_FLAGS=1 to build without them (correct, portable, several times slower).
import PackageDescription
import Foundation

let env = ProcessInfo.processInfo.environment
let safeFlagsOnly = env["GODWIT_SAFE_FLAGS"] == "1"

#if arch(x86_64)
let defaultCPU = "native"
#else
let defaultCPU = "none"
#endif
let targetCPU = env["GODWIT_TARGET_CPU"] ?? defaultCPU

var cpuFlags: [String] = targetCPU == "none" ? [] : ["-target-cpu", targetCPU]
let hotSwift: [SwiftSetting] = safeFlagsOnly ? [] : [
    .unsafeFlags(cpuFlags),
    .unsafeFlags(["-Ounchecked", "-enforce-exclusivity=unchecked", "-cross-module-optimization"],
                 .when(configuration: .release)),
]
let plainSwift: [SwiftSetting] = safeFlagsOnly ? [] : [
    .unsafeFlags(cpuFlags),
    .unsafeFlags(["-cross-module-optimization"], .when(configuration: .release)),
]
// The C helpers are tiny static-inline functions; they follow the same CPU choice.
let cFlags: [CSetting] = safeFlagsOnly || targetCPU == "none" ? [] :
    [.unsafeFlags(["-march=\(targetCPU == "x86-64" ? "x86-64" : targetCPU)"])]

let package = Package(
    name: "Godwit",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Godwit", targets: ["Godwit"]),
        .library(name: "GodwitEval", targets: ["GodwitEval"]),
        .executable(name: "godwit", targets: ["GodwitCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.2.0"),
    ],
    targets: [
        // Tiny C header: CPU feature checks and instructions Swift cannot spell.
        .target(name: "CGodwit", cSettings: cFlags),
        // GGUF container: memory-mapped reader, writer, ggml tensor types.
        .target(name: "GodwitGGUF", swiftSettings: plainSwift),
        // Numeric kernels: weight block formats, activation quantization, GEMV/GEMM, vector ops, thread pool.
        .target(name: "GodwitKernels",
                dependencies: ["GodwitGGUF", "CGodwit",
                               .product(name: "RealModule", package: "swift-numerics"),
                               .product(name: "Atomics", package: "swift-atomics")],
                swiftSettings: hotSwift),
        // KV cache: scheme registry, codecs, rotation, storage, fused attention.
        .target(name: "GodwitKVCache",
                dependencies: ["GodwitKernels", "GodwitGGUF", "CGodwit",
                               .product(name: "RealModule", package: "swift-numerics")],
                swiftSettings: hotSwift),
        // Tokenizers built from GGUF metadata (GPT-2 byte-level BPE, SentencePiece).
        .target(name: "GodwitTokenizer", dependencies: ["GodwitGGUF"], swiftSettings: plainSwift),
        // Model definitions and forward passes (Llama family, Gemma 3).
        .target(name: "GodwitModel",
                dependencies: ["GodwitGGUF", "GodwitKernels", "GodwitKVCache"],
                swiftSettings: hotSwift),
        // Public API: load a model, open sessions, sample, stream text.
        .target(name: "Godwit",
                dependencies: ["GodwitGGUF", "GodwitKernels", "GodwitKVCache", "GodwitTokenizer", "GodwitModel"],
                swiftSettings: plainSwift),
        // Measurement: perplexity, KL divergence, benchmarks, calibration.
        .target(name: "GodwitEval", dependencies: ["Godwit"], swiftSettings: plainSwift),
        .executableTarget(name: "GodwitCLI",
                          dependencies: ["Godwit", "GodwitEval",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: plainSwift),

        // Shared test helpers: reference data from ../shared, model location, tiny GGUF builders.
        .target(name: "GodwitTestSupport", dependencies: ["GodwitGGUF"], path: "Tests/GodwitTestSupport"),
        .testTarget(name: "GodwitGGUFTests", dependencies: ["GodwitGGUF", "GodwitTestSupport"]),
        .testTarget(name: "GodwitKernelsTests", dependencies: ["GodwitKernels", "GodwitTestSupport", .product(name: "Atomics", package: "swift-atomics")],
                    swiftSettings: plainSwift),
        .testTarget(name: "GodwitKVCacheTests", dependencies: ["GodwitKVCache", "CGodwit", "GodwitTestSupport"],
                    swiftSettings: plainSwift),
        .testTarget(name: "GodwitTokenizerTests", dependencies: ["GodwitTokenizer", "GodwitTestSupport"]),
        .testTarget(name: "GodwitTests", dependencies: ["Godwit", "GodwitEval", "GodwitTestSupport"]),
    ]
)
