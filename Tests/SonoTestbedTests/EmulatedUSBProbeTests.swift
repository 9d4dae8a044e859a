import CLibUSB
import Foundation
import SonoDevices
import SonoTestbed
import Testing

let requireUMockdev = ProcessInfo.processInfo.environment["SONO_REQUIRE_UMOCKDEV"] == "1"

/// The emulated USB probe (firmware-protocol/USB-PROBE.md, USB-EMULATION.md §2.1) driven by
/// plain libusb calls, no driver: what the driver's tests can rely on. Run under
/// `umockdev-wrapper` (`make test-emulated` does); without the preload these tests are skipped,
/// unless SONO_REQUIRE_UMOCKDEV=1 makes that a failure.
@Suite(.serialized, .enabled(if: EmulatedSerialBench.isPreloaded || requireUMockdev,
                             "needs umockdev-wrapper (make test-emulated runs it)"))
struct EmulatedUSBProbeTests {
    static let maxFrameBytes = 64 + 512 * 512
    static let transferLength = (maxFrameBytes + 1 + 511) / 512 * 512  // 262,656 (USB-PROBE.md §4.1)
    static let frameHeaderFlagsOffset = 6

    /// 160 mm, +8 dB, `rate`, side × side, settings_seq `sequence`.
    static func settings(side: Int = 128, rate: UInt16 = 6000, sequence: UInt16 = 7, depth: UInt16 = 160) -> [UInt8] {
        EmulatedUSBProbe.Imaging(depthMM: depth, gainCentiDB: 800, rateCentiFPS: rate, width: side, height: side,
                                 sequence: sequence).encoded
    }

    static func validate(_ frame: [UInt8]) throws -> ProbeFrameHeader {
        try frame.withUnsafeBytes { try ProbeFrameHeader.validateFrame($0, maxFrameBytes: maxFrameBytes) }
    }

    static func le<T: FixedWidthInteger>(_ bytes: [UInt8], _ offset: Int, as: T.Type = T.self) -> T {
        var value: T = 0
        for index in 0..<MemoryLayout<T>.size { value |= T(truncatingIfNeeded: bytes[offset + index]) << (8 * index) }
        return value
    }

    struct Status {
        let state: UInt8, lastError: UInt8, settingsSequence: UInt16
        let acquired: UInt64, sent: UInt64, dropped: UInt32
    }

    static func status(_ handle: LibUSBTestHost.Handle) throws -> Status {
        let bytes = try handle.control(0xC1, 0x05, length: 64).get()
        try #require(bytes.count == 32 && bytes[0] == 1 && bytes[1] == 32, "GET_STATUS returned \(bytes)")
        return Status(state: bytes[2], lastError: bytes[3], settingsSequence: le(bytes, 4), acquired: le(bytes, 8),
                      sent: le(bytes, 16), dropped: le(bytes, 24))
    }

    /// A plugged probe and an open libusb handle on it, closed and unplugged when the test ends.
    static func withProbe(serial: String, pacing: EmulatedUSBProbe.Pacing = .asFastAsPossible,
                          content: EmulatedUSBProbe.FrameContent? = nil,
                          _ body: (EmulatedUSBProbe, LibUSBTestHost, LibUSBTestHost.Handle) throws -> Void) throws {
        let probe = try EmulatedUSBProbe.plug(serial: serial, pacing: pacing, content: content)
        defer { probe.unplug() }
        let host = try LibUSBTestHost()
        let handle = try host.open(bus: probe.busNumber, address: probe.deviceAddress)
        try body(probe, host, handle)
        #expect(probe.counters.unknownIoctls == 0, "unknown ioctl 0x\(String(probe.counters.lastUnknownIoctl, radix: 16))")
    }

    // MARK: enumeration and control requests

