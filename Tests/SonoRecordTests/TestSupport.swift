import Foundation
@testable import SonoRecord
import SonoTestSupport
import Testing

/// Paths and sample recordings shared by the suites.
enum TestFiles {
    /// A fresh path under /tmp (the writer never overwrites, so every test needs its own).
    static func temporary(_ name: String) -> String { Temporary.path(name, prefix: "sono-record-test") }

    static func remove(_ paths: String...) {
        for path in paths { unlink(path) }
    }

    static func bytes(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// A message's payload that encodes where it came from, so a reader's output can be checked
    /// byte for byte: channel, sequence, then `size` pattern bytes.
    static func payload(channel: UInt16, sequence: UInt32, size: Int) -> [UInt8] {
        var bytes = [UInt8(truncatingIfNeeded: channel), UInt8(truncatingIfNeeded: sequence),
                     UInt8(truncatingIfNeeded: sequence >> 8), UInt8(truncatingIfNeeded: sequence >> 16)]
        bytes.reserveCapacity(size + 4)
        for index in 0..<size { bytes.append(UInt8(truncatingIfNeeded: Int(sequence) &* 31 &+ index &* 7 &+ Int(channel))) }
        return bytes
    }

    /// Everything a reader delivered, in order.
    static func readAll(_ path: String, tolerant: Bool = false) throws -> (messages: [MCAPMessage], result: MCAPReadResult) {
        let reader = try MCAPReader(path: path)
        var messages: [MCAPMessage] = []
        let result = try reader.forEachMessage(tolerant: tolerant) { messages.append($0) }
        return (messages, result)
    }
}

/// A recording with every record kind: two schemas, three channels (one without schema, one
/// never used), messages interleaved on two channels over several chunks, two attachments
/// and two metadata records between them.
struct SampleRecording {
    let path: String
    /// (channel, sequence, log time, payload) in write order.
    var written: [(UInt16, UInt32, UInt64, [UInt8])] = []
    var channels: [UInt16: String] = [:]

    static let jsonSchema = MCAPSchema(name: "sono.Force", encoding: "jsonschema", data: Array(#"{"type":"object"}"#.utf8))
    static let binarySchema = MCAPSchema(name: "sono.Blob", encoding: "x-sono-blob", data: [1, 2, 3, 0, 255])

    init(path: String, options: MCAPWriterOptions, messages: Int = 300, payloadSize: Int = 900) throws {
        self.path = path
        let writer = try MCAPWriter(path: path, options: options)
        let json = try writer.addSchema(Self.jsonSchema)
        let blob = try writer.addSchema(Self.binarySchema)
        let force = try writer.addChannel(topic: "/force", messageEncoding: "json", schemaID: json, metadata: ["unit": "N", "rate": "1000"])
        let raw = try writer.addChannel(topic: "/raw", messageEncoding: "x-bytes", schemaID: 0)
        let unused = try writer.addChannel(topic: "/unused", messageEncoding: "x-bytes", schemaID: blob, metadata: ["why": "never used"])
        channels = [force: "/force", raw: "/raw", unused: "/unused"]
        try writer.addMetadata(name: "session", ["patient": "P-001", "operator": "test"])
        for index in 0..<messages {
            let channel = index % 3 == 0 ? raw : force
            let sequence = UInt32(index)
            let logTime = 1_700_000_000_000_000_000 + UInt64(index) * 1_000_000
            let data = TestFiles.payload(channel: channel, sequence: sequence, size: channel == raw ? payloadSize : payloadSize / 10)
            try writer.write(channel: channel, sequence: sequence, logTime: logTime, publishTime: logTime - 5, data: data)
            written.append((channel, sequence, logTime, data))
            if index == messages / 2 {
                try writer.addAttachment(name: "arm.toml", mediaType: "application/toml", logTime: logTime, data: Array("[arm]\nlinks = 6\n".utf8))
                try writer.addMetadata(name: "versions", ["sono": "test", "model": "v4"])
            }
        }
        try writer.addAttachment(name: "empty.bin", mediaType: "application/octet-stream", logTime: 42, data: [])
        try writer.close()
    }

    /// Checks that `messages` are the first `messages.count` written, byte for byte (channels by
    /// topic: a recovered file numbers its channels anew).
    func expectPrefix(_ messages: [MCAPMessage], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(messages.count <= written.count, sourceLocation: sourceLocation)
        for (message, expected) in zip(messages, written) {
            guard message.channel.topic == channels[expected.0], message.sequence == expected.1, message.logTime == expected.2,
                  message.publishTime == expected.2 - 5, message.data == expected.3 else {
                Issue.record("message \(message.sequence) on \(message.channel.topic) differs from what was written",
                             sourceLocation: sourceLocation)
                return
            }
        }
    }
}
