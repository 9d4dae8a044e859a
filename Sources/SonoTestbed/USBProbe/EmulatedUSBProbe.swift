internal import CUMockdev
import Foundation
public import SonoDevices
import SonoProtocol
import Synchronization

/// The Sono ultrasound probe (firmware-protocol/USB-PROBE.md) emulated on the process's
/// umockdev testbed, for the libusb driver's tests and benchmarks: a sysfs device on bus 2
/// that libusb enumerates as `1209:5310` (high speed, one vendor interface, bulk `0x81`), and a
/// usbfs ioctl handler on its /dev node that answers the URBs libusb submits — the control
/// requests of §2 and the frame stream of §4 — as the firmware would
/// (firmware-protocol/USB-EMULATION.md §2.1).
///
/// The process must run under umockdev's preload (`umockdev-wrapper`); the testbed is the one
/// `EmulatedSerialBench` uses, so serial boards and probes can be plugged side by side.
/// `unplug()` and `replug()` behave like pulling and re-inserting the cable: URBs in flight
/// fail with `LIBUSB_TRANSFER_NO_DEVICE`, libusb's hot-plug monitor sees the "remove" and
/// "add" uevents, and the probe comes back at a new address.
public final class EmulatedUSBProbe: @unchecked Sendable {
    // @unchecked: mutable state lives in `state` (a Mutex); the rest is immutable.

    /// When the probe produces frames.
    public enum Pacing: Sendable {
        /// Every waiting bulk URB gets the next frame at once: throughput benchmarks.
        case asFastAsPossible
        /// Frames are acquired at the configured frame rate from START_STREAMING; a frame due
        /// while no bulk URB waits is dropped by the device (USB-PROBE.md §3.3 frames_dropped).
        case realTime
    }

    /// Fills `pixels` (width × height bytes, row-major) for frame `frameNumber`. Called on
    /// umockdev's worker thread while the probe's lock is held: keep it short, do not call
    /// back into the probe.
    public typealias FrameContent = @Sendable (_ frameNumber: UInt64, _ width: Int, _ height: Int,
                                               _ pixels: UnsafeMutableBufferPointer<UInt8>) -> Void

    /// What the emulated device saw and did, cumulated over plugs.
    public struct Counters: Sendable, Equatable {
        /// Every ioctl on the probe's nodes (also those answered ENODEV after an unplug).
        public var ioctls = 0
        public var submits = 0
        /// REAPURB(NDELAY) that returned a URB.
        public var reaps = 0
        /// REAPURB(NDELAY) with nothing to return: libusb polls on every event-loop turn.
        public var reapsEmpty = 0
        public var discards = 0
        /// Control URBs executed.
        public var controls = 0
        /// Protocol STALLs on endpoint 0 (USB-PROBE.md §2), not bulk halts.
        public var stalls = 0
        public var framesSent = 0
        /// Frames acquired in real-time pacing while no bulk URB was waiting.
        public var framesDroppedByDevice = 0
        /// CLEAR_HALT on endpoint 0x81.
        public var clearHalts = 0
        /// START_STREAMING requests accepted.
        public var starts = 0
        public var unknownIoctls = 0
        /// Last request number answered ENOTTY (0 if none), to name it in a failure message.
        public var lastUnknownIoctl: UInt = 0
        /// `plug` and every `replug`.
        public var plugs = 0

        public init() {}
    }

    public static let vendorID: UInt16 = EmulatedProbeModel.vendorID
    public static let productID: UInt16 = EmulatedProbeModel.productID

    public let serial: String
    public let pacing: Pacing
    /// The device's sysfs path; it stays the same across replugs (same port), as on hardware.
    public let syspath: String

    private let testbed: ProcessTestbed
    let context: ProbeContext
    let state: Mutex<ProbeDeviceState>

    /// Ports on the emulated root hub 2 (2-1, 2-2, …): one per probe, kept across replugs.
    private static let nextPort = Mutex<Int>(1)
    /// Addresses on bus 2. Never reused, so every (re)plug gets a new address and /dev node,
    /// as on hardware (the host controller assigns the next free address).
    private static let nextAddress = Mutex<Int>(2)

