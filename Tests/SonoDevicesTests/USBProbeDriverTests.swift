import Foundation
import SonoCore
import SonoDevices
import SonoTestbed
import Synchronization
import Testing

/// The USB probe driver end to end on the real libusb path: libusb enumerates an emulated probe
/// (umockdev: sysfs record + a usbfs ioctl handler speaking USB-PROBE.md, `EmulatedUSBProbe`),
/// and the driver streams, validates and recovers as it would on hardware. Run under
/// `umockdev-wrapper` (`make test` does); without it these tests are skipped, unless
/// SONO_REQUIRE_UMOCKDEV=1 makes that a failure.
@Suite(.serialized, .enabled(if: EmulatedSerialBench.isPreloaded || requireUMockdev,
                             "needs umockdev-wrapper (make test runs it)"))
struct USBProbeDriverTests {
    /// Events from the driver's supervisor thread.
    final class Events: Sendable {
        private let events = Mutex<[USBProbeEvent]>([])
        func append(_ event: USBProbeEvent) { events.withLock { $0.append(event) } }
        var all: [USBProbeEvent] { events.withLock { $0 } }

        /// Waits until an event matching `match` has arrived.
        func wait(seconds: Double = 5, for match: (USBProbeEvent) -> Bool) -> USBProbeEvent? {
            let deadline = Date(timeIntervalSinceNow: seconds)
            while Date() < deadline {
                if let event = all.first(where: match) { return event }
                usleep(5_000)
            }
            return nil
        }
    }

    /// A plugged emulated probe and the driver streaming from it; `stop` closes the driver, then
    /// unplugs the probe if it still is.
    struct Rig {
        let probe: EmulatedUSBProbe
        let source: USBProbeSource
        let events = Events()

        init(serial: String, pacing: EmulatedUSBProbe.Pacing = .asFastAsPossible, side: Int = 128) throws {
            probe = try EmulatedUSBProbe.plug(serial: serial, pacing: pacing)
            do {
                source = try USBProbeDriverTests.source(side: side, events: events)
                try source.waitUntilStreaming(seconds: 5)
            } catch {
                probe.unplug()
                throw error
            }
        }

        func stop() {
            source.close()
            if probe.isPlugged { probe.unplug() }
        }
    }

    static func source(side: Int = 128, rate: Double = 60, serial: String? = nil,
                       events: Events) throws -> USBProbeSource {
        let imaging = ProbeImagingSettings(depthMM: 160, gainCentiDB: 0, rateCentiFPS: UInt16(rate * 100),
                                           width: side, height: side)
        let configuration = USBProbeConfiguration(serial: serial, imaging: imaging, reconnectInterval: 0.1)
        let source = try USBProbeSource(configuration: configuration) { events.append($0) }
        try source.start()
        return source
    }

    /// Reads `count` frames (each checked against the emulator's test pattern), giving up after `seconds`.
    static func read(_ source: USBProbeSource, count: Int, seconds: Double = 10,
                     firstDeviceFrame: UInt64? = nil) -> [ProbeFrameInfo] {
        var pixels = [UInt8](repeating: 0, count: source.format.pixelCount)
        var infos: [ProbeFrameInfo] = []
        let deadline = Date(timeIntervalSinceNow: seconds)
        while infos.count < count, Date() < deadline {
            guard let info = try? pixels.withUnsafeMutableBufferPointer({ buffer throws(FrameSourceError) in
                try source.nextFrame(into: buffer, timeoutMicros: 100_000)
            }) else { continue }
            infos.append(info)
            // The default content is the C emulator's pattern (x + y + n) & 0xFF of device frame n:
            // the pixel at (0, 0) is n mod 256, and its row goes up by one per pixel.
            let width = source.format.width
            let n = pixels[0]
            #expect(pixels[width - 1] == n &+ UInt8(truncatingIfNeeded: width - 1))
            #expect(pixels[width * (source.format.height - 1)] == n &+ UInt8(truncatingIfNeeded: source.format.height - 1))
        }
        return infos
    }

