internal import CLibUSB
import Foundation
public import SonoCore
import SonoProtocol
import SonoSystem
import Synchronization

/// Which probe to use and how to image.
public struct USBProbeConfiguration: Sendable, Equatable {
    public var vendorID: UInt16
    public var productID: UInt16
    /// Only the probe with this serial (GET_INFO's); nil: the first probe with the IDs.
    public var serial: String?
    public var imaging: ProbeImagingSettings
    /// Full sector angle the images are scan-converted to, degrees (the probe's `sector_cdeg`).
    public var sectorDeg: Double
    /// Bulk-IN transfers kept in flight (USB-PROBE.md §4.1: at least 4, 8 recommended).
    public var transfersInFlight: Int
    /// Frames held for a slow reader before the oldest is overwritten.
    public var bufferedFrames: Int
    /// How often a missing probe is looked for, seconds (hot-plug events look sooner).
    public var reconnectInterval: Double

    public init(vendorID: UInt16 = 0x1209, productID: UInt16 = 0x5310, serial: String? = nil,
                imaging: ProbeImagingSettings = ProbeImagingSettings(), sectorDeg: Double = 80,
                transfersInFlight: Int = 8, bufferedFrames: Int = 4, reconnectInterval: Double = 0.25) {
        self.vendorID = vendorID
        self.productID = productID
        self.serial = serial
        self.imaging = imaging
        self.sectorDeg = sectorDeg
        self.transfersInFlight = transfersInFlight
        self.bufferedFrames = bufferedFrames
        self.reconnectInterval = reconnectInterval
    }

    public var selector: String {
        String(format: "usb:%04x:%04x", vendorID, productID) + (serial.map { " serial \($0)" } ?? "")
    }
}

/// What happened to the probe's link; delivered in order on the source's supervisor thread.
public enum USBProbeEvent: Sendable, Equatable, CustomStringConvertible {
    case connected(serial: String, firmware: String, address: USBProbeAddress)
    case streaming(ProbeImagingSettings)
    /// Looking for the probe failed; sent when the reason changes, not on every retry.
    case openFailed(String)
    /// No valid frame for 3 frame periods + 50 ms (USB-PROBE.md §5.1).
    case streamStalled(milliseconds: Int)
    /// Silent for a second: the stream was restarted; the probe's status before the restart.
    case streamRestarted(ProbeStatus?)
    /// The probe halted its frame endpoint (§5.2); its status says why.
    case faulted(ProbeStatus?)
    /// The halt was cleared and frames flow again.
    case recovered
    /// Unplugged or reset: no frames until it is back.
    case disconnected(String)

    public var description: String {
        switch self {
        case .connected(let serial, let firmware, let address):
            "probe \(serial) connected (firmware \(firmware), \(address))"
        case .streaming(let s):
            "streaming \(s.width)×\(s.height) at \(s.framesPerSecond) frames/s, depth \(s.depthMM) mm, "
                + "gain \(Double(s.gainCentiDB) / 100) dB"
        case .openFailed(let reason): reason
        case .streamStalled(let milliseconds): "no frame from the probe for \(milliseconds) ms"
        case .streamRestarted(let status): "stream restarted" + (status.map { " (probe state \($0.state), \($0.reason))" } ?? "")
        case .faulted(let status): "probe fault: " + (status?.reason ?? "status unreadable") + "; recovering"
        case .recovered: "probe fault cleared; streaming again"
        case .disconnected(let reason): "probe disconnected: \(reason)"
        }
    }
}

/// Everything the driver counted since it started.
public struct USBProbeStatistics: Sendable, Equatable {
    public var receiver = ProbeReceiverCounters()
    /// Frames overwritten because the reader was a whole buffer behind.
    public var hostOverruns: UInt64 = 0
    public var geometryMismatches: UInt64 = 0
    public var connects: UInt64 = 0
    public var disconnects: UInt64 = 0
    public var streamStalls: UInt64 = 0
    public var streamRestarts: UInt64 = 0
    /// Endpoint halts with a fault cause (`last_error` ≠ 0), and halts cleared without one.
    public var faults: UInt64 = 0
    public var stallsRecovered: UInt64 = 0
    public var submitFailures: UInt64 = 0
    public var link = "not opened yet"

