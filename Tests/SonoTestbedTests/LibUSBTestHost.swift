import CLibUSB
import Foundation
import Synchronization
import Testing

/// A bare libusb-1.0 host for the emulator's tests: plain synchronous and asynchronous libusb
/// calls, no driver, so a failure points at the emulator (or umockdev), not at driver logic.
final class LibUSBTestHost {
    let context: OpaquePointer

    struct Failure: Error, Equatable, CustomStringConvertible {
        let call: String
        let code: Int32
        var description: String { "\(call): \(String(cString: libusb_error_name(code)))" }
    }

    init() throws {
        var context: OpaquePointer?
        let result = libusb_init(&context)
        guard result == 0, let context else { throw Failure(call: "libusb_init", code: result) }
        self.context = context
    }

    deinit { libusb_exit(context) }

    /// The devices libusb lists with `vendorID:productID`, as (bus, address) pairs.
    func list(vendorID: UInt16, productID: UInt16) -> [(bus: Int, address: Int)] {
        withDevices { devices in
            devices.compactMap { device in
                var descriptor = libusb_device_descriptor()
                guard libusb_get_device_descriptor(device, &descriptor) == 0, descriptor.idVendor == vendorID,
                      descriptor.idProduct == productID else { return nil }
                return (Int(libusb_get_bus_number(device)), Int(libusb_get_device_address(device)))
            }
        }
    }

    /// Runs `body` with the device at bus/address, or nil if libusb does not list it.
    func withDevice<R>(bus: Int, address: Int, _ body: (OpaquePointer?) throws -> R) rethrows -> R {
        try withDevices { devices in
            try body(devices.first {
                Int(libusb_get_bus_number($0)) == bus && Int(libusb_get_device_address($0)) == address
            })
        }
    }

    private func withDevices<R>(_ body: ([OpaquePointer]) throws -> R) rethrows -> R {
        var list: UnsafeMutablePointer<OpaquePointer?>?
        let count = libusb_get_device_list(context, &list)
        defer { if let list { libusb_free_device_list(list, 1) } }
        guard count > 0, let list else { return try body([]) }
        return try body((0..<count).compactMap { list[$0] })
    }

    /// Opens the device at bus/address and claims interface 0.
    func open(bus: Int, address: Int) throws -> Handle {
        try withDevice(bus: bus, address: address) { device in
            guard let device else { throw Failure(call: "find \(bus)/\(address)", code: LIBUSB_ERROR_NOT_FOUND.rawValue) }
            var handle: OpaquePointer?
            let result = libusb_open(device, &handle)
            guard result == 0, let handle else { throw Failure(call: "libusb_open", code: result) }
            let claimed = libusb_claim_interface(handle, 0)
            guard claimed == 0 else {
                libusb_close(handle)
                throw Failure(call: "libusb_claim_interface", code: claimed)
            }
            return Handle(host: self, handle: handle)
        }
    }

    /// Handles libusb events until `done()` holds or `seconds` pass; false on timeout.
    @discardableResult
    func handleEvents(seconds: Double, until done: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !done() {
            guard Date() < deadline else { return false }
            var timeout = timeval(tv_sec: 0, tv_usec: 20_000)
            libusb_handle_events_timeout_completed(context, &timeout, nil)
        }
        return true
    }

    /// An open device with interface 0 claimed.
    final class Handle {
        let host: LibUSBTestHost
        let handle: OpaquePointer

        init(host: LibUSBTestHost, handle: OpaquePointer) {
            self.host = host
            self.handle = handle
        }

        deinit {
            libusb_release_interface(handle, 0)
            libusb_close(handle)
        }

        /// A control transfer; returns the bytes transferred (IN: the data read) or the libusb error code.
        func control(_ requestType: UInt8, _ request: UInt8, length: Int = 0, data: [UInt8] = [],
                     timeoutMillis: UInt32 = 1_000) -> Result<[UInt8], Failure> {
            var buffer = data.isEmpty ? [UInt8](repeating: 0, count: length) : data
            let result = buffer.withUnsafeMutableBufferPointer { bytes in
                libusb_control_transfer(handle, requestType, request, 0, 0, bytes.baseAddress, UInt16(bytes.count),
                                        timeoutMillis)
            }
            guard result >= 0 else { return .failure(Failure(call: "control 0x\(String(request, radix: 16))", code: result)) }
            return .success(Array(buffer.prefix(Int(result))))
        }

