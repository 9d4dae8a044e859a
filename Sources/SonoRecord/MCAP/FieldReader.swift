import SonoProtocol

/// A bounds-checked cursor over one record's content. Every read that would run past the
/// record's end is a `corrupt` error naming the file, the byte offset, the record and the field.
/// Error texts are built only on failure: reading allocates nothing but the values it returns.
struct FieldReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var position = 0
    let path: String
    /// Byte offset of the record in the file (for records inside a chunk: the chunk's offset).
    let fileOffset: UInt64
    let opcode: UInt8
    /// For a record inside a chunk: its offset in the uncompressed chunk.
    let chunkPosition: Int?

    init(_ bytes: UnsafeRawBufferPointer, path: String, fileOffset: UInt64, opcode: UInt8, chunkPosition: Int? = nil) {
        self.bytes = bytes
        self.path = path
        self.fileOffset = fileOffset
        self.opcode = opcode
        self.chunkPosition = chunkPosition
    }

    var remaining: Int { bytes.count - position }

    var context: String {
        if let chunkPosition {
            return "\(Opcode.name(opcode)) record at uncompressed byte \(chunkPosition) of the chunk at byte \(fileOffset)"
        }
        return "\(Opcode.name(opcode)) record at byte \(fileOffset)"
    }

    func failure(_ what: String) -> RecordError {
        .corrupt(path: path, offset: fileOffset, what: "\(context): \(what)")
    }

    /// Checks that an array of `count` bytes the record declares fits in what remains, before
    /// room is reserved for its elements: the length is the file's, up to 4 GiB.
    func needArray(_ count: Int, _ field: StaticString) throws(RecordError) { try need(count, field, " array") }

    private func need(_ count: Int, _ field: StaticString, _ part: StaticString = "") throws(RecordError) {
        guard count >= 0, count <= remaining else {
            throw failure("\(field)\(part) needs \(count) bytes at content byte \(position), only \(remaining) remain")
        }
    }

    private mutating func integer<T: FixedWidthInteger>(_ field: StaticString, _ part: StaticString = "") throws(RecordError) -> T {
        try need(MemoryLayout<T>.size, field, part)
        let value = LittleEndian.load(T.self, from: bytes, at: position)
        position += MemoryLayout<T>.size
        return value
    }

    mutating func u8(_ field: StaticString) throws(RecordError) -> UInt8 { try integer(field) }
    mutating func u16(_ field: StaticString) throws(RecordError) -> UInt16 { try integer(field) }
    mutating func u32(_ field: StaticString) throws(RecordError) -> UInt32 { try integer(field) }
    mutating func u64(_ field: StaticString) throws(RecordError) -> UInt64 { try integer(field) }

    mutating func raw(_ count: Int, _ field: StaticString) throws(RecordError) -> UnsafeRawBufferPointer {
        try need(count, field)
        let slice = UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)])
        position += count
        return slice
    }

    /// The rest of the record.
    mutating func rest() -> UnsafeRawBufferPointer {
        let slice = UnsafeRawBufferPointer(rebasing: bytes[position...])
        position = bytes.count
        return slice
    }

    mutating func string(_ field: StaticString) throws(RecordError) -> String {
        let length: UInt32 = try integer(field, " length")
        let utf8 = try raw(Int(length), field)
        guard let text = String(validating: utf8.bindMemory(to: UInt8.self), as: UTF8.self) else {
            throw failure("\(field) is not valid UTF-8")
        }
        return text
    }

    mutating func bytes32(_ field: StaticString) throws(RecordError) -> [UInt8] {
        let length: UInt32 = try integer(field, " length")
        return Array(try raw(Int(length), field))
    }

    mutating func bytes64(_ field: StaticString) throws(RecordError) -> UnsafeRawBufferPointer {
        let length: UInt64 = try integer(field, " length")
        guard length <= UInt64(remaining) else {
            throw failure("\(field) claims \(length) bytes, only \(remaining) remain in the record")
        }
        return try raw(Int(length), field)
    }

    mutating func stringMap(_ field: StaticString) throws(RecordError) -> [String: String] {
        let length = Int(try integer(field, " length") as UInt32)
        try need(length, field)
        var inner = FieldReader(UnsafeRawBufferPointer(rebasing: bytes[position..<(position + length)]),
                                path: path, fileOffset: fileOffset, opcode: opcode, chunkPosition: chunkPosition)
        position += length
        var map: [String: String] = [:]
        while inner.remaining > 0 {
            let key = try inner.string("map key")
            map[key] = try inner.string("map value")
        }
        return map
    }

    /// A Map<uint16, uint64>.
    mutating func idMap(_ field: StaticString) throws(RecordError) -> [(UInt16, UInt64)] {
        let length = Int(try integer(field, " length") as UInt32)
        guard length % 10 == 0 else { throw failure("\(field) is \(length) bytes, not a multiple of 10") }
        try needArray(length, field)
        var pairs: [(UInt16, UInt64)] = []
        pairs.reserveCapacity(length / 10)
        for _ in 0..<(length / 10) {
            pairs.append((try u16(field), try u64(field)))
        }
        return pairs
    }
}
