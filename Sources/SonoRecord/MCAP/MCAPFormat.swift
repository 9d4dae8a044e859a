/// Constants of the MCAP format (foxglove/mcap, docs/specification/README.md, major version 0).
enum MCAPFormat {
    /// 0x89 "MCAP" '0' "\r\n": at the start and at the end of every complete file.
    static let magic: [UInt8] = [0x89, 0x4D, 0x43, 0x41, 0x50, 0x30, 0x0D, 0x0A]
    /// Opcode (1 byte) + content length (uint64).
    static let recordPrefix = 9
    /// A Footer record: prefix + summary_start + summary_offset_start + summary_crc.
    static let footerRecordLength = recordPrefix + 8 + 8 + 4
    /// The fixed part of a Message record's content before its data.
    static let messageFixedLength = 2 + 4 + 8 + 8
}

/// Record opcodes (0x01–0x0F); 0x80–0xFF are left to applications and skipped by readers.
enum Opcode: UInt8 {
    case header = 0x01
    case footer = 0x02
    case schema = 0x03
    case channel = 0x04
    case message = 0x05
    case chunk = 0x06
    case messageIndex = 0x07
    case chunkIndex = 0x08
    case attachment = 0x09
    case attachmentIndex = 0x0A
    case statistics = 0x0B
    case metadata = 0x0C
    case metadataIndex = 0x0D
    case summaryOffset = 0x0E
    case dataEnd = 0x0F

    static func name(_ raw: UInt8) -> String {
        if let known = Opcode(rawValue: raw) { return "\(known) (0x\(String(raw, radix: 16)))" }
        return "opcode 0x\(String(raw, radix: 16))"
    }
}
