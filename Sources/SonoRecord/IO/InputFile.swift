import Glibc
import SonoSystem

/// A file read by offset (pread), so a reader can walk a multi-gigabyte recording record by
/// record without holding it in memory, and jump to its footer.
final class InputFile {
    let path: String
    let size: UInt64
    private let descriptor: Int32

    init(path: String) throws(RecordError) {
        self.path = path
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .io(path: path, errno: .current, operation: "open") }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            let error = Errno.current
            Glibc.close(descriptor)
            throw .io(path: path, errno: error, operation: "stat")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            Glibc.close(descriptor)
            throw .notMCAP(path: path, what: "not a regular file")
        }
        size = UInt64(info.st_size)
    }

    deinit { Glibc.close(descriptor) }

    /// Reads `count` bytes at `offset` into `buffer` (replacing its contents). The caller has
    /// checked that the range lies inside the file; a short read means the file shrank.
    func read(at offset: UInt64, count: Int, into buffer: ByteBuffer) throws(RecordError) {
        buffer.removeAll()
        let space = buffer.unsafeSpace(count)
        var done = 0
        while done < count {
            guard let base = space.baseAddress else { break }
            let got: Int
            do throws(Errno) {
                got = try Errno.retryingInterrupts { pread(descriptor, base + done, count - done, off_t(offset) + off_t(done)) }
            } catch {
                throw .io(path: path, errno: error, operation: "read \(count) bytes at byte \(offset) of")
            }
            if got == 0 {
                throw .truncated(path: path, offset: offset + UInt64(done), what: "the file ended while being read")
            }
            done += got
        }
        buffer.commit(count)
    }
}
