internal import CLibSerialPort
import SonoSystem

/// A serial port as the OS reports it, with USB metadata where the port is a USB device.
public struct SerialPortInfo: Sendable, Equatable, CustomStringConvertible {
    public enum Transport: String, Sendable { case native, usb, bluetooth }

    public var path: String
    public var description: String
    public var transport: Transport
    public var usbVendorID: UInt16?
    public var usbProductID: UInt16?
    public var usbSerial: String?
    public var usbManufacturer: String?
    public var usbProduct: String?
    public var usbBus: Int?
    public var usbAddress: Int?

    /// `1209:5301` for USB ports.
    public var usbID: String? {
        guard let vendor = usbVendorID, let product = usbProductID else { return nil }
        return usbIDString(vendor) + ":" + usbIDString(product)
    }

    /// Lists the serial ports present now (libserialport's enumeration over sysfs).
    public static func list() throws(SerialError) -> [SerialPortInfo] {
        var list: UnsafeMutablePointer<OpaquePointer?>?
        guard sp_list_ports(&list) == SP_OK, let list else {
            throw .system(operation: "list ports", path: "/sys/class/tty", errno: Errno(sp_last_error_code()))
        }
        defer { sp_free_port_list(list) }
        var ports: [SerialPortInfo] = []
        var index = 0
        while let port = list[index] {
            ports.append(SerialPortInfo(port))
            index += 1
        }
        return ports.sorted { $0.path < $1.path }
    }

    init(_ port: OpaquePointer) {
        path = string(sp_get_port_name(port)) ?? "?"
        description = string(sp_get_port_description(port)) ?? ""
        switch sp_get_port_transport(port) {
        case SP_TRANSPORT_USB: transport = .usb
        case SP_TRANSPORT_BLUETOOTH: transport = .bluetooth
        default: transport = .native
        }
        guard transport == .usb else { return }
        var vendor: Int32 = 0, product: Int32 = 0
        if sp_get_port_usb_vid_pid(port, &vendor, &product) == SP_OK {
            usbVendorID = UInt16(truncatingIfNeeded: vendor)
            usbProductID = UInt16(truncatingIfNeeded: product)
        }
        var bus: Int32 = 0, address: Int32 = 0
        if sp_get_port_usb_bus_address(port, &bus, &address) == SP_OK {
            usbBus = Int(bus)
            usbAddress = Int(address)
        }
        usbSerial = string(sp_get_port_usb_serial(port))
        usbManufacturer = string(sp_get_port_usb_manufacturer(port))
        usbProduct = string(sp_get_port_usb_product(port))
    }
}

/// How a link finds its board: by device path, or by USB identity, which survives the board
/// re-enumerating under another ttyACM number after a replug.
public enum SerialPortSelector: Sendable, Equatable, CustomStringConvertible {
    case path(String)
    case usb(vendorID: UInt16, productID: UInt16, serial: String?)

    public var description: String {
        switch self {
        case .path(let path): path
        case .usb(let vendor, let product, let serial):
            "USB \(usbIDString(vendor)):\(usbIDString(product))" + (serial.map { " serial \($0)" } ?? "")
        }
    }

    /// The path of the port this selector names now.
    public func resolve() throws(SerialError) -> String {
        switch self {
        case .path(let path):
            return path
        case .usb(let vendor, let product, let serial):
            let ports = try SerialPortInfo.list().filter { $0.transport == .usb }
            if let match = ports.first(where: {
                $0.usbVendorID == vendor && $0.usbProductID == product && (serial == nil || $0.usbSerial == serial)
            }) {
                return match.path
            }
            throw .noMatchingPort(selector: description,
                                  available: ports.map { "\($0.path) (\($0.usbID ?? "?") \($0.usbSerial ?? "no serial"))" })
        }
    }
}

/// A USB vendor or product ID as lsusb and sysfs write it: four lowercase hex digits.
public func usbIDString(_ value: UInt16) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 4 - digits.count) + digits
}

private func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String? {
    pointer.map { String(cString: $0) }
}
