public import SonoDevices
import SonoProtocol

/// What the emulated probe is (firmware-protocol/USB-PROBE.md §1–§3): descriptors, `ProbeInfo`
/// limits, the sysfs record libusb enumerates, and the control structures' byte layouts.
/// Shared by the interactive emulator (`EmulatedUSBProbe`) and the capture generator
/// (`ProbeCapture`), so both speak for the same device. Values are the C emulator's
/// (Tests/usb-emulation-probe/emulated_probe.c).
enum EmulatedProbeModel {
    static let vendorID: UInt16 = 0x1209
    static let productID: UInt16 = 0x5310
    static let bus = 2
    static let manufacturer = "Sono"
    static let product = "Sono ultrasound probe"

    // Vendor requests (USB-PROBE.md §2).
    static let getInfo: UInt8 = 0x01
    static let setImaging: UInt8 = 0x02
    static let startStreaming: UInt8 = 0x03
    static let stopStreaming: UInt8 = 0x04
    static let getStatus: UInt8 = 0x05
    static let requestTypeIn: UInt8 = 0xC1   // device-to-host, vendor, interface
    static let requestTypeOut: UInt8 = 0x41  // host-to-device, vendor, interface

    static let infoLength = 80
    static let statusLength = 32
    static let settingsLength = 12
    static let bulkEndpoint: UInt8 = 0x81

    // ProbeInfo limits.
    static let geometries: [(width: Int, height: Int)] = [(128, 128), (256, 256), (512, 512)]
    static let depthMM: ClosedRange<UInt16> = 40...300
    static let gainCentiDB: ClosedRange<Int16> = -2000...4000
    static let rateCentiFPS: ClosedRange<UInt16> = 100...12000
    static let sectorCentiDeg: UInt16 = 8000
    static let maxFrameBytes = ProbeFrameHeader.length + 512 * 512
    /// The bulk transfer length USB-PROBE.md §4.1 tells a host to use: max_frame_bytes + 1,
    /// rounded up to the 512-byte packet.
    static let transferLength = (maxFrameBytes + 1 + 511) / 512 * 512

    // last_error codes (USB-PROBE.md §2, §5.2).
    static let errorUnknownRequest: UInt8 = 1
    static let errorBadLength: UInt8 = 2
    static let errorOutOfRange: UInt8 = 3
    static let errorUnsupportedGeometry: UInt8 = 4
    static let errorWrongState: UInt8 = 5

    /// Device, configuration, interface and endpoint descriptors (USB-PROBE.md §1): the binary
    /// sysfs attribute "descriptors" libusb parses at enumeration, and what reading the usbfs
    /// node returns.
    static let descriptors: [UInt8] = [
        0x12, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x40,            // device: USB 2.0, EP0 64 bytes
        UInt8(vendorID & 0xFF), UInt8(vendorID >> 8), UInt8(productID & 0xFF), UInt8(productID >> 8),
        0x00, 0x01, 0x01, 0x02, 0x03, 0x01,                        // bcdDevice 1.00, strings 1–3, 1 config
        0x09, 0x02, 0x19, 0x00, 0x01, 0x01, 0x00, 0x80, 0xFA,      // config 1, 25 bytes, bus powered, 500 mA
        0x09, 0x04, 0x00, 0x00, 0x01, 0xFF, 0x01, 0x01, 0x00,      // interface 0: vendor 0xFF/1/1, 1 endpoint
        0x07, 0x05, 0x81, 0x02, 0x00, 0x02, 0x00,                  // EP 0x81 bulk IN, 512 bytes
    ]

