import SonoProtocol

/// Reads an MCAP file front to back, checking as it goes: record lengths, chunk CRCs and
/// decompressed sizes, that every message's channel (and every channel's schema) was defined
/// before it, the Message Index records against their chunk, attachment CRCs, the data-section
/// CRC, and at the end the summary (statistics, chunk / attachment / metadata indexes, summary
/// offsets, summary CRC) against what the data section held.
public final class MCAPReader {
    public let path: String
    /// The Header's fields.
    public let profile: String
    public let library: String
    public private(set) var channels: [UInt16: MCAPChannel] = [:]
    public private(set) var attachments: [(name: String, mediaType: String, data: [UInt8])] = []
    public private(set) var metadata: [(name: String, entries: [String: String])] = []

    private let file: InputFile
    private var summary: Summary?
    /// Why the summary could not be used (nil: it was read, or the file has none because it was not closed).
    private var summaryProblem: RecordError?

    /// Opens a recording: checks the magic and the Header, and when the file was closed, loads
    /// its channels, attachments and metadata through the summary. A file that was not closed
    /// opens too (its channels are learned while reading); `forEachMessage` reports what is wrong.
    public init(path: String) throws(RecordError) {
        self.path = path
        file = try InputFile(path: path)
        let stream = try RecordStream(file: file)
        guard let first = try stream.next() else {
            throw .truncated(path: path, offset: file.size, what: "the file ends after the magic, before the Header record")
        }
        guard first.opcode == Opcode.header.rawValue else {
            throw .corrupt(path: path, offset: first.offset, what: "the first record is \(Opcode.name(first.opcode)), not a Header")
        }
        var fields = stream.fields(first)
        profile = try fields.string("profile")
        library = try fields.string("library")
        do {
            summary = try Summary.read(file)
            if let summary { try loadFromSummary(summary) }
        } catch {
            summary = nil
            summaryProblem = error
            channels = [:]
            attachments = []
            metadata = []
        }
    }

    /// Whether the file ends with a readable footer and summary (it was closed). Full consistency
    /// is checked by `forEachMessage`.
    public var hasSummary: Bool { summary != nil }

    /// The earliest and latest message log time, from the summary's Statistics; nil when the file
    /// has no summary (it was not closed) or no messages.
    public var messageTimeRange: ClosedRange<UInt64>? {
        guard let statistics = summary?.statistics, statistics.messageCount > 0,
              statistics.messageStartTime <= statistics.messageEndTime else { return nil }
        return statistics.messageStartTime...statistics.messageEndTime
    }

    /// Every message in file order (the order they were written). `tolerant`: on a truncated or
    /// corrupt file deliver everything up to the last intact chunk and report the damage in the
    /// result; otherwise throw it. Errors thrown by `body` end the read and are rethrown as they are.
    public func forEachMessage(tolerant: Bool = false, _ body: (MCAPMessage) throws -> Void) throws -> MCAPReadResult {
        var delivered = 0
        var bodyError: (any Error)?
        let scan = DataScan(reader: self)
        do {
            try scan.run { message in
                do {
                    try body(message)
                    delivered += 1
                    return true
                } catch {
                    bodyError = error
                    return false
                }
            }
        } catch {
            if let bodyError { throw bodyError }
            if tolerant { return MCAPReadResult(messages: delivered, complete: false, damage: error) }
            throw error
        }
        if let bodyError { throw bodyError }
        return MCAPReadResult(messages: delivered, complete: scan.complete, damage: nil)
    }

    private func loadFromSummary(_ summary: Summary) throws(RecordError) {
        var registry = ChannelRegistry()
        for (id, schema) in summary.schemas { try registry.add(SchemaRecord(id: id, schema: schema), path: path, offset: summary.summaryStart) }
        for channel in summary.channels { try registry.add(channel, path: path, offset: summary.summaryStart) }
        for id in registry.channelOrder { channels[id] = registry.mcapChannel(id) }
        let buffer = ByteBuffer(capacity: 4096)
        for index in summary.attachmentIndexes {
            let record = try readIndexed(index.offset, index.length, .attachment, buffer)
            var fields = FieldReader(record, path: path, fileOffset: index.offset, opcode: Opcode.attachment.rawValue)
            let attachment = try AttachmentRecord(&fields)
            try attachment.checkCRC(path: path, offset: index.offset)
            attachments.append((attachment.name, attachment.mediaType, Array(attachment.data)))
        }
        for index in summary.metadataIndexes {
            let record = try readIndexed(index.offset, index.length, .metadata, buffer)
            var fields = FieldReader(record, path: path, fileOffset: index.offset, opcode: Opcode.metadata.rawValue)
            let entry = try MetadataRecord(&fields)
            metadata.append((entry.name, entry.entries))
        }
    }

