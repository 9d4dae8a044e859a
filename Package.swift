// swift-tools-version: 6.1
// Sono: control software of a robotic cardiac-ultrasound scanner.
// Module map, layers and data flow: docs/ARCHITECTURE.md (scripts/check-modules.py checks this file against it).

import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Sono",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "sonoctl", targets: ["sonoctl"]),
        .executable(name: "sono-devlab", targets: ["sono-devlab"]),
        .executable(name: "sonod", targets: ["sonod"]),
        .executable(name: "sonod-sim", targets: ["sonod-sim"]),
        .library(name: "SonoProtocol", targets: ["SonoProtocol"]),
        .library(name: "SonoDevices", targets: ["SonoDevices"]),
        .library(name: "SonoRecord", targets: ["SonoRecord"]),
        // For the fuzz package (Fuzz/Package.swift), whose targets reach each untrusted input's parser.
        .library(name: "SonoCore", targets: ["SonoCore"]),
        .library(name: "SonoImaging", targets: ["SonoImaging"]),
        .library(name: "SonoMotion", targets: ["SonoMotion"]),
        .library(name: "SonoVision", targets: ["SonoVision"]),
        .library(name: "SonoSim", targets: ["SonoSim"]),
        .library(name: "SonoDaemon", targets: ["SonoDaemon"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // System-library shims: headers and link flags only.
        .systemLibrary(name: "CLibSerialPort", pkgConfig: "libserialport",
                       providers: [.apt(["libserialport-dev"])]),
        .systemLibrary(name: "CLibUSB", pkgConfig: "libusb-1.0",
                       providers: [.apt(["libusb-1.0-0-dev"])]),
        .systemLibrary(name: "CUMockdev", pkgConfig: "umockdev-1.0",
                       providers: [.apt(["libumockdev-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        // oneDNN ships no pkg-config file in Debian; the module map links it by name.
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),

        // The host–firmware wire protocol: framing, CRC, message catalog, little-endian fields.
        // Pure Swift, no I/O, no other module (the fuzz target compiles its sources alone).
        .target(name: "SonoProtocol", swiftSettings: strict),

        // Thin Swift over POSIX: errno values and the one EINTR retry, the monotonic clock,
        // SCHED_FIFO, the user and group databases, exit statuses.
        .target(name: "SonoSystem", swiftSettings: strict),

        // 8-bit grayscale PNG: encoding, decoding and atomic file writes, zlib from the system.
        .target(name: "SonoImaging", dependencies: ["SonoSystem", "CZlib"], swiftSettings: strict),

        // Value types and interfaces every layer shares: probe frames and their sources.
        .target(name: "SonoCore", swiftSettings: strict),

        // The one door to TOMLKit: TOML text checked for what its bundled parser cannot take
        // safely, then parsed; one error type with a line and column.
        .target(name: "SonoTOML", dependencies: [.product(name: "TOMLKit", package: "TOMLKit")], swiftSettings: strict),

        // Vectors, rotations and poses shared by the simulator and the motion controller.
        .target(name: "SonoGeometry", dependencies: ["SonoTOML", .product(name: "TOMLKit", package: "TOMLKit")],
                swiftSettings: strict),

        // The motion controller: kinematics, force control, the safety interlocks (a pure state
        // machine) and the 1 kHz loop. Knows its boards only as queues and an output: no
        // serial or USB library is linked into it, its tests or its benchmarks.
        .target(name: "SonoMotion",
                dependencies: ["SonoGeometry", "SonoProtocol", "SonoSystem", "SonoTOML", .product(name: "TOMLKit", package: "TOMLKit"),
                               .product(name: "Histogram", package: "hdrhistogram-swift")],
                swiftSettings: strict),

        // The view classifier: ONNX models (protobuf code generated once from onnx.proto and
        // committed) checked against Sono's model contract and run with oneDNN.
        .target(name: "SonoVision",
                dependencies: ["CDNNL", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                exclude: ["ONNX/onnx.proto", "ONNX/README.md"],
                swiftSettings: strict),

        // The scan planner: scan protocols, the view prior, and the search for each view with
        // the classifier's output. Proposes probe targets; the motion controller decides.
        .target(name: "SonoPlanner",
                dependencies: ["SonoCore", "SonoGeometry", "SonoTOML", .product(name: "TOMLKit", package: "TOMLKit")],
                swiftSettings: strict),

        // Session recording: MCAP files (writer, reader, recovery of cut-off files), the session
        // recorder's writer thread and the Foxglove schemas. Pure Swift over zlib and zstd.
        .target(name: "SonoRecord",
                dependencies: ["SonoProtocol", "SonoSystem", "CZlib", "CZstd", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                swiftSettings: strict),

        // Transports (serial over libserialport, USB over libusb) and the board link layer.
        .target(name: "SonoDevices",
                dependencies: ["SonoProtocol", "SonoCore", "SonoSystem", "CLibSerialPort", "CLibUSB"],
                swiftSettings: strict),

        // The hardware interfaces (ros2_control's split): the arm and force-sensor board links
        // wired to the motion controller's input queues and its arm output.
        .target(name: "SonoBoards", dependencies: ["SonoDevices", "SonoMotion", "SonoProtocol", "SonoSystem"], swiftSettings: strict),

        // The simulated world: the virtual patient (anatomy, imaging, view ground truth,
        // contact), the arm and force sensor boards' firmware speaking the real protocol, and
        // the scanner that ties them together.
        .target(name: "SonoSim",
                dependencies: ["SonoProtocol", "SonoGeometry", "SonoCore", "SonoSystem", "SonoTOML",
                               .product(name: "TOMLKit", package: "TOMLKit")],
                swiftSettings: strict),

        // The session report: one self-contained HTML page (inline SVG plots, key frames as
        // inline PNG) over a plain data model.
        .target(name: "SonoReport", dependencies: ["SonoImaging"], swiftSettings: strict),

        // Test bench: umockdev-emulated devices wired to simulated boards. Used by tests,
        // the link benchmark, the link demo, and sonod-sim (its virtual patient's boards, through SonoSimHost).
        .target(name: "SonoTestbed",
                dependencies: ["SonoSim", "SonoCore", "SonoDevices", "SonoBoards", "SonoMotion", "SonoGeometry", "SonoProtocol", "SonoSystem", "CUMockdev"],
                swiftSettings: strict),

        // The daemon's body: configuration, the scanner's parts and the ordered services that
        // start and stop them, the control socket, systemd; recording and replay. Knows a
        // simulation only through `SimulationHost`: no simulator or test bench in it.
        .target(name: "SonoDaemon",
                dependencies: ["SonoBoards", "SonoCore", "SonoDevices", "SonoGeometry", "SonoImaging", "SonoMotion", "SonoPlanner", "SonoProtocol",
                               "SonoRecord", "SonoReport", "SonoSystem", "SonoTOML", "SonoVision",
                               .product(name: "ArgumentParser", package: "swift-argument-parser"),
                               .product(name: "TOMLKit", package: "TOMLKit"),
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "NIOHTTP1", package: "swift-nio"),
                               .product(name: "NIOWebSocket", package: "swift-nio"),
                               .product(name: "NIOSSL", package: "swift-nio-ssl"),
                               .product(name: "Logging", package: "swift-log"),
                               .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
                swiftSettings: strict),
        // Whole autonomous scans in simulated time (`sonoctl sim eval`): the simulated boards, the
        // motion controller's core, the probe, the classifier and the planner stepped at 1 kHz on
        // one thread, without the daemon's threads, links or wall clock; the simulator's truth
        // about each acquisition.
        .target(name: "SonoEvaluation",
                dependencies: ["SonoSim", "SonoMotion", "SonoVision", "SonoPlanner", "SonoDaemon", "SonoCore", "SonoGeometry",
                               "SonoProtocol", "SonoSystem"],
                swiftSettings: strict),
        // The service binary (sono.service): the daemon on hardware, nothing else.
        .executableTarget(name: "sonod",
                          dependencies: ["SonoDaemon", "SonoSystem",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log")],
                          swiftSettings: strict),

        // The virtual patient as a SimulationHost: simulated boards on umockdev-emulated devices,
        // the simulated probe and the simulator's ground truth.
        .target(name: "SonoSimHost",
                dependencies: ["SonoDaemon", "SonoSim", "SonoTestbed", "SonoDevices", "SonoCore", "SonoGeometry", "SonoProtocol", "SonoSystem"],
                swiftSettings: strict),
        // The same daemon body on the virtual patient (make demo, the simulated tests).
        .executableTarget(name: "sonod-sim",
                          dependencies: ["SonoCore", "SonoDaemon", "SonoSimHost", "SonoSystem",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log")],
                          swiftSettings: strict),

        .executableTarget(name: "sonoctl",
                          dependencies: ["SonoDaemon", "SonoDevices", "SonoEvaluation", "SonoImaging", "SonoProtocol", "SonoRecord", "SonoReport", "SonoSim", "SonoSystem", "SonoGeometry", "SonoVision",
                                         .product(name: "Histogram", package: "hdrhistogram-swift"),
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: strict),
        .executableTarget(name: "sono-devlab",
                          dependencies: ["SonoTestbed", "SonoDevices", "SonoImaging", "SonoSim", "SonoProtocol", "SonoGeometry", "SonoCore", "SonoMotion", "SonoSystem",
                                         .product(name: "Histogram", package: "hdrhistogram-swift"),
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: strict),

        // What every test target shares: the one child-process spawner, the repository's root
        // and fresh temporary paths. Test targets only.
        .target(name: "SonoTestSupport", path: "Tests/SonoTestSupport", swiftSettings: strict),

        .testTarget(name: "SonoProtocolTests", dependencies: ["SonoProtocol", "SonoTestSupport"], swiftSettings: strict),
        .testTarget(name: "SonoSystemTests", dependencies: ["SonoSystem", "SonoTestSupport"], swiftSettings: strict),
        .testTarget(name: "SonoMotionTests",
                    dependencies: ["SonoTestSupport", "SonoMotion", "SonoGeometry", "SonoProtocol",
                                   .product(name: "PropertyBased", package: "swift-property-based")],
                    swiftSettings: strict),
        .testTarget(name: "SonoVisionTests", dependencies: ["SonoTestSupport", "SonoVision", "SonoImaging"],
                    exclude: ["Fixtures"], swiftSettings: strict),
        .testTarget(name: "SonoPlannerTests", dependencies: ["SonoTestSupport", "SonoCore", "SonoPlanner", "SonoGeometry"], swiftSettings: strict),
        .testTarget(name: "SonoDaemonTests", dependencies: ["SonoTestSupport", "SonoCore", "SonoDaemon", "sonod", "sonod-sim", "SonoPlanner", "SonoGeometry", "SonoRecord", "SonoReport",
                                                          "SonoTestbed", "SonoMotion", "SonoProtocol"],
                    swiftSettings: strict),
        .testTarget(name: "SonoRecordTests",
                    dependencies: ["SonoTestSupport", "SonoRecord", "SonoSystem", "record-crash-writer", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                    swiftSettings: strict),
        // The process SonoRecordTests kills with SIGKILL while it writes (crash safety).
        .executableTarget(name: "record-crash-writer", dependencies: ["SonoRecord"],
                          path: "Tests/RecordCrashWriter", swiftSettings: strict),
        .testTarget(name: "SonoTOMLTests", dependencies: ["SonoTestSupport", "SonoTOML"], swiftSettings: strict),
        .testTarget(name: "SonoGeometryTests", dependencies: ["SonoTestSupport", "SonoGeometry"], swiftSettings: strict),
        .testTarget(name: "SonoSimTests", dependencies: ["SonoTestSupport", "SonoCore", "SonoSim", "SonoProtocol", "SonoGeometry", "SonoTestbed"],
                    swiftSettings: strict),
        .testTarget(name: "SonoEvaluationTests",
                    dependencies: ["SonoTestSupport", "SonoEvaluation", "SonoSim", "SonoCore", "SonoDaemon"],
                    swiftSettings: strict),
        .testTarget(name: "SonoReportTests", dependencies: ["SonoTestSupport", "SonoReport", "CZlib"], swiftSettings: strict),
        .testTarget(name: "SonoImagingTests", dependencies: ["SonoTestSupport", "SonoImaging", "CZlib"], swiftSettings: strict),
        // The emulated USB probe driven by plain libusb calls (no driver), and its usbmon
        // capture replayed by umockdev-run with probe-capture-replay, the program run under it.
        .testTarget(name: "SonoTestbedTests",
                    dependencies: ["SonoTestSupport", "SonoTestbed", "SonoDevices", "CLibUSB", "probe-capture-replay"],
                    swiftSettings: strict),
        .executableTarget(name: "probe-capture-replay", dependencies: ["SonoDevices", "CLibUSB"],
                          path: "Tests/ProbeCaptureReplay", swiftSettings: strict),
        .testTarget(name: "SonoDevicesTests",
                    dependencies: ["SonoTestSupport", "SonoCore", "SonoDevices", "SonoSim", "SonoSystem", "SonoTestbed", "SonoProtocol", "SonoGeometry", "SonoMotion"],
                    swiftSettings: strict),

        .executableTarget(name: "ProtocolCodec",
                          dependencies: ["SonoProtocol", .product(name: "Benchmark", package: "benchmark")],
                          path: "Benchmarks/ProtocolCodec",
                          plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
        .executableTarget(name: "SafetyCycle",
                          dependencies: ["SonoMotion", "SonoGeometry", "SonoProtocol",
                                         .product(name: "Benchmark", package: "benchmark")],
                          path: "Benchmarks/SafetyCycle",
                          plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
        .executableTarget(name: "Recording",
                          dependencies: ["SonoRecord", .product(name: "Benchmark", package: "benchmark")],
                          path: "Benchmarks/Recording",
                          plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
        .executableTarget(name: "USBProbeFramePath",
                          dependencies: ["SonoDevices", "SonoCore", .product(name: "Benchmark", package: "benchmark")],
                          path: "Benchmarks/USBProbeFramePath",
                          plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
        .executableTarget(name: "ViewClassification",
                          dependencies: ["SonoVision", .product(name: "Benchmark", package: "benchmark")],
                          path: "Benchmarks/ViewClassification",
                          plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
    ]
)
