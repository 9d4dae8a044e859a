import SonoSystem

/// Writes one MCAP file: Header, then chunks (each followed by its Message Index records),
/// attachments and metadata as they come, and on `close` the DataEnd record, the summary
/// (schemas, channels, statistics, chunk / attachment / metadata indexes), the summary offsets
/// and the footer.
///
/// Crash safety: every chunk carries the Schema and Channel records of the channels its messages
/// use, so any chunk that reached the disk can be decoded on its own; chunks close at
/// `chunkSize` bytes or `chunkSeconds` after their first message and are synced, so a crash
/// loses at most the open chunk. `MCAPRecovery` turns a cut-off file into a complete one.
///
/// One thread at a time (the session recorder's writer thread).
public final class MCAPWriter {
    public let path: String
    public let options: MCAPWriterOptions

    private let file: OutputFile
    private var dataCRC = CRC32()
    private let chunk: ChunkBuilder
    /// Small records (headers, indexes, attachments): reused.
    private let scratch = ByteBuffer(capacity: 64 << 10)
    private let compressed: ByteBuffer
    private let compressor: ZstdCompressor?
    private let chunkNanos: UInt64

    private struct SchemaEntry { var schema: MCAPSchema; var record: [UInt8]; var used = false }
    private struct ChannelEntry { var schemaID: UInt16; var record: [UInt8]; var messages: UInt64 }
    /// By id - 1.
    private var schemas: [SchemaEntry] = []
    private var channels: [ChannelEntry] = []

    private var statistics = MCAPStatistics()
    private var chunkIndexes: [ChunkIndexEntry] = []
    private var attachmentIndexes: [AttachmentIndexEntry] = []
    private var metadataIndexes: [MetadataIndexEntry] = []
    private var closed = false
    /// The first I/O failure: the file's tail is unknown after it, so every later call fails.
    private var failure: RecordError?
    /// The one thread that writes (the session recorder's writer): nothing here is locked.
    private let writerThread = ThreadOwner("the MCAP writer's thread")

    /// Debug builds: every call comes from one thread (the first that called).
    @inline(__always)
    private func assertOnWriterThread() {
        assert(writerThread.isOwnedByCurrentThread(), "MCAPWriter: used from a thread other than \(writerThread.role)")
    }

    /// Creates the file (never overwrites one) and writes the magic and Header.
    public init(path: String, options: MCAPWriterOptions = .init()) throws(RecordError) {
        guard options.chunkSize > 0, options.chunkSeconds > 0 else {
            throw .invalidUse(path: path, what: "chunkSize and chunkSeconds must be positive")
        }
        self.path = path
        self.options = options
        file = try OutputFile(creating: path)
        chunk = ChunkBuilder(capacity: min(options.chunkSize, 64 << 20) + (64 << 10))
        compressor = options.compression == .zstd ? ZstdCompressor(level: options.zstdLevel) : nil
        compressed = ByteBuffer(capacity: options.compression == .zstd ? min(options.chunkSize, 64 << 20) : 64)
        chunkNanos = UInt64(options.chunkSeconds * 1e9)
        scratch.append(MCAPFormat.magic)
        scratch.appendHeader(profile: options.profile, library: options.library)
        try emitScratch()
    }

    /// Registers a schema; its record is written into each chunk that uses it. Ids start at 1.
    public func addSchema(_ schema: MCAPSchema) throws(RecordError) -> UInt16 {
        assertOnWriterThread()
        try checkUsable()
        guard schemas.count < Int(UInt16.max) else { throw .invalidUse(path: path, what: "more than 65535 schemas") }
        let id = UInt16(schemas.count + 1)
        scratch.removeAll()
        scratch.appendSchema(id: id, schema)
        schemas.append(SchemaEntry(schema: schema, record: Array(scratch.bytes)))
        statistics.schemaCount = UInt16(schemas.count)
        return id
    }

    /// Registers a channel (schema id 0: no schema); its record is written into each chunk that
    /// has messages on it. Ids start at 1.
    public func addChannel(topic: String, messageEncoding: String, schemaID: UInt16,
                           metadata: [String: String] = [:]) throws(RecordError) -> UInt16 {
        assertOnWriterThread()
        try checkUsable()
        guard Int(schemaID) <= schemas.count else {
            throw .invalidUse(path: path, what: "channel \(topic): schema id \(schemaID) was never added")
        }
        guard channels.count < Int(UInt16.max) else { throw .invalidUse(path: path, what: "more than 65535 channels") }
        let id = UInt16(channels.count + 1)
        scratch.removeAll()
        scratch.appendChannel(id: id, schemaID: schemaID, topic: topic, messageEncoding: messageEncoding, metadata: metadata)
        channels.append(ChannelEntry(schemaID: schemaID, record: Array(scratch.bytes), messages: 0))
        statistics.channelCount = UInt32(channels.count)
        chunk.ensureIDs(schemas: schemas.count, channels: channels.count)
        return id
    }