    /// Plugs a probe into the testbed: libusb enumerates it from now on. `content` fills each
    /// frame's pixels (default: the C emulator's test pattern, (x + y + n) mod 256).
    /// `announcedMaxFrameBytes`, when given, replaces GET_INFO's `max_frame_bytes` (a faulty or
    /// hostile device, for the host's bounds checks).
    public static func plug(serial: String = "PRB-0001", pacing: Pacing = .asFastAsPossible,
                            content: FrameContent? = nil,
                            announcedMaxFrameBytes: UInt32? = nil) throws(BenchError) -> EmulatedUSBProbe {
        if let problem = EmulatedProbeModel.problem(withSerial: serial) { throw .invalidArgument(problem) }
        let testbed = try ProcessTestbed.shared()
        let port = nextPort.withLock { next in
            defer { next += 1 }
            return next
        }
        var info = EmulatedProbeModel.info(serial: serial)
        if let announcedMaxFrameBytes { LittleEndian.store(announcedMaxFrameBytes, into: &info, at: 28) }
        let probe = EmulatedUSBProbe(serial: serial, pacing: pacing, content: content, info: info, port: port, testbed: testbed)
        try testbed.locked { bed throws(BenchError) in try probe.arrive(bed) }
        return probe
    }

    private init(serial: String, pacing: Pacing, content: FrameContent?, info: [UInt8], port: Int, testbed: ProcessTestbed) {
        self.serial = serial
        self.pacing = pacing
        self.testbed = testbed
        syspath = EmulatedProbeModel.syspath(port: port)
        context = ProbeContext(serial: serial, pacing: pacing, maker: ProbeFrameMaker(content: content),
                               info: info)
        state = Mutex(ProbeDeviceState())
    }

    /// USB disconnect, as the C emulator does it (USB-EMULATION.md §3): every URB in flight
    /// completes with -ENODEV (libusb: `LIBUSB_TRANSFER_NO_DEVICE`; the emulated node never
    /// reports POLLERR, so libusb would not fail them itself), every later ioctl on the node
    /// fails with ENODEV, and the device leaves sysfs after a "remove" uevent (which
    /// `umockdev_testbed_remove_device` does not send) for libusb's hot-plug monitor.
    /// Does nothing when the probe is already unplugged.
    public func unplug() {
        testbed.locked { bed in
            let wasPlugged = state.withLock { state in state.disconnect() }
            guard wasPlugged else { return }
            // The uevent needs the device's properties (DEVNAME), so it goes before the removal.
            umockdev_testbed_uevent(bed, syspath, "remove")
            umockdev_testbed_remove_device(bed, syspath)
        }
    }

    /// The probe arrives again (unplugged first if it is not): same serial and port, a new
    /// address and /dev node, the device state back to idle with default settings (it was
    /// power-cycled; counters go on), and an "add" uevent (umockdev sends it when the record
    /// is added) so libusb's hot-plug monitor reports `DEVICE_ARRIVED`.
    public func replug() throws(BenchError) {
        unplug()
        try testbed.locked { bed throws(BenchError) in try arrive(bed) }
    }

    /// The next frame sent has a wrong CRC (one pixel bit flipped after the CRC was computed),
    /// as a transfer corrupted on the way.
    public func corruptNextFrame() {
        state.withLock { $0.corruptNext = true }
    }

    /// The next frame is sent short, header and half the pixels (a lost tail): the host sees
    /// a short transfer that ends the frame early (`truncated`, USB-PROBE.md §4.3).
    /// The acquisition stops without a fault (no frames, the endpoint stays up) until the host
    /// sends START_STREAMING again: what the host's stream supervision (USB-PROBE.md §5.1) is for.
    public func hang() {
        state.withLock { $0.hung = true }
    }

    public func truncateNextFrame() {
        state.withLock { $0.truncateNext = true }
    }

    /// A functional STALL of the bulk endpoint (USB-PROBE.md §5.2), as for a beamformer fault
    /// (`lastError` 6) or over-temperature (7): the waiting bulk URBs and every later one
    /// complete with -EPIPE (`LIBUSB_TRANSFER_STALL`) until the host clears the halt
    /// (CLEAR_HALT on 0x81, counted); the probe is in state fault (GET_STATUS state 2 with
    /// `lastError`) and stops streaming; START_STREAMING is answered with a protocol STALL,
    /// last_error 5 (wrong_state), `faultedStarts` more times, then accepted.
    public func haltBulkEndpoint(lastError: UInt8 = 6, faultedStarts: Int = 0) {
        state.withLock { $0.halt(lastError: lastError, faultedStarts: max(0, faultedStarts)) }
    }

    public var counters: Counters { state.withLock { $0.counters } }

    /// The settings in effect (after the last accepted SET_IMAGING, or the defaults).
    public var imaging: Imaging { state.withLock { $0.imaging } }

    public var isStreaming: Bool { state.withLock { $0.streaming } }

    /// False between `unplug()` and `replug()`.
    public var isPlugged: Bool { state.withLock { $0.current.map { !$0.unplugged } ?? false } }

    /// The current /dev node, `/dev/bus/usb/002/<address>` (after an unplug: the last one).
    public var devnode: String { EmulatedProbeModel.devnode(deviceAddress: deviceAddress) }

