/// Why a frame was dropped (PROTOCOL.md §1.3), in the order a receiver checks.
public enum FrameError: Error, Sendable, Equatable, CustomStringConvertible {
    /// More than `maxEncodedFrame` bytes arrived without a delimiter.
    case oversized(byteCount: Int)
    /// A COBS code byte points past the end of the frame.
    case malformedCOBS
    /// Shorter than a header and a CRC.
    case truncated(byteCount: Int)
    case crcMismatch(expected: UInt32, computed: UInt32)
    case unsupportedVersion(UInt8)
    /// The header's `length` disagrees with the frame's size, or exceeds 240.
    case lengthMismatch(declared: Int, actual: Int)
    case unknownType(UInt8)
    /// The payload does not have the layout or values its type requires.
    case invalidPayload(MessageType, reason: InvalidPayloadReason)

    /// The name PROTOCOL.md and `vectors/invalid.json` use.
    public var kind: String {
        switch self {
        case .oversized: "oversized"
        case .malformedCOBS: "malformed_cobs"
        case .truncated: "truncated"
        case .crcMismatch: "crc_mismatch"
        case .unsupportedVersion: "unsupported_version"
        case .lengthMismatch: "length_mismatch"
        case .unknownType: "unknown_type"
        case .invalidPayload: "invalid_payload"
        }
    }

    public var description: String {
        switch self {
        case .oversized(let count):
            "frame dropped: \(count) bytes without a 0x00 delimiter (limit \(ProtocolConstants.maxEncodedFrame))"
        case .malformedCOBS:
            "frame dropped: COBS code byte points past the end of the frame"
        case .truncated(let count):
            "frame dropped: \(count) decoded bytes, shorter than header and CRC (\(ProtocolConstants.headerSize + ProtocolConstants.crcSize))"
        case .crcMismatch(let expected, let computed):
            "frame dropped: CRC-32C mismatch (frame says 0x\(hex(expected)), bytes give 0x\(hex(computed)))"
        case .unsupportedVersion(let version):
            "frame dropped: protocol version \(version), this host speaks \(ProtocolConstants.version)"
        case .lengthMismatch(let declared, let actual):
            "frame dropped: header declares a \(declared)-byte payload, frame carries \(actual)"
        case .unknownType(let type):
            "frame dropped: unknown message type 0x\(hex(UInt32(type)))"
        case .invalidPayload(let type, let reason):
            "frame dropped: \(type) payload \(reason)"
        }
    }
}

public enum InvalidPayloadReason: Sendable, Equatable, CustomStringConvertible {
    case size(expected: Int, actual: Int)
    case jointCount(Int)
    case enumValue(field: StaticString, value: UInt8)

    public var description: String {
        switch self {
        case .size(let expected, let actual): "has \(actual) bytes, needs \(expected)"
        case .jointCount(let count): "has joint_count \(count), allowed 1…\(ProtocolConstants.maxJoints)"
        case .enumValue(let field, let value): "has \(field) = \(value), not a defined value"
        }
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        switch (lhs, rhs) {
        case let (.size(a, b), .size(c, d)): a == c && b == d
        case let (.jointCount(a), .jointCount(b)): a == b
        case let (.enumValue(f1, v1), .enumValue(f2, v2)): "\(f1)" == "\(f2)" && v1 == v2
        default: false
        }
    }
}

/// Why a message could not be encoded.
public enum EncodeError: Error, Sendable, Equatable, CustomStringConvertible {
    case bufferTooSmall(needed: Int, available: Int)
    case jointCount(Int)

    public var description: String {
        switch self {
        case .bufferTooSmall(let needed, let available):
            "cannot encode frame: needs \(needed) bytes, buffer has \(available)"
        case .jointCount(let count):
            "cannot encode frame: joint count \(count) outside 1…\(ProtocolConstants.maxJoints)"
        }
    }
}

func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, (value > 0xFF ? 8 : 2) - digits.count)) + digits
}
