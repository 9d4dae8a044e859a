// Session recording: MCAPWriter throughput on a session's data (60 fps 512×512 mono8 RawImage
// frames + 1 kHz force JSON ~120 B + 1 kHz joints JSON ~300 B), allocations per message in
// steady state, and RecordingBench's real-time and as-fast-as-possible runs (printed).
// Run: make bench-record   (swift package benchmark --target Recording)
// The Python reference writer on the same data: python3 tools/record/bench_python_writer.py
import Benchmark
import Foundation
import SonoRecord

/// One second of session data, made once.
struct SessionSecond: Sendable {
    static let shared = SessionSecond()
    let frames = (0..<16).map { SyntheticSession.frame($0, width: 512, height: 512) }
    let force = (0..<1000).map(SyntheticSession.forceJSON(millisecond:))
    let joints = (0..<1000).map(SyntheticSession.jointsJSON(millisecond:))
}

func temporaryPath() -> String { "/tmp/sono-bench-recording-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).mcap" }

/// Writes `seconds` of session data; returns the payload bytes.
func writeSession(_ writer: MCAPWriter, seconds: Int, encoder: RawImageEncoder) throws -> Int {
    let data = SessionSecond.shared
    let image = try writer.addChannel(topic: "/probe/image", messageEncoding: "protobuf",
                                      schemaID: try writer.addSchema(FoxgloveSchemas.rawImage))
    let json = try writer.addSchema(FoxgloveSchemas.jsonSchema(name: "sono.Sample", json: #"{"type":"object"}"#))
    let force = try writer.addChannel(topic: "/force", messageEncoding: "json", schemaID: json)
    let joints = try writer.addChannel(topic: "/joints", messageEncoding: "json", schemaID: json)
    var payload = 0, frame = 0
    for sample in 0..<(seconds * 1000) {
        let time = UInt64(sample) * 1_000_000
        try writer.write(channel: force, sequence: UInt32(sample), logTime: time, publishTime: time, data: data.force[sample % 1000])
        try writer.write(channel: joints, sequence: UInt32(sample), logTime: time, publishTime: time, data: data.joints[sample % 1000])
        payload += data.force[sample % 1000].count + data.joints[sample % 1000].count
        if frame * 1000 <= sample * 60 {
            payload += try encoder.encodeMono8(timestampNanos: time, width: 512, height: 512, pixels: data.frames[frame % 16]) {
                (bytes) throws(RecordError) in
                try writer.write(channel: image, sequence: UInt32(frame), logTime: time, publishTime: time, data: bytes)
                return bytes.count
            }
            frame += 1
        }
    }
    return payload
}

let benchmarks: @Sendable () -> Void = {
    let megabytesPerSecond = BenchmarkMetric.custom("payload MB/s", polarity: .prefersLarger, useScalingFactor: false)
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, megabytesPerSecond],
        maxDuration: .seconds(4),
        maxIterations: 50
    )
    _ = SessionSecond.shared

    // One second of session data (≈16 MB of payload) per iteration, written and closed; no
    // fdatasync, so this is the writer's CPU cost (the disk's is the machine's).
    for (name, compression, level) in [("zstd level 1 (default)", MCAPCompression.zstd, Int32(1)),
                                       ("zstd level 3", .zstd, 3), ("uncompressed", .none, 1)] {
        Benchmark("MCAPWriter: 1 s of session data, \(name)") { benchmark in
            var options = MCAPWriterOptions()
            options.compression = compression
            options.zstdLevel = level
            options.syncChunks = false
            let encoder = RawImageEncoder()
            for _ in benchmark.scaledIterations {
                let path = temporaryPath()
                defer { unlink(path) }
                let start = ContinuousClock.now
                let writer = try MCAPWriter(path: path, options: options)
                let payload = try writeSession(writer, seconds: 1, encoder: encoder)
                try writer.close()
                let elapsed = ContinuousClock.now - start
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                benchmark.measurement(megabytesPerSecond, Int(Double(payload) / seconds / 1e6))
            }
        }
    }

    // Steady state: a writer that has run for a while (buffers at their working size), then
    // 1000 messages per iteration with chunks closing (256 KiB) among them. mallocCountTotal
    // per iteration / 1000 is the allocations per message.
    Benchmark("MCAPWriter steady state: 1000 JSON messages (force + joints), zstd",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal, .throughput], maxIterations: 2_000)) { benchmark in
        var options = MCAPWriterOptions()
        options.chunkSize = 256 << 10
        options.syncChunks = false
        let path = temporaryPath()
        defer { unlink(path) }
        let writer = try MCAPWriter(path: path, options: options)
        let channel = try writer.addChannel(topic: "/force", messageEncoding: "json", schemaID: 0)
        let messages = SessionSecond.shared.joints + SessionSecond.shared.force
        var sequence: UInt32 = 0
        func thousand() throws {
            for index in 0..<1000 {
                try messages[index * 2 % messages.count].withUnsafeBytes {
                    try writer.write(channel: channel, sequence: sequence, logTime: UInt64(sequence), publishTime: UInt64(sequence), data: $0)
                }
                sequence &+= 1
            }
        }
        for _ in 0..<20 { try thousand() }  // warm: buffers grown, index arrays sized
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { try thousand() }
        benchmark.stopMeasurement()
        try writer.close()
    }

    Benchmark("MCAPWriter steady state: 60 RawImage frames 512×512 (encode + write), zstd",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal, .throughput], maxIterations: 200)) { benchmark in
        var options = MCAPWriterOptions()
        options.syncChunks = false
        let path = temporaryPath()
        defer { unlink(path) }
        let writer = try MCAPWriter(path: path, options: options)
        let image = try writer.addChannel(topic: "/probe/image", messageEncoding: "protobuf",
                                          schemaID: try writer.addSchema(FoxgloveSchemas.rawImage))
        let encoder = RawImageEncoder()
        var sequence: UInt32 = 0
        func sixty() throws {
            for _ in 0..<60 {
                try encoder.encodeMono8(timestampNanos: UInt64(sequence), width: 512, height: 512,
                                        pixels: SessionSecond.shared.frames[Int(sequence) % 16]) { (bytes) throws(RecordError) in
                    try writer.write(channel: image, sequence: sequence, logTime: UInt64(sequence), publishTime: UInt64(sequence), data: bytes)
                }
                sequence &+= 1
            }
        }
        try sixty()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { try sixty() }
        benchmark.stopMeasurement()
        try writer.close()
    }

    // The figures `sonoctl bench record` prints, once each.
    for realTime in [false, true] {
        Benchmark("RecordingBench \(realTime ? "real time, 5 s" : "as fast as possible, 10 s of data") (printed)",
                  configuration: .init(metrics: [.wallClock, .cpuTotal], warmupIterations: 0, maxIterations: 1)) { _ in
            var options = RecordingBench.Options(path: temporaryPath())
            options.realTime = realTime
            options.seconds = realTime ? 5 : 10
            let result = try RecordingBench.run(options)
            FileHandle.standardError.write(Data("\(result)\n".utf8))
        }
    }
}
