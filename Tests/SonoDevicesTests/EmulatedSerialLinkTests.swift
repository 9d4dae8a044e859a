import Foundation
import SonoCore
import SonoDevices
import SonoGeometry
import SonoProtocol
import SonoSim
import SonoSystem
import SonoTestbed
import Synchronization
import Testing

/// The real serial path end to end: libserialport opens an emulated USB CDC-ACM device
/// (umockdev: sysfs + a PTY-backed /dev node) while a simulated firmware board drives the
/// PTY's other end. Run under `umockdev-wrapper` (`make test` does); without the preload these
/// tests are skipped, unless SONO_REQUIRE_UMOCKDEV=1 makes that a failure.
@Suite(.serialized, .enabled(if: EmulatedSerialBench.isPreloaded || requireUMockdev,
                             "needs umockdev-wrapper (make test runs it)"))
struct EmulatedSerialLinkTests {
    let bench: EmulatedSerialBench

    init() throws {
        bench = try EmulatedSerialBench.shared()
    }

    @Test func enumerationShowsTheBoardWithItsUSBIdentity() throws {
        let board = try BenchBoard(firmware: ForceSensorFirmware(source: SettableWrench()),
                                   device: .forceSensor(serial: "FT-ENUM-1"), bench: bench)
        defer { board.unplug() }
        let port = try #require(try SerialPortInfo.list().first { $0.path == board.devnode })
        #expect(port.transport == .usb)
        #expect(port.usbVendorID == 0x1209 && port.usbProductID == 0x5301)
        #expect(port.usbID == "1209:5301")
        #expect(port.usbSerial == "FT-ENUM-1")
        #expect(port.usbManufacturer == "Sono")
        #expect(port.usbProduct == "Sono force/torque sensor")
        #expect(try SerialPortSelector.usb(vendorID: 0x1209, productID: 0x5301, serial: "FT-ENUM-1").resolve()
                    == board.devnode)
    }

    @Test func aMissingPortIsATypedErrorNamingIt() {
        #expect(throws: SerialError.noSuchPort("/dev/ttyACM99")) {
            try SerialPort(path: "/dev/ttyACM99")
        }
        let selector = SerialPortSelector.usb(vendorID: 0x1209, productID: 0x5399, serial: nil)
        #expect { try selector.resolve() } throws: { error in
            "\(error)".contains("no serial port matches USB 1209:5399")
        }
    }

    @Test func thousandHertzForceSamplesArriveWithNoneLostOverTenSeconds() throws {
        let wrench = SettableWrench(ForceTorqueSample(fx: 0.5, fy: -0.25, fz: 7.5, tx: 0, ty: 0.01, tz: 0))
        let board = try BenchBoard(firmware: ForceSensorFirmware(serial: "FT-RATE-1", source: wrench),
                                   device: .forceSensor(serial: "FT-RATE-1"), bench: bench)
        defer { board.unplug() }
        let recorder = FrameRecorder()
        let link = BoardLink(BoardLinkConfiguration(name: "force sensor", port: .path(board.devnode),
                                                    expectedKind: .forceTorque),
                             onFrame: recorder.record)
        link.start()
        defer { link.stop() }
        let info = try #require(link.waitUntilConnected(timeoutMillis: 2_000))
        #expect(info.kind == .forceTorque && info.serial.description == "FT-RATE-1")

        let before = recorder.snapshot()
        Thread.sleep(forTimeInterval: 10)
        let after = recorder.snapshot()
        let samples = after.samples - before.samples
        let statistics = link.statistics
        // 10 s at 1 kHz; the board's clock and ours are the same, so only scheduling skew remains.
        #expect((9_800...10_200).contains(samples), "received \(samples) samples in 10 s")
        #expect(statistics.lostFrames == 0)
        #expect(statistics.receive.droppedFrames == 0)
        #expect(after.lastSample?.fz == 7.5)
        // Board timestamps advance 1 ms per sample: none were skipped at the source either.
        let span = (after.lastSampleMicros ?? 0) - (before.lastSampleMicros ?? 0)
        #expect(abs(Int(span / 1_000) - samples) <= 2)
    }

    @Test func corruptedBytesAreCountedAndSkipped() throws {
        let board = try BenchBoard(firmware: ForceSensorFirmware(serial: "FT-CRC-1", source: SettableWrench()),
                                   device: .forceSensor(serial: "FT-CRC-1"), bench: bench)
        defer { board.unplug() }
        let recorder = FrameRecorder()
        let link = BoardLink(BoardLinkConfiguration(name: "force sensor", port: .path(board.devnode)),
                             onFrame: recorder.record)
        link.start()
        defer { link.stop() }
        _ = try #require(link.waitUntilConnected(timeoutMillis: 2_000))
        Thread.sleep(forTimeInterval: 0.2)

        let before = link.statistics
        board.runner.inject { $0.corruptNextFrames = 25 }
        try board.runner.injectRawBytes([0x00, 0x13, 0x37, 0xFF, 0x42, 0x00])  // line noise between frames
        Thread.sleep(forTimeInterval: 0.5)
        let after = link.statistics
        let dropped = after.receive.droppedFrames - before.receive.droppedFrames
        #expect(dropped == 26, "25 corrupted frames + 1 noise burst, counted \(dropped)")
        #expect(after.lostFrames - before.lostFrames == 25, "each corrupted frame leaves a sequence gap")
        #expect(board.runner.statistics.framesCorrupted == 25)
        // The stream went on: samples after the damage still arrive.
        let samplesBefore = recorder.snapshot().samples
        Thread.sleep(forTimeInterval: 0.2)
        #expect(recorder.snapshot().samples - samplesBefore > 150)
        #expect(link.deviceInfo != nil)
    }

    @Test func aSilentBoardIsReportedLostWithinItsHeartbeatDeadline() throws {
        let board = try BenchBoard(firmware: ForceSensorFirmware(serial: "FT-SILENT-1", source: SettableWrench()),
                                   device: .forceSensor(serial: "FT-SILENT-1"), bench: bench)
        defer { board.unplug() }
        let events = EventRecorder()
        let link = BoardLink(BoardLinkConfiguration(name: "force sensor", port: .path(board.devnode)),
                             onEvent: events.record)
        link.start()
        defer { link.stop() }
        let info = try #require(link.waitUntilConnected(timeoutMillis: 2_000))
        let deadlineMillis = 3 * Int(info.heartbeatPeriodMs)

        board.runner.inject { $0.silent = true }
        let silencedAt = MonotonicClock.nowMicros()
        let lost = try #require(events.wait(timeoutMillis: 2_000) { if case .lost = $0 { true } else { false } })
        let detectedAfterMillis = Int((lost.at - silencedAt) / 1_000)
        guard case .lost(_, let silentFor) = lost.event else { return }
        // Detected once the deadline passed, and no later than one poll interval (5 ms) plus
        // scheduling slack after it.
        #expect(silentFor >= deadlineMillis)
        #expect(detectedAfterMillis <= deadlineMillis + 25, "lost reported \(detectedAfterMillis) ms after silence")
        #expect(link.statistics.losses == 1)

        // The board talks again: the link reconnects on its own.
        board.runner.inject { $0.silent = false }
        #expect(link.waitUntilConnected(timeoutMillis: 3_000) != nil)
    }

    @Test func unplugIsDetectedAndReplugReconnectsByUSBIdentity() throws {
        let identity = EmulatedUSBSerialDevice.forceSensor(serial: "FT-PLUG-1")
        let wrench = SettableWrench()
        var board = try BenchBoard(firmware: ForceSensorFirmware(serial: "FT-PLUG-1", source: wrench),
                                   device: identity, bench: bench)
        let firstPath = board.devnode
        let events = EventRecorder()
        let link = BoardLink(BoardLinkConfiguration(name: "force sensor",
                                                    port: .usb(vendorID: 0x1209, productID: 0x5301, serial: "FT-PLUG-1")),
                             onEvent: events.record)
        link.start()
        defer { link.stop() }
        _ = try #require(link.waitUntilConnected(timeoutMillis: 2_000))

        let unpluggedAt = MonotonicClock.nowMicros()
        board.unplug()
        let lost = try #require(events.wait(timeoutMillis: 1_000) { if case .lost = $0 { true } else { false } })
        // A hang-up is seen at once, long before the heartbeat deadline would expire.
        #expect((lost.at - unpluggedAt) / 1_000 < 100)
        if case .lost(let reason, _) = lost.event { #expect(reason.contains("disconnected")) }
        #expect(link.deviceInfo == nil)
        Thread.sleep(forTimeInterval: 0.3)  // the link retries with backoff meanwhile

        board = try BenchBoard(firmware: ForceSensorFirmware(serial: "FT-PLUG-1", source: wrench),
                               device: identity, bench: bench)
        defer { board.unplug() }
        #expect(board.devnode != firstPath, "the replugged board enumerates under a new name")
        let reconnected = try #require(events.wait(timeoutMillis: 3_000) {
            if case .connected(_, let path) = $0 { path == board.devnode } else { false }
        })
        #expect(reconnected.at > lost.at)
        #expect(link.statistics.connects == 2)
        #expect(events.all.contains { if case .connectFailed = $0.event { true } else { false } })
    }

    @Test func commandsAreAcknowledgedOrRefusedWithTheirReason() throws {
        let firmware = ArmFirmware(serial: "ARM-CMD-1")
        let board = try BenchBoard(firmware: firmware, device: .arm(serial: "ARM-CMD-1"), bench: bench)
        defer { board.unplug() }
        let link = BoardLink(BoardLinkConfiguration(name: "arm", port: .path(board.devnode), expectedKind: .arm))
        link.start()
        defer { link.stop() }
        _ = try #require(link.waitUntilConnected(timeoutMillis: 2_000))

        let ack = try link.request(.setDrives(enable: true))
        #expect(ack.ackedType == MessageType.setDrives.rawValue)
        _ = try link.request(.stop(category: StopCategory.controlledHold.rawValue))

        board.runner.withFirmware { ($0 as? ArmFirmware)?.setEmergencyStop(true) }
        #expect(throws: LinkError.rejected(.setDrives, reason: .estopEngaged, link: "arm")) {
            try link.request(.setDrives(enable: true))
        }
        #expect(link.statistics.nacks == 1)

        board.runner.inject { $0.silent = true }
        #expect(throws: LinkError.timedOut(.clearFaults, attempts: 3, millisEach: 50, link: "arm")) {
            try link.request(.clearFaults)
        }
    }

    @Test func aBoardOfTheWrongKindIsRefused() throws {
        let board = try BenchBoard(firmware: ArmFirmware(serial: "ARM-WRONG-1"), device: .arm(serial: "ARM-WRONG-1"),
                                   bench: bench)
        defer { board.unplug() }
        let events = EventRecorder()
        let link = BoardLink(BoardLinkConfiguration(name: "force sensor", port: .path(board.devnode),
                                                    expectedKind: .forceTorque),
                             onEvent: events.record)
        link.start()
        defer { link.stop() }
        let refused = try #require(events.wait(timeoutMillis: 2_000) { if case .connectFailed = $0 { true } else { false } })
        if case .connectFailed(_, let reason, _) = refused.event {
            #expect(reason.contains("arm actuator board, expected force/torque sensor"))
        }
        #expect(link.deviceInfo == nil)
    }
}

