internal import CUMockdev
import Foundation
import SonoDevices
import SonoProtocol

/// One URB the host submitted, held until it reaps it. The handler works on umockdev's local
/// copies of the client's `struct usbdevfs_urb` and of its buffer (`umockdev_ioctl_data_resolve`);
/// what it writes into them goes back to the client when the reap completes: umockdev 0.17
/// compares each resolved block with what it read from the client and writes back the ones that
/// changed (so a frame is made directly in the URB's buffer copy, without another copy).
struct SubmittedURB: @unchecked Sendable {
    // @unchecked: the umockdev data is only touched under the probe's lock.
    /// +1 reference each, released when the URB is reaped (or dropped).
    let urb: UnsafeMutablePointer<UMockdevIoctlData>
    let buffer: UnsafeMutablePointer<UMockdevIoctlData>?
    let bufferLength: Int
    var status: Int32 = 0
    var actualLength: Int32 = 0

    /// The URB's address in the client: what DISCARDURB names it by.
    var clientAddress: UInt { UInt(urb.pointee.client_addr) }

    /// The local copy of the transfer buffer (empty for a zero-length URB).
    var bytes: UnsafeMutableRawBufferPointer {
        guard let buffer, let data = buffer.pointee.data else { return UnsafeMutableRawBufferPointer(start: nil, count: 0) }
        return UnsafeMutableRawBufferPointer(start: data, count: Int(buffer.pointee.data_len))
    }

    func release() {
        if let buffer { g_object_unref(UnsafeMutableRawPointer(buffer)) }
        g_object_unref(UnsafeMutableRawPointer(urb))
    }

    /// Writes status and actual_length into the URB for the client.
    func writeResult() {
        guard let data = urb.pointee.data else { return }
        let raw = UnsafeMutableRawPointer(data)
        raw.storeBytes(of: status, toByteOffset: SONO_USBDEVFS_URB_STATUS_OFFSET, as: Int32.self)
        raw.storeBytes(of: actualLength, toByteOffset: SONO_USBDEVFS_URB_ACTUAL_LENGTH_OFFSET, as: Int32.self)
    }
}

/// One plug of the probe: its address and its URB queues. A link stays after an unplug, so
/// the old node answers its leftover reaps and then ENODEV, while a replugged device has a
/// new link.
struct ProbeLink {
    let address: Int
    var unplugged = false
    /// Bulk-IN URBs waiting for a frame, oldest first.
    var waiting: [SubmittedURB] = []
    /// Completed URBs in completion order.
    var reapable: [SubmittedURB] = []

    init(address: Int) {
        self.address = address
        // Enough for any in-flight pattern a host uses, so the queues never grow per frame.
        waiting.reserveCapacity(64)
        reapable.reserveCapacity(64)
    }
}

/// The probe's state (USB-PROBE.md §3.3 and §5.2) and its usbfs semantics (kernel
/// drivers/usb/core/devio.c as libusb's linux_usbfs.c relies on them). Always accessed under
/// the probe's lock: the ioctl handler runs on umockdev's worker thread, the test's calls on
/// the test's.
struct ProbeDeviceState: @unchecked Sendable {
    // @unchecked: its URBs point to umockdev data; the state is only used under the probe's lock.
    var links: [ProbeLink] = []
    var counters = EmulatedUSBProbe.Counters()

    // The device (reset at every plug, as a power-on).
    var imaging = EmulatedUSBProbe.Imaging.emulatorDefaults
    var streaming = false
    /// State fault (GET_STATUS state 2): set by a bulk halt, left by an accepted START_STREAMING.
    var fault = false
    /// Endpoint 0x81 halted until CLEAR_HALT.
    var halted = false
    var faultedStartsLeft = 0
    var lastError: UInt8 = 0
    var bootMicros: UInt64 = 0

    // The stream since START_STREAMING.
    var nextFrame: UInt64 = 0
    var framesAcquired: UInt64 = 0
    var framesSent: UInt64 = 0
    var framesDropped: UInt32 = 0
    /// Real-time schedule: frame n is due at origin + (n − base) frame periods (rebased when
    /// SET_IMAGING changes the rate while streaming).
    var scheduleOriginMicros: UInt64 = 0
    var scheduleBase: UInt64 = 0
    /// Flags the next sent frame carries: settings_changed, device_dropped.
    var pendingFlags: ProbeFrameHeader.Flags = []
    var corruptNext = false
    var truncateNext = false
    /// The acquisition hangs without a fault: no frames, endpoint up, until the next START_STREAMING.
    var hung = false

    var current: ProbeLink? { links.last }

