/// Parsers of the individual MCAP records, over a FieldReader positioned at a record's content.
/// Unknown trailing fields are ignored, as the specification asks.
struct SchemaRecord: Equatable {
    var id: UInt16
    var schema: MCAPSchema

    init(_ r: inout FieldReader) throws(RecordError) {
        id = try r.u16("id")
        let name = try r.string("name")
        let encoding = try r.string("encoding")
        schema = MCAPSchema(name: name, encoding: encoding, data: try r.bytes32("data"))
    }
}

struct ChannelRecord: Equatable {
    var id: UInt16
    var schemaID: UInt16
    var topic: String
    var messageEncoding: String
    var metadata: [String: String]

    init(_ r: inout FieldReader) throws(RecordError) {
        id = try r.u16("id")
        schemaID = try r.u16("schema_id")
        topic = try r.string("topic")
        messageEncoding = try r.string("message_encoding")
        metadata = try r.stringMap("metadata")
    }
}

/// A Message record; `data` points into the buffer read from.
struct MessageRecord {
    var channel: UInt16
    var sequence: UInt32
    var logTime: UInt64
    var publishTime: UInt64
    var data: UnsafeRawBufferPointer

    init(_ r: inout FieldReader) throws(RecordError) {
        channel = try r.u16("channel_id")
        sequence = try r.u32("sequence")
        logTime = try r.u64("log_time")
        publishTime = try r.u64("publish_time")
        data = r.rest()
    }
}

/// A Chunk record's header fields; `records` points into the buffer read from.
struct ChunkRecord {
    var messageStartTime: UInt64
    var messageEndTime: UInt64
    var uncompressedSize: UInt64
    var uncompressedCRC: UInt32
    var compression: String
    var records: UnsafeRawBufferPointer

    init(_ r: inout FieldReader) throws(RecordError) {
        messageStartTime = try r.u64("message_start_time")
        messageEndTime = try r.u64("message_end_time")
        uncompressedSize = try r.u64("uncompressed_size")
        uncompressedCRC = try r.u32("uncompressed_crc")
        compression = try r.string("compression")
        records = try r.bytes64("records")
    }
}

struct MessageIndexRecord {
    var channel: UInt16
    /// (log time, offset in the uncompressed chunk)
    var entries: [(UInt64, UInt64)]

    init(_ r: inout FieldReader) throws(RecordError) {
        channel = try r.u16("channel_id")
        let length = Int(try r.u32("records length"))
        guard length % 16 == 0 else { throw r.failure("records are \(length) bytes, not a multiple of 16") }
        try r.needArray(length, "records")
        entries = []
        entries.reserveCapacity(length / 16)
        for _ in 0..<(length / 16) { entries.append((try r.u64("log_time"), try r.u64("offset"))) }
    }
}

struct AttachmentRecord {
    var logTime: UInt64
    var createTime: UInt64
    var name: String
    var mediaType: String
    var data: UnsafeRawBufferPointer
    var storedCRC: UInt32
    var computedCRC: UInt32

    init(_ r: inout FieldReader) throws(RecordError) {
        let start = r.position
        logTime = try r.u64("log_time")
        createTime = try r.u64("create_time")
        name = try r.string("name")
        mediaType = try r.string("media_type")
        data = try r.bytes64("data")
        computedCRC = CRC32.of(UnsafeRawBufferPointer(rebasing: r.bytes[start..<r.position]))
        storedCRC = try r.u32("crc")
    }
}

struct MetadataRecord {
    var name: String
    var entries: [String: String]

    init(_ r: inout FieldReader) throws(RecordError) {
        name = try r.string("name")
        entries = try r.stringMap("metadata")
    }
}

extension MCAPStatistics {
    init(_ r: inout FieldReader) throws(RecordError) {
        self.init()
        messageCount = try r.u64("message_count")
        schemaCount = try r.u16("schema_count")
        channelCount = try r.u32("channel_count")
        attachmentCount = try r.u32("attachment_count")
        metadataCount = try r.u32("metadata_count")
        chunkCount = try r.u32("chunk_count")
        messageStartTime = try r.u64("message_start_time")
        messageEndTime = try r.u64("message_end_time")
        channelMessageCounts = try r.idMap("channel_message_counts").sorted { $0.0 < $1.0 }
    }
}

extension ChunkIndexEntry {
    init(_ r: inout FieldReader) throws(RecordError) {
        messageStartTime = try r.u64("message_start_time")
        messageEndTime = try r.u64("message_end_time")
        chunkStartOffset = try r.u64("chunk_start_offset")
        chunkLength = try r.u64("chunk_length")
        messageIndexOffsets = try r.idMap("message_index_offsets").sorted { $0.0 < $1.0 }
        messageIndexLength = try r.u64("message_index_length")
        compression = try r.string("compression")
        compressedSize = try r.u64("compressed_size")
        uncompressedSize = try r.u64("uncompressed_size")
    }
}

extension AttachmentIndexEntry {
    init(_ r: inout FieldReader) throws(RecordError) {
        offset = try r.u64("offset")
        length = try r.u64("length")
        logTime = try r.u64("log_time")
        createTime = try r.u64("create_time")
        dataSize = try r.u64("data_size")
        name = try r.string("name")
        mediaType = try r.string("media_type")
    }
}

extension MetadataIndexEntry {
    init(_ r: inout FieldReader) throws(RecordError) {
        offset = try r.u64("offset")
        length = try r.u64("length")
        name = try r.string("name")
    }
}

struct SummaryOffsetRecord {
    var opcode: UInt8
    var start: UInt64
    var length: UInt64

    init(_ r: inout FieldReader) throws(RecordError) {
        opcode = try r.u8("group_opcode")
        start = try r.u64("group_start")
        length = try r.u64("group_length")
    }
}
