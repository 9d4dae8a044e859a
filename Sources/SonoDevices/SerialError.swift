public import SonoSystem
#if canImport(Glibc)
import Glibc
#endif

/// What went wrong with a serial port, worded so an operator can act on it.
public enum SerialError: Error, Sendable, Equatable, CustomStringConvertible {
    case noSuchPort(String)
    /// No board matched a USB selector; `available` lists the USB ports that were seen.
    case noMatchingPort(selector: String, available: [String])
    case permissionDenied(path: String, group: String?)
    case busy(String)
    case disconnected(String)
    case timedOut(operation: String, path: String, milliseconds: Int)
    case invalidConfiguration(String)
    case system(operation: String, path: String, errno: Errno)
    case closed(String)

    public var description: String {
        switch self {
        case .noSuchPort(let path):
            "serial port \(path) does not exist (is the board plugged in? `sonoctl devices` lists ports)"
        case .noMatchingPort(let selector, let available):
            "no serial port matches \(selector); USB ports present: "
                + (available.isEmpty ? "none" : available.joined(separator: ", "))
        case .permissionDenied(let path, let group):
            if let group {
                "permission denied opening \(path): add the user to group '\(group)' (usermod -aG \(group) $USER) or install hardware/udev rules"
            } else {
                "permission denied opening \(path): install the udev rules in hardware/udev or run as a user who may open it"
            }
        case .busy(let path):
            "serial port \(path) is in use by another process"
        case .disconnected(let path):
            "serial port \(path) disconnected (device unplugged or powered off)"
        case .timedOut(let operation, let path, let milliseconds):
            "\(operation) on \(path) timed out after \(milliseconds) ms"
        case .invalidConfiguration(let reason):
            "invalid serial configuration: \(reason)"
        case .system(let operation, let path, let code):
            "\(operation) on \(path) failed: \(code) (errno \(code.rawValue))"
        case .closed(let path):
            "serial port \(path) is closed"
        }
    }

    /// Maps an errno from opening `path` to the error an operator can act on.
    static func opening(_ path: String, errno code: Int32) -> SerialError {
        switch code {
        case ENOENT, ENODEV, ENXIO: .noSuchPort(path)
        case EACCES, EPERM: .permissionDenied(path: path, group: owningGroup(of: path))
        case EBUSY: .busy(path)
        default: .system(operation: "open", path: path, errno: Errno(code))
        }
    }

    static func transfer(_ operation: String, _ path: String, errno code: Int32) -> SerialError {
        switch code {
        case EIO, ENXIO, ENODEV, EBADF: .disconnected(path)
        default: .system(operation: operation, path: path, errno: Errno(code))
        }
    }

    /// The group that owns a device node (typically `dialout` or Sono's `sono` operator group).
    static func owningGroup(of path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return UserDatabase.groupName(gid: UInt32(info.st_gid))
    }
}