extension EmulatedSerialLinkTests {
    /// The virtual patient's boards on emulated USB devices, driven by the real drivers: joint
    /// commands sent over one link move the simulated arm, and the probe's contact with the
    /// patient comes back as force samples over the other.
    @Test func theSimulatedScannerIsDrivenThroughTheRealSerialLinks() throws {
        var parameters = PatientParameters()
        parameters.chest.breathingAmplitudeMM = 0
        let patient = VirtualPatient(parameters)
        let plax = try #require(StandardViewGeometry(patient: patient).canonical[.plax])
        let scanner = SimulatedScanner(patient: patient, kinematics: PlungerKinematics(start: plax),
                                       arm: ArmBoardConfiguration(jointCount: 6))
        let armBoard = try BenchBoard(firmware: scanner.arm, device: .arm(serial: "ARM-SIM-1"), bench: bench)
        let forceBoard = try BenchBoard(firmware: scanner.forceSensor, device: .forceSensor(serial: "FT-SIM-1"),
                                        bench: bench)
        defer {
            armBoard.unplug()
            forceBoard.unplug()
        }
        let recorder = FrameRecorder()
        let arm = BoardLink(BoardLinkConfiguration(name: "arm", port: .path(armBoard.devnode), expectedKind: .arm))
        let force = BoardLink(BoardLinkConfiguration(name: "force sensor", port: .path(forceBoard.devnode),
                                                     expectedKind: .forceTorque), onFrame: recorder.record)
        arm.start()
        force.start()
        defer {
            arm.stop()
            force.stop()
        }
        _ = try #require(arm.waitUntilConnected(timeoutMillis: 2_000))
        _ = try #require(force.waitUntilConnected(timeoutMillis: 2_000))
        _ = try force.request(.tare)
        Thread.sleep(forTimeInterval: 0.2)
        #expect(abs(recorder.snapshot().lastSample?.fz ?? 99) < 0.3, "tared, in the air")

        _ = try arm.request(.setDrives(enable: true))
        let target = JointCommand(joints: JointArray((0..<6).map {
            JointTarget(position: $0 == 0 ? 0.9 : 0, maxVelocity: 1, maxCurrent: 6)
        }, filler: .zero))
        for _ in 0..<1_500 {
            try arm.send(.jointCommand(target))
            usleep(1_000)
        }
        // 8 mm into tissue of 0.8 N/mm stiffening over 8 mm: about 12.8 N.
        let fz = try #require(recorder.snapshot().lastSample?.fz)
        #expect(fz > 10 && fz < 16, "force sensor reads \(fz) N")
        #expect(abs(scanner.state.current.contact.indentationMM - 8) < 0.5)
    }
}

