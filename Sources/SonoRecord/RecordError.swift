import Glibc
public import SonoSystem

/// Everything that can go wrong writing, reading or recovering a recording. Each case names the
/// file, and where the file's bytes are at fault, the byte offset and what was found there.
public enum RecordError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file does not start with the MCAP magic (or is empty): not a recording at all.
    case notMCAP(path: String, what: String)
    /// The file ends inside a record or before its end-of-file records (a recording cut off).
    case truncated(path: String, offset: UInt64, what: String)
    /// A record's content contradicts the format (bad length, unknown channel, bad index, ...).
    case corrupt(path: String, offset: UInt64, what: String)
    /// A CRC-32 stored in the file does not match the bytes it covers.
    case crcMismatch(path: String, offset: UInt64, what: String, stored: UInt32, computed: UInt32)
    /// A chunk uses a compression this build does not read (only "" and "zstd" are supported).
    case unsupportedCompression(String, path: String, offset: UInt64)
    /// A system call failed: `operation` says which and on what.
    case io(path: String, errno: Errno, operation: String)
    /// The caller passed something the writer cannot write (unknown channel, a closed writer, ...).
    case invalidUse(path: String, what: String)
    /// zstd refused to compress or decompress.
    case compression(path: String, offset: UInt64, what: String)
    /// The recording's file system has less free space than the recorder's floor: it closed the
    /// file (complete and readable up to here) rather than fill the disk the machine runs on.
    case diskLow(path: String, freeBytes: UInt64, floorBytes: UInt64)

    public var description: String {
        switch self {
        case .notMCAP(let path, let what):
            "\(path) is not an MCAP recording: \(what)"
        case .truncated(let path, let offset, let what):
            "\(path) is cut off at byte \(offset): \(what) (an interrupted recording: `MCAPRecovery` rebuilds its intact part)"
        case .corrupt(let path, let offset, let what):
            "\(path) is corrupt at byte \(offset): \(what)"
        case .crcMismatch(let path, let offset, let what, let stored, let computed):
            "\(path) is corrupt at byte \(offset): CRC-32 of \(what) is \(hex(computed)), the file says \(hex(stored))"
        case .unsupportedCompression(let name, let path, let offset):
            "\(path) byte \(offset): chunk compression '\(name)' is not supported (only none and zstd)"
        case .io(let path, let error, let operation):
            error == .fileExists
                ? "\(path) already exists: a recording never overwrites a file (\(operation))"
                : "\(operation) \(path) failed: \(error) (errno \(error.rawValue))"
        case .invalidUse(let path, let what):
            "\(path): \(what)"
        case .compression(let path, let offset, let what):
            "\(path) byte \(offset): \(what)"
        case .diskLow(let path, let free, let floor):
            "stopped recording \(path): its file system has \(free >> 20) MiB free, below the \(floor >> 20) MiB floor "
                + "(the file is closed and complete up to here; free some space, or lower [recording] min_free_mib, and restart sonod)"
        }
    }
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
