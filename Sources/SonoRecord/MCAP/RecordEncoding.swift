/// Serialisation of the MCAP records other than Message (ChunkBuilder) into a ByteBuffer.
extension ByteBuffer {
    /// Starts a record: opcode and a length placeholder; returns where the length sits.
    func beginRecord(_ opcode: Opcode) -> Int {
        append(opcode.rawValue)
        let lengthAt = count
        append(UInt64(0))
        return lengthAt
    }

    func endRecord(_ lengthAt: Int) {
        set(UInt64(count - lengthAt - 8), at: lengthAt)
    }

    func appendHeader(profile: String, library: String) {
        let at = beginRecord(.header)
        appendString(profile)
        appendString(library)
        endRecord(at)
    }

    func appendSchema(id: UInt16, _ schema: MCAPSchema) {
        let at = beginRecord(.schema)
        append(id)
        appendString(schema.name)
        appendString(schema.encoding)
        append(UInt32(truncatingIfNeeded: schema.data.count))
        append(schema.data)
        endRecord(at)
    }

    func appendChannel(id: UInt16, schemaID: UInt16, topic: String, messageEncoding: String, metadata: [String: String]) {
        let at = beginRecord(.channel)
        append(id)
        append(schemaID)
        appendString(topic)
        appendString(messageEncoding)
        appendStringMap(metadata)
        endRecord(at)
    }

    func appendAttachment(name: String, mediaType: String, logTime: UInt64, createTime: UInt64, data: [UInt8]) {
        let at = beginRecord(.attachment)
        let contentStart = count
        append(logTime)
        append(createTime)
        appendString(name)
        appendString(mediaType)
        append(UInt64(data.count))
        append(data)
        let crc = CRC32.of(UnsafeRawBufferPointer(rebasing: bytes[contentStart..<count]))
        append(crc)
        endRecord(at)
    }

    func appendMetadata(name: String, _ entries: [String: String]) {
        let at = beginRecord(.metadata)
        appendString(name)
        appendStringMap(entries)
        endRecord(at)
    }

    func appendDataEnd(crc: UInt32) {
        let at = beginRecord(.dataEnd)
        append(crc)
        endRecord(at)
    }

    func appendStatistics(_ s: MCAPStatistics) {
        let at = beginRecord(.statistics)
        append(s.messageCount)
        append(s.schemaCount)
        append(s.channelCount)
        append(s.attachmentCount)
        append(s.metadataCount)
        append(s.chunkCount)
        append(s.messageStartTime)
        append(s.messageEndTime)
        append(UInt32(s.channelMessageCounts.count * 10))
        for (channel, messages) in s.channelMessageCounts {
            append(channel)
            append(messages)
        }
        endRecord(at)
    }

    func appendChunkIndex(_ c: ChunkIndexEntry) {
        let at = beginRecord(.chunkIndex)
        append(c.messageStartTime)
        append(c.messageEndTime)
        append(c.chunkStartOffset)
        append(c.chunkLength)
        append(UInt32(c.messageIndexOffsets.count * 10))
        for (channel, offset) in c.messageIndexOffsets {
            append(channel)
            append(offset)
        }
        append(c.messageIndexLength)
        appendString(c.compression)
        append(c.compressedSize)
        append(c.uncompressedSize)
        endRecord(at)
    }

    func appendAttachmentIndex(_ a: AttachmentIndexEntry) {
        let at = beginRecord(.attachmentIndex)
        append(a.offset)
        append(a.length)
        append(a.logTime)
        append(a.createTime)
        append(a.dataSize)
        appendString(a.name)
        appendString(a.mediaType)
        endRecord(at)
    }

    func appendMetadataIndex(_ m: MetadataIndexEntry) {
        let at = beginRecord(.metadataIndex)
        append(m.offset)
        append(m.length)
        appendString(m.name)
        endRecord(at)
    }

    func appendSummaryOffset(opcode: Opcode, start: UInt64, length: UInt64) {
        let at = beginRecord(.summaryOffset)
        append(opcode.rawValue)
        append(start)
        append(length)
        endRecord(at)
    }
}

/// The Statistics record's fields.
struct MCAPStatistics: Equatable {
    var messageCount: UInt64 = 0
    var schemaCount: UInt16 = 0
    var channelCount: UInt32 = 0
    var attachmentCount: UInt32 = 0
    var metadataCount: UInt32 = 0
    var chunkCount: UInt32 = 0
    var messageStartTime: UInt64 = 0
    var messageEndTime: UInt64 = 0
    /// Sorted by channel id.
    var channelMessageCounts: [(UInt16, UInt64)] = []

    static func == (a: MCAPStatistics, b: MCAPStatistics) -> Bool {
        a.messageCount == b.messageCount && a.schemaCount == b.schemaCount && a.channelCount == b.channelCount
            && a.attachmentCount == b.attachmentCount && a.metadataCount == b.metadataCount && a.chunkCount == b.chunkCount
            && a.messageStartTime == b.messageStartTime && a.messageEndTime == b.messageEndTime
            && a.channelMessageCounts.elementsEqual(b.channelMessageCounts, by: { $0 == $1 })
    }
}

struct ChunkIndexEntry: Equatable {
    var messageStartTime: UInt64
    var messageEndTime: UInt64
    var chunkStartOffset: UInt64
    var chunkLength: UInt64
    /// Sorted by channel id.
    var messageIndexOffsets: [(UInt16, UInt64)]
    var messageIndexLength: UInt64
    var compression: String
    var compressedSize: UInt64
    var uncompressedSize: UInt64

    static func == (a: ChunkIndexEntry, b: ChunkIndexEntry) -> Bool {
        a.messageStartTime == b.messageStartTime && a.messageEndTime == b.messageEndTime
            && a.chunkStartOffset == b.chunkStartOffset && a.chunkLength == b.chunkLength
            && a.messageIndexOffsets.elementsEqual(b.messageIndexOffsets, by: { $0 == $1 })
            && a.messageIndexLength == b.messageIndexLength && a.compression == b.compression
            && a.compressedSize == b.compressedSize && a.uncompressedSize == b.uncompressedSize
    }
}

struct AttachmentIndexEntry: Equatable {
    var offset: UInt64
    var length: UInt64
    var logTime: UInt64
    var createTime: UInt64
    var dataSize: UInt64
    var name: String
    var mediaType: String
}

struct MetadataIndexEntry: Equatable {
    var offset: UInt64
    var length: UInt64
    var name: String
}
