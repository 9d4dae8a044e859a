import SonoProtocol

/// Walks a file's records front to back: checks the leading magic, then yields each record's
/// opcode, offset and content (in `body`, reused), keeping the CRC-32 of everything read so far
/// for the DataEnd record's check. A record that runs past the end of the file is `truncated`;
/// a zero opcode (zero-filled space after a crash, or garbage) is `corrupt`.
final class RecordStream {
    struct Raw {
        var opcode: UInt8
        var offset: UInt64
        var length: UInt64
        /// CRC-32 of the file up to this record (what a DataEnd here must hold).
        var crcBefore: UInt32
        var end: UInt64 { offset + UInt64(MCAPFormat.recordPrefix) + length }
    }

    /// Larger records are taken as corrupt lengths rather than read into memory.
    static let maxRecordLength: UInt64 = 1 << 30

    let file: InputFile
    var path: String { file.path }
    /// Where the next record starts.
    private(set) var offset: UInt64 = UInt64(MCAPFormat.magic.count)
    private var crc = CRC32()
    private let prefix = ByteBuffer(capacity: 16)
    /// The content of the record `next` returned last.
    let body = ByteBuffer(capacity: 1 << 20)

    init(file: InputFile) throws(RecordError) {
        self.file = file
        try Self.checkMagic(file, buffer: prefix)
        crc.update(prefix.bytes)
    }

    /// The record at `offset`; nil when the file ends exactly there.
    func next() throws(RecordError) -> Raw? {
        guard offset < file.size else { return nil }
        let remaining = file.size - offset
        guard remaining >= UInt64(MCAPFormat.recordPrefix) else {
            throw .truncated(path: path, offset: offset,
                             what: "\(remaining) bytes remain where a record (9 bytes or more) should start")
        }
        try file.read(at: offset, count: MCAPFormat.recordPrefix, into: prefix)
        let opcode = prefix.bytes[0]
        let length = LittleEndian.load(UInt64.self, from: prefix.bytes, at: 1)
        guard opcode != 0 else {
            throw .corrupt(path: path, offset: offset, what: "opcode 0x00 where a record should start (zero-filled or overwritten data)")
        }
        let available = remaining - UInt64(MCAPFormat.recordPrefix)
        guard length <= available else {
            throw .truncated(path: path, offset: offset,
                             what: "\(Opcode.name(opcode)) record needs \(length) bytes, the file has \(available) left")
        }
        guard length <= Self.maxRecordLength else {
            throw .corrupt(path: path, offset: offset,
                           what: "\(Opcode.name(opcode)) record claims \(length) bytes, more than the 1 GiB a record may have here")
        }
        try file.read(at: offset + UInt64(MCAPFormat.recordPrefix), count: Int(length), into: body)
        let raw = Raw(opcode: opcode, offset: offset, length: length, crcBefore: crc.value)
        crc.update(prefix.bytes)
        crc.update(body.bytes)
        offset = raw.end
        return raw
    }

    /// A FieldReader over the content `next` returned.
    func fields(_ raw: Raw) -> FieldReader {
        FieldReader(body.bytes, path: path, fileOffset: raw.offset, opcode: raw.opcode)
    }

    static func checkMagic(_ file: InputFile, buffer: ByteBuffer) throws(RecordError) {
        let magic = MCAPFormat.magic
        guard file.size > 0 else { throw .notMCAP(path: file.path, what: "the file is empty (0 bytes)") }
        let count = Int(min(file.size, UInt64(magic.count)))
        try file.read(at: 0, count: count, into: buffer)
        let head = Array(buffer.bytes)
        if head == magic { return }
        if head.count >= 5 && head.prefix(5).elementsEqual(magic.prefix(5)) && head.count == magic.count {
            throw .notMCAP(path: file.path, what: "MCAP major version '\(Unicode.Scalar(head[5]))' is not supported (only '0')")
        }
        if head.count < magic.count && magic.starts(with: head) {
            throw .truncated(path: file.path, offset: file.size, what: "the file is \(file.size) bytes, shorter than the MCAP magic")
        }
        throw .notMCAP(path: file.path, what: "it starts with \(describe(head)), not the MCAP magic 89 4d 43 41 50 30 0d 0a")
    }

    /// The first bytes in hex, with the format they belong to when it is a common one.
    private static func describe(_ head: [UInt8]) -> String {
        let hex = head.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
            .joined(separator: " ")
        let known: [([UInt8], String)] = [
            ([0x89, 0x50, 0x4E, 0x47], "a PNG image"), ([0xFF, 0xD8, 0xFF], "a JPEG image"),
            ([0x1F, 0x8B], "gzip data"), ([0x28, 0xB5, 0x2F, 0xFD], "zstd data"),
            (Array("#ROSBAG".utf8), "a ROS 1 bag"), (Array("SQLite f".utf8), "an SQLite database (ROS 2 bag?)"),
            ([0x50, 0x4B, 0x03, 0x04], "a zip archive"), (Array("{".utf8), "JSON text?"),
        ]
        for (signature, name) in known where head.starts(with: signature) { return "\(hex) (\(name))" }
        return hex
    }
}