    // MARK: plugging (called by EmulatedUSBProbe)

    /// A new plug at `address`: returns its link index; the device starts from power-on.
    mutating func connect(address: Int, now: UInt64) -> Int {
        links.append(ProbeLink(address: address))
        imaging = .emulatorDefaults
        streaming = false
        fault = false
        halted = false
        faultedStartsLeft = 0
        lastError = 0
        bootMicros = now
        nextFrame = 0
        framesAcquired = 0
        framesSent = 0
        framesDropped = 0
        pendingFlags = []
        corruptNext = false
        truncateNext = false
        hung = false
        counters.plugs += 1
        return links.count - 1
    }

    /// Unplug: the current link's waiting URBs complete with -ENODEV (as devio.c reports URBs
    /// killed by a disconnect). False if it was already unplugged.
    mutating func disconnect() -> Bool {
        guard let index = links.indices.last, !links[index].unplugged else { return false }
        links[index].unplugged = true
        streaming = false
        completeWaiting(link: index, status: -ENODEV)
        return true
    }

    mutating func halt(lastError error: UInt8, faultedStarts: Int) {
        halted = true
        fault = true
        streaming = false
        lastError = error
        faultedStartsLeft = faultedStarts
        if let index = links.indices.last { completeWaiting(link: index, status: -EPIPE) }
    }

    private mutating func completeWaiting(link index: Int, status: Int32) {
        for var urb in links[index].waiting {
            urb.status = status
            urb.actualLength = 0
            links[index].reapable.append(urb)
        }
        links[index].waiting.removeAll(keepingCapacity: true)
    }

    // MARK: ioctls

    /// Answers one ioctl on link `link`'s node: returns the ioctl's result and errno.
    mutating func ioctl(request: UInt, argument: UnsafeMutablePointer<UMockdevIoctlData>, link: Int, now: UInt64,
                        context: ProbeContext) -> (Int, Int32) {
        counters.ioctls += 1
        let isReap = request == SONO_USBDEVFS_REAPURBNDELAY || request == SONO_USBDEVFS_REAPURB
        guard links.indices.contains(link) else { return (-1, ENODEV) }
        if links[link].unplugged {
            return isReap ? reap(argument: argument, link: link) : (-1, ENODEV)
        }
        // Frames that came due since the last ioctl (libusb reaps on every event-loop turn).
        produceFrames(link: link, now: now, context: context)
        switch request {
        case SONO_USBDEVFS_REAPURBNDELAY, SONO_USBDEVFS_REAPURB:
            return reap(argument: argument, link: link)
        case SONO_USBDEVFS_SUBMITURB:
            let result = submit(argument: argument, link: link, now: now, context: context)
            produceFrames(link: link, now: now, context: context)
            return result
        case SONO_USBDEVFS_DISCARDURB:
            return discard(argument: argument, link: link)
        case SONO_USBDEVFS_GET_CAPABILITIES:
            return Self.withResolved(argument, length: MemoryLayout<UInt32>.size) { bytes in
                bytes.storeBytes(of: SONO_USBDEVFS_PROBE_CAPABILITIES, as: UInt32.self)
                return (0, 0)
            }
        case SONO_USBDEVFS_CLEAR_HALT:
            return Self.withResolved(argument, length: MemoryLayout<UInt32>.size) { bytes in
                switch bytes.loadUnaligned(as: UInt32.self) {
                case UInt32(EmulatedProbeModel.bulkEndpoint):
                    // Clears the halt (and, on hardware, the data toggle); any partial frame is discarded.
                    halted = false
                    counters.clearHalts += 1
                    return (0, 0)
                case 0x00, 0x80: return (0, 0)
                default: return (-1, ENOENT)  // no such endpoint
                }
            }
        case SONO_USBDEVFS_CLAIMINTERFACE, SONO_USBDEVFS_RELEASEINTERFACE, SONO_USBDEVFS_SETINTERFACE,
             SONO_USBDEVFS_SETCONFIGURATION, SONO_USBDEVFS_RESETEP, SONO_USBDEVFS_RESET,
             SONO_USBDEVFS_DISCONNECT_CLAIM:
            return (0, 0)
        case SONO_USBDEVFS_GETDRIVER:
            return (-1, ENODATA)  // no kernel driver bound to the interface
        default:
            counters.unknownIoctls += 1
            counters.lastUnknownIoctl = request
            return (-1, ENOTTY)
        }
    }