        /// A synchronous bulk-IN transfer on 0x81.
        func bulkIn(length: Int, timeoutMillis: UInt32 = 2_000) -> Result<[UInt8], Failure> {
            var buffer = [UInt8](repeating: 0, count: length)
            var actual: Int32 = 0
            let result = buffer.withUnsafeMutableBufferPointer { bytes in
                libusb_bulk_transfer(handle, 0x81, bytes.baseAddress, Int32(length), &actual, timeoutMillis)
            }
            guard result == 0 else { return .failure(Failure(call: "bulk 0x81", code: result)) }
            return .success(Array(buffer.prefix(Int(actual))))
        }

        func stringDescriptor(_ index: UInt8) -> String? {
            var buffer = [UInt8](repeating: 0, count: 128)
            let count = libusb_get_string_descriptor_ascii(handle, index, &buffer, Int32(buffer.count))
            return count >= 0 ? String(decoding: buffer.prefix(Int(count)), as: UTF8.self) : nil
        }
    }
}

/// One asynchronous bulk-IN transfer on 0x81 and its completion.
final class BulkTransfer {
    let transfer: UnsafeMutablePointer<libusb_transfer>
    let buffer: UnsafeMutableBufferPointer<UInt8>
    private(set) var completed = false
    private(set) var status = LIBUSB_TRANSFER_COMPLETED
    private(set) var data: [UInt8] = []
    /// Called in the completion callback (inside libusb_handle_events), in the order libusb
    /// reaps the transfers: the device's order.
    var onComplete: ((BulkTransfer) -> Void)?

    init?(_ handle: LibUSBTestHost.Handle, length: Int) {
        guard let transfer = libusb_alloc_transfer(0) else { return nil }
        self.transfer = transfer
        buffer = .allocate(capacity: length)
        libusb_fill_bulk_transfer(transfer, handle.handle, 0x81, buffer.baseAddress, Int32(length), { transfer in
            guard let transfer, let context = transfer.pointee.user_data else { return }
            Unmanaged<BulkTransfer>.fromOpaque(context).takeUnretainedValue().finished(transfer)
        }, Unmanaged.passUnretained(self).toOpaque(), 0)
    }

    deinit {
        libusb_free_transfer(transfer)
        buffer.deallocate()
    }

    func submit() -> Int32 {
        completed = false
        return libusb_submit_transfer(transfer)
    }

    func cancel() -> Int32 { libusb_cancel_transfer(transfer) }

    private func finished(_ transfer: UnsafeMutablePointer<libusb_transfer>) {
        status = transfer.pointee.status
        data = Array(buffer.prefix(Int(transfer.pointee.actual_length)))
        completed = true
        onComplete?(self)
    }
}

/// Counts libusb hot-plug events for the probe's VID/PID (delivered while handling events).
final class HotplugCounter {
    private(set) var arrived: [(bus: Int, address: Int)] = []
    private(set) var left = 0
    private var handle: libusb_hotplug_callback_handle = 0
    private let context: OpaquePointer

    init(_ host: LibUSBTestHost, vendorID: UInt16, productID: UInt16) throws {
        context = host.context
        let events = Int32(LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED.rawValue | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT.rawValue)
        let result = libusb_hotplug_register_callback(host.context, events, 0, Int32(vendorID), Int32(productID),
                                                      LIBUSB_HOTPLUG_MATCH_ANY, { _, device, event, context in
            guard let context else { return 0 }
            Unmanaged<HotplugCounter>.fromOpaque(context).takeUnretainedValue().record(device, event)
            return 0
        }, Unmanaged.passUnretained(self).toOpaque(), &handle)
        guard result == 0 else { throw LibUSBTestHost.Failure(call: "libusb_hotplug_register_callback", code: result) }
    }

    deinit { libusb_hotplug_deregister_callback(context, handle) }

    private func record(_ device: OpaquePointer?, _ event: libusb_hotplug_event) {
        if event == LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT {
            left += 1
        } else if let device {
            arrived.append((Int(libusb_get_bus_number(device)), Int(libusb_get_device_address(device))))
        }
    }
}
