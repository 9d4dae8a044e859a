/// Encodes probe frames as `foxglove.RawImage` protobuf messages (`FoxgloveSchemas.rawImage`)
/// into one reused buffer: after the first frame of a size, encoding allocates nothing.
///
/// The protobuf wire format is written by hand (fields in number order, as protobuf
/// serialisers do; proto3 zero values of the timestamp left out), which is what lets the
/// 262 KB pixel payload go straight into the reused buffer.
public final class RawImageEncoder {
    /// The frame of reference written into each image (`frame_id`).
    public var frameID: String
    private let buffer = ByteBuffer(capacity: 512 * 512 + 128)

    public init(frameID: String = "probe") {
        self.frameID = frameID
    }

    /// Encodes one 8-bit grey frame (`encoding` "mono8", rows of `width` bytes, no padding) and
    /// hands the message to `body` (the bytes are the encoder's: valid only inside `body`).
    public func encodeMono8<R>(timestampNanos: UInt64, width: Int, height: Int, pixels: UnsafeRawBufferPointer,
                               _ body: (UnsafeRawBufferPointer) throws(RecordError) -> R) throws(RecordError) -> R {
        try encode(timestampNanos: timestampNanos, width: width, height: height, pixels: pixels)
        return try withExtendedLifetime(self) { () throws(RecordError) -> R in try body(buffer.bytes) }
    }

    public func encodeMono8<R>(timestampNanos: UInt64, width: Int, height: Int, pixels: [UInt8],
                               _ body: (UnsafeRawBufferPointer) throws(RecordError) -> R) throws(RecordError) -> R {
        // Array.withUnsafeBytes rethrows untyped errors: carry the typed one out by hand.
        var outcome: Result<R, RecordError>?
        pixels.withUnsafeBytes { raw in
            do throws(RecordError) {
                outcome = .success(try encodeMono8(timestampNanos: timestampNanos, width: width, height: height, pixels: raw, body))
            } catch {
                outcome = .failure(error)
            }
        }
        switch outcome {
        case .success(let value): return value
        case .failure(let error): throw error
        case nil: throw .invalidUse(path: "RawImage", what: "encoding did not run")
        }
    }

    private func encode(timestampNanos: UInt64, width: Int, height: Int, pixels: UnsafeRawBufferPointer) throws(RecordError) {
        guard width > 0, height > 0, width <= Int(UInt32.max), height <= Int(UInt32.max),
              pixels.count == width * height else {
            throw .invalidUse(path: "RawImage", what: "a \(width)×\(height) mono8 frame needs \(width * height) bytes, got \(pixels.count)")
        }
        buffer.removeAll()
        buffer.reserve(pixels.count + 64 + frameID.utf8.count)
        // 1: timestamp (google.protobuf.Timestamp: 1 seconds int64, 2 nanos int32)
        let seconds = timestampNanos / 1_000_000_000, nanos = timestampNanos % 1_000_000_000
        let timestampLength = (seconds == 0 ? 0 : 1 + varintLength(seconds)) + (nanos == 0 ? 0 : 1 + varintLength(nanos))
        tag(1, wireType: 2)
        varint(UInt64(timestampLength))
        if seconds != 0 { tag(1, wireType: 0); varint(seconds) }
        if nanos != 0 { tag(2, wireType: 0); varint(nanos) }
        // 2: width, 3: height (fixed32)
        tag(2, wireType: 5); buffer.append(UInt32(width))
        tag(3, wireType: 5); buffer.append(UInt32(height))
        // 4: encoding
        tag(4, wireType: 2); varint(5); buffer.appendBytes(of: "mono8")
        // 5: step (fixed32)
        tag(5, wireType: 5); buffer.append(UInt32(width))
        // 6: data
        tag(6, wireType: 2); varint(UInt64(pixels.count)); buffer.append(pixels)
        // 7: frame_id
        if !frameID.isEmpty {
            tag(7, wireType: 2)
            varint(UInt64(frameID.utf8.count))
            buffer.appendBytes(of: frameID)
        }
    }

    private func tag(_ field: UInt64, wireType: UInt64) { varint(field << 3 | wireType) }

    private func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            buffer.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        buffer.append(UInt8(value))
    }

    private func varintLength(_ value: UInt64) -> Int {
        var length = 1, value = value
        while value >= 0x80 { value >>= 7; length += 1 }
        return length
    }
}

extension ByteBuffer {
    /// A string's UTF-8 bytes, without length prefix.
    func appendBytes(of string: String) {
        var string = string
        string.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }
}