    /// Resolves the ioctl argument as a pointer to `length` bytes and runs `body` on umockdev's
    /// local copy of them (written back to the client when the ioctl completes).
    private static func withResolved(_ argument: UnsafeMutablePointer<UMockdevIoctlData>, length: Int,
                                       _ body: (UnsafeMutableRawPointer) -> (Int, Int32)) -> (Int, Int32) {
        var error: UnsafeMutablePointer<GError>?
        guard let data = umockdev_ioctl_data_resolve(argument, 0, gsize(length), &error),
              let bytes = data.pointee.data, Int(data.pointee.data_len) >= length else {
            _ = takeMessage(error)
            return (-1, EFAULT)
        }
        defer { g_object_unref(UnsafeMutableRawPointer(data)) }
        return body(UnsafeMutableRawPointer(bytes))
    }

    private mutating func submit(argument: UnsafeMutablePointer<UMockdevIoctlData>, link: Int, now: UInt64,
                                 context: ProbeContext) -> (Int, Int32) {
        var error: UnsafeMutablePointer<GError>?
        guard let urbData = umockdev_ioctl_data_resolve(argument, 0, gsize(SONO_USBDEVFS_URB_SIZE), &error),
              let fields = urbData.pointee.data else {
            _ = takeMessage(error)
            return (-1, EFAULT)
        }
        let raw = UnsafeRawPointer(fields)
        let type = raw.load(fromByteOffset: SONO_USBDEVFS_URB_TYPE_OFFSET, as: UInt8.self)
        let endpoint = raw.load(fromByteOffset: SONO_USBDEVFS_URB_ENDPOINT_OFFSET, as: UInt8.self)
        let length = Int(raw.loadUnaligned(fromByteOffset: SONO_USBDEVFS_URB_BUFFER_LENGTH_OFFSET, as: Int32.self))
        var buffer: UnsafeMutablePointer<UMockdevIoctlData>?
        if length > 0 {
            buffer = umockdev_ioctl_data_resolve(urbData, gsize(SONO_USBDEVFS_URB_BUFFER_OFFSET), gsize(length), &error)
            guard buffer != nil else {
                _ = takeMessage(error)
                g_object_unref(UnsafeMutableRawPointer(urbData))
                return (-1, EFAULT)
            }
        }
        var urb = SubmittedURB(urb: urbData, buffer: buffer, bufferLength: max(0, length))
        counters.submits += 1
        if type == SONO_USBDEVFS_URB_TYPE_CONTROL && (endpoint & 0x7F) == 0 {
            // devio.c: the buffer holds the setup packet and at least wLength bytes after it.
            let bytes = urb.bytes
            guard bytes.count >= 8, bytes.count >= 8 + Int(LittleEndian.load(UInt16.self, from: UnsafeRawBufferPointer(bytes), at: 6)) else {
                urb.release()
                return (-1, EINVAL)
            }
            control(&urb, now: now, context: context)
            links[link].reapable.append(urb)
        } else if type == SONO_USBDEVFS_URB_TYPE_BULK && endpoint == EmulatedProbeModel.bulkEndpoint {
            if halted {  // a halted endpoint fails every URB until CLEAR_HALT
                urb.status = -EPIPE
                links[link].reapable.append(urb)
            } else {
                links[link].waiting.append(urb)
            }
        } else {  // no such endpoint on this device
            urb.release()
            return (-1, ENOENT)
        }
        return (0, 0)
    }

    private mutating func reap(argument: UnsafeMutablePointer<UMockdevIoctlData>, link: Int) -> (Int, Int32) {
        guard !links[link].reapable.isEmpty else {
            counters.reapsEmpty += 1
            return (-1, links[link].unplugged ? ENODEV : EAGAIN)
        }
        // The argument is a `void **` the kernel fills with the reaped URB's address: set_ptr
        // makes umockdev store the client's URB address there and sync the URB and its buffer.
        var error: UnsafeMutablePointer<GError>?
        guard let slot = umockdev_ioctl_data_resolve(argument, 0, gsize(MemoryLayout<UnsafeRawPointer>.size), &error) else {
            _ = takeMessage(error)
            return (-1, EFAULT)
        }
        let urb = links[link].reapable.removeFirst()
        urb.writeResult()
        umockdev_ioctl_data_set_ptr(slot, 0, urb.urb)  // `slot` keeps its own reference to the URB
        g_object_unref(UnsafeMutableRawPointer(slot))
        urb.release()
        counters.reaps += 1
        return (0, 0)
    }