    @Test func findsTheProbeByItsIDsAndReadsItsInfo() throws {
        let probe = try EmulatedUSBProbe.plug(serial: "PRB-INFO-1")
        defer { probe.unplug() }
        let answer = try USBProbeQuery.describe(serial: "PRB-INFO-1")
        #expect(answer.info.serial == "PRB-INFO-1")
        #expect(answer.info.protocolVersion == 1)
        #expect(answer.info.geometries.map { $0.width } == [128, 256, 512])
        #expect(answer.info.maxFrameBytes == 64 + 512 * 512)
        #expect(answer.status.state == .idle)
        // Another product ID: not found, and the error lists what is on the bus.
        #expect {
            _ = try USBProbeQuery.describe(productID: 0x53FF)
        } throws: { error in
            guard case USBError.notFound(let selector, let seen) = error else { return false }
            return selector == "1209:53ff" && seen.contains { $0.hasPrefix("1209:5310") }
        }
        // Another serial: not this probe.
        #expect(throws: USBError.self) { _ = try USBProbeQuery.describe(serial: "PRB-OTHER") }
    }

    /// 300 frames at 60 frames/s with the device pacing itself in real time: none missed, none
    /// damaged, numbered in sequence, stamped on the host's clock at 16.7 ms intervals.
    @Test func streams300FramesIntactAt60FramesPerSecond() throws {
        let rig = try Rig(serial: "PRB-STREAM-1", pacing: .realTime, side: 256)
        defer { rig.stop() }
        let (probe, source, events) = (rig.probe, rig.source, rig.events)
        let infos = Self.read(source, count: 300, seconds: 15)
        #expect(infos.count == 300)
        #expect(zip(infos, infos.dropFirst()).allSatisfy { $1.frameNumber == $0.frameNumber + 1 })
        let r = source.statistics.receiver
        #expect(r.framesDelivered >= 300)
        #expect(r.droppedFrames == 0 && r.rejected == 0 && r.transferErrors == 0)
        #expect(r.deviceFramesDropped == 0)
        #expect(probe.counters.framesDroppedByDevice == 0)
        if let first = infos.first, let last = infos.last {
            let period = Double(last.timestampMicros - first.timestampMicros) / Double(infos.count - 1)
            #expect(abs(period - 16_667) < 200, "mean frame interval \(period) µs")
        }
        #expect(probe.imaging.width == 256 && probe.imaging.rateCentiFPS == 6000)
        #expect(events.all.contains { if case .connected(let serial, _, _) = $0 { serial == "PRB-STREAM-1" } else { false } })
    }

    @Test func aCorruptedFrameIsRejectedAndCountedAsDropped() throws {
        let rig = try Rig(serial: "PRB-CRC-1")
        defer { rig.stop() }
        let (probe, source) = (rig.probe, rig.source)
        let before = Self.read(source, count: 20)
        probe.corruptNextFrame()
        let after = Self.read(source, count: 40)
        #expect(before.count == 20 && after.count == 40)
        let r = source.statistics.receiver
        #expect(r.crcMismatch == 1)
        #expect(r.rejected == 1)
        // Its number is missing from what was delivered.
        let numbers = (before + after).map(\.frameNumber)
        let gaps = zip(numbers, numbers.dropFirst()).filter { $1 != $0 + 1 }
        #expect(gaps.count == 1 && gaps.first.map { $1 - $0 } == 2)
        #expect(r.droppedFrames >= 1)
    }

    @Test func aTruncatedFrameIsRejected() throws {
        let rig = try Rig(serial: "PRB-TRUNC-1")
        defer { rig.stop() }
        let (probe, source) = (rig.probe, rig.source)
        _ = Self.read(source, count: 10)
        probe.truncateNextFrame()
        #expect(Self.read(source, count: 20).count == 20)
        #expect(source.statistics.receiver.truncated == 1)
    }

    /// USB-PROBE.md §5.2: a halted endpoint stops frames with a fault the reader sees; the driver
    /// reads why, clears the halt, retries START while the probe is still faulted, and streams again.
    @Test func aHaltedEndpointIsClearedAndStreamingResumes() throws {
        let rig = try Rig(serial: "PRB-HALT-1")
        defer { rig.stop() }
        let (probe, source, events) = (rig.probe, rig.source, rig.events)
        #expect(Self.read(source, count: 10).count == 10)
        probe.haltBulkEndpoint(lastError: 6, faultedStarts: 1)
        let fault = events.wait { if case .faulted = $0 { true } else { false } }
        guard case .faulted(let status)? = fault else {
            Issue.record("no fault event; events: \(events.all)")
            return
        }
        #expect(status?.lastError == 6)
        #expect(status?.state == .fault)
        // While faulted the reader gets the reason, not frames.
        var pixels = [UInt8](repeating: 0, count: source.format.pixelCount)
        var sawFault = false
        for _ in 0..<20 where !sawFault {
            do {
                _ = try pixels.withUnsafeMutableBufferPointer { buffer throws(FrameSourceError) in
                    try source.nextFrame(into: buffer, timeoutMicros: 20_000)
                }
            } catch {
                if case .failed(let reason) = error { sawFault = reason.contains("fault") }
            }
        }
        #expect(sawFault)
        #expect(events.wait(seconds: 5) { $0 == .recovered } != nil, "events: \(events.all)")
        #expect(Self.read(source, count: 10).count == 10)
        #expect(probe.counters.clearHalts == 1)
        #expect(source.statistics.faults == 1)
    }

    /// USB-PROBE.md §5.1: a probe that stops sending without a fault is reported after 3 frame
    /// periods + 50 ms, and after a second the driver reads its status and restarts the stream.
    @Test func aSilentStreamIsReportedAndRestarted() throws {
        let rig = try Rig(serial: "PRB-SILENT-1", pacing: .realTime)
        defer { rig.stop() }
        let (probe, source, events) = (rig.probe, rig.source, rig.events)
        let before = Self.read(source, count: 10)
        #expect(before.count == 10)
        let starts = probe.counters.starts
        probe.hang()
        let stalled = events.wait { if case .streamStalled = $0 { true } else { false } }
        guard case .streamStalled(let milliseconds)? = stalled else {
            Issue.record("no stall event; events: \(events.all)")
            return
        }
        #expect(milliseconds >= 100 && milliseconds < 400, "reported after \(milliseconds) ms (3 × 16.7 + 50 expected)")
        let restarted = events.wait(seconds: 3) { if case .streamRestarted = $0 { true } else { false } }
        guard case .streamRestarted(let status)? = restarted else {
            Issue.record("no restart; events: \(events.all)")
            return
        }
        #expect(status?.state == .streaming, "the probe said it was streaming all along")
        #expect(probe.counters.starts == starts + 1)
        let after = Self.read(source, count: 10)
        #expect(after.count == 10)
        if let last = before.last, let first = after.first { #expect(first.frameNumber > last.frameNumber) }
        let statistics = source.statistics
        #expect(statistics.streamStalls == 1 && statistics.streamRestarts == 1)
        #expect(statistics.receiver.sequenceResets == 0, "a restart is a new stream, not a reset")
    }

    /// Unplug stops frames at once with a `disconnected` event and error; the same probe plugged
    /// in again (at a new address) is re-opened and streams, its frame numbers continuing.
    @Test func unplugStopsFramesAndReplugResumes() throws {
        let rig = try Rig(serial: "PRB-PLUG-1")
        defer { rig.stop() }
        let (probe, source, events) = (rig.probe, rig.source, rig.events)
        let before = Self.read(source, count: 10)
        #expect(before.count == 10)
        probe.unplug()
        #expect(events.wait { if case .disconnected = $0 { true } else { false } } != nil, "events: \(events.all)")
        var pixels = [UInt8](repeating: 0, count: source.format.pixelCount)
        #expect(throws: FrameSourceError.self) {
            _ = try pixels.withUnsafeMutableBufferPointer { buffer throws(FrameSourceError) in
                try source.nextFrame(into: buffer, timeoutMicros: 100_000)
            }
        }
        #expect(source.statistics.disconnects == 1)
        try probe.replug()
        let connects = { events.all.filter { if case .connected = $0 { true } else { false } }.count }
        let deadline = Date(timeIntervalSinceNow: 5)
        while connects() < 2, Date() < deadline { usleep(10_000) }
        #expect(connects() == 2, "events: \(events.all)")
        let after = Self.read(source, count: 10)
        #expect(after.count == 10)
        if let last = before.last, let first = after.first { #expect(first.frameNumber > last.frameNumber) }
        #expect(source.statistics.receiver.sequenceResets == 0)
    }

    /// Settings the probe cannot do are refused before anything is sent, naming its limits.
    @Test func imagingSettingsOutsideTheProbesLimitsAreRefused() throws {
        let probe = try EmulatedUSBProbe.plug(serial: "PRB-LIMIT-1")
        defer { probe.unplug() }
        let events = Events()
        let source = try Self.source(side: 100, events: events)
        defer { source.close() }
        #expect(throws: USBError.self) { try source.waitUntilStreaming(seconds: 1) }
        let failure = events.wait { if case .openFailed = $0 { true } else { false } }
        #expect(failure?.description.contains("geometry 100×100 is not one of the probe's 128×128, 256×256, 512×512") == true,
                "\(String(describing: failure))")
        #expect(probe.isStreaming == false)
    }
}
