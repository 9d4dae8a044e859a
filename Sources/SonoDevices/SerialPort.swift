internal import CLibSerialPort
import SonoSystem
#if canImport(Glibc)
import Glibc
#endif

/// Line settings. Sono's boards run 8N1 without flow control (PROTOCOL.md).
public struct SerialConfiguration: Sendable, Equatable {
    public var baudRate: Int
    public init(baudRate: Int = 2_000_000) { self.baudRate = baudRate }
}

/// One open serial port on libserialport, read here; writes go through the link's `PortWriter`
/// on the port's descriptor (one writer, one reader on a tty); `close` must not race either.
public final class SerialPort: @unchecked Sendable {
    // @unchecked: `port` is set in init and cleared only by `close`, which the owner calls once no read or write runs; one reader and one writer may share the tty.
    public let path: String
    private var port: OpaquePointer?
    private let descriptor: Int32

    /// Opens and configures `path`: baud, 8 data bits, no parity, 1 stop bit, no flow control.
    public init(path: String, configuration: SerialConfiguration = .init()) throws(SerialError) {
        guard configuration.baudRate > 0 else {
            throw .invalidConfiguration("baud rate \(configuration.baudRate) must be positive")
        }
        self.path = path
        var handle: OpaquePointer?
        guard sp_get_port_by_name(path, &handle) == SP_OK, let handle else {
            // libserialport validates the name against sysfs: a missing device fails here.
            throw .noSuchPort(path)
        }
        guard sp_open(handle, SP_MODE_READ_WRITE) == SP_OK else {
            let code = sp_last_error_code()
            sp_free_port(handle)
            throw .opening(path, errno: code)
        }
        port = handle
        var fd: Int32 = -1
        _ = withUnsafeMutableBytes(of: &fd) { sp_get_port_handle(handle, $0.baseAddress) }
        descriptor = fd

        let settings: [(String, () -> sp_return)] = [
            ("set baud rate \(configuration.baudRate)", { sp_set_baudrate(handle, Int32(configuration.baudRate)) }),
            ("set 8 data bits", { sp_set_bits(handle, 8) }),
            ("set no parity", { sp_set_parity(handle, SP_PARITY_NONE) }),
            ("set 1 stop bit", { sp_set_stopbits(handle, 1) }),
            ("disable flow control", { sp_set_flowcontrol(handle, SP_FLOWCONTROL_NONE) }),
        ]
        for (operation, apply) in settings where apply() != SP_OK {
            let code = sp_last_error_code()
            close()
            throw .system(operation: operation, path: path, errno: Errno(code))
        }
        _ = sp_flush(handle, SP_BUF_BOTH)
    }

    deinit { close() }

    /// The open descriptor (non-blocking), for the link's `PortWriter`.
    public var fileDescriptor: Int32 { descriptor }

    public func close() {
        guard let port else { return }
        sp_close(port)
        sp_free_port(port)
        self.port = nil
    }

    public enum ReadResult: Sendable, Equatable {
        case bytes(Int)
        case timedOut
    }

    /// Waits up to `timeoutMillis` for input and reads what is there into `buffer`.
    /// A hang-up (the USB device went away) is reported as `.disconnected`, not as silence:
    /// on a hung-up tty poll() reports POLLHUP and read() returns 0 forever.
    public func read(into buffer: UnsafeMutableRawBufferPointer, timeoutMillis: Int32) throws(SerialError) -> ReadResult {
        guard let port else { throw .closed(path) }
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, timeoutMillis)
        if ready < 0 {
            // A signal cut the wait short: the caller polls again, as after a timeout (retrying
            // here would restart the full timeout).
            let error = Errno.current
            if error == .interrupted { return .timedOut }
            throw .transfer("poll", path, errno: error.rawValue)
        }
        if ready == 0 { return .timedOut }
        if poller.revents & Int16(POLLIN) == 0 && poller.revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 {
            throw .disconnected(path)
        }
        let count = sp_nonblocking_read(port, buffer.baseAddress, buffer.count)
        if count.rawValue < 0 { throw .transfer("read", path, errno: sp_last_error_code()) }
        if count.rawValue == 0 {
            // Readable but empty: a hang-up. Confirm with an ioctl that fails with EIO on one.
            if sp_input_waiting(port).rawValue < 0 { throw .disconnected(path) }
            return .timedOut
        }
        return .bytes(Int(count.rawValue))
    }
}
