// swift-tools-version: 6.0
import PackageDescription

// Kernels are memory- and FMA-bound: on x86-64, let the compiler use AVX2 and FMA (Swift on Linux
// targets baseline SSE2 otherwise, where `addingProduct` becomes a libm call). Guarded so the
// package still builds on arm64.
#if arch(x86_64)
let kernelFlags: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell", "-Xcc", "-march=haswell"])]
// The one module compiled for AVX-512: the matrix product's 512-bit tiles, which run only where
// the processor says it has AVX-512 (`WideTiles.available`).
let wideKernelFlags: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "skylake-avx512", "-Xcc", "-march=skylake-avx512"])]
#else
let kernelFlags: [SwiftSetting] = []
let wideKernelFlags: [SwiftSetting] = []
#endif

let package = Package(
    name: "NormLab",
    products: [
        .library(name: "NormLab", targets: ["NormLab"]),
        .executable(name: "normlab", targets: ["normlab"]),
    ],
    targets: [
        // MARK: - Public API

        /// The lab: tensors, normalizers, verification against reference fixtures, benchmarks.
        .target(
            name: "NormLab",
            dependencies: ["CZlib", "CPUFeatures", "WideKernels"],
            exclude: ["README.md"],
            swiftSettings: kernelFlags
        ),

        /// The command-line program: a thin shell of subcommands over the library.
        .executableTarget(
            name: "normlab",
            dependencies: ["NormLab"],
            swiftSettings: kernelFlags
        ),

        // MARK: - Implementation details

        /// The matrix product's 512-bit register tiles, compiled for AVX-512 and used only where
        /// the processor has it.
        .target(
            name: "WideKernels",
            dependencies: ["CPUFeatures"],
            swiftSettings: wideKernelFlags
        ),

        /// Asks the processor what it can run, and the system which processors this process may use
        /// (C: Swift has no CPUID, and Glibc's affinity calls need _GNU_SOURCE).
        .target(name: "CPUFeatures"),

        /// The system's zlib (every Swift-on-Linux machine has it), for gzip-compressed data files.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),

        // MARK: - Tests

        .testTarget(
            name: "NormLabTests",
            dependencies: ["NormLab"],
            swiftSettings: kernelFlags
        ),
    ]
)