    @Test func enumeratesAsAHighSpeedVendorDeviceWithItsSerial() throws {
        let probe = try EmulatedUSBProbe.plug(serial: "PRB-ENUM-1")
        defer { probe.unplug() }
        #expect(probe.devnode == String(format: "/dev/bus/usb/002/%03d", probe.deviceAddress))
        let host = try LibUSBTestHost()
        #expect(host.list(vendorID: 0x1209, productID: 0x5310).contains { $0 == (2, probe.deviceAddress) })
        try host.withDevice(bus: 2, address: probe.deviceAddress) { device in
            let device = try #require(device)
            #expect(libusb_get_device_speed(device) == LIBUSB_SPEED_HIGH.rawValue)
            var descriptor = libusb_device_descriptor()
            #expect(libusb_get_device_descriptor(device, &descriptor) == 0)
            #expect(descriptor.bcdUSB == 0x0200 && descriptor.bMaxPacketSize0 == 64 && descriptor.bcdDevice == 0x0100)
            var config: UnsafeMutablePointer<libusb_config_descriptor>?
            #expect(libusb_get_active_config_descriptor(device, &config) == 0)
            let configuration = try #require(config)
            defer { libusb_free_config_descriptor(configuration) }
            #expect(configuration.pointee.bNumInterfaces == 1 && configuration.pointee.MaxPower == 250)
            let interface = try #require(configuration.pointee.interface?.pointee.altsetting?.pointee)
            #expect(interface.bInterfaceClass == 0xFF && interface.bInterfaceSubClass == 1 && interface.bInterfaceProtocol == 1)
            #expect(interface.bNumEndpoints == 1)
            let endpoint = try #require(interface.endpoint?.pointee)
            #expect(endpoint.bEndpointAddress == 0x81 && endpoint.bmAttributes == 0x02 && endpoint.wMaxPacketSize == 512)
        }
        let handle = try host.open(bus: 2, address: probe.deviceAddress)
        #expect(handle.stringDescriptor(1) == "Sono")
        #expect(handle.stringDescriptor(2) == "Sono ultrasound probe")
        #expect(handle.stringDescriptor(3) == "PRB-ENUM-1")
    }

    @Test func getInfoReturnsTheProbeInfoStructure() throws {
        try Self.withProbe(serial: "PRB-INFO-1") { _, _, handle throws in
            let info = try handle.control(0xC1, 0x01, length: 255).get()
            #expect(info.count == 80)
            #expect(Array(info[0..<8]) == [1, 80, 1, 0, 1, 0, 0, 0])  // versions, firmware 1.0.0
            #expect(String(decoding: info[8..<24].prefix { $0 != 0 }, as: UTF8.self) == "PRB-INFO-1")
            #expect(Self.le(info, 24, as: UInt32.self) == 0x07)                  // gain, depth, frame rate
            #expect(Self.le(info, 28, as: UInt32.self) == UInt32(Self.maxFrameBytes))
            #expect(Self.le(info, 32, as: UInt16.self) == 40 && Self.le(info, 34, as: UInt16.self) == 300)
            #expect(Self.le(info, 36, as: Int16.self) == -2000 && Self.le(info, 38, as: Int16.self) == 4000)
            #expect(Self.le(info, 40, as: UInt16.self) == 100 && Self.le(info, 42, as: UInt16.self) == 12000)
            #expect(info[46] == 8 && info[47] == 3)
            #expect(Array(info[48..<60]) == [128, 0, 128, 0, 0, 1, 0, 1, 0, 2, 0, 2])
            #expect(info[60...].allSatisfy { $0 == 0 })
            // Shorter than the structure: bad_length.
            #expect(throws: LibUSBTestHost.Failure.self) { try handle.control(0xC1, 0x01, length: 40).get() }
            #expect(try Self.status(handle).lastError == 2)
        }
    }