    private mutating func discard(argument: UnsafeMutablePointer<UMockdevIoctlData>, link: Int) -> (Int, Int32) {
        counters.discards += 1
        // The argument is the URB's own address in the client.
        guard let value = argument.pointee.data, argument.pointee.data_len >= 8 else { return (-1, EFAULT) }
        let address = UInt(UnsafeRawPointer(value).loadUnaligned(as: UInt64.self))
        guard let index = links[link].waiting.firstIndex(where: { $0.clientAddress == address }) else {
            return (-1, EINVAL)  // already completed: libusb then reaps it normally
        }
        var urb = links[link].waiting.remove(at: index)
        urb.status = -ENOENT  // what the kernel reports for an unlinked URB
        urb.actualLength = 0
        links[link].reapable.append(urb)
        return (0, 0)
    }

    // MARK: control requests (USB-PROBE.md §2)

    private mutating func control(_ urb: inout SubmittedURB, now: UInt64, context: ProbeContext) {
        counters.controls += 1
        let bytes = urb.bytes
        let setup = UnsafeRawBufferPointer(rebasing: bytes[0..<8])
        let type = setup[0], request = setup[1]
        let value = LittleEndian.load(UInt16.self, from: setup, at: 2)
        let length = Int(LittleEndian.load(UInt16.self, from: setup, at: 6))
        let data = UnsafeMutableRawBufferPointer(rebasing: bytes[8..<(8 + length)])
        urb.status = 0
        urb.actualLength = 0

        var error: UInt8 = 0
        switch (type, request) {
        case (EmulatedProbeModel.requestTypeIn, EmulatedProbeModel.getInfo):
            if length < EmulatedProbeModel.infoLength {
                error = EmulatedProbeModel.errorBadLength
            } else {
                urb.actualLength = Int32(reply(context.info, into: data))
            }
        case (EmulatedProbeModel.requestTypeIn, EmulatedProbeModel.getStatus):
            if length < EmulatedProbeModel.statusLength {
                error = EmulatedProbeModel.errorBadLength
            } else {
                urb.actualLength = Int32(writeStatus(into: data))
            }
        case (EmulatedProbeModel.requestTypeOut, EmulatedProbeModel.setImaging):
            if length != EmulatedProbeModel.settingsLength {
                error = EmulatedProbeModel.errorBadLength
            } else {
                let settings = EmulatedUSBProbe.Imaging(decoding: UnsafeRawBufferPointer(data))
                if let refusal = settings.refusal {
                    error = refusal
                } else {
                    apply(settings, now: now)
                    urb.actualLength = Int32(length)
                }
            }
        case (EmulatedProbeModel.requestTypeOut, EmulatedProbeModel.startStreaming):
            if length != 0 {
                error = EmulatedProbeModel.errorBadLength
            } else if fault && faultedStartsLeft > 0 {
                faultedStartsLeft -= 1  // the fault's cause persists (USB-PROBE.md §5.2 step 4)
                error = EmulatedProbeModel.errorWrongState
            } else {
                start(now: now)
            }
        case (EmulatedProbeModel.requestTypeOut, EmulatedProbeModel.stopStreaming):
            if length != 0 { error = EmulatedProbeModel.errorBadLength } else { streaming = false }
        case (0x80, 0x06):  // standard GET_DESCRIPTOR (libusb_get_string_descriptor_ascii and friends)
            if let descriptor = standardDescriptor(value, serial: context.serial) {
                urb.actualLength = Int32(reply(descriptor, into: data))
            } else {
                error = EmulatedProbeModel.errorUnknownRequest
            }
        case (0x80, 0x00):  // standard GET_STATUS: bus powered, no remote wake-up
            urb.actualLength = Int32(reply([0, 0], into: data))
        default:
            error = EmulatedProbeModel.errorUnknownRequest
        }
        if error != 0 {  // protocol STALL: the kernel reports -EPIPE, libusb LIBUSB_ERROR_PIPE
            lastError = error
            counters.stalls += 1
            urb.status = -EPIPE
            urb.actualLength = 0
        }
    }

    /// Copies `min(wLength, structure length)` bytes of an IN reply; returns the count.
    private func reply(_ bytes: [UInt8], into data: UnsafeMutableRawBufferPointer) -> Int {
        let count = min(bytes.count, data.count)
        for index in 0..<count { data[index] = bytes[index] }
        return count
    }

    private func standardDescriptor(_ value: UInt16, serial: String) -> [UInt8]? {
        let descriptors = EmulatedProbeModel.descriptors
        switch value >> 8 {
        case 1: return Array(descriptors[0..<18])
        case 2: return Array(descriptors[18...])
        case 3: return EmulatedProbeModel.stringDescriptor(UInt8(value & 0xFF), serial: serial)
        default: return nil
        }
    }

