import Foundation
@testable import SonoRecord
import SonoTestSupport
import SonoSystem
import Testing

/// Recovery of complete files, and of a file whose writer was killed with SIGKILL mid-recording.
@Suite struct MCAPRecoveryTests {
    /// The helper executable next to the test binary (built by `swift build --build-tests`).
    static var crashWriter: String {
        let candidates: [String?] = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("record-crash-writer").path,
            Bundle.main.executableURL?.deletingLastPathComponent().appendingPathComponent("record-crash-writer").path,
            PythonMCAP.root.appendingPathComponent(".build/debug/record-crash-writer").path,
        ]
        return candidates.compactMap { $0 }.first { FileManager.default.isExecutableFile(atPath: $0) }
            ?? PythonMCAP.root.appendingPathComponent(".build/debug/record-crash-writer").path
    }

    @Test func recoveringACompleteFileKeepsEverything() throws {
        let path = TestFiles.temporary("complete.mcap"), recovered = TestFiles.temporary("complete-recovered.mcap")
        defer { TestFiles.remove(path, recovered) }
        var options = MCAPWriterOptions()
        options.chunkSize = 16 << 10
        options.syncChunks = false
        let sample = try SampleRecording(path: path, options: options)
        let report = try MCAPRecovery.recover(from: path, to: recovered)
        #expect(report.inputWasComplete)
        #expect(report.problems.isEmpty)
        #expect(report.messages == sample.written.count)
        #expect(report.attachments == 2 && report.metadata == 2)
        #expect(report.bytesLost == 0)
        #expect(report.description.contains("the input was complete"))
        let reader = try MCAPReader(path: recovered)
        #expect(reader.library == "sono (recovered)")
        #expect(Set(reader.channels.values.map(\.topic)) == ["/force", "/raw", "/unused"])
        #expect(reader.attachments.map(\.name) == ["arm.toml", "empty.bin"])
        #expect(reader.metadata.map(\.name) == ["session", "versions"])
        var messages: [MCAPMessage] = []
        #expect(try reader.forEachMessage { messages.append($0) }.complete)
        sample.expectPrefix(messages)
        #expect(messages.count == sample.written.count)
    }

    @Test func recoveryNeverOverwrites() throws {
        let path = TestFiles.temporary("source.mcap")
        defer { TestFiles.remove(path) }
        _ = try SampleRecording(path: path, options: .init(), messages: 5)
        let before = try TestFiles.bytes(path)
        #expect(throws: RecordError.io(path: path, errno: .fileExists, operation: "create")) {
            try MCAPRecovery.recover(from: path, to: path)
        }
        #expect(try TestFiles.bytes(path) == before)
    }

    @Test func killedWriterKeepsEveryChunkOnDisk() throws {
        let path = TestFiles.temporary("killed.mcap"), recovered = TestFiles.temporary("killed-recovered.mcap")
        defer { TestFiles.remove(path, recovered) }
        let child = try ChildProcess([Self.crashWriter, path])
        // Let it write a few chunks, then SIGKILL it in the middle of whatever it is doing.
        var reported = 0
        for _ in 0..<8 {
            guard let line = child.readLine(seconds: 30), let count = Int(line) else {
                Issue.record("the writer stopped reporting: \(child.stderr)")
                return
            }
            reported = count
        }
        usleep(UInt32.random(in: 0...3_000))
        #expect(kill(child.pid, SIGKILL) == 0)
        #expect(child.wait(seconds: 10) == 128 + SIGKILL)
        // Chunks the child reported before it died are on disk.
        for line in child.remainingLines() { if let count = Int(line) { reported = max(reported, count) } }
        #expect(reported > 0)

        func checkSequence(_ messages: [MCAPMessage]) {
            for (index, message) in messages.enumerated() {
                let frames = index % 4 == 0
                guard message.sequence == UInt32(index), message.channel.topic == (frames ? "/frames" : "/force"),
                      message.data == TestFiles.payload(channel: frames ? 2 : 1, sequence: UInt32(index), size: frames ? 3000 : 120) else {
                    Issue.record("message \(index) is not what the writer wrote (sequence \(message.sequence), \(message.channel.topic))")
                    return
                }
            }
        }
        #expect(throws: RecordError.self) { try TestFiles.readAll(path) }
        let (messages, result) = try TestFiles.readAll(path, tolerant: true)
        #expect(messages.count >= reported, "\(messages.count) messages survived, the writer had reported \(reported) on disk")
        #expect(!result.complete)
        checkSequence(messages)

        let report = try MCAPRecovery.recover(from: path, to: recovered)
        #expect(report.messages == messages.count)
        #expect(!report.inputWasComplete)
        let (again, recoveredResult) = try TestFiles.readAll(recovered)
        #expect(recoveredResult.complete)
        #expect(again.count == messages.count)
        checkSequence(again)
        if PythonMCAP.required {
            try PythonMCAP.check(recovered, expect: ["channels": ["/frames": ["messages": (again.count + 3) / 4],
                                                                   "/force": ["messages": again.count - (again.count + 3) / 4]]])
        }
    }

    @Test(.enabled(if: PythonMCAP.required, PythonMCAP.skipReason))
    func recoveredFileIsValidForTheReferenceReader() throws {
        let whole = TestFiles.temporary("py-whole.mcap"), cut = TestFiles.temporary("py-cut.mcap"),
            recovered = TestFiles.temporary("py-recovered.mcap")
        defer { TestFiles.remove(whole, cut, recovered) }
        _ = try PythonInteropTests.writeSession(whole, compression: .zstd)
        let bytes = try TestFiles.bytes(whole)
        let chunks = try MCAPDamageTests.chunkMessageCounts(whole)
        try TestFiles.write(Array(bytes[..<Int(chunks[2].end + 5)]), to: cut)  // inside the third chunk's message index
        let report = try MCAPRecovery.recover(from: cut, to: recovered)
        #expect(report.chunks == 3)
        try PythonMCAP.check(recovered, expect: [
            // /events has its only message at the end: cut off with it.
            "channels": ["/probe/image": ["schema": "foxglove.RawImage"], "/force": [:], "/joints": [:]],
            "attachments": [["name": "arm.toml", "media_type": "application/toml", "size": 6]],
            "metadata": [["name": "session", "entries": ["patient": "P-001", "mode": "simulation"]]],
            "decoded": [["topic": "/probe/image", "index": 0, "fields": ["width": 512, "height": 512, "data_length": 512 * 512]]],
        ])
    }
}