    @Test func refusedSettingsStallAndNameTheReasonInGetStatus() throws {
        try Self.withProbe(serial: "PRB-SET-1") { probe, _, handle throws in
            let tooShallow = Self.settings(depth: 10)
            let refused = handle.control(0x41, 0x02, data: tooShallow)
            #expect(throws: LibUSBTestHost.Failure(call: "control 0x2", code: LIBUSB_ERROR_PIPE.rawValue)) { try refused.get() }
            #expect(try Self.status(handle).lastError == 3)                  // out_of_range
            #expect(try Self.status(handle).lastError == 0)                  // reading GET_STATUS cleared it
            #expect(throws: LibUSBTestHost.Failure.self) { try handle.control(0x41, 0x02, data: Self.settings(side: 300)).get() }
            #expect(try Self.status(handle).lastError == 4)                  // unsupported_geometry
            #expect(throws: LibUSBTestHost.Failure.self) { try handle.control(0x41, 0x02, data: [UInt8](repeating: 0, count: 11)).get() }
            #expect(try Self.status(handle).lastError == 2)                  // bad_length
            #expect(throws: LibUSBTestHost.Failure.self) { try handle.control(0x41, 0x09).get() }
            #expect(try Self.status(handle).lastError == 1)                  // unknown_request
            #expect(probe.imaging == .emulatorDefaults)                              // values are rejected, never clamped

            #expect(try handle.control(0x41, 0x02, data: Self.settings(side: 512, rate: 3000, sequence: 9)).get().count == 12)
            #expect(probe.imaging == EmulatedUSBProbe.Imaging(depthMM: 160, gainCentiDB: 800, rateCentiFPS: 3000, width: 512,
                                                              height: 512, sequence: 9))
            #expect(try Self.status(handle).settingsSequence == 9)
            #expect(probe.counters.stalls == 4)
        }
    }

    // MARK: frames

    @Test func framesArriveOnePerTransferValidAndNumbered() throws {
        try Self.withProbe(serial: "PRB-FRAME-1") { probe, _, handle throws in
            _ = try handle.control(0x41, 0x02, data: Self.settings(side: 128, sequence: 7)).get()
            _ = try handle.control(0x41, 0x03).get()
            #expect(probe.isStreaming)
            var headers: [ProbeFrameHeader] = []
            for _ in 0..<3 {
                let frame = try handle.bulkIn(length: Self.transferLength).get()
                #expect(frame.count == 64 + 128 * 128)
                let header = try Self.validate(frame)
                headers.append(header)
                // The C emulator's test pattern: (x + y + n) mod 256.
                #expect(frame[64 + 128 * 3 + 5] == UInt8(truncatingIfNeeded: 5 + 3 + Int(header.frameNumber)))
            }
            #expect(headers.map(\.frameNumber) == [0, 1, 2])
            #expect(headers.map(\.flags) == [[.settingsChanged], [], []])   // only the first frame of settings_seq 7
            let first = try #require(headers.first)
            #expect(first.settingsSequence == 7 && first.depthMM == 160 && first.gainCentiDB == 800)
            #expect(first.rateCentiFPS == 6000 && first.sectorCentiDeg == 8000 && first.deviceFramesDropped == 0)
            #expect(headers[1].timestampMicros >= headers[0].timestampMicros)
            let status = try Self.status(handle)
            #expect(status.state == 1 && status.sent == 3 && status.acquired == 3 && status.dropped == 0)
            _ = try handle.control(0x41, 0x04).get()
            #expect(!probe.isStreaming)
            #expect(try Self.status(handle).state == 0)
            #expect(probe.counters.framesSent == 3)
        }
    }

    @Test func contentCorruptionTruncationAndOverflow() throws {
        let content: EmulatedUSBProbe.FrameContent = { number, width, height, pixels in
            for index in 0..<(width * height) { pixels[index] = UInt8(truncatingIfNeeded: Int(number) * 3) }
        }
        try Self.withProbe(serial: "PRB-DAMAGE-1", content: content) { probe, _, handle throws in
            _ = try handle.control(0x41, 0x02, data: Self.settings(side: 128)).get()
            _ = try handle.control(0x41, 0x03).get()
            let clean = try handle.bulkIn(length: Self.transferLength).get()
            #expect(try Self.validate(clean).frameNumber == 0 && clean[64...].allSatisfy { $0 == 0 })

            probe.corruptNextFrame()
            let corrupted = try handle.bulkIn(length: Self.transferLength).get()
            #expect(corrupted.count == 64 + 128 * 128)
            #expect { try Self.validate(corrupted) } throws: { ($0 as? ProbeFrameError)?.counter == "crc_mismatch" }

            probe.truncateNextFrame()
            let truncated = try handle.bulkIn(length: Self.transferLength).get()
            #expect(truncated.count == 64 + 128 * 128 / 2)
            #expect(throws: ProbeFrameError.truncated(received: 64 + 8192, needed: 64 + 16384)) { try Self.validate(truncated) }

            let intact = try handle.bulkIn(length: Self.transferLength).get()
            #expect(try Self.validate(intact).frameNumber == 3 && intact[64] == 9)

            // A host buffer smaller than the frame: babble, reported as overflow; the frame is lost.
            #expect(throws: LibUSBTestHost.Failure(call: "bulk 0x81", code: LIBUSB_ERROR_OVERFLOW.rawValue)) {
                try handle.bulkIn(length: 4096).get()
            }
            #expect(try Self.validate(try handle.bulkIn(length: Self.transferLength).get()).frameNumber == 5)
        }
    }

    @Test func aStreamOfAsyncTransfersKeepsEveryFrame() throws {
        try Self.withProbe(serial: "PRB-ASYNC-1") { probe, host, handle throws in
            _ = try handle.control(0x41, 0x02, data: Self.settings(side: 256, sequence: 1)).get()
            _ = try handle.control(0x41, 0x03).get()
            let wanted = 60
            var received: [UInt64] = []
            var pending = 0
            let transfers = try (0..<4).map { _ in try #require(BulkTransfer(handle, length: Self.transferLength)) }
            for transfer in transfers {
                // In the completion callback: the order libusb reaps them, which is the device's.
                transfer.onComplete = { transfer in
                    pending -= 1
                    if let number = try? Self.validate(transfer.data).frameNumber { received.append(number) }
                    if received.count + pending < wanted, transfer.submit() == 0 { pending += 1 }
                }
                if transfer.submit() == 0 { pending += 1 }
            }
            host.handleEvents(seconds: 10) { pending == 0 }
            for transfer in transfers { transfer.onComplete = nil }
            #expect(received == Array(0..<UInt64(wanted)))
            #expect(probe.counters.framesSent == wanted && probe.counters.framesDroppedByDevice == 0)
        }
    }

    // MARK: faults

    @Test func bulkHaltFailsTransfersUntilClearedAndStartStallsWhileFaulted() throws {
        try Self.withProbe(serial: "PRB-HALT-1") { probe, host, handle throws in
            _ = try handle.control(0x41, 0x02, data: Self.settings(side: 128)).get()
            // A transfer waiting (not streaming yet) when the endpoint halts completes with STALL.
            let waiting = try #require(BulkTransfer(handle, length: Self.transferLength))
            #expect(waiting.submit() == 0)
            probe.haltBulkEndpoint(lastError: 6, faultedStarts: 1)
            #expect(host.handleEvents(seconds: 2) { waiting.completed })
            #expect(waiting.status == LIBUSB_TRANSFER_STALL)
            // So does the next one.
            #expect(throws: LibUSBTestHost.Failure(call: "bulk 0x81", code: LIBUSB_ERROR_PIPE.rawValue)) {
                try handle.bulkIn(length: Self.transferLength).get()
            }
            let faulted = try Self.status(handle)
            #expect(faulted.state == 2 && faulted.lastError == 6)      // fault, beamformer_fault
            #expect(!probe.isStreaming)

            #expect(libusb_clear_halt(handle.handle, 0x81) == 0)
            #expect(probe.counters.clearHalts == 1)
            // The cause persists for one more START_STREAMING: protocol STALL, wrong_state.
            #expect(throws: LibUSBTestHost.Failure(call: "control 0x3", code: LIBUSB_ERROR_PIPE.rawValue)) {
                try handle.control(0x41, 0x03).get()
            }
            let stillFaulted = try Self.status(handle)
            #expect(stillFaulted.state == 2 && stillFaulted.lastError == 5)
            _ = try handle.control(0x41, 0x03).get()
            #expect(try Self.status(handle).state == 1)
            let frame = try handle.bulkIn(length: Self.transferLength).get()
            #expect(try Self.validate(frame).frameNumber == 0)
        }
    }

    // MARK: real-time pacing

    @Test func realTimePacingDropsFramesNobodyReads() throws {
        try Self.withProbe(serial: "PRB-RT-1", pacing: .realTime) { probe, _, handle throws in
            _ = try handle.control(0x41, 0x02, data: Self.settings(side: 128, rate: 10_000)).get()  // 100 frames/s
            let beforeStart = Date()
            _ = try handle.control(0x41, 0x03).get()
            let afterStart = Date()
            Thread.sleep(forTimeInterval: 0.3)  // ~30 frames come due with no transfer waiting
            let beforeStatus = Date()
            let idle = try Self.status(handle)
            let afterStatus = Date()
            // Every frame due between START and GET_STATUS was dropped: 100 per second of that span.
            let fewest = Int(beforeStatus.timeIntervalSince(afterStart) * 100) - 1
            let most = Int(afterStatus.timeIntervalSince(beforeStart) * 100) + 1
            #expect((fewest...most).contains(Int(idle.dropped)), "\(idle.dropped) frames dropped, \(fewest)…\(most) expected")
            #expect(idle.acquired == UInt64(idle.dropped) && idle.sent == 0)

            // The next frame tells the host: device_dropped, and the running count in the header.
            let first = try Self.validate(try handle.bulkIn(length: Self.transferLength).get())
            #expect(first.flags.contains(.deviceDropped) && first.flags.contains(.settingsChanged))
            #expect(first.frameNumber >= UInt64(idle.dropped) && first.deviceFramesDropped >= idle.dropped)
            #expect(UInt64(first.deviceFramesDropped) == first.frameNumber)  // every frame before it was dropped

            // Read on time: frames come at the frame period, timestamps on the device's schedule.
            var headers: [ProbeFrameHeader] = []
            let start = Date()
            for _ in 0..<10 { headers.append(try Self.validate(try handle.bulkIn(length: Self.transferLength).get())) }
            let elapsed = Date().timeIntervalSince(start)
            #expect(elapsed > 0.07 && elapsed < 1.0, "10 frames at 100 frames/s took \(elapsed) s")
            for (previous, next) in zip([first] + headers, headers) {
                #expect(next.timestampMicros - previous.timestampMicros == (next.frameNumber - previous.frameNumber) * 10_000)
            }
            let last = try #require(headers.last)
            // The device goes on acquiring (and, unread, dropping) while GET_STATUS is answered:
            // its own count before the request is at most what the status says, after it at least.
            let droppedBefore = probe.counters.framesDroppedByDevice
            let status = try Self.status(handle)
            let droppedAfter = probe.counters.framesDroppedByDevice
            #expect(status.sent == 11)
            #expect(UInt64(status.dropped) + status.sent <= status.acquired)
            #expect(last.frameNumber + 1 <= status.acquired)
            #expect((droppedBefore...droppedAfter).contains(Int(status.dropped)),
                    "status says \(status.dropped) dropped, the device counted \(droppedBefore) before and \(droppedAfter) after")
        }
    }

    // MARK: unplug and replug

    @Test func unplugFailsTransfersAndReplugArrivesAtANewAddress() throws {
        let probe = try EmulatedUSBProbe.plug(serial: "PRB-PLUG-1")
        defer { probe.unplug() }
        let host = try LibUSBTestHost()
        let hotplug = try HotplugCounter(host, vendorID: 0x1209, productID: 0x5310)
        let firstAddress = probe.deviceAddress
        var handle: LibUSBTestHost.Handle? = try host.open(bus: 2, address: firstAddress)
        let open = try #require(handle)
        _ = try open.control(0x41, 0x02, data: Self.settings(side: 512, sequence: 3)).get()

        let inFlight = try #require(BulkTransfer(open, length: Self.transferLength))
        #expect(inFlight.submit() == 0)  // not streaming: it waits
        probe.unplug()
        #expect(!probe.isPlugged)
        #expect(host.handleEvents(seconds: 3) { inFlight.completed && hotplug.left == 1 })
        #expect(inFlight.status == LIBUSB_TRANSFER_NO_DEVICE)
        #expect(hotplug.left == 1)
        #expect(throws: LibUSBTestHost.Failure(call: "control 0x1", code: LIBUSB_ERROR_NO_DEVICE.rawValue)) {
            try open.control(0xC1, 0x01, length: 255).get()
        }
        #expect(!host.list(vendorID: 0x1209, productID: 0x5310).contains { $0 == (2, firstAddress) })
        handle = nil  // closes the old node

        try probe.replug()
        #expect(probe.isPlugged && probe.deviceAddress != firstAddress)
        #expect(host.handleEvents(seconds: 3) { !hotplug.arrived.isEmpty })
        #expect(hotplug.arrived.map(\.address) == [probe.deviceAddress])
        #expect(host.list(vendorID: 0x1209, productID: 0x5310).contains { $0 == (2, probe.deviceAddress) })
        let again = try host.open(bus: 2, address: probe.deviceAddress)
        #expect(again.stringDescriptor(3) == "PRB-PLUG-1")
        #expect(try again.control(0xC1, 0x01, length: 255).get().count == 80)
        // Power-cycled: idle, default settings, frame numbers from 0.
        let status = try Self.status(again)
        #expect(status.state == 0 && status.settingsSequence == 0)
        #expect(probe.imaging == .emulatorDefaults)
        _ = try again.control(0x41, 0x03).get()
        #expect(try Self.validate(try again.bulkIn(length: Self.transferLength).get()).frameNumber == 0)
        #expect(probe.counters.plugs == 2)
    }

    /// One testbed per process: a serial board (bus 1) and a probe (bus 2) side by side.
    @Test func serialBoardsAndTheProbeShareTheProcessTestbed() throws {
        let board = try EmulatedSerialBench.shared().plug(.forceSensor(serial: "FT-SHARED-1"))
        defer { board.unplug() }
        let probe = try EmulatedUSBProbe.plug(serial: "PRB-SHARED-1")
        defer { probe.unplug() }
        #expect(FileManager.default.fileExists(atPath: board.devnode))
        let host = try LibUSBTestHost()
        // libusb skips the boards' USB devices (no usbfs node) and lists the probe.
        #expect(host.list(vendorID: 0x1209, productID: 0x5310).contains { $0 == (2, probe.deviceAddress) })
        #expect(host.list(vendorID: 0x1209, productID: 0x5301).isEmpty)
        let handle = try host.open(bus: 2, address: probe.deviceAddress)
        #expect(try handle.control(0xC1, 0x01, length: 255).get().count == 80)
    }

    @Test func aSerialThatCannotBeADescriptorIsRefused() {
        #expect(throws: BenchError.self) { try EmulatedUSBProbe.plug(serial: "PRB 0001") }
        #expect(throws: BenchError.self) { try EmulatedUSBProbe.plug(serial: String(repeating: "X", count: 17)) }
    }
}
