import Foundation
@testable import SonoRecord
import SonoSystem
import SonoTestSupport
import Testing

/// Cut-off, corrupt and foreign files: the reader says what is wrong and where (file, byte
/// offset, what), a tolerant read keeps every message of every intact chunk, and recovery
/// turns what is left into a complete file.
@Suite struct MCAPDamageTests {
    /// Messages per chunk of a complete file, in order, and each chunk's [start, end).
    static func chunkMessageCounts(_ path: String) throws -> [(start: UInt64, end: UInt64, messages: Int)] {
        let stream = try RecordStream(file: try InputFile(path: path))
        let decoder = ChunkDecoder()
        var result: [(UInt64, UInt64, Int)] = []
        while let raw = try stream.next(), raw.opcode != Opcode.dataEnd.rawValue {
            guard raw.opcode == Opcode.chunk.rawValue else { continue }
            var fields = stream.fields(raw)
            let chunk = try ChunkRecord(&fields)
            let items = try parseChunkRecords(try decoder.records(of: chunk, path: path, offset: raw.offset), path: path, chunkOffset: raw.offset)
            result.append((raw.offset, raw.end, items.filter { if case .message = $0 { true } else { false } }.count))
        }
        return result
    }

    static func truncatedCopy(_ bytes: [UInt8], to length: Int) throws -> String {
        let path = TestFiles.temporary("cut-\(length).mcap")
        try TestFiles.write(Array(bytes[..<length]), to: path)
        return path
    }

