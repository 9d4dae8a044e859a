import ArgumentParser
import Foundation
import SonoDevices
import SonoProtocol
import SonoSim
import SonoTestbed

/// `sono-devlab demo`: the serial link at work, for a person to watch. Two simulated boards
/// are plugged in; the real drivers enumerate them, stream 1 kHz force and joint data, command
/// the arm, survive line noise, and reconnect after the force sensor's cable is pulled.
struct LinkDemo: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "demo",
                                                    abstract: "Show the serial link with two simulated boards.")

    @Option(help: "Seconds of streaming before the fault scenarios.")
    var seconds: Double = 2

    func run() throws {
        let bench = try requireBench()
        let wrench = SettableWrench(ForceTorqueSample(fx: 0.2, fy: -0.1, fz: 6.5, tx: 0.01, ty: 0, tz: 0))
        let arm = ArmFirmware(serial: "ARM-DEMO-1")
        var forceBoard = try BenchBoard(firmware: ForceSensorFirmware(serial: "FT-DEMO-1", source: wrench),
                                        device: .forceSensor(serial: "FT-DEMO-1"), bench: bench)
        let armBoard = try BenchBoard(firmware: arm, device: .arm(serial: "ARM-DEMO-1"), bench: bench)
        defer {
            forceBoard.unplug()
            armBoard.unplug()
        }

        section("1. Enumeration (libserialport over the emulated sysfs)")
        for port in try SerialPortInfo.list() where port.transport == .usb {
            print("  \(port.path)  \(port.usbID ?? "?")  serial \(port.usbSerial ?? "-")  \(port.usbProduct ?? "")")
        }

        section("2. Connect by USB identity and stream")
        let forceStats = StreamStats()
        let armStats = StreamStats()
        let log: BoardLink.EventHandler = { event in print("  [event] \(event)") }
        let force = BoardLink(
            BoardLinkConfiguration(name: "force sensor", port: .usb(vendorID: 0x1209, productID: 0x5301, serial: nil),
                                   expectedKind: .forceTorque),
            onFrame: forceStats.record, onEvent: log)
        let armLink = BoardLink(
            BoardLinkConfiguration(name: "arm", port: .usb(vendorID: 0x1209, productID: 0x5302, serial: nil),
                                   expectedKind: .arm),
            onFrame: armStats.record, onEvent: log)
        force.start()
        armLink.start()
        defer {
            force.stop()
            armLink.stop()
        }
        guard force.waitUntilConnected(timeoutMillis: 3_000) != nil,
              armLink.waitUntilConnected(timeoutMillis: 3_000) != nil else {
            throw ValidationError("the boards did not connect: force \(force.state), arm \(armLink.state)")
        }
        let (forceStart, armStart) = (forceStats.snapshot(), armStats.snapshot())
        Thread.sleep(forTimeInterval: seconds)
        let (forceEnd, armEnd) = (forceStats.snapshot(), armStats.snapshot())
        print("  force samples: \(Int((Double(forceEnd.frames - forceStart.frames) / seconds).rounded())) /s, "
              + "last fz = \(forceEnd.lastForce?.fz ?? .nan) N, latency p50 \(forceEnd.medianLatencyMicros) µs")
        print("  joint states:  \(Int((Double(armEnd.frames - armStart.frames) / seconds).rounded())) /s")

        section("3. Command the arm (request/ack, streamed joint targets)")
        _ = try armLink.request(.setDrives(enable: true))
        print("  SET_DRIVES enable → ACK")
        let targets = JointArray((0..<6).map { JointTarget(position: Float($0 + 1) * 0.1, maxVelocity: 1, maxCurrent: 5) },
                                 filler: .zero)
        for _ in 0..<600 {
            try armLink.send(.jointCommand(JointCommand(joints: targets)))
            usleep(1_000)
        }
        if let joints = armStats.snapshot().lastJoints {
            print("  joint positions after 0.6 s: "
                  + joints.joints.map { String(format: "%.3f", $0.position) }.joined(separator: " ") + " rad")
        }
        _ = try armLink.request(.stop(category: StopCategory.controlledThenPowerOff.rawValue))
        print("  STOP category 1 → ACK")
        armBoard.runner.withFirmware { ($0 as? ArmFirmware)?.setEmergencyStop(true) }
        do {
            _ = try armLink.request(.setDrives(enable: true))
        } catch {
            print("  e-stop pressed; SET_DRIVES enable → \(error)")
        }

        section("4. Line noise: 20 corrupted frames")
        let before = force.statistics
        forceBoard.runner.inject { $0.corruptNextFrames = 20 }
        Thread.sleep(forTimeInterval: 0.3)
        let after = force.statistics
        let kinds: [(String, KeyPath<ReceiveStatistics, UInt64>)] = [
            ("malformed COBS", \.malformedCOBS), ("truncated", \.truncated), ("CRC mismatch", \.crcMismatch),
            ("length mismatch", \.lengthMismatch), ("unsupported version", \.unsupportedVersion),
            ("unknown type", \.unknownType), ("invalid payload", \.invalidPayload),
        ]
        let breakdown = kinds.compactMap { name, path -> String? in
            let count = after.receive[keyPath: path] - before.receive[keyPath: path]
            return count > 0 ? "\(count) \(name)" : nil
        }
        print("  dropped \(after.receive.droppedFrames - before.receive.droppedFrames) frames ("
              + breakdown.joined(separator: ", ") + "), "
              + "\(after.lostFrames - before.lostFrames) counted lost by sequence gaps; the stream continues")

        section("5. Unplug the force sensor, plug it back in")
        forceBoard.unplug()
        Thread.sleep(forTimeInterval: 0.5)
        forceBoard = try BenchBoard(firmware: ForceSensorFirmware(serial: "FT-DEMO-1", source: wrench),
                                    device: .forceSensor(serial: "FT-DEMO-1"), bench: bench)
        guard force.waitUntilConnected(timeoutMillis: 5_000) != nil else {
            throw ValidationError("the force sensor did not reconnect: \(force.state)")
        }
        Thread.sleep(forTimeInterval: 0.3)

        section("Summary")
        for link in [force, armLink] {
            let stats = link.statistics
            print("  \(link.configuration.name): \(stats.receive.frames) frames, \(stats.lostFrames) lost, "
                  + "\(stats.receive.droppedFrames) dropped, \(stats.connects) connects, \(stats.losses) losses, "
                  + "\(stats.nacks) NACKs")
        }
    }

    func section(_ title: String) { print("\n\(title)") }
}

/// Per-link counters the demo prints.
final class StreamStats: @unchecked Sendable {
    // @unchecked: every field is read and written under `lock`.
    struct Snapshot {
        var frames = 0
        var lastForce: ForceTorqueSample?
        var lastJoints: JointState?
        var latencies: [UInt64] = []
        var medianLatencyMicros: UInt64 { latencies.sorted().dropFirst(latencies.count / 2).first ?? 0 }
    }

    private let lock = NSLock()
    private var state = Snapshot()

    func record(_ frame: Frame, _ receivedAt: UInt64) {
        lock.lock()
        defer { lock.unlock() }
        switch frame.message {
        case .forceTorqueSample(let sample):
            state.frames += 1
            state.lastForce = sample
            if state.latencies.count < 100_000 { state.latencies.append(receivedAt &- frame.timestampMicros) }
        case .jointState(let joints):
            state.frames += 1
            state.lastJoints = joints
        default:
            break
        }
    }

    func snapshot() -> Snapshot {
        lock.lock()
        defer { lock.unlock() }
        return state
    }
}
