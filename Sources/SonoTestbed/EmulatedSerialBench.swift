internal import CUMockdev
import Foundation
import SonoDevices
public import SonoSim
import Synchronization

/// USB identity of an emulated CDC-ACM board.
public struct EmulatedUSBSerialDevice: Sendable {
    public var vendorID: UInt16
    public var productID: UInt16
    public var serial: String
    public var manufacturer: String
    public var product: String

    public init(vendorID: UInt16 = 0x1209, productID: UInt16, serial: String,
                manufacturer: String = "Sono", product: String) {
        self.vendorID = vendorID
        self.productID = productID
        self.serial = serial
        self.manufacturer = manufacturer
        self.product = product
    }

    /// The identities in hardware/udev/99-sono.rules.
    public static func forceSensor(serial: String = "FT-0001") -> Self {
        Self(productID: 0x5301, serial: serial, product: "Sono force/torque sensor")
    }

    public static func arm(serial: String = "ARM-0001") -> Self {
        Self(productID: 0x5302, serial: serial, product: "Sono arm actuator")
    }
}

public enum BenchError: Error, CustomStringConvertible {
    case notPreloaded
    case umockdev(String)
    /// A bench call with an argument the emulated device cannot take (the message says which).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .notPreloaded:
            "umockdev is not preloaded: run under `umockdev-wrapper` (LD_PRELOAD=libumockdev-preload.so.0)"
        case .umockdev(let message): "umockdev: \(message)"
        case .invalidArgument(let message): "emulated device: \(message)"
        }
    }
}

/// A umockdev testbed holding emulated USB serial boards. Each plugged board gets a sysfs
/// tree that libserialport enumerates as USB (VID/PID/serial), and a /dev/ttyACM<n> node
/// backed by a PTY whose master end a simulated board drives. The real driver opens the
/// node through libserialport as it would open hardware.
///
/// umockdev works through LD_PRELOAD, so the process must run under `umockdev-wrapper`.
/// One testbed per process (umockdev sets process environment): use `shared`.
public final class EmulatedSerialBench: @unchecked Sendable {
    // @unchecked: every mutation of the testbed happens under the testbed's lock, then `lock`.
    private let testbedOwner: ProcessTestbed  // shared with the emulated USB probe
    private let testbed: UnsafeMutablePointer<UMockdevTestbed>
    private let lock = Mutex<Int>(0)  // next ttyACM index: umockdev cannot reuse a node name
    private let hubPath: String

    /// True when the umockdev preload library is in this process.
    public static var isPreloaded: Bool {
        ProcessInfo.processInfo.environment["LD_PRELOAD"]?.contains("umockdev") == true
    }

    nonisolated(unsafe) private static var instance: EmulatedSerialBench?
    private static let instanceLock = Mutex<Void>(())

    /// The process's testbed, created on first use.
    public static func shared() throws(BenchError) -> EmulatedSerialBench {
        guard isPreloaded else { throw .notPreloaded }
        return try instanceLock.withLock { _ throws(BenchError) in
            if let instance { return instance }
            let bench = try EmulatedSerialBench()
            instance = bench
            return bench
        }
    }

    private init() throws(BenchError) {
        let shared = try ProcessTestbed.shared()
        testbedOwner = shared
        testbed = shared.pointer
        hubPath = try shared.locked { testbed throws(BenchError) in try Self.addPermanentDevices(testbed) }
    }

    /// The devices the boards hang from, added once; returns the root hub's sysfs path.
    private static func addPermanentDevices(_ testbed: UnsafeMutablePointer<UMockdevTestbed>) throws(BenchError) -> String {
        // A permanent virtual tty keeps /sys/class/tty alive when the last board is unplugged
        // (libserialport fails to enumerate without it); it has "virtual" in its path, so
        // libserialport does not list it.
        g_free(Self.addDevice(testbed, subsystem: "tty", name: "virtual/tty/tty0", parent: nil, attributes: [:],
                         properties: ["DEVNAME": "tty0"]))
        // A root hub: its name puts "usb" into every board's sysfs path, which is how
        // libserialport recognises a USB port.
        guard let hub = Self.addDevice(testbed, subsystem: "usb", name: "usb1", parent: nil,
                                  attributes: ["busnum": "1", "devnum": "1", "idVendor": "1d6b", "idProduct": "0002"],
                                  properties: ["DEVTYPE": "usb_device"]) else {
            throw .umockdev("cannot add the root hub")
        }
        defer { g_free(hub) }
        return String(cString: hub)
    }

    /// Plugs a board in; returns the plugged device, whose PTY master the board's firmware drives.
    public func plug(_ device: EmulatedUSBSerialDevice) throws(BenchError) -> PluggedSerialDevice {
        // The shared testbed's lock first (the USB probe takes only that one), then the bench's.
        try testbedOwner.locked { _ throws(BenchError) in try plugLocked(device) }
    }