    /// Appends a message to the open chunk; closes the chunk when it is full or old enough.
    public func write(channel: UInt16, sequence: UInt32, logTime: UInt64, publishTime: UInt64,
                      data: UnsafeRawBufferPointer) throws(RecordError) {
        assertOnWriterThread()
        try checkUsable()
        guard channel >= 1, Int(channel) <= channels.count else {
            throw .invalidUse(path: path, what: "message on channel \(channel), which was never added")
        }
        let entry = channels[Int(channel) - 1]
        if entry.schemaID != 0 {
            chunk.describeSchema(entry.schemaID, record: schemas[Int(entry.schemaID) - 1].record)
            schemas[Int(entry.schemaID) - 1].used = true
        }
        chunk.describeChannel(channel, record: entry.record)
        let now = MonotonicClock.nowNanos()
        chunk.appendMessage(channel: channel, sequence: sequence, logTime: logTime, publishTime: publishTime,
                            data: data, now: now)
        channels[Int(channel) - 1].messages += 1
        if statistics.messageCount == 0 {
            statistics.messageStartTime = logTime
            statistics.messageEndTime = logTime
        } else {
            statistics.messageStartTime = min(statistics.messageStartTime, logTime)
            statistics.messageEndTime = max(statistics.messageEndTime, logTime)
        }
        statistics.messageCount += 1
        if chunk.records.count >= options.chunkSize || now &- chunk.openedAt >= chunkNanos {
            try closeChunk()
        }
    }

