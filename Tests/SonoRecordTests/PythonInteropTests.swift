import Foundation
@testable import SonoRecord
import SonoTestSupport
import Testing

/// The reference Python reader (PyPI `mcap`, `mcap-protobuf-support`) on Sono's files, through
/// tools/record/check_mcap.py. Runs when SONO_REQUIRE_PYTHON_MCAP=1 (`make test-record`, which
/// `make test` runs, installs the pinned packages first).
enum PythonMCAP {
    static let required = ProcessInfo.processInfo.environment["SONO_REQUIRE_PYTHON_MCAP"] == "1"
    static let skipReason: Comment = "set SONO_REQUIRE_PYTHON_MCAP=1 (make test-record) to check with the Python mcap reader"

    static let root = Repository.root

    /// Runs check_mcap.py; records an issue with its reason when it fails.
    static func check(_ path: String, expect: [String: Any], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: expect, options: [.sortedKeys]), as: UTF8.self)
        let python = ProcessInfo.processInfo.environment["PYTHON"] ?? "python3"
        let script = root.appendingPathComponent("tools/record/check_mcap.py").path
        let run = try ChildProcess.run([python, script, path, "--expect", json])
        #expect(run.status == 0, "check_mcap.py failed (\(run.status)): \(run.stderr) \(run.stdout)", sourceLocation: sourceLocation)
    }
}