    public init() {}
}

/// The USB ultrasound probe as a frame source (firmware-protocol/USB-PROBE.md): opens the probe
/// by VID:PID (and serial), sets imaging, streams frames through a pool of asynchronous bulk-IN
/// transfers, validates every frame, and recovers on its own — a silent stream is restarted, a
/// halted endpoint cleared, an unplugged probe re-opened when it is back (hot-plug events where
/// libusb has them, polling as well). While the probe is gone or faulted, `nextFrame` throws
/// (`.disconnected`, `.failed`) instead of delivering frames; the daemon's interlocks treat the
/// missing frames as stale.
///
/// Frame numbers are the host's: they keep increasing across restarts and replugs (a device
/// stream starts at 0 each time), so gaps always mean lost frames. Timestamps are
/// CLOCK_MONOTONIC µs of acquisition: the device's clock mapped onto the host's.
public final class USBProbeSource: ProbeFrameSource, @unchecked Sendable {
    // @unchecked: the intake and the inbox guard themselves, the statistics are guarded by
    // `statisticsLock`; the rest is fixed after init or used by the supervisor thread alone.
    public let format: ProbeFrameFormat
    public let configuration: USBProbeConfiguration
    /// libusb and its hot-plug registration, from `start` to `close`.
    private var started: (context: LibUSBContext, hotplug: HotplugWatch?)?
    private let intake: ProbeFrameIntake
    private var mailbox: FrameMailbox { intake.mailbox }
    private let onEvent: @Sendable (USBProbeEvent) -> Void
    private let closing = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let inbox = Inbox()

    private let statisticsLock = NSLock()
    private var statisticsStore = USBProbeStatistics()
    /// The last SET_IMAGING's settings_seq (supervisor thread only).
    private var settingsSequence: UInt16 = 0
    /// Numbers the connections (supervisor thread only), so that late messages about a closed one
    /// cannot act on its successor.
    private var generation: UInt64 = 0
    private let connectedInfo = Mutex<(info: ProbeInfo, address: USBProbeAddress)?>(nil)

    /// Checks the configuration; `start` starts the driver.
    public init(configuration: USBProbeConfiguration,
                onEvent: @escaping @Sendable (USBProbeEvent) -> Void = { _ in }) throws(USBError) {
        guard configuration.transfersInFlight >= 1, configuration.bufferedFrames >= 1 else {
            throw .refused("transfersInFlight and bufferedFrames must be at least 1")
        }
        self.configuration = configuration
        let imaging = configuration.imaging
        format = ProbeFrameFormat(width: imaging.width, height: imaging.height, depthMM: Double(imaging.depthMM),
                                  sectorDeg: configuration.sectorDeg, framesPerSecond: imaging.framesPerSecond)
        intake = ProbeFrameIntake(width: imaging.width, height: imaging.height, bufferedFrames: configuration.bufferedFrames)
        self.onEvent = onEvent
    }

    /// Starts libusb and the driver's supervisor, which opens the probe and keeps it streaming;
    /// the probe need not be plugged in yet (see `waitUntilStreaming`). Once only.
    public func start() throws(USBError) {
        guard started == nil, !closing.load(ordering: .acquiring) else { return }
        let context = try LibUSBContext()
        let inbox = self.inbox
        let hotplug = HotplugWatch(context: context, vendorID: configuration.vendorID, productID: configuration.productID) {
            inbox.post($0 == .arrived ? .hotplugArrived : .hotplugLeft)
        }
        started = (context, hotplug)
        let thread = Thread { [self] in
            ThreadScheduling.nameCurrentThread("sono-usb-probe")
            supervise(context)
            finished.signal()
        }
        thread.start()
    }

    /// Stops streaming (STOP_STREAMING when the probe is there), releases the probe and libusb.
    /// Call it when done: once started, the driver's threads keep the source alive until then.
    public func close() {
        guard !closing.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if let (context, hotplug) = started {
            inbox.post(.close)
            finished.wait()
            hotplug?.deregister()
            context.close()
        }
        started = nil
        mailbox.setLink(.closed)
    }

