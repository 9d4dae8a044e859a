internal import CLibUSB
import Foundation
import Synchronization

/// Where a probe sits on the bus.
public struct USBProbeAddress: Sendable, Equatable, CustomStringConvertible {
    public var bus: Int
    public var address: Int
    public var description: String { "bus \(bus) address \(address)" }
}

/// One opened probe: its libusb handle with interface 0 claimed, its `ProbeInfo`, the control
/// requests of USB-PROBE.md §2, and the pool of bulk-IN transfers that streams frames. Created
/// and torn down by `USBProbeSource`'s supervisor thread; the transfers' callbacks run on the
/// libusb event thread and hand every completion to `onTransfer`.
final class USBProbeConnection: @unchecked Sendable {
    // @unchecked: `handle`, `info`, `transfers` are fixed after open; `inFlight` and `streaming`
    // are atomics; the callback only touches those and the transfer it was given.
    static let interfaceNumber: Int32 = 0
    static let bulkEndpoint: UInt8 = 0x81
    static let controlTimeoutMillis: UInt32 = 200

    let handle: OpaquePointer
    let info: ProbeInfo
    let address: USBProbeAddress
    private var transfers: [UnsafeMutablePointer<libusb_transfer>] = []
    private let buffers: [UnsafeMutableRawBufferPointer]
    let transferLength: Int
    let inFlight = Atomic<Int>(0)
    /// While true, a completed transfer is resubmitted at once.
    let streaming = Atomic<Bool>(false)
    /// Called on the event thread for every completed transfer, with its status and bytes.
    var onTransfer: (@Sendable (_ status: libusb_transfer_status, _ bytes: UnsafeRawBufferPointer,
                                _ requested: Int) -> Void)?
    /// Called on the event thread when a resubmission fails (the device is usually gone).
    var onSubmitFailure: (@Sendable (_ code: Int32) -> Void)?

    /// Opens the first device with the IDs (and `serial`, when given) that passes USB-PROBE.md
    /// §1's checks, claims its interface and reads GET_INFO.
    static func open(context: LibUSBContext, vendorID: UInt16, productID: UInt16, serial: String?,
                     transfersInFlight: Int) throws(USBError) -> USBProbeConnection {
        let selector = String(format: "%04x:%04x", vendorID, productID) + (serial.map { " serial \($0)" } ?? "")
        var list: UnsafeMutablePointer<OpaquePointer?>?
        let count = libusb_get_device_list(context.context, &list)
        guard count >= 0, let list else { throw .libusb(operation: "listing USB devices", code: Int32(count)) }
        defer { libusb_free_device_list(list, 1) }
        var seen: [String] = []
        var firstError: USBError?
        for index in 0..<count {
            guard let device = list[index] else { continue }
            var descriptor = libusb_device_descriptor()
            guard libusb_get_device_descriptor(device, &descriptor) == 0 else { continue }
            let address = USBProbeAddress(bus: Int(libusb_get_bus_number(device)), address: Int(libusb_get_device_address(device)))
            seen.append(String(format: "%04x:%04x", descriptor.idVendor, descriptor.idProduct) + " (\(address))")
            guard descriptor.idVendor == vendorID, descriptor.idProduct == productID else { continue }
            do throws(USBError) {
                let connection = try open(device: device, address: address, transfersInFlight: transfersInFlight)
                if let serial, connection.info.serial != serial {
                    seen[seen.count - 1] += " serial \(connection.info.serial)"
                    connection.close(sendStop: false)
                    continue
                }
                return connection
            } catch {
                firstError = firstError ?? error
            }
        }
        throw firstError ?? .notFound(selector: selector, seen: seen)
    }

    private static func open(device: OpaquePointer, address: USBProbeAddress,
                             transfersInFlight: Int) throws(USBError) -> USBProbeConnection {
        try checkDescriptors(device)
        var handle: OpaquePointer?
        let opened = libusb_open(device, &handle)
        guard opened == 0, let handle else { throw .libusb(operation: "opening the probe at \(address)", code: opened) }
        let claimed = libusb_claim_interface(handle, interfaceNumber)
        guard claimed == 0 else {
            libusb_close(handle)
            throw .libusb(operation: "claiming the probe's interface 0", code: claimed)
        }
        do throws(USBError) {
            let bytes = try controlIn(handle, .getInfo, length: ProbeInfo.requestLength)
            let info = try ProbeInfo.decode(bytes)
            return USBProbeConnection(handle: handle, info: info, address: address, transfersInFlight: transfersInFlight)
        } catch {
            libusb_release_interface(handle, interfaceNumber)
            libusb_close(handle)
            throw error
        }
    }