@Suite struct PythonInteropTests {
    /// A session-like file: RawImage frames (protobuf), force and joints (JSON with JSON
    /// Schemas), events (JSON, no schema), attachments and metadata, over several chunks.
    static func writeSession(_ path: String, compression: MCAPCompression) throws -> (frames: Int, force: Int) {
        var options = MCAPWriterOptions()
        options.compression = compression
        options.chunkSize = 256 << 10
        options.syncChunks = false
        let writer = try MCAPWriter(path: path, options: options)
        let image = try writer.addChannel(topic: "/probe/image", messageEncoding: "protobuf",
                                          schemaID: try writer.addSchema(FoxgloveSchemas.rawImage),
                                          metadata: ["fps": "60"])
        let forceSchema = FoxgloveSchemas.jsonSchema(name: "sono.Force", json: #"{"type":"object","properties":{"fz":{"type":"number"}}}"#)
        let force = try writer.addChannel(topic: "/force", messageEncoding: "json", schemaID: try writer.addSchema(forceSchema))
        let joints = try writer.addChannel(topic: "/joints", messageEncoding: "json",
                                           schemaID: try writer.addSchema(FoxgloveSchemas.jsonSchema(name: "sono.Joints", json: #"{"type":"object"}"#)))
        let events = try writer.addChannel(topic: "/events", messageEncoding: "json", schemaID: 0)
        try writer.addMetadata(name: "session", ["patient": "P-001", "mode": "simulation"])
        try writer.addAttachment(name: "arm.toml", mediaType: "application/toml", logTime: 1, data: Array("[arm]\n".utf8))

        let encoder = RawImageEncoder(frameID: "probe")
        var pixels = [UInt8](repeating: 0, count: 512 * 512)
        let start: UInt64 = 1_700_000_000_123_456_789
        var forceCount = 0
        for frame in 0..<6 {
            for index in pixels.indices { pixels[index] = UInt8(truncatingIfNeeded: index &* 13 &+ frame &* 101 &+ (index >> 9)) }
            let time = start + UInt64(frame) * 16_666_667
            try encoder.encodeMono8(timestampNanos: time, width: 512, height: 512, pixels: pixels) { (bytes) throws(RecordError) in
                try writer.write(channel: image, sequence: UInt32(frame), logTime: time, publishTime: time, data: bytes)
            }
            for step in 0..<17 {
                let t = time + UInt64(step) * 1_000_000
                let fz = Double(forceCount) / 4
                try writer.write(channel: force, sequence: UInt32(forceCount), logTime: t, publishTime: t,
                                 data: Array(#"{"t":\#(t),"fx":0.1,"fy":-0.2,"fz":\#(fz)}"#.utf8))
                try writer.write(channel: joints, sequence: UInt32(forceCount), logTime: t, publishTime: t,
                                 data: Array(#"{"q":[0.1,0.2,0.3,0.4,0.5,0.6]}"#.utf8))
                forceCount += 1
            }
        }
        try writer.write(channel: events, sequence: 0, logTime: start, publishTime: start, data: Array(#"{"kind":"stop"}"#.utf8))
        try writer.addMetadata(name: "outcome", ["views": "PLAX"])
        try writer.addAttachment(name: "summary.json", mediaType: "application/json", logTime: 2, data: Array("{}".utf8))
        try writer.close()
        return (6, forceCount)
    }

    static func expectation(compression: MCAPCompression, frames: Int, force: Int) -> [String: Any] {
        [
            "profile": "sono",
            "compression": compression.rawValue,
            "min_chunks": 4,
            "channels": [
                "/probe/image": ["message_encoding": "protobuf", "schema": "foxglove.RawImage", "schema_encoding": "protobuf",
                                 "messages": frames, "metadata": ["fps": "60"]],
                "/force": ["message_encoding": "json", "schema": "sono.Force", "schema_encoding": "jsonschema", "messages": force],
                "/joints": ["message_encoding": "json", "schema": "sono.Joints", "messages": force],
                "/events": ["message_encoding": "json", "messages": 1],
            ],
            "attachments": [["name": "arm.toml", "media_type": "application/toml", "size": 6],
                            ["name": "summary.json", "media_type": "application/json", "size": 2]],
            "metadata": [["name": "session", "entries": ["patient": "P-001", "mode": "simulation"]],
                         ["name": "outcome", "entries": ["views": "PLAX"]]],
            "decoded": [
                ["topic": "/probe/image", "index": 2,
                 "fields": ["width": 512, "height": 512, "step": 512, "encoding": "mono8", "frame_id": "probe",
                            "data_length": 512 * 512, "timestamp_ns": 1_700_000_000_123_456_789 + 2 * 16_666_667]],
                ["topic": "/force", "index": 10, "json": ["fz": 2.5, "fy": -0.2]],
            ],
        ]
    }

    @Test(.enabled(if: PythonMCAP.required, PythonMCAP.skipReason), arguments: [MCAPCompression.none, .zstd])
    func referenceReaderAcceptsEveryRecordKind(compression: MCAPCompression) throws {
        let path = TestFiles.temporary("interop.mcap")
        defer { TestFiles.remove(path) }
        let counts = try Self.writeSession(path, compression: compression)
        try PythonMCAP.check(path, expect: Self.expectation(compression: compression, frames: counts.frames, force: counts.force))
    }

    @Test(.enabled(if: PythonMCAP.required, PythonMCAP.skipReason))
    func checkerRejectsAWrongExpectation() throws {
        // The checker itself must be able to fail: one message count off.
        let path = TestFiles.temporary("interop-wrong.mcap")
        defer { TestFiles.remove(path) }
        let counts = try Self.writeSession(path, compression: .zstd)
        let python = ProcessInfo.processInfo.environment["PYTHON"] ?? "python3"
        let script = PythonMCAP.root.appendingPathComponent("tools/record/check_mcap.py").path
        let run = try ChildProcess.run([python, script, path, "--expect", #"{"channels": {"/force": {"messages": \#(counts.force + 1)}}}"#])
        #expect(run.status == 1)
        #expect(run.stderr.contains("/force: \(counts.force) messages, expected \(counts.force + 1)"))
    }

    @Test func swiftReaderReadsTheSessionFile() throws {
        let path = TestFiles.temporary("interop-swift.mcap")
        defer { TestFiles.remove(path) }
        let counts = try Self.writeSession(path, compression: .zstd)
        let (messages, result) = try TestFiles.readAll(path)
        #expect(result.complete)
        #expect(messages.count == counts.frames + 2 * counts.force + 1)
        #expect(messages.first?.channel.schema == FoxgloveSchemas.rawImage)
    }

    @Test(.enabled(if: PythonMCAP.required, PythonMCAP.skipReason))
    func swiftReaderReadsAFileOfThePythonWriter() throws {
        let path = TestFiles.temporary("python-written.mcap")
        defer { TestFiles.remove(path) }
        let python = ProcessInfo.processInfo.environment["PYTHON"] ?? "python3"
        let script = PythonMCAP.root.appendingPathComponent("tools/record/bench_python_writer.py").path
        let run = try ChildProcess.run([python, script, "--seconds", "0.5", "--chunk-size", "1000000", "--out", path])
        try #require(run.status == 0, "\(run.stderr)")
        let reader = try MCAPReader(path: path)
        #expect(reader.library == "python bench")
        var topics: [String: Int] = [:]
        var firstFrame: [UInt8]?
        let result = try reader.forEachMessage { message in
            topics[message.channel.topic, default: 0] += 1
            if message.channel.topic == "/probe/image" && firstFrame == nil { firstFrame = message.data }
        }
        #expect(result.complete, "summary, indexes and CRCs of the Python writer's file check out")
        #expect(topics == ["/probe/image": 30, "/force": 500, "/joints": 500])
        // Its RawImage bytes are what RawImageEncoder makes of the same frame: both writers
        // benchmark on identical data.
        let pixels = SyntheticSession.frame(0, width: 512, height: 512)
        #expect(firstFrame == (try RawImageEncoder().encodeMono8(timestampNanos: 0, width: 512, height: 512, pixels: pixels) { Array($0) }))
    }

    @Test(.enabled(if: PythonMCAP.required, PythonMCAP.skipReason))
    func syntheticFramesAreTheSameOnBothSides() throws {
        let python = ProcessInfo.processInfo.environment["PYTHON"] ?? "python3"
        let script = PythonMCAP.root.appendingPathComponent("tools/record/bench_python_writer.py").path
        let run = try ChildProcess.run([python, script, "--frame-crcs", "0,7,15"])
        try #require(run.status == 0, "\(run.stderr)")
        let swift = [0, 7, 15].map { index in
            let crc = SyntheticSession.frame(index, width: 512, height: 512).withUnsafeBytes { CRC32.of($0) }
            let hex = String(crc, radix: 16)
            return "\(index) " + String(repeating: "0", count: 8 - hex.count) + hex
        }
        #expect(run.stdout.split(separator: "\n").map(String.init) == swift)
    }
}