    /// Checks a serial number for `ProbeInfo.serial` (16 bytes) and `iSerialNumber`.
    static func problem(withSerial serial: String) -> String? {
        let bytes = Array(serial.utf8)
        guard !bytes.isEmpty, bytes.count <= 16 else {
            return "serial \"\(serial)\" must have 1 to 16 characters (ProbeInfo.serial is 16 bytes)"
        }
        guard bytes.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            return "serial \"\(serial)\" must be printable ASCII without spaces (it is a sysfs attribute and a string descriptor)"
        }
        return nil
    }

    /// GET_INFO's `ProbeInfo`, version 1 (USB-PROBE.md §3.1).
    static func info(serial: String) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: infoLength)
        out[0] = 1                      // info_version
        out[1] = UInt8(infoLength)
        out[2] = 1                      // protocol_version
        out[4] = 1                      // firmware 1.0.0
        for (index, byte) in serial.utf8.prefix(16).enumerated() { out[8 + index] = byte }
        LittleEndian.store(UInt32(0x07), into: &out, at: 24)  // gain, depth, frame rate
        LittleEndian.store(UInt32(maxFrameBytes), into: &out, at: 28)
        LittleEndian.store(depthMM.lowerBound, into: &out, at: 32)
        LittleEndian.store(depthMM.upperBound, into: &out, at: 34)
        LittleEndian.store(UInt16(bitPattern: gainCentiDB.lowerBound), into: &out, at: 36)
        LittleEndian.store(UInt16(bitPattern: gainCentiDB.upperBound), into: &out, at: 38)
        LittleEndian.store(rateCentiFPS.lowerBound, into: &out, at: 40)
        LittleEndian.store(rateCentiFPS.upperBound, into: &out, at: 42)
        LittleEndian.store(sectorCentiDeg, into: &out, at: 44)
        out[46] = 8                     // bits_per_pixel
        out[47] = UInt8(geometries.count)
        for (index, geometry) in geometries.enumerated() {
            LittleEndian.store(UInt16(geometry.width), into: &out, at: 48 + 4 * index)
            LittleEndian.store(UInt16(geometry.height), into: &out, at: 50 + 4 * index)
        }
        return out
    }

    /// String descriptor `index` (USB 2.0 §9.6.7) for a standard GET_DESCRIPTOR request; nil for
    /// an index the device does not have.
    static func stringDescriptor(_ index: UInt8, serial: String) -> [UInt8]? {
        let text: String
        switch index {
        case 0: return [4, 0x03, 0x09, 0x04]  // supported languages: en-US
        case 1: text = manufacturer
        case 2: text = product
        case 3: text = serial
        default: return nil
        }
        let units = Array(text.utf16)
        var out: [UInt8] = [UInt8(2 + 2 * units.count), 0x03]
        for unit in units { out += [UInt8(unit & 0xFF), UInt8(unit >> 8)] }
        return out
    }

    /// The probe's sysfs record (umockdev-record format), as a real high-speed device on
    /// `syspath` (below /sys) with address `deviceAddress` on bus 2. "N:" with contents makes a
    /// plain-file /dev node (reading a usbfs node returns the descriptors); "H:" is a binary
    /// attribute; text attributes end in a newline as sysfs's do (libusb warns otherwise).
    /// libusb's udev backend lists SUBSYSTEM=usb + DEVTYPE=usb_device, reads busnum, devnum,
    /// speed, descriptors and bConfigurationValue, and opens DEVNAME.
    static func sysfsRecord(syspath: String, deviceAddress: Int, serial: String) -> String {
        let hex = descriptors.map { hexByte($0) }.joined()
        let bus3 = threeDigits(bus), dev3 = threeDigits(deviceAddress)
        // usb_device minors: 128 per bus, address − 1 within it (drivers/usb/core/usb.c).
        let minor = (bus - 1) * 128 + deviceAddress - 1
        let devicePath = syspath.hasPrefix("/sys") ? String(syspath.dropFirst(4)) : syspath
        return """
            P: \(devicePath)
            N: bus/usb/\(bus3)/\(dev3)=\(hex)
            E: DEVNAME=/dev/bus/usb/\(bus3)/\(dev3)
            E: DEVTYPE=usb_device
            E: DRIVER=usb
            E: PRODUCT=\(String(vendorID, radix: 16))/\(String(productID, radix: 16))/100
            E: TYPE=0/0/0
            E: BUSNUM=\(bus3)
            E: DEVNUM=\(dev3)
            E: MAJOR=189
            E: MINOR=\(minor)
            E: SUBSYSTEM=usb
            A: busnum=\(bus)\\n
            A: devnum=\(deviceAddress)\\n
            A: speed=480\\n
            A: bConfigurationValue=1\\n
            A: bNumConfigurations=1\\n
            A: bNumInterfaces= 1\\n
            A: idVendor=\(usbHex(vendorID))\\n
            A: idProduct=\(usbHex(productID))\\n
            A: manufacturer=\(manufacturer)\\n
            A: product=\(product)\\n
            A: serial=\(serial)\\n
            A: dev=189:\(minor)\\n
            H: descriptors=\(hex)

            """
    }

    static func devnode(deviceAddress: Int) -> String {
        "/dev/bus/usb/\(threeDigits(bus))/\(threeDigits(deviceAddress))"
    }

    static func syspath(port: Int) -> String {
        "/sys/devices/pci0000:00/0000:00:14.0/usb\(bus)/\(bus)-\(port)"
    }

    private static func threeDigits(_ value: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, 3 - digits.count)) + digits
    }

    private static func hexByte(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }

    private static func usbHex(_ value: UInt16) -> String { hexByte(UInt8(value >> 8)).lowercased() + hexByte(UInt8(value & 0xFF)).lowercased() }
}

extension EmulatedUSBProbe {
    /// Imaging settings (`ImagingSettings`, USB-PROBE.md §3.2) as the probe holds them: the
    /// protocol's own structure, so the emulator and the driver share its byte layout.
    public typealias Imaging = ProbeImagingSettings
}

extension ProbeImagingSettings {
    /// What the emulated probe uses until the first SET_IMAGING (the C emulator's defaults).
    public static let emulatorDefaults = ProbeImagingSettings(depthMM: 160, gainCentiDB: 0, rateCentiFPS: 6000, width: 256,
                                                              height: 256, sequence: 0)

    /// Why the emulated probe refuses these settings: `last_error` 3 (a value outside the
    /// ProbeInfo limits) or 4 (a geometry it does not have); nil when it accepts them. Values are
    /// rejected, never clamped (USB-PROBE.md §3.2).
    public var refusal: UInt8? {
        guard EmulatedProbeModel.depthMM.contains(depthMM), EmulatedProbeModel.gainCentiDB.contains(gainCentiDB),
              EmulatedProbeModel.rateCentiFPS.contains(rateCentiFPS) else { return EmulatedProbeModel.errorOutOfRange }
        guard EmulatedProbeModel.geometries.contains(where: { $0.width == width && $0.height == height }) else {
            return EmulatedProbeModel.errorUnsupportedGeometry
        }
        return nil
    }
}
