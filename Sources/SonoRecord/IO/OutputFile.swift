import Glibc
import SonoSystem

/// A new file written front to back with write(2): created with O_EXCL so a recording never
/// replaces another, every byte accounted for (short writes and interrupted calls retried), and synced on
/// request so what the writer calls durable is on the disk.
final class OutputFile {
    let path: String
    private var descriptor: Int32
    /// Bytes written so far: the offset the next write lands at.
    private(set) var offset: UInt64 = 0

    init(creating path: String) throws(RecordError) {
        self.path = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .io(path: path, errno: .current, operation: "create") }
    }

    deinit { if descriptor >= 0 { _ = Glibc.close(descriptor) } }

    func write(_ bytes: UnsafeRawBufferPointer) throws(RecordError) {
        guard descriptor >= 0 else { throw .invalidUse(path: path, what: "write after close") }
        guard var next = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let written: Int
            do throws(Errno) {
                written = try Errno.retryingInterrupts { Glibc.write(descriptor, next, remaining) }
            } catch {
                throw .io(path: path, errno: error, operation: "write at byte \(offset) of")
            }
            next += written
            remaining -= written
            offset += UInt64(written)
        }
    }

    /// The data (not necessarily the metadata) is on stable storage.
    func sync() throws(RecordError) {
        guard descriptor >= 0 else { return }
        do throws(Errno) {
            _ = try Errno.retryingInterrupts { fdatasync(descriptor) }
        } catch {
            throw .io(path: path, errno: error, operation: "fdatasync")
        }
    }

    func close() throws(RecordError) {
        guard descriptor >= 0 else { return }
        // Not retried on EINTR: Linux has released the descriptor by then, and a second close
        // could close one another thread was just given. An interrupted close is not an error.
        let result = Glibc.close(descriptor)
        descriptor = -1
        let error = Errno.current
        if result != 0 && error != .interrupted { throw .io(path: path, errno: error, operation: "close") }
    }
}
