import Foundation
@testable import SonoRecord
import SonoSystem
import Testing

/// What the writer writes, the reader reads back: every record kind, both compressions, chunk
/// limits by size and by age, messages larger than a chunk.
@Suite struct MCAPRoundTripTests {
    @Test(arguments: [MCAPCompression.none, .zstd])
    func everyRecordKindRoundTrips(compression: MCAPCompression) throws {
        let path = TestFiles.temporary("all-kinds.mcap")
        defer { TestFiles.remove(path) }
        var options = MCAPWriterOptions()
        options.compression = compression
        options.chunkSize = 32 << 10
        options.syncChunks = false
        options.library = "sono test"
        let sample = try SampleRecording(path: path, options: options)

        let reader = try MCAPReader(path: path)
        #expect(reader.profile == "sono")
        #expect(reader.library == "sono test")
        #expect(reader.hasSummary)
        // From the summary, before any message is read.
        #expect(reader.channels.count == 3)
        #expect(reader.channels[1]?.topic == "/force")
        #expect(reader.channels[1]?.schema == SampleRecording.jsonSchema)
        #expect(reader.channels[1]?.metadata == ["unit": "N", "rate": "1000"])
        #expect(reader.channels[2]?.schema == nil)
        #expect(reader.channels[3]?.schema == SampleRecording.binarySchema)
        #expect(reader.attachments.map(\.name) == ["arm.toml", "empty.bin"])
        #expect(reader.attachments.first?.data == Array("[arm]\nlinks = 6\n".utf8))
        #expect(reader.attachments.first?.mediaType == "application/toml")
        #expect(reader.attachments.last?.data == [])
        #expect(reader.metadata.map(\.name) == ["session", "versions"])
        #expect(reader.metadata.first?.entries == ["patient": "P-001", "operator": "test"])

        var messages: [MCAPMessage] = []
        let result = try reader.forEachMessage { messages.append($0) }
        #expect(result.complete)
        #expect(result.damage == nil)
        #expect(result.messages == sample.written.count)
        #expect(messages.count == sample.written.count)
        sample.expectPrefix(messages)
        // Read again from the data section: the same attachments and metadata.
        #expect(reader.attachments.map(\.name) == ["arm.toml", "empty.bin"])
        #expect(reader.metadata.map(\.name) == ["session", "versions"])

        let layout = try FileLayout(path)
        #expect(layout.chunks > 3, "32 KiB chunks: the sample spans several")
        #expect(layout.chunkCompressions == [compression.rawValue])
    }

    @Test func zstdChunksAreSmallerThanTheirContent() throws {
        let plain = TestFiles.temporary("plain.mcap"), packed = TestFiles.temporary("packed.mcap")
        defer { TestFiles.remove(plain, packed) }
        var options = MCAPWriterOptions()
        options.syncChunks = false
        options.compression = .none
        _ = try SampleRecording(path: plain, options: options)
        options.compression = .zstd
        _ = try SampleRecording(path: packed, options: options)
        let plainSize = try TestFiles.bytes(plain).count, packedSize = try TestFiles.bytes(packed).count
        #expect(packedSize * 2 < plainSize, "pattern payloads compress well: \(packedSize) vs \(plainSize) bytes")
    }

    @Test(arguments: [MCAPCompression.none, .zstd])
    func messagesLargerThanAChunk(compression: MCAPCompression) throws {
        let path = TestFiles.temporary("large.mcap")
        defer { TestFiles.remove(path) }
        var options = MCAPWriterOptions()
        options.compression = compression
        options.chunkSize = 256 << 10
        options.syncChunks = false
        let writer = try MCAPWriter(path: path, options: options)
        let channel = try writer.addChannel(topic: "/big", messageEncoding: "x-bytes", schemaID: 0)
        var written: [[UInt8]] = []
        for index in 0..<7 {
            let size = index % 2 == 0 ? 1 << 20 : 100 + index  // 1 MiB, then small ones between
            let data = TestFiles.payload(channel: channel, sequence: UInt32(index), size: size)
            try writer.write(channel: channel, sequence: UInt32(index), logTime: UInt64(index), publishTime: UInt64(index), data: data)
            written.append(data)
        }
        try writer.close()
        let (messages, result) = try TestFiles.readAll(path)
        #expect(result.complete)
        #expect(messages.map(\.data) == written)
        // Each 1 MiB message closes its chunk at once: 4 chunks (the last holds the last one).
        #expect(try FileLayout(path).chunks == 4)
    }