    public func write(channel: UInt16, sequence: UInt32, logTime: UInt64, publishTime: UInt64,
                      data: [UInt8]) throws(RecordError) {
        assertOnWriterThread()
        // Array.withUnsafeBytes rethrows untyped errors: carry the typed one out by hand.
        var failure: RecordError?
        data.withUnsafeBytes { raw in
            do throws(RecordError) {
                try write(channel: channel, sequence: sequence, logTime: logTime, publishTime: publishTime, data: raw)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
    }

    /// An attachment (e.g. a configuration file) in the data section, outside any chunk.
    public func addAttachment(name: String, mediaType: String, logTime: UInt64, data: [UInt8]) throws(RecordError) {
        assertOnWriterThread()
        try checkUsable()
        scratch.removeAll()
        scratch.appendAttachment(name: name, mediaType: mediaType, logTime: logTime, createTime: logTime, data: data)
        let offset = file.offset
        attachmentIndexes.append(AttachmentIndexEntry(offset: offset, length: UInt64(scratch.count), logTime: logTime,
                                                      createTime: logTime, dataSize: UInt64(data.count),
                                                      name: name, mediaType: mediaType))
        statistics.attachmentCount += 1
        try emitScratch()
        if options.syncChunks { try guarded { () throws(RecordError) in try file.sync() } }
    }

    /// A named set of key-value pairs in the data section, outside any chunk.
    public func addMetadata(name: String, _ entries: [String: String]) throws(RecordError) {
        assertOnWriterThread()
        try checkUsable()
        scratch.removeAll()
        scratch.appendMetadata(name: name, entries)
        metadataIndexes.append(MetadataIndexEntry(offset: file.offset, length: UInt64(scratch.count), name: name))
        statistics.metadataCount += 1
        try emitScratch()
        if options.syncChunks { try guarded { () throws(RecordError) in try file.sync() } }
    }

    /// Closes the open chunk now (and syncs it).
    public func flush() throws(RecordError) {
        assertOnWriterThread()
        try checkUsable()
        try closeChunk()
    }

    /// Closes the open chunk if its first message is `chunkSeconds` old; the recorder calls this
    /// when no message has come for a while.
    public func flushIfDue() throws(RecordError) {
        assertOnWriterThread()
        try checkUsable()
        if !chunk.isEmpty, MonotonicClock.nowNanos() &- chunk.openedAt >= chunkNanos { try closeChunk() }
    }

    /// Nanoseconds until the open chunk is due (nil: no open chunk).
    public var nanosecondsUntilChunkDue: UInt64? {
        guard !chunk.isEmpty else { return nil }
        let age = MonotonicClock.nowNanos() &- chunk.openedAt
        return age >= chunkNanos ? 0 : chunkNanos - age
    }

    /// Bytes in the file so far.
    public var bytesWritten: UInt64 { file.offset }
    public var chunksWritten: Int { Int(statistics.chunkCount) }
    public var messagesWritten: UInt64 { statistics.messageCount }

    /// Writes the last chunk, DataEnd, the summary, the summary offsets, the footer and the
    /// closing magic, syncs and closes the file. Calling it again does nothing.
    public func close() throws(RecordError) {
        assertOnWriterThread()
        if closed { return }
        if let failure {
            closed = true
            try? file.close()
            throw failure
        }
        try closeChunk()
        // Schemas and channels no message used: in the data section too, since the summary's
        // copies must duplicate records there.
        scratch.removeAll()
        for entry in schemas where !entry.used { scratch.append(entry.record) }
        for entry in channels where entry.messages == 0 { scratch.append(entry.record) }
        if scratch.count > 0 { try emitScratch() }
        scratch.removeAll()
        scratch.appendDataEnd(crc: dataCRC.value)
        try emitScratch()

        let summaryStart = file.offset
        scratch.removeAll()
        var groups: [(Opcode, Int, Int)] = []
        func group(_ opcode: Opcode, _ body: () -> Void) {
            let start = scratch.count
            body()
            if scratch.count > start { groups.append((opcode, start, scratch.count - start)) }
        }
        group(.schema) { for (index, entry) in schemas.enumerated() { scratch.appendSchema(id: UInt16(index + 1), entry.schema) } }
        group(.channel) { for entry in channels { scratch.append(entry.record) } }
        statistics.channelMessageCounts = channels.enumerated().filter { $0.element.messages > 0 }
            .map { (UInt16($0.offset + 1), $0.element.messages) }
        group(.statistics) { scratch.appendStatistics(statistics) }
        group(.chunkIndex) { for index in chunkIndexes { scratch.appendChunkIndex(index) } }
        group(.attachmentIndex) { for index in attachmentIndexes { scratch.appendAttachmentIndex(index) } }
        group(.metadataIndex) { for index in metadataIndexes { scratch.appendMetadataIndex(index) } }
        let summaryOffsetStart = summaryStart + UInt64(scratch.count)
        for (opcode, start, length) in groups {
            scratch.appendSummaryOffset(opcode: opcode, start: summaryStart + UInt64(start), length: UInt64(length))
        }
        // Footer; its CRC covers the summary through the footer's summary_offset_start field.
        let footerAt = scratch.beginRecord(.footer)
        scratch.append(summaryStart)
        scratch.append(summaryOffsetStart)
        scratch.set(UInt64(8 + 8 + 4), at: footerAt)
        let summaryCRC = CRC32.of(scratch.bytes)
        scratch.append(summaryCRC)
        scratch.append(MCAPFormat.magic)
        try emitScratch()
        closed = true
        try guarded { () throws(RecordError) in
            try file.sync()
            try file.close()
        }
    }

    // MARK: - Internals

    private func checkUsable() throws(RecordError) {
        if let failure { throw failure }
        if closed { throw .invalidUse(path: path, what: "the recording is already closed") }
    }

    /// Runs an I/O step; its failure poisons the writer.
    private func guarded(_ body: () throws(RecordError) -> Void) throws(RecordError) {
        do { try body() } catch {
            failure = error
            throw error
        }
    }

    /// Writes `scratch` to the file, adding it to the data-section CRC.
    private func emitScratch() throws(RecordError) {
        dataCRC.update(scratch.bytes)
        try guarded { () throws(RecordError) in try file.write(scratch.bytes) }
    }

    private func closeChunk() throws(RecordError) {
        guard !chunk.isEmpty else { return }
        let uncompressed = chunk.records.bytes
        let uncompressedCRC = CRC32.of(uncompressed)
        let payload: UnsafeRawBufferPointer
        if let compressor {
            try guarded { () throws(RecordError) in try compressor.compress(uncompressed, into: compressed, path: path) }
            payload = compressed.bytes
        } else {
            payload = uncompressed
        }
        let compression = options.compression.rawValue
        let chunkStart = file.offset
        scratch.removeAll()
        let lengthAt = scratch.beginRecord(.chunk)
        scratch.append(chunk.startTime)
        scratch.append(chunk.endTime)
        scratch.append(UInt64(uncompressed.count))
        scratch.append(uncompressedCRC)
        scratch.appendString(compression)
        scratch.append(UInt64(payload.count))
        let chunkLength = UInt64(scratch.count + payload.count)
        scratch.set(chunkLength - UInt64(MCAPFormat.recordPrefix), at: lengthAt)
        try emitScratch()
        dataCRC.update(payload)
        try guarded { () throws(RecordError) in try file.write(payload) }

        // Message Index records, one per channel used, in channel order.
        let indexStart = file.offset
        scratch.removeAll()
        chunk.sortChannelsUsed()
        var offsets: [(UInt16, UInt64)] = []
        offsets.reserveCapacity(chunk.channelsUsed.count)
        for channel in chunk.channelsUsed {
            offsets.append((channel, indexStart + UInt64(scratch.count)))
            let at = scratch.beginRecord(.messageIndex)
            scratch.append(channel)
            let entries = chunk.indexEntries[Int(channel)]
            scratch.append(UInt32(entries.count * 8))
            for value in entries { scratch.append(value) }
            scratch.endRecord(at)
        }
        let indexLength = UInt64(scratch.count)
        try emitScratch()

        chunkIndexes.append(ChunkIndexEntry(
            messageStartTime: chunk.startTime, messageEndTime: chunk.endTime, chunkStartOffset: chunkStart,
            chunkLength: chunkLength, messageIndexOffsets: offsets, messageIndexLength: indexLength,
            compression: compression, compressedSize: UInt64(payload.count), uncompressedSize: UInt64(uncompressed.count)))
        statistics.chunkCount += 1
        chunk.reset()
        if options.syncChunks { try guarded { () throws(RecordError) in try file.sync() } }
    }
}