    public func nextFrame(into pixels: UnsafeMutableBufferPointer<UInt8>,
                          timeoutMicros: UInt64) throws(FrameSourceError) -> ProbeFrameInfo? {
        try intake.take(into: pixels, timeoutMicros: timeoutMicros)
    }

    /// Waits until frames flow; throws the reason they do not (the last open error) after `seconds`.
    public func waitUntilStreaming(seconds: Double) throws(USBError) {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while Date() < deadline {
            if case .streaming = mailbox.state { return }
            usleep(5_000)
        }
        switch mailbox.state {
        case .streaming: return
        case .disconnected(let reason), .faulted(let reason): throw .refused(reason)
        case .closed: throw .refused("the probe's frame source is closed")
        }
    }

    /// The probe's GET_INFO while connected.
    public var info: ProbeInfo? { connectedInfo.withLock { $0?.info } }

    public var statistics: USBProbeStatistics {
        var snapshot = statisticsLock.withLock { statisticsStore }
        snapshot.receiver = intake.counters
        snapshot.hostOverruns = mailbox.hostOverruns
        snapshot.geometryMismatches = mailbox.geometryMismatches
        snapshot.link = switch mailbox.state {
        case .streaming: "streaming"
        case .disconnected(let reason): "disconnected: \(reason)"
        case .faulted(let reason): "faulted: \(reason)"
        case .closed: "closed"
        }
        return snapshot
    }

    private func updateStatistics(_ change: (inout USBProbeStatistics) -> Void) {
        statisticsLock.withLock { change(&statisticsStore) }
    }

    // MARK: the event thread: one completed transfer

    /// `generation` names the connection the transfer belongs to: messages about an earlier
    /// connection are ignored by the supervisor.
    private func transferCompleted(_ status: libusb_transfer_status, _ bytes: UnsafeRawBufferPointer, _ requested: Int,
                                   generation: UInt64) {
        switch status {
        case LIBUSB_TRANSFER_COMPLETED:
            intake.completed(bytes, requested: requested, arrivalMicros: MonotonicClock.nowMicros())
        case LIBUSB_TRANSFER_STALL:
            intake.failed()
            inbox.post(.halted(generation))
        case LIBUSB_TRANSFER_NO_DEVICE:
            inbox.post(.gone(generation, "a transfer ended with LIBUSB_TRANSFER_NO_DEVICE"))
        case LIBUSB_TRANSFER_CANCELLED:
            break
        default:  // timed out, error, overflow: the frame is lost, the stream goes on
            intake.failed()
        }
    }

    // MARK: the supervisor thread

    private func supervise(_ context: LibUSBContext) {
        var connection: USBProbeConnection?
        var lastOpenError: String?
        var stallReported = false
        var lastRestart: UInt64 = 0
        var streamStarted: UInt64 = 0
        let period = 1e6 / max(configuration.imaging.framesPerSecond, 1)
        let stallMicros = UInt64(3 * period) + 50_000

        while !closing.load(ordering: .acquiring) {
            guard let link = connection else {
                do throws(USBError) {
                    connection = try connect(context)
                    lastOpenError = nil
                    stallReported = false
                    streamStarted = MonotonicClock.nowMicros()
                    lastRestart = streamStarted
                } catch {
                    let message = error.description
                    mailbox.setLink(.disconnected(message))
                    if message != lastOpenError {
                        emit(.openFailed(message))
                        lastOpenError = message
                    }
                    // A hot-plug arrival (or anything else) wakes the wait early.
                    if case .close = inbox.next(waiting: configuration.reconnectInterval) { break }
                }
                continue
            }

            let message = inbox.next(waiting: 0.02)
            if let about = message?.generation, about != generation { continue }  // about an earlier connection
            switch message {
            case .close?: break
            case .gone(_, let reason)?:
                disconnect(link, reason: reason)
                connection = nil
                continue
            case .hotplugLeft?:
                if !isPresent(link.address, context) {
                    disconnect(link, reason: "the probe left the bus (hot-plug)")
                    connection = nil
                    continue
                }
            case .halted?:
                if let failure = recoverFromHalt(link) {
                    disconnect(link, reason: failure)
                    connection = nil
                    continue
                }
                streamStarted = MonotonicClock.nowMicros()
                lastRestart = streamStarted
            case .submitFailed(_, let code)?:
                updateStatistics { $0.submitFailures += 1 }
                if code == LIBUSB_ERROR_NO_DEVICE.rawValue {
                    disconnect(link, reason: "resubmitting a transfer: LIBUSB_ERROR_NO_DEVICE")
                    connection = nil
                    continue
                }
            case .hotplugArrived?, nil:
                break
            }

            // §5.1: a silent stream is reported, and after a second restarted.
            let now = MonotonicClock.nowMicros()
            let silentSince = max(mailbox.lastFrameArrival, streamStarted)
            let silent = now > silentSince ? now - silentSince : 0
            if silent > stallMicros {
                if !stallReported {
                    stallReported = true
                    updateStatistics { $0.streamStalls += 1 }
                    emit(.streamStalled(milliseconds: Int(silent / 1000)))
                }
                if silent > 1_000_000, now - lastRestart > 1_000_000 {
                    lastRestart = now
                    restart(link)
                }
            } else {
                stallReported = false
            }
        }
        if let connection { teardown(connection, deviceGone: false) }
    }

