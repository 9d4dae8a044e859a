import ArgumentParser
import Foundation
import SonoDevices

/// `sonoctl devices`: the serial ports present, with the USB identity that tells Sono's
/// boards apart (hardware/udev/99-sono.rules names them /dev/sono-*).
struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List serial ports with their USB vendor/product IDs, serial numbers and names.")

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Flag(name: .customLong("usb-only"), help: "List USB ports only (Sono's boards are USB CDC-ACM).")
    var usbOnly = false

    func run() throws {
        let ports: [SerialPortInfo]
        do {
            ports = try SerialPortInfo.list().filter { !usbOnly || $0.transport == .usb }
        } catch {
            throw ValidationError("cannot list serial ports: \(error)")
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = try encoder.encode(ports.map(PortRecord.init))
            print(String(decoding: data, as: UTF8.self))
            return
        }
        guard !ports.isEmpty else {
            print("no serial ports found")
            return
        }
        let rows = ports.map { port in
            [port.path, port.transport.rawValue, port.usbID ?? "-", port.usbSerial ?? "-",
             port.usbManufacturer ?? "-", port.usbProduct ?? port.description, board(port)]
        }
        printTable(header: ["PORT", "TRANSPORT", "USB ID", "SERIAL", "MANUFACTURER", "PRODUCT", "SONO BOARD"], rows: rows)
    }

    /// Which Sono board a port is, by the USB IDs of hardware/udev/99-sono.rules.
    func board(_ port: SerialPortInfo) -> String {
        guard port.usbVendorID == 0x1209 else { return "-" }
        switch port.usbProductID {
        case 0x5301: return "force/torque sensor"
        case 0x5302: return "arm actuator"
        default: return "-"
        }
    }
}

struct PortRecord: Encodable {
    let path: String
    let transport: String
    let description: String
    let usbVendorID: String?
    let usbProductID: String?
    let usbSerial: String?
    let usbManufacturer: String?
    let usbProduct: String?
    let usbBus: Int?
    let usbAddress: Int?

    init(_ port: SerialPortInfo) {
        path = port.path
        transport = port.transport.rawValue
        description = port.description
        usbVendorID = port.usbID.map { String($0.prefix(4)) }
        usbProductID = port.usbID.map { String($0.suffix(4)) }
        usbSerial = port.usbSerial
        usbManufacturer = port.usbManufacturer
        usbProduct = port.usbProduct
        usbBus = port.usbBus
        usbAddress = port.usbAddress
    }
}

func printTable(header: [String], rows: [[String]]) {
    let widths = header.indices.map { column in
        ([header] + rows).map { $0[column].count }.max() ?? 0
    }
    for row in [header] + rows {
        print(row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
            .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
    }
}