    private func plugLocked(_ device: EmulatedUSBSerialDevice) throws(BenchError) -> PluggedSerialDevice {
        try lock.withLock { (next: inout Int) throws(BenchError) -> PluggedSerialDevice in
            let index = next
            next += 1
            let port = "1-\(index + 1)"
            guard let usbDevice = addDevice(
                subsystem: "usb", name: port, parent: hubPath,
                attributes: ["idVendor": usbIDString(device.vendorID), "idProduct": usbIDString(device.productID),
                             "serial": device.serial, "manufacturer": device.manufacturer,
                             "product": device.product, "busnum": "1", "devnum": "\(index + 2)"],
                properties: ["DEVTYPE": "usb_device"]) else { throw .umockdev("cannot add USB device \(port)") }
            let usbDevicePath = String(cString: usbDevice)
            g_free(usbDevice)
            guard let interface = addDevice(
                subsystem: "usb", name: "\(port):1.0", parent: usbDevicePath,
                attributes: ["bInterfaceClass": "02", "bInterfaceSubClass": "02", "bInterfaceNumber": "00"],
                properties: ["DEVTYPE": "usb_interface", "DRIVER": "cdc_acm"]) else {
                throw .umockdev("cannot add USB interface \(port):1.0")
            }
            let interfacePath = String(cString: interface)
            g_free(interface)

            // Only a record's "N:" line (a node without contents) gets a PTY-backed /dev node.
            let name = "ttyACM\(index)"
            let sysPath = "/devices/usb1/\(port)/\(port):1.0/tty/\(name)"
            let record = """
                P: \(sysPath)
                N: \(name)
                E: DEVNAME=/dev/\(name)
                E: SUBSYSTEM=tty
                E: MAJOR=166
                E: MINOR=\(index)
                A: dev=166:\(index)
                L: device=../../../\(port):1.0

                """
            var error: UnsafeMutablePointer<GError>?
            guard umockdev_testbed_add_from_string(testbed, record, &error) != 0 else {
                throw .umockdev(consume(error) ?? "cannot add \(name)")
            }
            let devnode = "/dev/\(name)"
            let modem = ModemLines()
            guard let handler = umockdev_ioctl_base_new() else { throw .umockdev("cannot create an ioctl handler") }
            let context = Unmanaged.passRetained(modem).toOpaque()
            let callback: @convention(c) (UnsafeMutablePointer<UMockdevIoctlBase>?,
                                          UnsafeMutablePointer<UMockdevIoctlClient>?, gpointer?) -> gboolean = handleIoctl
            g_signal_connect_data(UnsafeMutableRawPointer(handler), "handle-ioctl",
                                  unsafeBitCast(callback, to: GCallback.self), context,
                                  { data, _ in if let data { Unmanaged<ModemLines>.fromOpaque(data).release() } },
                                  GConnectFlags(rawValue: 0))
            guard umockdev_testbed_attach_ioctl(testbed, devnode, handler, &error) != 0 else {
                throw .umockdev(consume(error) ?? "cannot attach the ioctl handler to \(devnode)")
            }
            let master = umockdev_testbed_get_dev_fd(testbed, devnode)
            guard master >= 0 else { throw .umockdev("no PTY behind \(devnode)") }
            let pts = ptsname(master).map { String(cString: $0) } ?? ""
            return PluggedSerialDevice(bench: self, devnode: devnode, device: device,
                                       sysPaths: ["/sys" + sysPath, interfacePath, usbDevicePath],
                                       master: master, pts: pts, handler: handler, modem: modem)
        }
    }

    /// Unplugs like a USB disconnect: the tty hangs up (the PTY master goes away, so the host
    /// sees POLLHUP and EIO), then the device leaves sysfs and /dev.
    func unplug(_ device: PluggedSerialDevice) {
        testbedOwner.locked { _ in unplugLocked(device) }
    }

    private func unplugLocked(_ device: PluggedSerialDevice) {
        lock.withLock { _ in
            device.modem.unplugged.store(true, ordering: .sequentiallyConsistent)
            // The testbed keeps the master's fd number and closes it at teardown, so the master
            // is released by putting /dev/null in its place rather than by close().
            let null = open("/dev/null", O_RDWR | O_CLOEXEC)
            if null >= 0 {
                dup2(null, device.master)
                close(null)
            }
            var error: UnsafeMutablePointer<GError>?
            _ = umockdev_testbed_detach_ioctl(testbed, device.devnode, &error)
            _ = consume(error)
            for path in device.sysPaths { umockdev_testbed_remove_device(testbed, path) }
            // umockdev 0.17 leaves its PTY map entry behind; a reused pts number would then
            // make the next plug abort.
            if let root = ProcessInfo.processInfo.environment["UMOCKDEV_DIR"], !device.pts.isEmpty {
                unlink("\(root)/dev/.ptymap/\(device.pts.replacingOccurrences(of: "/", with: "_"))")
            }
        }
    }

    private func addDevice(subsystem: String, name: String, parent: String?, attributes: [String: String],
                           properties: [String: String]) -> UnsafeMutablePointer<gchar>? {
        Self.addDevice(testbed, subsystem: subsystem, name: name, parent: parent, attributes: attributes,
                       properties: properties)
    }