    /// Opens the probe, sets imaging and starts the stream, with the event thread paused so the
    /// requests go out and are answered strictly in order.
    private func connect(_ context: LibUSBContext) throws(USBError) -> USBProbeConnection {
        try context.withEventThreadPaused { () throws(USBError) -> USBProbeConnection in
            let link = try USBProbeConnection.open(context: context, vendorID: configuration.vendorID,
                                                   productID: configuration.productID, serial: configuration.serial,
                                                   transfersInFlight: configuration.transfersInFlight)
            do throws(USBError) {
                // A new settings_seq per SET_IMAGING (USB-PROBE.md §3.2): 1 for the first.
                var imaging = configuration.imaging
                settingsSequence &+= 1
                imaging.sequence = settingsSequence
                try link.setImaging(imaging)
                generation += 1
                let generation = self.generation
                link.onTransfer = { [unowned self] status, bytes, requested in
                    transferCompleted(status, bytes, requested, generation: generation)
                }
                let inbox = self.inbox
                link.onSubmitFailure = { inbox.post(.submitFailed(generation, $0)) }
                intake.start(maxFrameBytes: link.info.maxFrameBytes)
                // Transfers wait before the stream starts, so the first frame finds one (§4.1).
                try link.submitAll()
                // Streaming before START_STREAMING: the first frame must find the mailbox open
                // (a failure below sets the link back to disconnected).
                mailbox.setLink(.streaming)
                try link.startStreaming()
            } catch {
                teardown(link, deviceGone: error.isDisconnect)
                throw error
            }
            connectedInfo.withLock { $0 = (link.info, link.address) }
            updateStatistics { $0.connects += 1 }
            emit(.connected(serial: link.info.serial, firmware: link.info.firmwareVersion, address: link.address))
            emit(.streaming(configuration.imaging))
            return link
        }
    }

    /// The probe is gone: drop what is queued, wait for its transfers, close it.
    private func disconnect(_ link: USBProbeConnection, reason: String) {
        mailbox.setLink(.disconnected(reason))
        connectedInfo.withLock { $0 = nil }
        updateStatistics { $0.disconnects += 1 }
        teardown(link, deviceGone: true)
        emit(.disconnected(reason))
    }

    private func teardown(_ link: USBProbeConnection, deviceGone: Bool) {
        guard link.cancelAll(waiting: 2) else {
            // Transfers the kernel still holds must not be freed: the connection is left to leak
            // rather than have its buffers written after free.
            _ = Unmanaged.passRetained(link)
            return
        }
        link.onTransfer = nil
        link.onSubmitFailure = nil
        link.close(sendStop: !deviceGone)
    }

    /// USB-PROBE.md §5.1: read the status, STOP and START again; the receiver starts over.
    private func restart(_ link: USBProbeConnection) {
        let status = try? link.status()
        try? link.request(.stopStreaming)
        intake.restartStream()
        do throws(USBError) {
            try link.startStreaming()
            updateStatistics { $0.streamRestarts += 1 }
            emit(.streamRestarted(status))
        } catch {
            if error.isDisconnect { inbox.post(.gone(generation, "restarting the stream: \(error)")) }
            else if status?.state == .fault { inbox.post(.halted(generation)) }
        }
    }

