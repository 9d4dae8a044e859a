// swift-tools-version: 6.1
// Sono's libFuzzer targets (README: Fuzzing). A package of its own so that the fuzz build's
// flags (-sanitize=fuzzer,address on every Swift module, -parse-as-library for targets without
// a main) never touch the product build; `make fuzz` builds it into .build-fuzz/:
//
//   swift build --package-path Fuzz --scratch-path .build-fuzz \
//       -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
//
// Each target is one untrusted input of the daemon's, a `LLVMFuzzerTestOneInput` over the
// product's own public entry point for it; FuzzSupport holds what they share.

import PackageDescription

// The parent package's identity is its directory's name (/work/main, a worktree, a CI clone):
// read it from where this manifest lives instead of spelling it.
let sono = Context.packageDirectory.split(separator: "/").dropLast().last.map(String.init) ?? "sono"

func fuzzTarget(_ name: String, _ products: [String], _ other: [Target.Dependency] = []) -> Target {
    .executableTarget(name: name,
                      dependencies: ["FuzzSupport"] + products.map { .product(name: $0, package: sono) } + other)
}

let nio: [Target.Dependency] = ["NIOCore", "NIOEmbedded", "NIOHTTP1"].map { .product(name: $0, package: "swift-nio") }

let targets: [(String, [String], [Target.Dependency])] = [
    ("FrameDecoderFuzz", ["SonoProtocol"], []),
    ("StreamChunksFuzz", ["SonoProtocol"], []),
    ("ProbeFrameFuzz", ["SonoDevices", "SonoCore"], []),
    ("ProbeControlFuzz", ["SonoDevices"], []),
    ("MCAPReaderFuzz", ["SonoRecord"], []),
    ("MCAPRecoveryFuzz", ["SonoRecord"], []),
    ("ONNXModelFuzz", ["SonoVision"], []),
    ("PatientTOMLFuzz", ["SonoSim"], []),
    ("DaemonConfigFuzz", ["SonoDaemon"], []),
    ("PNGFuzz", ["SonoImaging"], []),
    ("ControlAPIFuzz", ["SonoDaemon"], nio),
    ("MotionTapeFuzz", ["SonoMotion", "SonoProtocol"], []),
]

let package = Package(
    name: "SonoFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
    ],
    targets: [.target(name: "FuzzSupport")] + targets.map { fuzzTarget($0.0, $0.1, $0.2) }
)