    private static func addDevice(_ testbed: UnsafeMutablePointer<UMockdevTestbed>, subsystem: String, name: String,
                                  parent: String?, attributes: [String: String],
                                  properties: [String: String]) -> UnsafeMutablePointer<gchar>? {
        withCStringArray(attributes.flatMap { [$0.key, $0.value] }) { attributes in
            withCStringArray(properties.flatMap { [$0.key, $0.value] }) { properties in
                umockdev_testbed_add_devicev(testbed, subsystem, name, parent, attributes, properties)
            }
        }
    }
}

/// A board plugged into the bench. Its `transport` is the PTY master: what the board writes
/// there, the host reads from `devnode`, and the reverse.
public final class PluggedSerialDevice: Sendable {
    public let devnode: String
    public let device: EmulatedUSBSerialDevice
    let sysPaths: [String]
    let master: Int32
    let pts: String
    nonisolated(unsafe) let handler: UnsafeMutablePointer<UMockdevIoctlBase>
    let modem: ModemLines
    private unowned let bench: EmulatedSerialBench

    init(bench: EmulatedSerialBench, devnode: String, device: EmulatedUSBSerialDevice, sysPaths: [String],
         master: Int32, pts: String, handler: UnsafeMutablePointer<UMockdevIoctlBase>, modem: ModemLines) {
        self.bench = bench
        self.devnode = devnode
        self.device = device
        self.sysPaths = sysPaths
        self.master = master
        self.pts = pts
        self.handler = handler
        self.modem = modem
    }

    public var transport: FileDescriptorTransport { FileDescriptorTransport(descriptor: master) }

    /// The modem-control lines the host last set (TIOCM_DTR, TIOCM_RTS, …).
    public var modemBits: Int32 { modem.bits.load(ordering: .relaxed) }

    public func unplug() { bench.unplug(self) }
}

/// Modem lines of one emulated tty, shared between umockdev's worker thread and the test.
final class ModemLines: Sendable {
    let bits = Atomic<Int32>(Int32(TIOCM_CTS | TIOCM_DSR | TIOCM_CAR))
    let unplugged = Atomic<Bool>(false)
}

/// umockdev's ioctl callback, on its worker thread. A PTY has no modem lines, so
/// TIOCMGET/TIOCMSET/TIOCMBIS/TIOCMBIC (which libserialport issues when it opens a port) are
/// answered here; every other ioctl runs on the real PTY.
private func handleIoctl(_ handler: UnsafeMutablePointer<UMockdevIoctlBase>?,
                         _ client: UnsafeMutablePointer<UMockdevIoctlClient>?, _ context: gpointer?) -> gboolean {
    ProcessTestbed.promoteRelay()
    guard let client, let context else { return 0 }
    let modem = Unmanaged<ModemLines>.fromOpaque(context).takeUnretainedValue()
    if modem.unplugged.load(ordering: .sequentiallyConsistent) {
        umockdev_ioctl_client_complete(client, -1, EIO)
        return 1
    }
    let request = umockdev_ioctl_client_get_request(client)
    switch Int32(truncatingIfNeeded: request) {
    case Int32(TIOCMGET), Int32(TIOCMSET), Int32(TIOCMBIS), Int32(TIOCMBIC):
        var error: UnsafeMutablePointer<GError>?
        guard let argument = umockdev_ioctl_client_get_arg(client),
              let data = umockdev_ioctl_data_resolve(argument, 0, gsize(MemoryLayout<Int32>.size), &error),
              let bytes = data.pointee.data else {
            _ = consume(error)
            umockdev_ioctl_client_complete(client, -1, EFAULT)
            return 1
        }
        let raw = UnsafeMutableRawPointer(bytes)
        switch Int32(truncatingIfNeeded: request) {
        case Int32(TIOCMGET): raw.storeBytes(of: modem.bits.load(ordering: .relaxed), as: Int32.self)
        case Int32(TIOCMSET): modem.bits.store(raw.loadUnaligned(as: Int32.self), ordering: .relaxed)
        case Int32(TIOCMBIS): modem.bits.bitwiseOr(raw.loadUnaligned(as: Int32.self), ordering: .relaxed)
        default: modem.bits.bitwiseAnd(~raw.loadUnaligned(as: Int32.self), ordering: .relaxed)
        }
        g_object_unref(data)
        umockdev_ioctl_client_complete(client, 0, 0)
    default:
        var code: Int32 = 0
        var error: UnsafeMutablePointer<GError>?
        var result = umockdev_ioctl_client_execute(client, &code, &error)
        if consume(error) != nil {
            result = -1
            code = EIO
        }
        umockdev_ioctl_client_complete(client, Int(result), code)
    }
    return 1
}

/// Frees a GError, returning its message.
private func consume(_ error: UnsafeMutablePointer<GError>?) -> String? {
    guard let error else { return nil }
    defer { g_error_free(error) }
    return error.pointee.message.map { String(cString: $0) }
}

private func withCStringArray<R>(_ strings: [String], _ body: (UnsafeMutablePointer<UnsafeMutablePointer<gchar>?>) -> R) -> R {
    var pointers: [UnsafeMutablePointer<gchar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
}