    /// The content of the record an index points at, checked to be of the expected kind.
    private func readIndexed(_ offset: UInt64, _ length: UInt64, _ opcode: Opcode, _ buffer: ByteBuffer) throws(RecordError) -> UnsafeRawBufferPointer {
        guard length >= UInt64(MCAPFormat.recordPrefix), offset < file.size, length <= file.size - offset,
              length <= RecordStream.maxRecordLength else {
            throw .corrupt(path: path, offset: offset, what: "an index points at \(length) bytes at byte \(offset), outside the file")
        }
        try file.read(at: offset, count: Int(length), into: buffer)
        let found = buffer.bytes[0]
        let content = LittleEndian.load(UInt64.self, from: buffer.bytes, at: 1)
        // The content length comes from the file: compare it with the index's, never add to it.
        let indexedContent = length - UInt64(MCAPFormat.recordPrefix)
        guard found == opcode.rawValue, content == indexedContent else {
            throw .corrupt(path: path, offset: offset,
                           what: "the summary indexes \(opcode) of \(indexedContent) content bytes here, the file has \(Opcode.name(found)) of \(content)")
        }
        return UnsafeRawBufferPointer(rebasing: buffer.bytes[MCAPFormat.recordPrefix...])
    }

    /// One pass over the data section, then the summary check.
    private final class DataScan {
        let reader: MCAPReader
        var path: String { reader.path }
        var registry = ChannelRegistry()
        let decoder = ChunkDecoder()
        var statistics = MCAPStatistics()
        var channelCounts: [UInt16: UInt64] = [:]
        var chunks: [ChunkIndexEntry] = []
        var attachmentIndexes: [AttachmentIndexEntry] = []
        var metadataIndexes: [MetadataIndexEntry] = []
        /// The messages of the chunk just read, by offset, while its Message Index records follow.
        var chunkMessages: [UInt64: (channel: UInt16, logTime: UInt64)] = [:]
        var awaitingIndexes = false
        var complete = false

        init(reader: MCAPReader) { self.reader = reader }

        func run(_ deliver: (MCAPMessage) -> Bool) throws(RecordError) {
            reader.attachments = []
            reader.metadata = []
            let stream = try RecordStream(file: reader.file)
            _ = try stream.next()  // the Header, checked by init
            while true {
                guard let raw = try stream.next() else {
                    throw .truncated(path: path, offset: reader.file.size,
                                     what: "the file ends after \(chunks.count) chunks without DataEnd, summary and footer: the recording was not closed")
                }
                var fields = stream.fields(raw)
                let opcode = Opcode(rawValue: raw.opcode)
                if opcode != .messageIndex { awaitingIndexes = false }
                switch opcode {
                case .schema:
                    try registry.add(try SchemaRecord(&fields), path: path, offset: raw.offset)
                case .channel:
                    let channel = try ChannelRecord(&fields)
                    try registry.add(channel, path: path, offset: raw.offset)
                    reader.channels[channel.id] = registry.mcapChannel(channel.id)
                case .message:
                    let message = try MessageRecord(&fields)
                    _ = try registry.channel(message.channel, path: path, offset: raw.offset)
                    count(message)
                    if !deliver(try publicMessage(message, offset: raw.offset)) { return }
                case .chunk:
                    if !(try readChunk(raw, &fields, deliver)) { return }
                case .messageIndex:
                    try checkMessageIndex(raw, &fields)
                case .attachment:
                    let attachment = try AttachmentRecord(&fields)
                    try attachment.checkCRC(path: path, offset: raw.offset)
                    reader.attachments.append((attachment.name, attachment.mediaType, Array(attachment.data)))
                    attachmentIndexes.append(AttachmentIndexEntry(
                        offset: raw.offset, length: raw.end - raw.offset, logTime: attachment.logTime,
                        createTime: attachment.createTime, dataSize: UInt64(attachment.data.count),
                        name: attachment.name, mediaType: attachment.mediaType))
                case .metadata:
                    let entry = try MetadataRecord(&fields)
                    reader.metadata.append((entry.name, entry.entries))
                    metadataIndexes.append(MetadataIndexEntry(offset: raw.offset, length: raw.end - raw.offset, name: entry.name))
                case .dataEnd:
                    let stored = try fields.u32("data_section_crc")
                    if stored != 0 && stored != raw.crcBefore {
                        throw .crcMismatch(path: path, offset: raw.offset, what: "the data section (\(raw.offset) bytes)",
                                           stored: stored, computed: raw.crcBefore)
                    }
                    try checkSummary(dataEnd: stream.offset)
                    complete = true
                    return
                case .header:
                    throw fields.failure("a second Header record")
                case .footer, .chunkIndex, .attachmentIndex, .statistics, .metadataIndex, .summaryOffset:
                    throw fields.failure("this record belongs after DataEnd, not in the data section")
                case nil:
                    break  // an unknown record: skipped, as the specification asks
                }
            }
        }

