import SonoProtocol

/// The summary section of a closed file, found through the footer at its end.
struct Summary {
    var summaryStart: UInt64
    var footerOffset: UInt64
    var schemas: [UInt16: MCAPSchema] = [:]
    var channels: [ChannelRecord] = []
    var statistics: MCAPStatistics?
    var chunkIndexes: [ChunkIndexEntry] = []
    var attachmentIndexes: [AttachmentIndexEntry] = []
    var metadataIndexes: [MetadataIndexEntry] = []

    /// The file's summary; nil when the file does not end with a footer and the closing magic
    /// (it was not closed). A footer that is there but wrong is an error.
    static func read(_ file: InputFile) throws(RecordError) -> Summary? {
        let path = file.path
        let tail = UInt64(MCAPFormat.footerRecordLength + MCAPFormat.magic.count)
        guard file.size >= UInt64(MCAPFormat.magic.count) + tail else { return nil }
        let buffer = ByteBuffer(capacity: 64)
        let footerOffset = file.size - tail
        try file.read(at: footerOffset, count: Int(tail), into: buffer)
        guard Array(buffer.bytes[MCAPFormat.footerRecordLength...]) == MCAPFormat.magic else { return nil }
        let footerBytes = Array(buffer.bytes)
        var footer = FieldReader(buffer.bytes, path: path, fileOffset: footerOffset, opcode: Opcode.footer.rawValue)
        let opcode = try footer.u8("opcode")
        let length = try footer.u64("length")
        guard opcode == Opcode.footer.rawValue, length == 20 else {
            throw .corrupt(path: path, offset: footerOffset,
                           what: "the file ends with the MCAP magic but no Footer record before it (found \(Opcode.name(opcode)), length \(length))")
        }
        let summaryStart = try footer.u64("summary_start")
        let summaryOffsetStart = try footer.u64("summary_offset_start")
        let summaryCRC = try footer.u32("summary_crc")
        var summary = Summary(summaryStart: summaryStart, footerOffset: footerOffset)
        guard summaryStart != 0 else { return summary }
        guard summaryStart >= UInt64(MCAPFormat.magic.count), summaryStart <= footerOffset,
              summaryOffsetStart == 0 || (summaryOffsetStart >= summaryStart && summaryOffsetStart <= footerOffset) else {
            throw .corrupt(path: path, offset: footerOffset,
                           what: "Footer: summary_start \(summaryStart) / summary_offset_start \(summaryOffsetStart) lie outside the file's \(footerOffset) bytes before the footer")
        }
        guard footerOffset - summaryStart <= RecordStream.maxRecordLength else {
            throw .corrupt(path: path, offset: footerOffset,
                           what: "Footer: a summary of \(footerOffset - summaryStart) bytes is more than the 1 GiB this reader accepts")
        }
        let summaryBytes = ByteBuffer(capacity: Int(footerOffset - summaryStart))
        try file.read(at: summaryStart, count: Int(footerOffset - summaryStart), into: summaryBytes)
        if summaryCRC != 0 {
            var crc = CRC32()
            crc.update(summaryBytes.bytes)
            footerBytes.withUnsafeBytes { crc.update(UnsafeRawBufferPointer(rebasing: $0[0..<(MCAPFormat.recordPrefix + 16)])) }
            guard crc.value == summaryCRC else {
                throw .crcMismatch(path: path, offset: summaryStart, what: "the summary section", stored: summaryCRC, computed: crc.value)
            }
        }
        try summary.parse(summaryBytes.bytes, path: path, offsetStart: summaryOffsetStart)
        return summary
    }

    private mutating func parse(_ bytes: UnsafeRawBufferPointer, path: String, offsetStart: UInt64) throws(RecordError) {
        /// Where each opcode's records lie, to check the Summary Offset records against.
        var groups: [UInt8: (start: UInt64, length: UInt64)] = [:]
        var offsets: [SummaryOffsetRecord] = []
        var lastOpcode: UInt8 = 0
        var position = 0
        while position < bytes.count {
            let offset = summaryStart + UInt64(position)
            guard bytes.count - position >= MCAPFormat.recordPrefix else {
                throw .corrupt(path: path, offset: offset, what: "summary section: \(bytes.count - position) bytes left, too few for a record")
            }
            let opcode = bytes[position]
            let length = LittleEndian.load(UInt64.self, from: bytes, at: position + 1)
            let start = position + MCAPFormat.recordPrefix
            guard length <= UInt64(bytes.count - start) else {
                throw .corrupt(path: path, offset: offset,
                               what: "summary section: \(Opcode.name(opcode)) record claims \(length) bytes, \(bytes.count - start) remain before the footer")
            }
            let end = start + Int(length)
            var r = FieldReader(UnsafeRawBufferPointer(rebasing: bytes[start..<end]), path: path, fileOffset: offset, opcode: opcode)
            if opcode != Opcode.summaryOffset.rawValue {
                if opcode != lastOpcode, groups[opcode] != nil {
                    throw r.failure("summary records are not grouped by opcode")
                }
                let group = groups[opcode] ?? (offset, 0)
                groups[opcode] = (group.start, group.length + UInt64(MCAPFormat.recordPrefix) + length)
            }
            lastOpcode = opcode
            switch Opcode(rawValue: opcode) {
            case .schema:
                let record = try SchemaRecord(&r)
                schemas[record.id] = record.schema
            case .channel: channels.append(try ChannelRecord(&r))
            case .statistics:
                guard statistics == nil else { throw r.failure("a second Statistics record") }
                statistics = try MCAPStatistics(&r)
            case .chunkIndex: chunkIndexes.append(try ChunkIndexEntry(&r))
            case .attachmentIndex: attachmentIndexes.append(try AttachmentIndexEntry(&r))
            case .metadataIndex: metadataIndexes.append(try MetadataIndexEntry(&r))
            case .summaryOffset:
                guard offsetStart != 0, offset >= offsetStart else {
                    throw r.failure("Summary Offset record before the footer's summary_offset_start \(offsetStart)")
                }
                offsets.append(try SummaryOffsetRecord(&r))
            case nil where opcode >= 0x10: break  // unknown: skipped
            default: throw r.failure("this record may not appear in the summary section")
            }
            position = end
        }
        for entry in offsets where entry.length > 0 || groups[entry.opcode] != nil {  // writers may list empty groups
            guard let group = groups[entry.opcode], group.start == entry.start, group.length == entry.length else {
                let actual = groups[entry.opcode].map { "\($0.length) bytes at \($0.start)" } ?? "no such records"
                throw .corrupt(path: path, offset: offsetStart,
                               what: "Summary Offset for \(Opcode.name(entry.opcode)) says \(entry.length) bytes at \(entry.start), the summary has \(actual)")
            }
        }
    }
}