    /// USB-PROBE.md §1: high speed, interface 0 vendor-specific protocol 1, bulk IN 0x81 of 512 bytes.
    private static func checkDescriptors(_ device: OpaquePointer) throws(USBError) {
        let speed = libusb_get_device_speed(device)
        guard speed >= Int32(LIBUSB_SPEED_HIGH.rawValue) else {
            throw .refused("the probe enumerated below high speed (libusb speed \(speed)); a 60 frames/s stream "
                + "needs USB 2.0 high speed: check the cable and the port")
        }
        var config: UnsafeMutablePointer<libusb_config_descriptor>?
        let result = libusb_get_active_config_descriptor(device, &config)
        guard result == 0, let config else { throw .libusb(operation: "reading the probe's configuration", code: result) }
        defer { libusb_free_config_descriptor(config) }
        guard config.pointee.bNumInterfaces >= 1, let interface = config.pointee.interface,
              interface.pointee.num_altsetting >= 1, let setting = interface.pointee.altsetting else {
            throw .refused("the probe's configuration has no interface 0")
        }
        let alt = setting.pointee
        guard alt.bInterfaceClass == 0xFF, alt.bInterfaceSubClass == 0x01, alt.bInterfaceProtocol == 0x01 else {
            throw .refused(String(format: "interface 0 is class %02x/%02x/%02x, a Sono probe's is ff/01/01 (protocol 1)",
                                  alt.bInterfaceClass, alt.bInterfaceSubClass, alt.bInterfaceProtocol))
        }
        let endpoints = UnsafeBufferPointer(start: alt.endpoint, count: Int(alt.bNumEndpoints))
        guard let bulk = endpoints.first(where: { $0.bEndpointAddress == bulkEndpoint }) else {
            throw .refused("interface 0 has no endpoint 0x81")
        }
        guard bulk.bmAttributes & 0x03 == 0x02, bulk.wMaxPacketSize == 512 else {
            throw .refused("endpoint 0x81 is not bulk with 512-byte packets (attributes \(bulk.bmAttributes), "
                + "wMaxPacketSize \(bulk.wMaxPacketSize))")
        }
    }

    private init(handle: OpaquePointer, info: ProbeInfo, address: USBProbeAddress, transfersInFlight: Int) {
        self.handle = handle
        self.info = info
        self.address = address
        transferLength = info.transferLength
        buffers = (0..<transfersInFlight).map { _ in .allocate(byteCount: info.transferLength, alignment: 64) }
        transfers = buffers.compactMap { buffer in
            guard let transfer = libusb_alloc_transfer(0) else { return nil }
            transfer.pointee.dev_handle = handle
            transfer.pointee.endpoint = Self.bulkEndpoint
            transfer.pointee.type = UInt8(LIBUSB_TRANSFER_TYPE_BULK.rawValue)
            transfer.pointee.timeout = 0  // §5.1: streamed transfers have no timeout; the host supervises
            transfer.pointee.buffer = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
            transfer.pointee.length = Int32(info.transferLength)
            transfer.pointee.callback = transferCompleted
            return transfer
        }
    }

    deinit {
        for transfer in transfers { libusb_free_transfer(transfer) }
        for buffer in buffers { buffer.deallocate() }
    }

    // MARK: control requests (supervisor thread only: they wait on the event thread)

    func request(_ request: ProbeRequest, data: [UInt8] = []) throws(USBError) {
        try Self.controlOut(handle, request, data: data)
    }

    func status() throws(USBError) -> ProbeStatus {
        try ProbeStatus.decode(Self.controlIn(handle, .getStatus, length: ProbeStatus.requestLength))
    }

    /// Sends `settings`; a rejected request is reported with the reason GET_STATUS gives.
    func setImaging(_ settings: ProbeImagingSettings) throws(USBError) {
        if let problem = info.problem(with: settings) { throw .refused("imaging settings: \(problem)") }
        try rejectingWithReason(.setImaging) { () throws(USBError) in try request(.setImaging, data: settings.encoded) }
    }

    func startStreaming() throws(USBError) {
        try rejectingWithReason(.startStreaming) { () throws(USBError) in try request(.startStreaming) }
    }

    /// Runs `body`; a STALL (LIBUSB_ERROR_PIPE) becomes `requestRejected` with GET_STATUS's reason.
    private func rejectingWithReason(_ request: ProbeRequest, _ body: () throws(USBError) -> Void) throws(USBError) {
        do throws(USBError) {
            try body()
        } catch .libusb(_, let code) where code == LIBUSB_ERROR_PIPE.rawValue {
            let reason = (try? status()).map(\.reason) ?? "GET_STATUS unreadable"
            throw .requestRejected(request: request.description, reason: reason)
        }
    }