    /// The current USB address (libusb_get_device_address); new at every replug.
    public var deviceAddress: Int { state.withLock { $0.current?.address ?? 0 } }

    public var busNumber: Int { EmulatedProbeModel.bus }

    // MARK: plugging

    /// Adds the device at a new address and attaches a usbfs handler to its node; the caller
    /// holds the testbed's lock.
    private func arrive(_ bed: UnsafeMutablePointer<UMockdevTestbed>) throws(BenchError) {
        let address = Self.nextAddress.withLock { next in
            defer { next += 1 }
            return next
        }
        let devnode = EmulatedProbeModel.devnode(deviceAddress: address)
        // The link (this plug's URB queues) exists before the node does, so the first ioctl
        // finds it; the device is reset to power-on state.
        let link = state.withLock { state in state.connect(address: address, now: monotonicMicros()) }
        guard let handler = umockdev_ioctl_base_new() else { throw .umockdev("cannot create an ioctl handler") }
        let node = USBFSNode(probe: self, link: link)
        let callback: @convention(c) (UnsafeMutablePointer<UMockdevIoctlBase>?, UnsafeMutablePointer<UMockdevIoctlClient>?,
                                      gpointer?) -> gboolean = handleProbeIoctl
        g_signal_connect_data(UnsafeMutableRawPointer(handler), "handle-ioctl", unsafeBitCast(callback, to: GCallback.self),
                              Unmanaged.passRetained(node).toOpaque(),
                              { data, _ in if let data { Unmanaged<USBFSNode>.fromOpaque(data).release() } },
                              GConnectFlags(rawValue: 0))
        var error: UnsafeMutablePointer<GError>?
        // The handler goes on the node before the device appears: add_from_string ends with the
        // "add" uevent (umockdev 0.17.16 sends it after writing the attributes and the node),
        // and a host that opens the device at once must find the handler there.
        guard umockdev_testbed_attach_ioctl(bed, devnode, handler, &error) != 0 else {
            throw .umockdev("cannot attach the usbfs handler to \(devnode): \(takeMessage(error))")
        }
        // The handler (and with it the node's context) is never released: the old node keeps
        // answering ENODEV to a host that still has it open after an unplug.
        let record = EmulatedProbeModel.sysfsRecord(syspath: syspath, deviceAddress: address, serial: serial)
        guard umockdev_testbed_add_from_string(bed, record, &error) != 0 else {
            throw .umockdev("cannot add the probe's sysfs record at \(syspath): \(takeMessage(error))")
        }
    }

    // MARK: the usbfs handler

    /// One ioctl on one of the probe's nodes, on umockdev's worker thread.
    fileprivate func handle(_ client: UnsafeMutablePointer<UMockdevIoctlClient>, link: Int) {
        let request = UInt(umockdev_ioctl_client_get_request(client))
        guard let argument = umockdev_ioctl_client_get_arg(client) else {
            umockdev_ioctl_client_complete(client, -1, EFAULT)
            return
        }
        let now = monotonicMicros()
        let context = self.context
        let (result, code) = state.withLock { state in
            state.ioctl(request: request, argument: argument, link: link, now: now, context: context)
        }
        umockdev_ioctl_client_complete(client, result, code)
    }
}

/// What the probe's ioctl handler needs besides its mutable state.
struct ProbeContext: Sendable {
    let serial: String
    let pacing: EmulatedUSBProbe.Pacing
    let maker: ProbeFrameMaker
    /// GET_INFO's answer, made once.
    let info: [UInt8]
}

/// The ioctl handler's context for one plug of a probe: which link (plug) the node belongs to.
private final class USBFSNode: Sendable {
    let probe: EmulatedUSBProbe
    let link: Int

    init(probe: EmulatedUSBProbe, link: Int) {
        self.probe = probe
        self.link = link
    }
}

private func handleProbeIoctl(_ handler: UnsafeMutablePointer<UMockdevIoctlBase>?,
                              _ client: UnsafeMutablePointer<UMockdevIoctlClient>?, _ context: gpointer?) -> gboolean {
    ProcessTestbed.promoteRelay()
    guard let client, let context else { return 0 }
    let node = Unmanaged<USBFSNode>.fromOpaque(context).takeUnretainedValue()
    node.probe.handle(client, link: node.link)
    return 1
}

/// Frees a GError, returning its message.
func takeMessage(_ error: UnsafeMutablePointer<GError>?) -> String {
    guard let error else { return "no reason given" }
    defer { g_error_free(error) }
    return error.pointee.message.map { String(cString: $0) } ?? "no reason given"
}

/// CLOCK_MONOTONIC in microseconds: the emulated device's clock.
func monotonicMicros() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
}
