import Foundation
@testable import SonoRecord
import Synchronization
import SonoSystem
import Testing

/// The session recorder: producers on several threads, one writer thread, control data never
/// dropped, bulk data dropped (and counted) when the writer cannot keep up.
@Suite struct SessionRecorderTests {
    static func options(chunkSeconds: Double = 1.0) -> MCAPWriterOptions {
        var options = MCAPWriterOptions()
        options.syncChunks = false
        options.chunkSize = 256 << 10
        options.chunkSeconds = chunkSeconds
        return options
    }

    /// Messages of a file by topic, in file order.
    static func byTopic(_ path: String) throws -> [String: [MCAPMessage]] {
        let (messages, result) = try TestFiles.readAll(path)
        #expect(result.complete)
        return Dictionary(grouping: messages, by: \.channel.topic)
    }

    static func frame(_ index: Int, width: Int = 64, height: Int = 48) -> [UInt8] {
        (0..<(width * height)).map { UInt8(truncatingIfNeeded: $0 &+ index &* 7) }
    }

    @Test func recordsBothLanesFromManyThreads() throws {
        let path = TestFiles.temporary("recorder.mcap")
        defer { TestFiles.remove(path) }
        let recorder = try SessionRecorder(path: path, options: Self.options(), bulkCapacity: 500)
        let image = try recorder.channel(topic: "/probe/image", messageEncoding: "protobuf", schema: FoxgloveSchemas.rawImage)
        let forceSchema = FoxgloveSchemas.jsonSchema(name: "sono.Force", json: "{}")
        let force = try recorder.channel(topic: "/force", messageEncoding: "json", schema: forceSchema)
        let joints = try recorder.channel(topic: "/joints", messageEncoding: "json", schema: forceSchema)  // the same schema: shared
        let events = try recorder.channel(topic: "/events", messageEncoding: "json", schema: nil, metadata: ["kind": "events"])
        #expect([image, force, joints, events] == [1, 2, 3, 4])

        let perThread = 2000
        DispatchQueue.concurrentPerform(iterations: 4) { lane in
            switch lane {
            case 0, 1:
                let channel = lane == 0 ? force : joints
                for sequence in 0..<perThread {
                    recorder.record(channel: channel, sequence: UInt32(sequence), logTime: UInt64(sequence) * 1_000_000,
                                    data: Array(#"{"n":\#(sequence)}"#.utf8))
                }
            case 2:
                for index in 0..<100 {
                    let pixels = Self.frame(index)
                    _ = pixels.withUnsafeBytes {
                        recorder.offerMono8Frame(channel: image, sequence: UInt32(index), logTime: UInt64(index) * 16_666_667,
                                                 width: 64, height: 48, pixels: $0)
                    }
                }
            default:
                recorder.metadata(name: "session", ["patient": "P-001"])
                recorder.attach(name: "arm.toml", mediaType: "application/toml", logTime: 5, data: Array("[arm]".utf8))
                recorder.record(channel: events, sequence: 0, logTime: 7, data: Array(#"{"event":"start"}"#.utf8))
            }
        }
        let counters = try recorder.finish()
        #expect(counters.bulkOffered == 100)
        #expect(counters.bulkDropped == 0, "500 places for 100 frames")
        #expect(counters.messages == 2 * perThread + 100 + 1)
        #expect(counters.controlRecorded == 4 + 2 * perThread + 3)
        #expect(counters.controlHighWater >= 1)
        #expect(counters.chunks >= 1)
        #expect(counters.writeError == nil)
        #expect(counters.bytesWritten == UInt64(try TestFiles.bytes(path).count))

        let topics = try Self.byTopic(path)
        #expect(topics["/force"]?.map(\.sequence) == (0..<perThread).map(UInt32.init))
        #expect(topics["/joints"]?.map(\.sequence) == (0..<perThread).map(UInt32.init))
        #expect(topics["/events"]?.first?.channel.metadata == ["kind": "events"])
        #expect(topics["/force"]?.first?.channel.schema == forceSchema)
        let frames = try #require(topics["/probe/image"])
        #expect(frames.map(\.sequence) == (0..<100).map(UInt32.init))
        // Each frame is the RawImage encoding of its pixels.
        let encoder = RawImageEncoder()
        for frame in frames {
            let expected = try encoder.encodeMono8(timestampNanos: frame.logTime, width: 64, height: 48,
                                                   pixels: Self.frame(Int(frame.sequence))) { Array($0) }
            #expect(frame.data == expected)
        }
        let reader = try MCAPReader(path: path)
        #expect(reader.metadata.map(\.name) == ["session"])
        #expect(reader.attachments.map(\.name) == ["arm.toml"])
    }

    @Test func slowWriterDropsFramesButNeverControlData() throws {
        let path = TestFiles.temporary("slow.mcap")
        defer { TestFiles.remove(path) }
        // 10 ms per frame: a disk that manages 100 frames/s at best, offered them at ~1000/s.
        let recorder = try SessionRecorder(path: path, options: Self.options(), bulkCapacity: 8, bulkWriteDelayMicros: 10_000)
        let image = try recorder.channel(topic: "/probe/image", messageEncoding: "protobuf", schema: FoxgloveSchemas.rawImage)
        let force = try recorder.channel(topic: "/force", messageEncoding: "json", schema: nil)
        let frames = 200, control = 3000
        let acceptedCount = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 2) { lane in
            if lane == 0 {
                var count = 0
                for index in 0..<frames {
                    let pixels = Self.frame(index)
                    if pixels.withUnsafeBytes({
                        recorder.offerMono8Frame(channel: image, sequence: UInt32(index), logTime: UInt64(index), width: 64, height: 48, pixels: $0)
                    }) { count += 1 }
                    usleep(1_000)
                }
                acceptedCount.withLock { $0 = count }
            } else {
                for sequence in 0..<control {
                    recorder.record(channel: force, sequence: UInt32(sequence), logTime: UInt64(sequence), data: Array(#"{"fz":1}"#.utf8))
                    if sequence % 20 == 0 { usleep(1_000) }
                }
            }
        }
        let counters = try recorder.finish()
        let accepted = acceptedCount.withLock { $0 }
        #expect(counters.bulkOffered == frames)
        #expect(counters.bulkDropped > frames / 3, "the slow writer keeps up with at most a third of the frames")
        #expect(counters.bulkDropped == frames - accepted)
        #expect(counters.bulkHighWater == 8)
        #expect(counters.controlHighWater > 8, "control data queued up behind the slow frames instead of being dropped")
        #expect(counters.messages == control + accepted)

        let topics = try Self.byTopic(path)
        #expect(topics["/force"]?.map(\.sequence) == (0..<control).map(UInt32.init))
        let written = try #require(topics["/probe/image"])
        #expect(written.count == accepted)
        #expect(written.map(\.sequence) == written.map(\.sequence).sorted())
    }

    @Test func idleRecorderClosesChunksByAge() throws {
        let path = TestFiles.temporary("idle.mcap")
        defer { TestFiles.remove(path) }
        let recorder = try SessionRecorder(path: path, options: Self.options(chunkSeconds: 0.05))
        let events = try recorder.channel(topic: "/events", messageEncoding: "json", schema: nil)
        recorder.record(channel: events, sequence: 0, logTime: 1, data: Array("{}".utf8))
        // Nothing else comes: the writer thread wakes for the chunk's age and writes it.
        var waited = 0
        while recorder.counters.chunks == 0 && waited < 200 {
            usleep(10_000)
            waited += 1
        }
        #expect(recorder.counters.chunks == 1)
        // Already readable (as after a crash now) before the recording is finished.
        let (messages, result) = try TestFiles.readAll(path, tolerant: true)
        #expect(messages.count == 1)
        #expect(!result.complete)
        try recorder.finish()
        #expect(try TestFiles.readAll(path).result.complete)
    }

    @Test func afterFinish() throws {
        let path = TestFiles.temporary("finished.mcap")
        defer { TestFiles.remove(path) }
        let recorder = try SessionRecorder(path: path, options: Self.options())
        let events = try recorder.channel(topic: "/events", messageEncoding: "json", schema: nil)
        recorder.record(channel: events, sequence: 0, logTime: 1, data: Array("{}".utf8))
        let first = try recorder.finish()
        #expect(first.messages == 1)
        #expect(try recorder.finish() == first)
        #expect(throws: RecordError.self) { try recorder.channel(topic: "/late", messageEncoding: "json", schema: nil) }
        recorder.record(channel: events, sequence: 1, logTime: 2, data: Array("{}".utf8))
        #expect(recorder.offer(channel: events, sequence: 2, logTime: 3, data: [1]) == false)
        #expect(recorder.counters.lostAfterError == 2)
        #expect(try TestFiles.readAll(path).messages.count == 1)
    }

    @Test func refusesToOverwrite() throws {
        let path = TestFiles.temporary("taken.mcap")
        defer { TestFiles.remove(path) }
        try TestFiles.write([0], to: path)
        #expect(throws: RecordError.io(path: path, errno: .fileExists, operation: "create")) { try SessionRecorder(path: path) }
    }

    @Test func badFrameIsRefused() throws {
        let path = TestFiles.temporary("bad-frame.mcap")
        defer { TestFiles.remove(path) }
        let recorder = try SessionRecorder(path: path, options: Self.options())
        let image = try recorder.channel(topic: "/probe/image", messageEncoding: "protobuf", schema: FoxgloveSchemas.rawImage)
        let short = [UInt8](repeating: 0, count: 10)
        #expect(short.withUnsafeBytes { recorder.offerMono8Frame(channel: image, sequence: 0, logTime: 0, width: 64, height: 48, pixels: $0) } == false)
        try recorder.finish()
    }

    /// A disk at the free-space floor: the writer closes the file, complete and readable with
    /// what it held, and everything later is counted as lost, never written past the floor.
    @Test func aDiskBelowTheFloorClosesTheFileCompleteAndStops() throws {
        let path = TestFiles.temporary("floor.mcap")
        defer { TestFiles.remove(path) }
        // A floor no file system here meets (half of 2⁶⁴ bytes): the first check stops it.
        let recorder = try SessionRecorder(path: path, options: Self.options(), minimumFreeBytes: UInt64.max / 2)
        let events = try recorder.channel(topic: "/events", messageEncoding: "json", schema: nil)
        recorder.record(channel: events, sequence: 0, logTime: 1, data: Array(#"{"n":0}"#.utf8))
        // The writer checks once it has written a batch; wait for it to stop.
        let deadline = Date().addingTimeInterval(10)
        while recorder.counters.writeError == nil, Date() < deadline { usleep(10_000) }
        guard case .diskLow(let stoppedPath, let free, let floor)? = recorder.counters.writeError else {
            Issue.record("no diskLow error: \(String(describing: recorder.counters.writeError))")
            return
        }
        #expect(stoppedPath == path && free < floor && floor == UInt64.max / 2)
        #expect(recorder.counters.writeError?.description.contains("min_free_mib") == true)
        recorder.record(channel: events, sequence: 1, logTime: 2, data: Array(#"{"n":1}"#.utf8))
        #expect(throws: RecordError.self) { _ = try recorder.finish() }
        #expect(recorder.counters.lostAfterError >= 1, "the message after the stop is counted as lost")
        // Complete (summary and footer written at the stop), with the message before it.
        let messages = try Self.byTopic(path)["/events"] ?? []
        #expect(messages.map(\.sequence) == [0])
    }

    @Test func aDiskAboveTheFloorRecordsOn() throws {
        let path = TestFiles.temporary("floor-ok.mcap")
        defer { TestFiles.remove(path) }
        let recorder = try SessionRecorder(path: path, options: Self.options(), minimumFreeBytes: 1)
        let events = try recorder.channel(topic: "/events", messageEncoding: "json", schema: nil)
        for sequence in 0..<10 {
            recorder.record(channel: events, sequence: UInt32(sequence), logTime: UInt64(sequence), data: Array(#"{"n":0}"#.utf8))
        }
        let counters = try recorder.finish()
        #expect(counters.writeError == nil && counters.messages == 10)
    }
}
