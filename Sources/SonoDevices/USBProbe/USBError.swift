internal import CLibUSB

/// What went wrong talking to the probe over USB, worded so an operator can act on it.
public enum USBError: Error, Sendable, Equatable, CustomStringConvertible {
    /// libusb itself could not start (no usbfs, no permission to the USB bus).
    case unavailable(String)
    /// No device with the VID:PID (and serial) is on the bus; `seen` lists what is.
    case notFound(selector: String, seen: [String])
    /// A libusb call failed; `code` is libusb's error number, `operation` what Sono was doing.
    case libusb(operation: String, code: Int32)
    /// The device answered, but not as USB-PROBE.md says a Sono probe does.
    case refused(String)
    /// The probe stalled a control request; `reason` is `ProbeStatus.last_error` read after it.
    case requestRejected(request: String, reason: String)

    public var description: String {
        switch self {
        case .unavailable(let reason):
            "USB unavailable: \(reason)"
        case .notFound(let selector, let seen):
            "no USB probe \(selector) on the bus (is it plugged in? `lsusb` lists devices); USB devices present: "
                + (seen.isEmpty ? "none" : seen.joined(separator: ", "))
        case .libusb(let operation, let code):
            "\(operation) failed: \(USBError.name(of: code)) (\(USBError.advice(for: code)))"
        case .refused(let reason):
            "USB probe refused: \(reason)"
        case .requestRejected(let request, let reason):
            "the probe rejected \(request): \(reason)"
        }
    }

    /// True when the error means the device is gone (unplugged or reset).
    public var isDisconnect: Bool {
        if case .libusb(_, let code) = self { return code == LIBUSB_ERROR_NO_DEVICE.rawValue }
        return false
    }

    static func name(of code: Int32) -> String {
        guard let name = libusb_error_name(code) else { return "libusb error \(code)" }
        return String(cString: name)
    }

    static func advice(for code: Int32) -> String {
        switch code {
        case LIBUSB_ERROR_ACCESS.rawValue:
            "permission denied: install hardware/udev/99-sono.rules or add the user to the group it names"
        case LIBUSB_ERROR_NO_DEVICE.rawValue: "the probe was unplugged or reset"
        case LIBUSB_ERROR_BUSY.rawValue: "another process has claimed the probe's interface (is a second sonod running?)"
        case LIBUSB_ERROR_TIMEOUT.rawValue: "the probe did not answer in time"
        case LIBUSB_ERROR_PIPE.rawValue: "the probe stalled the request"
        case LIBUSB_ERROR_OVERFLOW.rawValue: "the probe sent more data than was asked for"
        case LIBUSB_ERROR_NOT_FOUND.rawValue: "interface or endpoint not found"
        case LIBUSB_ERROR_NO_MEM.rawValue: "out of memory (usbfs_memory_mb too small for the transfers?)"
        default: "libusb error \(code)"
        }
    }
}