        private func count(_ message: MessageRecord) {
            if statistics.messageCount == 0 {
                statistics.messageStartTime = message.logTime
                statistics.messageEndTime = message.logTime
            } else {
                statistics.messageStartTime = min(statistics.messageStartTime, message.logTime)
                statistics.messageEndTime = max(statistics.messageEndTime, message.logTime)
            }
            statistics.messageCount += 1
            channelCounts[message.channel, default: 0] += 1
        }

        private func publicMessage(_ message: MessageRecord, offset: UInt64) throws(RecordError) -> MCAPMessage {
            guard let channel = reader.channels[message.channel] ?? registry.mcapChannel(message.channel) else {
                throw .corrupt(path: path, offset: offset, what: "a message on channel \(message.channel), which no earlier Channel record defines")
            }
            return MCAPMessage(channel: channel, sequence: message.sequence, logTime: message.logTime,
                               publishTime: message.publishTime, data: Array(message.data))
        }

        /// Checks the whole chunk, then delivers its messages; false when the caller stopped.
        private func readChunk(_ raw: RecordStream.Raw, _ fields: inout FieldReader,
                               _ deliver: (MCAPMessage) -> Bool) throws(RecordError) -> Bool {
            let chunk = try ChunkRecord(&fields)
            let records = try decoder.records(of: chunk, path: path, offset: raw.offset)
            let items = try parseChunkRecords(records, path: path, chunkOffset: raw.offset)
            chunkMessages.removeAll(keepingCapacity: true)
            var earliest = UInt64.max, latest = UInt64.min
            for item in items {
                switch item {
                case .schema(let schema): try registry.add(schema, path: path, offset: raw.offset)
                case .channel(let channel):
                    try registry.add(channel, path: path, offset: raw.offset)
                    reader.channels[channel.id] = registry.mcapChannel(channel.id)
                case .message(let message, let offset):
                    _ = try registry.channel(message.channel, path: path, offset: raw.offset)
                    chunkMessages[offset] = (message.channel, message.logTime)
                    earliest = min(earliest, message.logTime)
                    latest = max(latest, message.logTime)
                }
            }
            if !chunkMessages.isEmpty && (earliest != chunk.messageStartTime || latest != chunk.messageEndTime) {
                throw .corrupt(path: path, offset: raw.offset,
                               what: "chunk says its messages span \(chunk.messageStartTime)–\(chunk.messageEndTime) ns, they span \(earliest)–\(latest)")
            }
            chunks.append(ChunkIndexEntry(
                messageStartTime: chunk.messageStartTime, messageEndTime: chunk.messageEndTime, chunkStartOffset: raw.offset,
                chunkLength: raw.end - raw.offset, messageIndexOffsets: [], messageIndexLength: 0,
                compression: chunk.compression, compressedSize: UInt64(chunk.records.count), uncompressedSize: chunk.uncompressedSize))
            statistics.chunkCount += 1
            awaitingIndexes = true
            for item in items {
                guard case .message(let message, _) = item else { continue }
                count(message)
                if !deliver(try publicMessage(message, offset: raw.offset)) { return false }
            }
            return true
        }