    @Test(arguments: [MCAPCompression.zstd, .none])
    func truncationAtEveryChunkBoundaryAndInside(compression: MCAPCompression) throws {
        let path = TestFiles.temporary("whole.mcap")
        defer { TestFiles.remove(path) }
        var options = MCAPWriterOptions()
        options.compression = compression
        options.chunkSize = 10 << 10
        options.syncChunks = false
        let sample = try SampleRecording(path: path, options: options, messages: 240, payloadSize: 700)
        let bytes = try TestFiles.bytes(path)
        let chunks = try Self.chunkMessageCounts(path)
        #expect(chunks.count >= 5)
        let layout = try FileLayout(path)

        var cuts: Set<Int> = [0, 1, 7, 8, 9, 20, bytes.count - 1, bytes.count - 8, bytes.count - 20]
        for chunk in chunks {
            for delta in -3...3 {
                cuts.insert(Int(chunk.start) + delta)
                cuts.insert(Int(chunk.end) + delta)
            }
            cuts.insert(Int(chunk.start) + 20)  // inside the chunk's header
            cuts.insert(Int((chunk.start + chunk.end) / 2))  // inside its records
        }
        if let dataEnd = layout.dataEnd { for delta in -2...14 { cuts.insert(Int(dataEnd) + delta) } }  // DataEnd, start of the summary
        for cut in cuts.sorted() where cut >= 0 && cut < bytes.count {
            let cutPath = try Self.truncatedCopy(bytes, to: cut)
            let recovered = TestFiles.temporary("recovered-\(cut).mcap")
            defer { TestFiles.remove(cutPath, recovered) }
            let survivors = chunks.filter { $0.end <= UInt64(cut) }.reduce(0) { $0 + $1.messages }

            // Strict: an error naming the file and where it is cut.
            do {
                _ = try TestFiles.readAll(cutPath)
                Issue.record("a file cut at byte \(cut) of \(bytes.count) read without error")
            } catch let error as RecordError {
                #expect(error.description.contains(cutPath), "\(error)")
                switch error {
                case .truncated(_, let offset, _): #expect(offset <= UInt64(cut), "cut at \(cut): \(error)")
                case .notMCAP: #expect(cut == 0, "cut at \(cut): \(error)")
                default: Issue.record("cut at \(cut): expected truncated, got \(error)")
                }
            }
            // Tolerant: everything of the chunks before the cut, and the damage.
            if cut >= 8 + 30 {  // past the Header (the reader cannot open a file cut inside it)
                let (messages, result) = try TestFiles.readAll(cutPath, tolerant: true)
                #expect(messages.count == survivors, "cut at \(cut): \(messages.count) messages, expected \(survivors)")
                #expect(!result.complete)
                #expect(result.damage != nil)
                sample.expectPrefix(messages)
            }
            // Recovery: a complete file with the same messages (an empty file is not a recording).
            if cut == 0 {
                #expect(throws: RecordError.notMCAP(path: cutPath, what: "the file is empty (0 bytes)")) {
                    try MCAPRecovery.recover(from: cutPath, to: recovered)
                }
                continue
            }
            let report = try MCAPRecovery.recover(from: cutPath, to: recovered)
            #expect(report.messages == survivors, "cut at \(cut): recovered \(report.messages), expected \(survivors)")
            #expect(!report.inputWasComplete)
            #expect(!report.problems.isEmpty)
            let (again, result) = try TestFiles.readAll(recovered)
            #expect(result.complete, "recovered from the cut at \(cut)")
            #expect(again.count == survivors)
            sample.expectPrefix(again)
        }
    }

    /// The mcap-reader fuzz target's inputs (Fuzz/regressions/mcap-reader), each a size from the
    /// file that was allocated before anything was checked against it:
    /// - a 3.4 KB file whose message index declares about 2.3 GB of entries (the length is now
    ///   checked against the record first);
    /// - a chunk whose header claims 1 GiB uncompressed (chunks are capped at 256 MiB, and a zstd
    ///   frame that states its size must agree with the header before anything is allocated).
    @Test(arguments: [
        ("message-index-length-4gib-reserve", ["records array needs"]),
        ("chunk-claims-1gib-uncompressed", ["more than the 256 MiB a chunk may have", "its header says"]),
    ])
    func aSizeFromTheFileIsCheckedBeforeItIsAllocated(input: String, reasons: [String]) throws {
        let reader = try MCAPReader(path: Repository.path("Fuzz/regressions/mcap-reader/" + input))
        do {
            _ = try reader.forEachMessage { _ in }
            Issue.record("read without an error")
        } catch {
            let text = "\(error)"
            #expect(reasons.contains { text.contains($0) }, "\(text)")
        }
        _ = try reader.forEachMessage(tolerant: true) { _ in }
    }

    /// The mcap-reader fuzz target's input whose summary indexes an attachment at a record that
    /// claims almost 2^64 content bytes: opening it added the record prefix to that length and
    /// trapped on the overflow. Now the summary is refused (the reader falls back to the data
    /// section, as for any unreadable summary), and a strict read reports the file as damaged.
    @Test func anIndexedRecordWhoseLengthOverflowsDoesNotTrap() throws {
        let reader = try MCAPReader(path: Repository.path("Fuzz/regressions/mcap-reader/summary-index-length-overflows"))
        #expect(!reader.hasSummary)
        #expect(throws: RecordError.self) { _ = try reader.forEachMessage { _ in } }
        let tolerant = try reader.forEachMessage(tolerant: true) { _ in }
        #expect(!tolerant.complete && tolerant.damage != nil)
    }

    @Test func flippedByteInsideAChunkNamesTheChunk() throws {
        let path = TestFiles.temporary("flip.mcap"), recovered = TestFiles.temporary("flip-recovered.mcap")
        defer { TestFiles.remove(path, recovered) }
        var options = MCAPWriterOptions()
        options.compression = .none
        options.chunkSize = 24 << 10
        options.syncChunks = false
        let sample = try SampleRecording(path: path, options: options)
        let chunks = try Self.chunkMessageCounts(path)
        var bytes = try TestFiles.bytes(path)
        let victim = chunks[2]
        bytes[Int((victim.start + victim.end) / 2)] ^= 0x10
        TestFiles.remove(path)
        try TestFiles.write(bytes, to: path)

        #expect {
            _ = try TestFiles.readAll(path)
        } throws: { error in
            guard case .crcMismatch(let file, let offset, _, _, _) = error as? RecordError else { return false }
            return file == path && offset == victim.start
                && (error as? RecordError)?.description.contains("corrupt at byte \(victim.start)") == true
        }
        let before = chunks[0].messages + chunks[1].messages
        let (messages, result) = try TestFiles.readAll(path, tolerant: true)
        #expect(messages.count == before)
        sample.expectPrefix(messages)
        #expect(!result.complete)
        if case .crcMismatch = result.damage {} else { Issue.record("damage: \(String(describing: result.damage))") }

        // Recovery skips the damaged chunk and keeps the ones after it.
        let report = try MCAPRecovery.recover(from: path, to: recovered)
        #expect(report.chunksSkipped == 1)
        #expect(report.messages == sample.written.count - victim.messages)
        #expect(report.bytesLost == victim.end - victim.start)
        let (kept, keptResult) = try TestFiles.readAll(recovered)
        #expect(keptResult.complete)
        #expect(kept.count == report.messages)
        #expect(kept.map(\.data) == messages.map(\.data) + sample.written.dropFirst(before + victim.messages).map(\.3))
    }

    @Test func flippedByteInAZstdChunkIsCaught() throws {
        let path = TestFiles.temporary("flip-zstd.mcap")
        defer { TestFiles.remove(path) }
        var options = MCAPWriterOptions()
        options.chunkSize = 24 << 10
        options.syncChunks = false
        _ = try SampleRecording(path: path, options: options)
        let chunks = try Self.chunkMessageCounts(path)
        for position in [chunks[1].start + 60, (chunks[1].start + chunks[1].end) / 2, chunks[1].end - 3] {
            var bytes = try TestFiles.bytes(path)
            bytes[Int(position)] ^= 0x01
            let damaged = TestFiles.temporary("flip-zstd-\(position).mcap")
            defer { TestFiles.remove(damaged) }
            try TestFiles.write(bytes, to: damaged)
            #expect {
                _ = try TestFiles.readAll(damaged)
            } throws: { error in
                switch error as? RecordError {
                case .crcMismatch(_, let offset, _, _, _), .corrupt(_, let offset, _): offset == chunks[1].start
                default: false
                }
            }
        }
    }

    @Test func flippedByteInTheSummaryIsASummaryCRCError() throws {
        let path = TestFiles.temporary("summary-flip.mcap")
        defer { TestFiles.remove(path) }
        var options = MCAPWriterOptions()
        options.syncChunks = false
        let sample = try SampleRecording(path: path, options: options)
        var bytes = try TestFiles.bytes(path)
        let dataEnd = try #require(try FileLayout(path).dataEnd)
        bytes[Int(dataEnd) + 13 + 30] ^= 0x40  // inside the first summary record
        TestFiles.remove(path)
        try TestFiles.write(bytes, to: path)
        let reader = try MCAPReader(path: path)  // opens: the data may still be good
        #expect(!reader.hasSummary)
        #expect(throws: RecordError.self) { try reader.forEachMessage { _ in } }
        let result = try reader.forEachMessage(tolerant: true) { _ in }
        #expect(result.messages == sample.written.count)
        #expect(!result.complete)
        guard case .crcMismatch(_, let offset, let what, _, _) = result.damage else {
            Issue.record("damage: \(String(describing: result.damage))")
            return
        }
        #expect(offset == dataEnd + 13)
        #expect(what == "the summary section")
    }

    @Test func zeroFilledTailAfterPowerLoss() throws {
        // ext4 may leave the file's last blocks zero-filled after a power cut.
        let path = TestFiles.temporary("zeros.mcap"), recovered = TestFiles.temporary("zeros-recovered.mcap")
        defer { TestFiles.remove(path, recovered) }
        var options = MCAPWriterOptions()
        options.chunkSize = 24 << 10
        options.syncChunks = false
        let whole = TestFiles.temporary("zeros-whole.mcap")
        defer { TestFiles.remove(whole) }
        _ = try SampleRecording(path: whole, options: options)
        let chunks = try Self.chunkMessageCounts(whole)
        let bytes = try TestFiles.bytes(whole)
        try TestFiles.write(Array(bytes[..<Int(chunks[3].end)]) + [UInt8](repeating: 0, count: 8192), to: path)
        #expect {
            _ = try TestFiles.readAll(path)
        } throws: { error in
            guard case .corrupt(_, let offset, let what) = error as? RecordError else { return false }
            return offset == chunks[3].end && what.contains("opcode 0x00")
        }
        let report = try MCAPRecovery.recover(from: path, to: recovered)
        #expect(report.messages == chunks[0...3].reduce(0) { $0 + $1.messages })
        #expect(report.bytesLost == 8192)
        #expect(try TestFiles.readAll(recovered).result.complete)
    }

    @Test func pngRenamedToMCAPIsNotARecording() throws {
        let path = TestFiles.temporary("picture.mcap")
        defer { TestFiles.remove(path) }
        try TestFiles.write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8) + [UInt8](repeating: 1, count: 40), to: path)
        #expect {
            try MCAPReader(path: path)
        } throws: { error in
            guard case .notMCAP(let file, let what) = error as? RecordError else { return false }
            return file == path && what.contains("PNG")
        }
        #expect(throws: RecordError.self) { try MCAPRecovery.recover(from: path, to: TestFiles.temporary("never.mcap")) }
    }

    @Test func emptyFileIsNotARecording() throws {
        let path = TestFiles.temporary("empty-file.mcap")
        defer { TestFiles.remove(path) }
        try TestFiles.write([], to: path)
        #expect(throws: RecordError.notMCAP(path: path, what: "the file is empty (0 bytes)")) { try MCAPReader(path: path) }
        #expect(RecordError.notMCAP(path: path, what: "the file is empty (0 bytes)").description == "\(path) is not an MCAP recording: the file is empty (0 bytes)")
    }

    @Test func missingAndUnreadableFilesAreIOErrors() throws {
        let missing = TestFiles.temporary("missing.mcap")
        #expect(throws: RecordError.io(path: missing, errno: .noSuchFileOrDirectory, operation: "open")) { try MCAPReader(path: missing) }
        #expect(throws: RecordError.notMCAP(path: "/tmp", what: "not a regular file")) { try MCAPReader(path: "/tmp") }
    }

    @Test func unknownRecordsAreSkipped() throws {
        // An application record (opcode 0x80) in the data section, as another writer might add.
        let path = TestFiles.temporary("extension.mcap")
        defer { TestFiles.remove(path) }
        var options = MCAPWriterOptions()
        options.syncChunks = false
        let sample = try SampleRecording(path: path, options: options, messages: 30)
        let bytes = try TestFiles.bytes(path)
        let firstChunk = try #require(try FileLayout(path).chunkRecords.first)
        let extra: [UInt8] = [0x80, 3, 0, 0, 0, 0, 0, 0, 0, 0xAA, 0xBB, 0xCC]
        let spliced = Array(bytes[..<Int(firstChunk.offset)]) + extra + Array(bytes[Int(firstChunk.offset)...])
        let splicedPath = TestFiles.temporary("extension-spliced.mcap")
        defer { TestFiles.remove(splicedPath) }
        try TestFiles.write(spliced, to: splicedPath)
        // Reading goes past it to DataEnd, whose CRC (over the original bytes) then differs.
        let (messages, result) = try TestFiles.readAll(splicedPath, tolerant: true)
        #expect(messages.count == sample.written.count)
        if case .crcMismatch(_, _, let what, _, _) = result.damage {
            #expect(what.hasPrefix("the data section"))
        } else {
            Issue.record("damage: \(String(describing: result.damage))")
        }
        // Recovery keeps everything.
        let recovered = TestFiles.temporary("extension-recovered.mcap")
        defer { TestFiles.remove(recovered) }
        #expect(try MCAPRecovery.recover(from: splicedPath, to: recovered).messages == sample.written.count)
    }
}