    @Test func chunkSecondsClosesChunksThatAreOldEnough() throws {
        let path = TestFiles.temporary("age.mcap")
        defer { TestFiles.remove(path) }
        var options = MCAPWriterOptions()
        options.chunkSeconds = 0.05
        options.syncChunks = false
        let writer = try MCAPWriter(path: path, options: options)
        let channel = try writer.addChannel(topic: "/slow", messageEncoding: "json", schemaID: 0)
        try writer.write(channel: channel, sequence: 0, logTime: 0, publishTime: 0, data: Array("{}".utf8))
        #expect(writer.chunksWritten == 0)
        #expect((writer.nanosecondsUntilChunkDue ?? 0) > 0)
        usleep(60_000)
        #expect(writer.nanosecondsUntilChunkDue == 0)
        try writer.flushIfDue()  // what the recorder's writer thread does when nothing comes
        #expect(writer.chunksWritten == 1)
        #expect(writer.nanosecondsUntilChunkDue == nil)
        try writer.write(channel: channel, sequence: 1, logTime: 1, publishTime: 1, data: Array("{}".utf8))
        usleep(60_000)
        try writer.write(channel: channel, sequence: 2, logTime: 2, publishTime: 2, data: Array("{}".utf8))
        #expect(writer.chunksWritten == 2, "the second message arrived after the chunk's age limit: it closed the chunk")
        try writer.write(channel: channel, sequence: 3, logTime: 3, publishTime: 3, data: Array("{}".utf8))
        try writer.close()
        #expect(try FileLayout(path).chunks == 3)
        #expect(try TestFiles.readAll(path).messages.map(\.sequence) == [0, 1, 2, 3])
    }

    @Test func emptyRecordingIsValid() throws {
        let path = TestFiles.temporary("empty.mcap")
        defer { TestFiles.remove(path) }
        let writer = try MCAPWriter(path: path)
        try writer.close()
        try writer.close()  // twice: nothing happens
        let (messages, result) = try TestFiles.readAll(path)
        #expect(messages.isEmpty)
        #expect(result.complete)
    }

    @Test func neverOverwritesAFile() throws {
        let path = TestFiles.temporary("exists.mcap")
        defer { TestFiles.remove(path) }
        try TestFiles.write([1, 2, 3], to: path)
        #expect(throws: RecordError.io(path: path, errno: .fileExists, operation: "create")) { try MCAPWriter(path: path) }
        let error = RecordError.io(path: path, errno: .fileExists, operation: "create")
        #expect(error.description.contains("never overwrites"))
        #expect(try TestFiles.bytes(path) == [1, 2, 3])
    }

    @Test func misuseIsAnErrorNotACrash() throws {
        let path = TestFiles.temporary("misuse.mcap")
        defer { TestFiles.remove(path) }
        let writer = try MCAPWriter(path: path)
        #expect(throws: RecordError.self) { try writer.write(channel: 1, sequence: 0, logTime: 0, publishTime: 0, data: [1]) }
        #expect(throws: RecordError.self) { try writer.addChannel(topic: "/x", messageEncoding: "json", schemaID: 9) }
        try writer.close()
        #expect(throws: RecordError.self) { try writer.addMetadata(name: "late", [:]) }
    }
}

/// The top-level records of a file, for tests that need to know where chunks are.
struct FileLayout {
    var records: [(opcode: UInt8, offset: UInt64, end: UInt64)] = []
    var chunkCompressions: Set<String> = []

    init(_ path: String) throws {
        let bytes = try TestFiles.bytes(path)
        var offset = 8
        while offset + 9 <= bytes.count {
            let opcode = bytes[offset]
            let length = bytes[(offset + 1)..<(offset + 9)].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) }
            let end = offset + 9 + Int(length)
            guard end <= bytes.count else { break }
            records.append((opcode, UInt64(offset), UInt64(end)))
            if opcode == 0x06 {
                let at = offset + 9 + 28
                let count = Int(bytes[at]) | Int(bytes[at + 1]) << 8
                chunkCompressions.insert(String(decoding: bytes[(at + 4)..<(at + 4 + count)], as: UTF8.self))
            }
            if opcode == 0x02 { break }
            offset = end
        }
    }

    var chunks: Int { records.filter { $0.opcode == 0x06 }.count }
    var chunkRecords: [(opcode: UInt8, offset: UInt64, end: UInt64)] { records.filter { $0.opcode == 0x06 } }
    var dataEnd: UInt64? { records.first { $0.opcode == 0x0F }?.offset }
}