    /// USB-PROBE.md §5.2. Returns why recovery failed (the probe went away, or would not clear),
    /// nil when frames flow again.
    private func recoverFromHalt(_ link: USBProbeConnection) -> String? {
        mailbox.setLink(.faulted("the probe halted its frame endpoint"))
        guard link.cancelAll(waiting: 2) else { return "its transfers did not come back after the halt" }
        // Every transfer in flight may have reported the same halt: one recovery answers them all.
        let generation = self.generation
        inbox.discard { if case .halted(let about) = $0 { about == generation } else { false } }
        let status = try? link.status()
        let cause = status.map { $0.lastError != 0 } ?? true
        if cause { updateStatistics { $0.faults += 1 } }
        mailbox.setLink(.faulted("probe fault: \(status?.reason ?? "status unreadable"); recovering"))
        emit(.faulted(status))
        do throws(USBError) {
            try link.clearHalt()
            try link.submitAll()
            while true {
                intake.restartStream()
                do throws(USBError) {
                    mailbox.setLink(.streaming)  // open before the first frame can arrive
                    try link.startStreaming()
                    break
                } catch .requestRejected(_, let reason) {
                    // Still faulted: retry every second (§5.2 step 4) unless closing or unplugged.
                    mailbox.setLink(.faulted("probe fault: \(reason); retrying START_STREAMING every second"))
                    switch inbox.next(waiting: 1) {
                    case .close?: return "closing"
                    case .gone(let about, let reason)? where about == generation: return reason
                    default: continue
                    }
                }
            }
        } catch {
            return "recovering from the halt: \(error)"
        }
        if !cause { updateStatistics { $0.stallsRecovered += 1 } }
        mailbox.setLink(.streaming)
        emit(.recovered)
        return nil
    }

    /// Whether a device is still at `address` (after a hot-plug "left", which may be another device's).
    private func isPresent(_ address: USBProbeAddress, _ context: LibUSBContext) -> Bool {
        var list: UnsafeMutablePointer<OpaquePointer?>?
        let count = libusb_get_device_list(context.context, &list)
        guard count >= 0, let list else { return false }
        defer { libusb_free_device_list(list, 1) }
        for index in 0..<count {
            guard let device = list[index] else { continue }
            if Int(libusb_get_bus_number(device)) == address.bus, Int(libusb_get_device_address(device)) == address.address {
                return true
            }
        }
        return false
    }

    private func emit(_ event: USBProbeEvent) { onEvent(event) }
}

/// Messages to the supervisor thread from libusb's event thread and from `close`.
private final class Inbox: @unchecked Sendable {
    // @unchecked: `messages` is touched only with `condition` locked.
    enum Message: Sendable {
        case halted(UInt64)
        case gone(UInt64, String)
        case submitFailed(UInt64, Int32)
        case hotplugArrived
        case hotplugLeft
        case close

        /// The connection a message is about; nil for messages about no connection.
        var generation: UInt64? {
            switch self {
            case .halted(let generation), .gone(let generation, _), .submitFailed(let generation, _): generation
            case .hotplugArrived, .hotplugLeft, .close: nil
            }
        }
    }

    private let condition = NSCondition()
    private var messages: [Message] = []

    init() { messages.reserveCapacity(16) }

    func post(_ message: Message) {
        condition.lock()
        messages.append(message)
        condition.signal()
        condition.unlock()
    }

    func discard(where matches: (Message) -> Bool) {
        condition.lock()
        messages.removeAll(where: matches)
        condition.unlock()
    }

    /// The oldest message, waiting up to `seconds`; a pending `close` comes first.
    func next(waiting seconds: Double) -> Message? {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: seconds)
        while messages.isEmpty {
            if !condition.wait(until: deadline) { return nil }
        }
        if messages.contains(where: { if case .close = $0 { true } else { false } }) { return .close }
        return messages.removeFirst()
    }
}
