/// Why a transfer from the probe's bulk-IN endpoint is not a valid frame
/// (firmware-protocol/USB-PROBE.md §4.3). Each case names the field and the values involved;
/// `counter` is the name the protocol gives the error's counter.
public enum ProbeFrameError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Fewer bytes than the header, or than the header's lengths announce.
    case truncated(received: Int, needed: Int)
    /// The first four bytes are not `SNPF`: not the start of a frame.
    case badMagic(found: UInt32)
    case unsupportedVersion(UInt8)
    /// A header field outside what version 1 allows.
    case badHeader(field: String, offset: Int, reason: String)
    /// More bytes than `header_length + payload_length`.
    case oversized(received: Int, expected: Int)
    /// The CRC-32C stored at offset 60 does not match the frame's bytes.
    case crcMismatch(stored: UInt32, computed: UInt32)

    /// The receiver counter this error increments (USB-PROBE.md §4.3).
    public var counter: String {
        switch self {
        case .truncated: "truncated"
        case .badMagic: "bad_magic"
        case .unsupportedVersion: "unsupported_version"
        case .badHeader: "bad_header"
        case .oversized: "oversized"
        case .crcMismatch: "crc_mismatch"
        }
    }

    public var description: String {
        switch self {
        case .truncated(let received, let needed):
            "probe frame truncated: \(received) bytes received, \(needed) needed"
        case .badMagic(let found):
            "probe frame has magic 0x\(String(found, radix: 16)) at offset 0, expected 0x46504e53 (\"SNPF\"): "
                + "not the start of a frame"
        case .unsupportedVersion(let version):
            "probe frame version \(version) at offset 4 is not supported (this host speaks version 1)"
        case .badHeader(let field, let offset, let reason):
            "probe frame header field \(field) (offset \(offset)): \(reason)"
        case .oversized(let received, let expected):
            "probe frame oversized: \(received) bytes received, header announces \(expected)"
        case .crcMismatch(let stored, let computed):
            "probe frame CRC-32C mismatch: header (offset 60) says 0x\(String(stored, radix: 16)), "
                + "bytes give 0x\(String(computed, radix: 16))"
        }
    }
}