let requireUMockdev = ProcessInfo.processInfo.environment["SONO_REQUIRE_UMOCKDEV"] == "1"

/// Counts force samples as the link delivers them.
final class FrameRecorder: Sendable {
    struct Snapshot { var samples = 0; var lastSample: ForceTorqueSample?; var lastSampleMicros: UInt64? }
    private let state = Mutex(Snapshot())

    func record(_ frame: Frame, _ receivedAt: UInt64) {
        guard case .forceTorqueSample(let sample) = frame.message else { return }
        state.withLock {
            $0.samples += 1
            $0.lastSample = sample
            $0.lastSampleMicros = frame.timestampMicros
        }
    }

    func snapshot() -> Snapshot { state.withLock { $0 } }
}

/// Collects link events with their monotonic arrival time.
final class EventRecorder: Sendable {
    struct Entry { let event: LinkEvent; let at: UInt64 }
    private let entries = Mutex<[Entry]>([])

    func record(_ event: LinkEvent) {
        let entry = Entry(event: event, at: MonotonicClock.nowMicros())
        entries.withLock { $0.append(entry) }
    }

    var all: [Entry] { entries.withLock { $0 } }

    /// The first event (recorded at any time) matching `predicate`, waiting up to `timeoutMillis`.
    func wait(timeoutMillis: Int, _ predicate: (LinkEvent) -> Bool) -> Entry? {
        let deadline = MonotonicClock.nowMicros() + UInt64(timeoutMillis) * 1_000
        repeat {
            if let entry = all.first(where: { predicate($0.event) }) { return entry }
            usleep(1_000)
        } while MonotonicClock.nowMicros() < deadline
        return nil
    }
}
