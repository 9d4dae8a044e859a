/// A `foxglove.RawImage` (protobuf) read back from a recording: the fields a replay needs.
/// Field numbers from foxglove's RawImage.proto: 1 timestamp, 7 frame_id, 2 width, 3 height,
/// 4 encoding, 5 step, 6 data. Nil for anything that is not a mono8 image of consistent size.
struct RawImageMessage {
    var timestampNanos: UInt64 = 0
    var width = 0
    var height = 0
    var encoding = ""
    var pixels: [UInt8] = []

    init?(protobuf bytes: [UInt8]) {
        var reader = ProtobufReader(bytes: bytes[...])
        while let (field, wire) = reader.key() {
            switch (field, wire) {
            case (1, 2):
                guard var timestamp = reader.lengthDelimited().map({ ProtobufReader(bytes: $0) }) else { return nil }
                var seconds: UInt64 = 0, nanos: UInt64 = 0
                while let (tf, tw) = timestamp.key() {
                    guard let value = tw == 0 ? timestamp.varint() : nil else { return nil }
                    if tf == 1 { seconds = value } else if tf == 2 { nanos = value }
                }
                timestampNanos = seconds &* 1_000_000_000 &+ nanos
            case (2, 5): guard let value = reader.fixed32() else { return nil }; width = Int(value)
            case (3, 5): guard let value = reader.fixed32() else { return nil }; height = Int(value)
            case (4, 2): guard let value = reader.lengthDelimited() else { return nil }; encoding = String(decoding: value, as: UTF8.self)
            case (6, 2): guard let value = reader.lengthDelimited() else { return nil }; pixels = Array(value)
            default: guard reader.skip(wire) else { return nil }
            }
        }
        guard encoding == "mono8", width > 0, height > 0, pixels.count == width * height else { return nil }
    }
}

/// Just enough of the protobuf wire format to read a message.
struct ProtobufReader {
    var bytes: ArraySlice<UInt8>

    mutating func varint() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while let byte = bytes.popFirst() {
            guard shift < 64 else { return nil }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }

    mutating func key() -> (field: UInt64, wire: UInt64)? {
        guard !bytes.isEmpty, let key = varint() else { return nil }
        return (key >> 3, key & 7)
    }

    mutating func fixed32() -> UInt32? {
        guard bytes.count >= 4 else { return nil }
        var value: UInt32 = 0
        for index in 0..<4 { value |= UInt32(bytes[bytes.startIndex + index]) << (8 * index) }
        bytes = bytes.dropFirst(4)
        return value
    }

    mutating func lengthDelimited() -> ArraySlice<UInt8>? {
        guard let length = varint(), length <= UInt64(bytes.count) else { return nil }
        let value = bytes.prefix(Int(length))
        bytes = bytes.dropFirst(Int(length))
        return value
    }

    mutating func skip(_ wire: UInt64) -> Bool {
        switch wire {
        case 0: return varint() != nil
        case 1: guard bytes.count >= 8 else { return false }; bytes = bytes.dropFirst(8); return true
        case 2: return lengthDelimited() != nil
        case 5: return fixed32() != nil
        default: return false
        }
    }
}