    private static func controlIn(_ handle: OpaquePointer, _ request: ProbeRequest, length: Int) throws(USBError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: length)
        let result = bytes.withUnsafeMutableBufferPointer { buffer in
            libusb_control_transfer(handle, request.requestType, request.rawValue, 0, UInt16(interfaceNumber),
                                    buffer.baseAddress, UInt16(length), controlTimeoutMillis)
        }
        guard result >= 0 else { throw .libusb(operation: "\(request) control request", code: result) }
        return Array(bytes.prefix(Int(result)))
    }

    private static func controlOut(_ handle: OpaquePointer, _ request: ProbeRequest, data: [UInt8]) throws(USBError) {
        var bytes = data
        let result = bytes.withUnsafeMutableBufferPointer { buffer in
            libusb_control_transfer(handle, request.requestType, request.rawValue, 0, UInt16(interfaceNumber),
                                    buffer.baseAddress, UInt16(data.count), controlTimeoutMillis)
        }
        guard result >= 0 else { throw .libusb(operation: "\(request) control request", code: result) }
    }

    func clearHalt() throws(USBError) {
        let result = libusb_clear_halt(handle, Self.bulkEndpoint)
        guard result == 0 else { throw .libusb(operation: "clearing the halt of endpoint 0x81", code: result) }
    }

    // MARK: streaming

    /// Submits every transfer of the pool; the callback resubmits each as it completes.
    func submitAll() throws(USBError) {
        streaming.store(true, ordering: .releasing)
        for transfer in transfers {
            transfer.pointee.user_data = Unmanaged.passUnretained(self).toOpaque()
            inFlight.add(1, ordering: .acquiringAndReleasing)
            let result = libusb_submit_transfer(transfer)
            if result != 0 {
                inFlight.subtract(1, ordering: .acquiringAndReleasing)
                throw .libusb(operation: "submitting a bulk-IN transfer", code: result)
            }
        }
    }

    /// Stops resubmitting and cancels what is in flight; then waits (up to `seconds`) until every
    /// transfer has come back. False if some did not: they must then not be freed.
    func cancelAll(waiting seconds: Double) -> Bool {
        streaming.store(false, ordering: .releasing)
        let deadline = Date(timeIntervalSinceNow: seconds)
        while inFlight.load(ordering: .acquiring) > 0 {
            // Again on every pass: a callback that read `streaming` just before it changed may
            // have put its transfer back in after the previous pass (a transfer not in flight
            // answers LIBUSB_ERROR_NOT_FOUND, harmlessly).
            for transfer in transfers { _ = libusb_cancel_transfer(transfer) }
            if Date() > deadline { return false }
            usleep(2_000)
        }
        return true
    }

    /// Event thread: one transfer came back.
    fileprivate func completed(_ transfer: UnsafeMutablePointer<libusb_transfer>) {
        let status = transfer.pointee.status
        let requested = Int(transfer.pointee.length)
        let actual = max(0, min(Int(transfer.pointee.actual_length), requested))
        onTransfer?(status, UnsafeRawBufferPointer(start: transfer.pointee.buffer, count: actual), requested)
        // Resubmit before counting the transfer out: `cancelAll` must never see 0 while one is
        // about to go back in.
        if streaming.load(ordering: .acquiring), status == LIBUSB_TRANSFER_COMPLETED || status == LIBUSB_TRANSFER_TIMED_OUT
            || status == LIBUSB_TRANSFER_ERROR || status == LIBUSB_TRANSFER_OVERFLOW {
            let result = libusb_submit_transfer(transfer)
            if result == 0 { return }
            onSubmitFailure?(result)
        }
        inFlight.subtract(1, ordering: .acquiringAndReleasing)
    }

    /// Releases the interface (after STOP_STREAMING when the device is still there) and closes.
    func close(sendStop: Bool) {
        if sendStop { try? request(.stopStreaming) }
        libusb_release_interface(handle, Self.interfaceNumber)
        libusb_close(handle)
    }
}

/// libusb's transfer callback: back to the connection the transfer belongs to.
private func transferCompleted(_ transfer: UnsafeMutablePointer<libusb_transfer>?) {
    guard let transfer, let context = transfer.pointee.user_data else { return }
    Unmanaged<USBProbeConnection>.fromOpaque(context).takeUnretainedValue().completed(transfer)
}

/// One-off questions to a probe that is not streaming (`sonoctl probe info`).
public enum USBProbeQuery {
    /// Opens the probe, reads GET_INFO and GET_STATUS, and closes it again.
    public static func describe(vendorID: UInt16 = 0x1209, productID: UInt16 = 0x5310,
                                serial: String? = nil) throws(USBError) -> (info: ProbeInfo, status: ProbeStatus,
                                                                            address: USBProbeAddress) {
        let context = try LibUSBContext()
        defer { context.close() }
        return try context.withEventThreadPaused { () throws(USBError) in
            let link = try USBProbeConnection.open(context: context, vendorID: vendorID, productID: productID,
                                                   serial: serial, transfersInFlight: 1)
            defer { link.close(sendStop: false) }
            return (link.info, try link.status(), link.address)
        }
    }
}