    /// GET_STATUS's `ProbeStatus` (USB-PROBE.md §3.3); reading it clears last_error.
    private mutating func writeStatus(into data: UnsafeMutableRawBufferPointer) -> Int {
        var status = [UInt8](repeating: 0, count: EmulatedProbeModel.statusLength)
        status[0] = 1
        status[1] = UInt8(EmulatedProbeModel.statusLength)
        status[2] = fault ? 2 : streaming ? 1 : 0
        status[3] = lastError
        LittleEndian.store(imaging.sequence, into: &status, at: 4)
        LittleEndian.store(UInt16(0x7FFF), into: &status, at: 6)  // temperature unknown
        LittleEndian.store(framesAcquired, into: &status, at: 8)
        LittleEndian.store(framesSent, into: &status, at: 16)
        LittleEndian.store(framesDropped, into: &status, at: 24)
        lastError = 0
        return reply(status, into: data)
    }

    private mutating func apply(_ settings: EmulatedUSBProbe.Imaging, now: UInt64) {
        if settings.sequence != imaging.sequence { pendingFlags.insert(.settingsChanged) }
        if streaming && settings.rateCentiFPS != imaging.rateCentiFPS {
            // The new rate applies from the next frame: its due time stays, the period changes.
            scheduleOriginMicros = dueMicros(nextFrame)
            scheduleBase = nextFrame
        }
        imaging = settings
    }

    /// START_STREAMING (also while streaming: restarts, frame numbers from 0).
    private mutating func start(now: UInt64) {
        fault = false
        hung = false
        counters.starts += 1
        streaming = true
        nextFrame = 0
        framesAcquired = 0
        framesSent = 0
        framesDropped = 0
        scheduleOriginMicros = now
        scheduleBase = 0
        pendingFlags.remove(.deviceDropped)
    }

    // MARK: the frame stream (USB-PROBE.md §4)

    private func dueMicros(_ frame: UInt64) -> UInt64 {
        scheduleOriginMicros + (frame - scheduleBase) * 100_000_000 / UInt64(max(imaging.rateCentiFPS, 1))
    }

    /// Hands frames to waiting bulk URBs: in real time, every frame that came due by `now`
    /// (dropped if no URB waits for it); as fast as possible, one per waiting URB.
    private mutating func produceFrames(link: Int, now: UInt64, context: ProbeContext) {
        guard streaming, !halted, !hung, link == links.count - 1 else { return }
        switch context.pacing {
        case .asFastAsPossible:
            while !links[link].waiting.isEmpty {
                send(link: link, acquiredAt: now, context: context)
            }
        case .realTime:
            while streaming {
                let due = dueMicros(nextFrame)
                guard due <= now else { break }
                if links[link].waiting.isEmpty {
                    dropFrame()
                } else {
                    send(link: link, acquiredAt: due, context: context)
                }
            }
        }
    }

    /// The frame acquired with no transfer to take it: the number advances, the device counts it.
    private mutating func dropFrame() {
        nextFrame += 1
        framesAcquired += 1
        if framesDropped < .max { framesDropped += 1 }
        counters.framesDroppedByDevice += 1
        pendingFlags.insert(.deviceDropped)
    }

    /// Makes the next frame in the oldest waiting URB's buffer and completes it.
    private mutating func send(link: Int, acquiredAt micros: UInt64, context: ProbeContext) {
        var urb = links[link].waiting.removeFirst()
        let number = nextFrame
        nextFrame += 1
        framesAcquired += 1
        let frame = ProbeFrameMaker.Frame(number: number, timestampMicros: micros - bootMicros, imaging: imaging,
                                          flags: pendingFlags, framesDropped: framesDropped)
        let bytes = urb.bytes
        if let length = context.maker.make(frame, into: bytes) {
            if corruptNext {  // one pixel bit flipped after the CRC was computed
                bytes[ProbeFrameHeader.length + 5] ^= 0x01
                corruptNext = false
            }
            var sent = length
            if truncateNext {  // the tail is lost: header and half the pixels arrive, in a short transfer
                sent = ProbeFrameHeader.length + (length - ProbeFrameHeader.length) / 2
                truncateNext = false
            }
            urb.status = 0
            urb.actualLength = Int32(sent)
            pendingFlags = []
            framesSent += 1
            counters.framesSent += 1
        } else {
            // The host's buffer is smaller than the frame: the device sends more than the
            // transfer can hold (babble), which the host controller reports as -EOVERFLOW.
            urb.status = -EOVERFLOW
            urb.actualLength = 0
        }
        links[link].reapable.append(urb)
    }
}