        private func checkMessageIndex(_ raw: RecordStream.Raw, _ fields: inout FieldReader) throws(RecordError) {
            guard awaitingIndexes, let last = chunks.indices.last else {
                throw fields.failure("a Message Index record that does not follow a chunk")
            }
            let index = try MessageIndexRecord(&fields)
            let expected = chunkMessages.values.filter { $0.channel == index.channel }.count
            guard index.entries.count == expected else {
                throw fields.failure("indexes \(index.entries.count) messages on channel \(index.channel), the chunk before it has \(expected)")
            }
            for (logTime, offset) in index.entries {
                guard let message = chunkMessages[offset], message.channel == index.channel, message.logTime == logTime else {
                    throw fields.failure("entry (log time \(logTime), offset \(offset)) on channel \(index.channel) matches no message of the chunk")
                }
            }
            guard !chunks[last].messageIndexOffsets.contains(where: { $0.0 == index.channel }) else {
                throw fields.failure("a second Message Index record for channel \(index.channel) after one chunk")
            }
            chunks[last].messageIndexOffsets.append((index.channel, raw.offset))
            chunks[last].messageIndexOffsets.sort { $0.0 < $1.0 }
            chunks[last].messageIndexLength += raw.end - raw.offset
        }

        /// The summary against what the data section held.
        private func checkSummary(dataEnd: UInt64) throws(RecordError) {
            if let problem = reader.summaryProblem { throw problem }
            guard let summary = reader.summary else {
                throw .truncated(path: path, offset: reader.file.size,
                                 what: "the file ends after DataEnd without a footer and the closing magic")
            }
            guard summary.summaryStart != 0 else { return }  // a file without summary: nothing to compare
            func mismatch(_ what: String) -> RecordError {
                .corrupt(path: path, offset: summary.summaryStart, what: "summary: \(what)")
            }
            guard summary.summaryStart == dataEnd else {
                throw mismatch("starts at byte \(summary.summaryStart), the data section ends at \(dataEnd)")
            }
            statistics.schemaCount = UInt16(truncatingIfNeeded: registry.schemas.count)
            statistics.channelCount = UInt32(registry.channels.count)
            statistics.attachmentCount = UInt32(attachmentIndexes.count)
            statistics.metadataCount = UInt32(metadataIndexes.count)
            statistics.channelMessageCounts = channelCounts.filter { $0.value > 0 }.map { ($0.key, $0.value) }.sorted { $0.0 < $1.0 }
            if let stored = summary.statistics {
                var storedNonZero = stored
                storedNonZero.channelMessageCounts = stored.channelMessageCounts.filter { $0.1 > 0 }
                guard storedNonZero == statistics else {
                    throw mismatch("Statistics say \(describe(stored)); the data section has \(describe(statistics))")
                }
            }
            for channel in summary.channels where registry.channels[channel.id] != channel {
                throw mismatch("Channel \(channel.id) (\(channel.topic)) differs from the data section's, or is missing there")
            }
            for (id, schema) in summary.schemas where registry.schemas[id] != schema {
                throw mismatch("Schema \(id) (\(schema.name)) differs from the data section's, or is missing there")
            }
            guard summary.chunkIndexes.count == chunks.count else {
                throw mismatch("\(summary.chunkIndexes.count) Chunk Index records for \(chunks.count) chunks")
            }
            for (stored, seen) in zip(summary.chunkIndexes, chunks) where stored != seen {
                throw mismatch("the Chunk Index of the chunk at byte \(seen.chunkStartOffset) does not match it (\(stored) vs \(seen))")
            }
            guard summary.attachmentIndexes == attachmentIndexes else {
                throw mismatch("Attachment Index records do not match the \(attachmentIndexes.count) attachments")
            }
            guard summary.metadataIndexes == metadataIndexes else {
                throw mismatch("Metadata Index records do not match the \(metadataIndexes.count) metadata records")
            }
        }

        private func describe(_ s: MCAPStatistics) -> String {
            "\(s.messageCount) messages in \(s.chunkCount) chunks, \(s.schemaCount) schemas, \(s.channelCount) channels, "
                + "\(s.attachmentCount) attachments, \(s.metadataCount) metadata, times \(s.messageStartTime)–\(s.messageEndTime), "
                + "per channel \(s.channelMessageCounts.map { "\($0.0): \($0.1)" }.joined(separator: ", "))"
        }
    }
}

extension AttachmentRecord {
    func checkCRC(path: String, offset: UInt64) throws(RecordError) {
        if storedCRC != 0 && storedCRC != computedCRC {
            throw .crcMismatch(path: path, offset: offset, what: "attachment \(name)", stored: storedCRC, computed: computedCRC)
        }
    }
}

extension SchemaRecord {
    init(id: UInt16, schema: MCAPSchema) {
        self.id = id
        self.schema = schema
    }
}
