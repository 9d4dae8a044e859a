#if canImport(Glibc)
import Glibc
#endif

/// Why a whole file could not be read.
public enum FileReadError: Error, Sendable, Equatable, CustomStringConvertible {
    /// open(2) or read(2) failed.
    case system(Errno)
    /// The file is larger than the reader accepts (the size a file supplies is bounded first).
    case tooLarge(limitBytes: Int)

    public var description: String {
        switch self {
        case .system(let error): error.description
        case .tooLarge(let limit): "larger than \(limit) bytes"
        }
    }
}

/// Reads whole (small) files: patient files, PNG frames.
public enum FileContents {
    /// The file at `path`, read to its end (EINTR retried), refused once it passes `limitBytes`.
    public static func read(path: String, limitBytes: Int) throws(FileReadError) -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .system(.current) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 1)
        defer { buffer.deallocate() }
        while true {
            let count: Int
            do throws(Errno) {
                count = try Errno.retryingInterrupts { Glibc.read(fd, buffer.baseAddress, buffer.count) }
            } catch {
                throw .system(error)
            }
            if count == 0 { return bytes }
            bytes.append(contentsOf: buffer[0..<count])
            if bytes.count > limitBytes { throw .tooLarge(limitBytes: limitBytes) }
        }
    }
}
