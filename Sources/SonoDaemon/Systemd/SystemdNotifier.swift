#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The sd_notify(3) protocol without libsystemd: datagrams to $NOTIFY_SOCKET (a path, or an
/// abstract socket when it starts with '@'). A no-op when not started by systemd.
public final class SystemdNotifier: Sendable {
    private let path: String?
    /// WATCHDOG_USEC for this process, when systemd asked for keep-alives.
    public let watchdogMicros: UInt64?

    public convenience init() { self.init(environment: ProcessInfo.processInfo.environment) }

    public init(environment: [String: String]) {
        path = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        if let usec = environment["WATCHDOG_USEC"].flatMap(UInt64.init), usec > 0,
           environment["WATCHDOG_PID"].flatMap(Int32.init).map({ $0 == getpid() }) ?? true {
            watchdogMicros = usec
        } else {
            watchdogMicros = nil
        }
    }

    public var isActive: Bool { path != nil }

    /// Sends "KEY=value" lines; returns false when there is no socket or the send failed.
    @discardableResult
    public func notify(_ state: String) -> Bool {
        guard let path else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        let message = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                message.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sockaddrPointer, length) }
            }
        }
        return sent == message.count
    }
}

/// Sockets passed by systemd socket activation (sd_listen_fds(3)): LISTEN_FDS descriptors
/// from fd 3 on, meant for this process when LISTEN_PID is its pid.
public enum SocketActivation {
    public static let firstDescriptor: Int32 = 3

    /// The passed descriptors, or [] when not socket-activated. Unsets the variables so that
    /// child processes do not take them for theirs.
    public static func takeDescriptors() -> [Int32] {
        let environment = ProcessInfo.processInfo.environment
        defer {
            unsetenv("LISTEN_PID")
            unsetenv("LISTEN_FDS")
            unsetenv("LISTEN_FDNAMES")
        }
        guard let pid = environment["LISTEN_PID"].flatMap(Int32.init), pid == getpid(),
              let count = environment["LISTEN_FDS"].flatMap(Int32.init), count > 0 else { return [] }
        return (0..<count).map { firstDescriptor + $0 }
    }
}
