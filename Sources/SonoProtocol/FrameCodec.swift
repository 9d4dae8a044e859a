/// Whole frames: header, payload, CRC-32C, COBS and delimiter (PROTOCOL.md §1).
public enum FrameCodec {
    /// Encodes `frame` as it goes on the wire (COBS bytes and the trailing 0x00) into
    /// `buffer`; returns the byte count. Allocation-free: the unencoded frame is built on the stack.
    public static func encode(_ frame: Frame, into buffer: UnsafeMutableRawBufferPointer) throws(EncodeError) -> Int {
        let needed = wireSize(of: frame.message)
        guard buffer.count >= needed else { throw .bufferTooSmall(needed: needed, available: buffer.count) }
        return try withUnsafeTemporaryAllocation(byteCount: ProtocolConstants.maxDecodedFrame, alignment: 8) {
            raw throws(EncodeError) -> Int in
            let count = try encodeBody(frame.message, seq: frame.seq, timestampMicros: frame.timestampMicros, into: raw)
            // The size check above guarantees the sealed frame fits.
            return seal(UnsafeRawBufferPointer(rebasing: raw[0..<count]), seq: frame.seq, into: buffer) ?? 0
        }
    }

    /// The wire size of a frame carrying `message` (COBS worst case and the delimiter).
    public static func wireSize(of message: Message) -> Int {
        let rawSize = ProtocolConstants.headerSize + PayloadCodec.payloadSize(of: message) + ProtocolConstants.crcSize
        return COBS.maxEncodedCount(rawSize) + 1
    }

    /// The first half of `encode`: header and payload, without CRC and COBS, into `body`
    /// (at least `maxDecodedFrame` bytes); returns the byte count. A writer that numbers frames
    /// only as they go on the wire (one sequence, in wire order) stores these and `seal`s them then.
    public static func encodeBody(_ message: Message, seq: UInt16, timestampMicros: UInt64,
                                  into body: UnsafeMutableRawBufferPointer) throws(EncodeError) -> Int {
        try PayloadCodec.validate(message)
        let payloadSize = PayloadCodec.payloadSize(of: message)
        let needed = ProtocolConstants.headerSize + payloadSize
        guard body.count >= needed + ProtocolConstants.crcSize else {
            throw .bufferTooSmall(needed: needed + ProtocolConstants.crcSize, available: body.count)
        }
        var writer = ByteWriter(body)
        writer.u8(ProtocolConstants.version)
        writer.u8(message.type.rawValue)
        writer.u16(seq)
        writer.u64(timestampMicros)
        writer.u16(UInt16(payloadSize))
        PayloadCodec.encode(message, into: &writer)
        return writer.offset
    }

    /// The second half of `encode`: `body` (from `encodeBody`) numbered `seq`, with its CRC,
    /// COBS-encoded and delimited into `wire`; the byte count, or nil when `body` is not a frame
    /// body or `wire` is too small. Allocation-free.
    public static func seal(_ body: UnsafeRawBufferPointer, seq: UInt16, into wire: UnsafeMutableRawBufferPointer) -> Int? {
        let rawSize = body.count + ProtocolConstants.crcSize
        guard body.count >= ProtocolConstants.headerSize, rawSize <= ProtocolConstants.maxDecodedFrame,
              wire.count >= COBS.maxEncodedCount(rawSize) + 1 else { return nil }
        return withUnsafeTemporaryAllocation(byteCount: ProtocolConstants.maxDecodedFrame, alignment: 8) { raw -> Int? in
            UnsafeMutableRawBufferPointer(rebasing: raw[0..<body.count]).copyMemory(from: body)
            var writer = ByteWriter(raw)
            writer.offset = 2
            writer.u16(seq)
            writer.offset = body.count
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<body.count]))
            writer.u32(crc)
            guard let encoded = COBS.encode(UnsafeRawBufferPointer(rebasing: raw[0..<rawSize]),
                                            into: UnsafeMutableRawBufferPointer(rebasing: wire[0..<(wire.count - 1)])) else {
                return nil
            }
            wire[encoded] = 0
            return encoded + 1
        }
    }

    /// Convenience for tests and tools: the wire bytes of `frame`.
    public static func encode(_ frame: Frame) throws(EncodeError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: ProtocolConstants.maxEncodedFrame)
        // The standard library's closures rethrow untyped errors; carry the typed one out in a Result.
        let result = bytes.withUnsafeMutableBytes { buffer in
            Result { () throws(EncodeError) -> Int in try encode(frame, into: buffer) }
        }
        bytes.removeSubrange(try result.get()...)
        return bytes
    }

    /// Decodes the COBS bytes of one frame (without its delimiter), using `scratch`
    /// (at least `maxEncodedFrame` bytes) for the unstuffed frame. Scratch is sized for any
    /// frame a receiver accepts, not just valid ones, so that an over-long payload is reported
    /// as `lengthMismatch` rather than as a COBS failure.
    public static func decode(cobs: UnsafeRawBufferPointer,
                              scratch: UnsafeMutableRawBufferPointer) throws(FrameError) -> Frame {
        guard cobs.count < ProtocolConstants.maxEncodedFrame else { throw .oversized(byteCount: cobs.count) }
        guard let count = COBS.decode(cobs, into: scratch) else { throw .malformedCOBS }
        let minimum = ProtocolConstants.headerSize + ProtocolConstants.crcSize
        guard count >= minimum else { throw .truncated(byteCount: count) }

        let body = UnsafeRawBufferPointer(rebasing: scratch[0..<(count - ProtocolConstants.crcSize)])
        var crcReader = ByteReader(UnsafeRawBufferPointer(scratch), offset: count - ProtocolConstants.crcSize)
        let expected = crcReader.u32()
        let computed = CRC32C.checksum(body)
        guard expected == computed else { throw .crcMismatch(expected: expected, computed: computed) }

        var header = ByteReader(body)
        let version = header.u8()
        guard version == ProtocolConstants.version else { throw .unsupportedVersion(version) }
        let rawType = header.u8()
        let seq = header.u16()
        let timestamp = header.u64()
        let declared = Int(header.u16())
        let actual = body.count - ProtocolConstants.headerSize
        guard declared <= ProtocolConstants.maxPayload, declared == actual else {
            throw .lengthMismatch(declared: declared, actual: actual)
        }
        guard let type = MessageType(rawValue: rawType) else { throw .unknownType(rawType) }
        let payload = UnsafeRawBufferPointer(rebasing: body[ProtocolConstants.headerSize...])
        return Frame(seq: seq, timestampMicros: timestamp, message: try PayloadCodec.decode(type, payload))
    }

    /// Convenience for tests and tools: decodes one complete wire frame, delimiter optional.
    public static func decode(wire bytes: [UInt8]) throws(FrameError) -> Frame {
        let body = bytes.last == 0 ? Array(bytes.dropLast()) : bytes
        var scratch = [UInt8](repeating: 0, count: ProtocolConstants.maxEncodedFrame)
        let result = body.withUnsafeBytes { cobs in
            scratch.withUnsafeMutableBytes { scratch in
                Result { () throws(FrameError) -> Frame in try decode(cobs: cobs, scratch: scratch) }
            }
        }
        return try result.get()
    }
}
