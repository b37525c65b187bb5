// swift-tools-version: 6.0
// libFuzzer targets for the lab's readers, built apart from the lab (they need
// `--sanitize=fuzzer`, which supplies `main`): `Tests/Fuzz/run.sh` builds and runs them.
import PackageDescription

let package = Package(
    name: "NormLabFuzz",
    dependencies: [.package(name: "NormLab", path: "../..")],
    targets: [
        .executableTarget(
            name: "FuzzTargets",
            dependencies: [.product(name: "NormLab", package: "NormLab")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
    ]
)
