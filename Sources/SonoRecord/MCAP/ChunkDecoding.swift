import SonoProtocol

/// Decompresses and checks a chunk, and splits its records.
final class ChunkDecoder {
    /// Larger uncompressed sizes are taken as corrupt rather than allocated: four times the
    /// largest chunk Sono's writer makes (64 MiB), and far above other MCAP writers' defaults
    /// (a few MiB). The size comes from the file, and its buffer is allocated before a byte is
    /// decompressed.
    static let maxUncompressedSize: UInt64 = 256 << 20

    private let decompressor = ZstdDecompressor()
    private let output = ByteBuffer(capacity: 1 << 20)

    /// The chunk's uncompressed records, CRC-checked when the chunk has a CRC. Valid until the
    /// next call.
    func records(of chunk: ChunkRecord, path: String, offset: UInt64) throws(RecordError) -> UnsafeRawBufferPointer {
        let records: UnsafeRawBufferPointer
        switch chunk.compression {
        case MCAPCompression.none.rawValue:
            guard UInt64(chunk.records.count) == chunk.uncompressedSize else {
                throw .corrupt(path: path, offset: offset,
                               what: "uncompressed chunk holds \(chunk.records.count) bytes, its header says \(chunk.uncompressedSize)")
            }
            records = chunk.records
        case MCAPCompression.zstd.rawValue:
            guard chunk.uncompressedSize <= Self.maxUncompressedSize else {
                throw .corrupt(path: path, offset: offset,
                               what: "chunk claims \(chunk.uncompressedSize) uncompressed bytes, more than the 256 MiB a chunk may have here")
            }
            if let problem = decompressor.decompress(chunk.records, expectedSize: Int(chunk.uncompressedSize), into: output) {
                throw .corrupt(path: path, offset: offset, what: problem)
            }
            records = output.bytes
        default:
            throw .unsupportedCompression(chunk.compression, path: path, offset: offset)
        }
        if chunk.uncompressedCRC != 0 {
            let computed = CRC32.of(records)
            guard computed == chunk.uncompressedCRC else {
                throw .crcMismatch(path: path, offset: offset, what: "the chunk's \(records.count) uncompressed bytes",
                                   stored: chunk.uncompressedCRC, computed: computed)
            }
        }
        return records
    }
}

/// One record inside a chunk.
enum ChunkItem {
    case schema(SchemaRecord)
    case channel(ChannelRecord)
    /// The message and its offset in the uncompressed chunk.
    case message(MessageRecord, offset: UInt64)
}

/// Splits a chunk's uncompressed records; the whole chunk is parsed before anything in it is
/// used, so a damaged chunk delivers nothing.
func parseChunkRecords(_ records: UnsafeRawBufferPointer, path: String, chunkOffset: UInt64) throws(RecordError) -> [ChunkItem] {
    var items: [ChunkItem] = []
    var position = 0
    while position < records.count {
        guard records.count - position >= MCAPFormat.recordPrefix else {
            throw .corrupt(path: path, offset: chunkOffset,
                           what: "uncompressed byte \(position) of the chunk at byte \(chunkOffset): \(records.count - position) bytes left, too few for a record")
        }
        let opcode = records[position]
        let length = LittleEndian.load(UInt64.self, from: records, at: position + 1)
        let start = position + MCAPFormat.recordPrefix
        let content = UnsafeRawBufferPointer(rebasing: records[start...])
        var fields = FieldReader(content, path: path, fileOffset: chunkOffset, opcode: opcode, chunkPosition: position)
        guard length <= UInt64(content.count) else {
            throw fields.failure("claims \(length) bytes, \(content.count) remain in the chunk")
        }
        fields = FieldReader(UnsafeRawBufferPointer(rebasing: content[..<Int(length)]),
                             path: path, fileOffset: chunkOffset, opcode: opcode, chunkPosition: position)
        switch Opcode(rawValue: opcode) {
        case .schema: items.append(.schema(try SchemaRecord(&fields)))
        case .channel: items.append(.channel(try ChannelRecord(&fields)))
        case .message: items.append(.message(try MessageRecord(&fields), offset: UInt64(position)))
        case nil where opcode >= 0x80: break  // an application's own record: skipped
        case nil where opcode != 0: break  // a record of a later format version: skipped
        default:
            throw fields.failure("this record may not appear inside a chunk")
        }
        position = start + Int(length)
    }
    return items
}

/// The schemas and channels seen so far, and the rules they must keep: ids defined before use,
/// and two records with the same id identical.
struct ChannelRegistry {
    private(set) var schemas: [UInt16: MCAPSchema] = [:]
    private(set) var channels: [UInt16: ChannelRecord] = [:]
    /// Channel ids in the order they were first seen.
    private(set) var channelOrder: [UInt16] = []

    mutating func add(_ record: SchemaRecord, path: String, offset: UInt64) throws(RecordError) {
        guard record.id != 0 else { return }  // "invalid and should be ignored by readers"
        if let known = schemas[record.id], known != record.schema {
            throw .corrupt(path: path, offset: offset, what: "two different Schema records with id \(record.id)")
        }
        schemas[record.id] = record.schema
    }

    mutating func add(_ record: ChannelRecord, path: String, offset: UInt64) throws(RecordError) {
        if record.schemaID != 0 && schemas[record.schemaID] == nil {
            throw .corrupt(path: path, offset: offset,
                           what: "Channel \(record.id) (\(record.topic)) uses schema \(record.schemaID), which no earlier Schema record defines")
        }
        if let known = channels[record.id] {
            if known != record {
                throw .corrupt(path: path, offset: offset, what: "two different Channel records with id \(record.id)")
            }
            return
        }
        channels[record.id] = record
        channelOrder.append(record.id)
    }

    func channel(_ id: UInt16, path: String, offset: UInt64) throws(RecordError) -> ChannelRecord {
        guard let channel = channels[id] else {
            throw .corrupt(path: path, offset: offset, what: "a message on channel \(id), which no earlier Channel record defines")
        }
        return channel
    }

    func mcapChannel(_ id: UInt16) -> MCAPChannel? {
        guard let record = channels[id] else { return nil }
        return MCAPChannel(id: record.id, topic: record.topic, messageEncoding: record.messageEncoding,
                           schema: record.schemaID == 0 ? nil : schemas[record.schemaID], metadata: record.metadata)
    }
}
