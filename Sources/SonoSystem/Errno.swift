#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A POSIX error number, as a value: what a failed system call left in `errno` (or returned, for
/// the calls that return their error). Modelled on swift-system's `Errno`.
public struct Errno: RawRepresentable, Error, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }
    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's `errno`, read right after the call that failed.
    public static var current: Errno { Errno(errno) }

    /// The C library's message for the number ("No such file or directory"), through the
    /// thread-safe `strerror_r` (`strerror` returns a buffer another thread may overwrite).
    public var description: String {
        var buffer = [CChar](repeating: 0, count: 256)
        return buffer.withUnsafeMutableBufferPointer { buffer -> String in
            // Swift sees the XSI strerror_r (0 on success, the message in the buffer).
            guard let base = buffer.baseAddress, strerror_r(rawValue, base, buffer.count) == 0 else {
                return "errno \(rawValue)"
            }
            return String(cString: base)
        }
    }

    public static let notPermitted = Errno(EPERM)
    public static let noSuchFileOrDirectory = Errno(ENOENT)
    public static let interrupted = Errno(EINTR)
    public static let ioError = Errno(EIO)
    public static let noSuchDeviceOrAddress = Errno(ENXIO)
    public static let badFileDescriptor = Errno(EBADF)
    public static let resourceTemporarilyUnavailable = Errno(EAGAIN)
    /// EWOULDBLOCK: the same number as EAGAIN on Linux, not everywhere.
    public static let wouldBlock = Errno(EWOULDBLOCK)
    public static let noMemory = Errno(ENOMEM)
    public static let permissionDenied = Errno(EACCES)
    public static let resourceBusy = Errno(EBUSY)
    public static let fileExists = Errno(EEXIST)
    public static let noSuchDevice = Errno(ENODEV)
    public static let resultOutOfRange = Errno(ERANGE)
    public static let timedOut = Errno(ETIMEDOUT)

    /// True for EAGAIN and EWOULDBLOCK: a non-blocking call that would have had to wait.
    public var isWouldBlock: Bool { self == .resourceTemporarilyUnavailable || self == .wouldBlock }
}

extension Errno {
    /// Runs a system call that returns -1 and sets `errno` on failure, again while it fails with
    /// EINTR (a signal arrived before it did anything), and returns its result or throws its
    /// error. The one place Sono retries interrupts.
    ///
    /// Not for close(2): on Linux the descriptor is released even when close reports EINTR, and
    /// a retry could close a descriptor another thread has just been given.
    @inlinable
    public static func retryingInterrupts<T: FixedWidthInteger>(_ call: () -> T) throws(Errno) -> T {
        while true {
            let result = call()
            if result != -1 { return result }
            let error = Errno.current
            if error != .interrupted { throw error }
        }
    }

    /// Runs a call that returns 0 or its error number directly (clock_nanosleep, the pthread
    /// calls), again while that number is EINTR.
    @inlinable
    public static func errorRetryingInterrupts(_ call: () -> Int32) -> Errno? {
        while true {
            let code = call()
            if code == 0 { return nil }
            if code != Errno.interrupted.rawValue { return Errno(code) }
        }
    }
}
