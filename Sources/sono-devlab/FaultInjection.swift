import ArgumentParser
import Foundation
import SonoBoards
import SonoDevices
import SonoGeometry
import SonoMotion
import SonoProtocol
import SonoSim
import SonoSystem
import SonoTestbed
import Synchronization

/// `sono-devlab faults` (make test-faults): fault injection on the emulated stack. Each scenario
/// runs the real serial drivers, link layer and 1 kHz motion controller against the simulated
/// boards on umockdev-emulated USB devices and the virtual patient, injects one failure, and
/// prints one row: what should happen, what did, how long from the fault to the safe state, and
/// the contact force at the end by the simulator's truth. Any row that does not hold fails the run.
struct FaultInjection: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "faults",
        abstract: "Inject failures on the emulated stack and check each ends in its safe state (one table row each).")

    @Option(help: "Run only the scenarios whose name contains this.")
    var only: String?

    @OptionGroup var rig: RigOptions

    func run() throws {
        _ = try requireBench()
        let scenarios = FaultScenarios(rig: rig).all.filter { only.map($0.name.contains) ?? true }
        guard !scenarios.isEmpty else { throw ValidationError("no scenario matches '\(only ?? "")'") }
        print("fault injection on the emulated stack (umockdev-wrapper sono-devlab faults); simulation deadlines: "
              + "stale data \(rig.deadlineMillis) ms, arm command watchdog "
              + "\(ArmBoardConfiguration(robot: try FaultScenarios.robot(rig)).commandTimeoutMillis) ms")
        var rows: [FaultRow] = []
        for scenario in scenarios {
            let row: FaultRow
            do { row = try scenario.run() } catch {
                row = FaultRow(scenario: scenario.name, expected: scenario.expected, observed: "setup failed: \(error)",
                               safeMillis: nil, forceN: nil, holds: false)
            }
            rows.append(row)
            FaultRow.printHeaderOnce(rows.count == 1)
            print(row.line)
        }
        let failed = rows.filter { !$0.holds }
        print("\(rows.count - failed.count)/\(rows.count) scenarios hold")
        if !failed.isEmpty { throw ExitCode(1) }
    }
}

struct FaultRow {
    var scenario: String
    var expected: String
    var observed: String
    /// Fault to safe state, ms; nil when there is no such time (a refusal).
    var safeMillis: Double?
    /// Normal contact force at the end, by the simulator's truth, N.
    var forceN: Double?
    var holds: Bool

    static func printHeaderOnce(_ first: Bool) {
        guard first else { return }
        print("| scenario | expected | observed | fault → safe | force at end | |")
        print("|---|---|---|---|---|---|")
    }

    var line: String {
        let safe = safeMillis.map { String(format: "%.0f ms", $0) } ?? "–"
        let force = forceN.map { String(format: "%.1f N", $0) } ?? "–"
        return "| \(scenario) | \(expected) | \(observed) | \(safe) | \(force) | \(holds ? "ok" : "FAILED") |"
    }
}

struct FaultScenario {
    var name: String
    var expected: String
    var run: () throws -> FaultRow
}

/// The scenarios, each on its own rig (own emulated devices), in the order the table prints.
struct FaultScenarios {
    let rig: RigOptions
    private static let sequence = Atomic<Int>(0)

    static func robot(_ rig: RigOptions) throws -> RobotDescription {
        do { return try RobotDescription.load(path: rig.robot) } catch { throw ValidationError("\(rig.robot): \(error)") }
    }

    var all: [FaultScenario] {
        [
            FaultScenario(name: "scan stopped in contact", expected: "lift-off (scan_ended), no stop",
                          run: scanStoppedInContact),
            FaultScenario(name: "planner stuck in contact", expected: "lease expires, scan ends, lift-off, no stop",
                          run: plannerStuckInContact),
            FaultScenario(name: "control loop stopped in contact", expected: "arm board stops on its own (command watchdog)",
                          run: loopStoppedInContact),
            FaultScenario(name: "host killed in contact", expected: "arm board stops on host silence (heartbeat watchdog)",
                          run: hostGoneInContact),
            FaultScenario(name: "host restarted with the probe on the patient", expected: "drives stay off, no tare under load",
                          run: restartInContact),
            FaultScenario(name: "probe unplugged in contact", expected: "lease expires, scan ends, lift-off, no stop",
                          run: { try probeFaultInDaemon(.unplug) }),
            FaultScenario(name: "frame pipeline stalled in contact", expected: "stale frames unused, lease expires, lift-off, no stop",
                          run: { try probeFaultInDaemon(.stall) }),
            FaultScenario(name: "force sensor unplugged in contact", expected: "category 1 stop, drives off",
                          run: forceSensorUnplugged),
            FaultScenario(name: "second over-force in fault", expected: "stopped and backed off again",
                          run: secondOverForce),
            FaultScenario(name: "disable in fault", expected: "drives off, fault stays latched", run: disableInFault),
            FaultScenario(name: "force sensor latches a fault", expected: Self.forceLatchExpected, run: forceSensorLatches),
            FaultScenario(name: "release after e-stop in contact", expected: "retract ≥ 14 mm at ≤ 5 mm/s, drives off",
                          run: releaseAfterEStop),
            FaultScenario(name: "motion after category 2 without resume", expected: "board refuses the command, arm still",
                          run: motionAfterCategory2),
            FaultScenario(name: "interleaved writers", expected: "0 damaged frames at the board, none lost",
                          run: interleavedWriters),
            FaultScenario(name: "USB probe announcing a 4 GiB frame", expected: "probe refused naming max_frame_bytes, no allocation",
                          run: probeAnnouncingHugeFrames),
            FaultScenario(name: "arm board without host_watchdog", expected: "link refuses the board, naming it",
                          run: boardWithoutWatchdog),
            FaultScenario(name: "sono.toml loosening a deadline", expected: "sonod refuses to start: exit 78 naming the key",
                          run: siteFileLoosensDeadline),
            FaultScenario(name: "NaN / negative motion limits", expected: "move refused naming the field, arm still",
                          run: badMotionLimits),
        ]
    }

    // MARK: - Helpers

    private func makeRig(wrench: SettableWrench? = nil) throws -> VirtualScannerRig {
        let suffix = "FI\(Self.sequence.add(1, ordering: .relaxed).newValue)"
        return try VirtualScannerRig(robotPath: rig.robot, patientPath: rig.patient, configuration: rig.configuration(),
                                     serialSuffix: suffix, wrench: wrench)
    }

    /// A rig scanning in contact with the patient at 8 N, the lease held as the planner holds it.
    private func scanningInContact() throws -> VirtualScannerRig {
        let scanner = try makeRig()
        do {
            try scanner.start()
            try scanner.makeContact(at: .plax, forceN: 8)
            try scanner.controller.perform(.safety(.startScan))
        } catch {
            // Say what stopped the set-up: a stop's cause, or the board's own fault.
            let stops = scanner.stops.map { "\($0.kind) \($0.breach.map { "\($0.cause.rawValue) \($0.value) against \($0.limit)" } ?? "")" }
            let faults = scanner.events.compactMap { event -> String? in
                if case .boardFault(let report, let board) = event { "\(board) \(report.code) \(report.value) against \(report.limit)" } else { nil }
            }
            scanner.stop()
            throw FaultError("set-up in contact failed (stops: \(stops); board faults: \(faults)): "
                + "\(String(describing: error).prefix(160))")
        }
        return scanner
    }

    private static func millis(since start: UInt64) -> Double { Double(MonotonicClock.nowMicros() &- start) / 1_000 }

    /// Waits (up to `seconds`) until the simulator says the probe is off the skin; the time, ms.
    private static func untilOffSkin(_ scanner: VirtualScannerRig, from start: UInt64, seconds: Double = 6) -> Double? {
        scanner.wait(seconds: seconds) { scanner.truth.contact.normalForceN < 0.5 } ? millis(since: start) : nil
    }

    private static func arm(_ scanner: VirtualScannerRig) -> (drives: Bool, fault: FaultReport?, estop: Bool) {
        scanner.armBoard.runner.withFirmware { firmware in
            guard let arm = firmware as? ArmFirmware else { return (false, nil, false) }
            return (arm.drivesEnabled, arm.latchedFault, arm.estopEngaged)
        }
    }

    private static func saw(_ scanner: VirtualScannerRig, _ matches: (MotionEvent) -> Bool) -> Bool {
        scanner.events.contains(where: matches)
    }

    // MARK: - Scenarios

    private func scanStoppedInContact() throws -> FaultRow {
        let scanner = try scanningInContact()
        defer { scanner.stop() }
        // The planner ended (cancelled, timed out, threw) without lifting, and nobody holds the lease.
        scanner.holdContactLease(false)
        let start = MonotonicClock.nowMicros()
        try scanner.controller.perform(.safety(.stopScan))
        let off = Self.untilOffSkin(scanner, from: start)
        let lifted = Self.saw(scanner) { if case .liftOffStarted(.scanEnded, _) = $0 { true } else { false } }
        scanner.wait(seconds: 3) { !scanner.controller.status.liftingOff }
        let stops = scanner.stops.count
        return FaultRow(scenario: "scan stopped in contact", expected: "lift-off (scan_ended), no stop",
                        observed: lifted ? "lifted off (scan_ended), \(stops) stops" : "no lift-off; \(stops) stops",
                        safeMillis: off, forceN: scanner.truth.contact.normalForceN, holds: lifted && off != nil && stops == 0)
    }

    private func plannerStuckInContact() throws -> FaultRow {
        let scanner = try scanningInContact()
        defer { scanner.stop() }
        let lease = Double(scanner.controller.configuration.limits.contactLeaseMicros) / 1_000
        // The planner's thread hangs: its renewals stop (the rig renews every 50 ms, so the last
        // renewal was at most 50 ms before this).
        scanner.holdContactLease(false)
        let start = MonotonicClock.nowMicros()
        let expired = scanner.wait(seconds: 2) { scanner.controller.status.liftingOff }
        let expiry = Self.millis(since: start)
        let off = Self.untilOffSkin(scanner, from: start)
        let state = scanner.controller.status.state
        let stops = scanner.stops.count
        let holds = expired && expiry <= lease + 60 && off != nil && state == .operatorEnabled && stops == 0
        return FaultRow(scenario: "planner stuck in contact", expected: "lease expires, scan ends, lift-off, no stop",
                        observed: expired ? String(format: "lift-off %.0f ms after the last renewal (lease %.0f ms), state %@, %d stops",
                                                   expiry, lease, state.rawValue, stops) : "no lift-off within 2 s",
                        safeMillis: off, forceN: scanner.truth.contact.normalForceN, holds: holds)
    }

    private func loopStoppedInContact() throws -> FaultRow {
        let scanner = try scanningInContact()
        defer { scanner.stop() }
        let deadline = Double(ArmBoardConfiguration(robot: try Self.robot(rig)).commandTimeoutMillis)
        // The control loop's thread stops (as a SIGSTOP of it would): the boards' link threads
        // live on and keep sending heartbeats, so only the command watchdog can notice.
        let lastCycle = scanner.controller.status.micros
        scanner.controller.stop()
        let stopped = scanner.wait(seconds: 2) { Self.arm(scanner).fault?.code == .commandTimeout }
        let after = Double(MonotonicClock.nowMicros() &- lastCycle) / 1_000
        scanner.wait(seconds: 1) { !Self.arm(scanner).drives }
        let drives = Self.arm(scanner).drives
        return FaultRow(scenario: "control loop stopped in contact", expected: "arm board stops on its own (command watchdog)",
                        observed: stopped ? String(format: "command_timeout %.0f ms after the last cycle (deadline %.0f ms; 20 ms on hardware), drives %@",
                                                   after, deadline, drives ? "on" : "off") : "the board kept holding",
                        safeMillis: stopped ? after : nil, forceN: scanner.truth.contact.normalForceN,
                        holds: stopped && after <= deadline + 15 && !drives)
    }

    private func hostGoneInContact() throws -> FaultRow {
        let scanner = try scanningInContact()
        defer { scanner.stop() }
        // What SIGKILL leaves: no loop, no link threads; the kernel closes the ports.
        let start = MonotonicClock.nowMicros()
        scanner.controller.stop()
        scanner.boards.stop()
        let stopped = scanner.wait(seconds: 2) { Self.arm(scanner).fault != nil }
        let after = Self.millis(since: start)
        let fault = Self.arm(scanner).fault
        scanner.wait(seconds: 1) { !Self.arm(scanner).drives }
        let drives = Self.arm(scanner).drives
        return FaultRow(scenario: "host killed in contact", expected: "arm board stops on host silence",
                        observed: stopped ? "\(fault.map { "\($0.code)" } ?? "?") after \(Int(after)) ms, drives \(drives ? "on" : "off")"
                            : "the board kept holding",
                        safeMillis: stopped ? after : nil, forceN: scanner.truth.contact.normalForceN,
                        holds: stopped && !drives && after <= 150 + 50)
    }

    private func restartInContact() throws -> FaultRow {
        let scanner = try scanningInContact()
        defer { scanner.stop() }
        // The host dies in contact (SIGKILL: the kernel closes its ports), the board stops.
        scanner.controller.stop()
        scanner.boards.stop()
        scanner.wait(seconds: 2) { !Self.arm(scanner).drives }
        // systemd restarts it: new links to the same boards, and the start-up's zeroing.
        let robot = try Self.robot(rig)
        let restarted = ScannerBoards(arm: .path(scanner.armBoard.devnode), forceSensor: .path(scanner.forceBoard.devnode),
                                      armJointCount: robot.joints.count)
        restarted.start()
        defer { restarted.stop() }
        if let missing = restarted.waitUntilConnected(timeoutMillis: 3_000) { throw FaultError("the \(missing) board did not reconnect") }
        let start = MonotonicClock.nowMicros()
        var refusal: String?
        do { _ = try restarted.tareIfFree(home: robot.home, timeoutMillis: 500) } catch { refusal = "\(error)" }
        let decided = Self.millis(since: start)
        Thread.sleep(forTimeInterval: 0.2)
        let drives = Self.arm(scanner).drives
        let load = scanner.truth.contact.normalForceN
        let namesPose = refusal?.contains("home pose") == true
        return FaultRow(scenario: "host restarted with the probe on the patient", expected: "drives stay off, no tare under load",
                        observed: (refusal.map { "tare refused (\($0.split(separator: "(").dropFirst().first.map { "(" + $0 } ?? $0))" }
                                   ?? "ZEROED UNDER LOAD") + ", drives \(drives ? "on" : "off")",
                        safeMillis: decided, forceN: load, holds: namesPose && !drives && load > 3)
    }

    private func forceSensorUnplugged() throws -> FaultRow {
        let scanner = try scanningInContact()
        defer { scanner.stop() }
        let start = MonotonicClock.nowMicros()
        scanner.unplugForceSensor()
        let stopped = scanner.wait(seconds: 2) { !scanner.stops.isEmpty }
        let stop = scanner.stops.first
        let off = scanner.wait(seconds: 2) { !Self.arm(scanner).drives }
        let after = Self.millis(since: start)
        let cause = stop?.breach?.cause.rawValue ?? "none"
        return FaultRow(scenario: "force sensor unplugged in contact", expected: "category 1 stop, drives off",
                        observed: stopped ? "\(stop?.kind.description ?? "") stop (\(cause)), drives \(off ? "off" : "on")" : "no stop",
                        safeMillis: off ? after : nil, forceN: scanner.truth.contact.normalForceN,
                        holds: stop?.kind == .category1 && off)
    }

    /// A rig whose force sensor reads a settable wrench: over-force without hurting anyone.
    private func pressedWithWrench(_ wrench: SettableWrench) throws -> VirtualScannerRig {
        let scanner = try makeRig(wrench: wrench)
        try scanner.start()
        try scanner.controller.perform(.safety(.enable))
        try scanner.controller.perform(.safety(.enableMotion))
        wrench.set(ForceTorqueSample(fx: 0, fy: 0, fz: 8, tx: 0, ty: 0, tz: 0))
        scanner.holdContactLease(true)
        Thread.sleep(forTimeInterval: 0.1)
        wrench.set(ForceTorqueSample(fx: 0, fy: 0, fz: 25, tx: 0, ty: 0, tz: 0))
        guard scanner.wait(seconds: 2, until: { scanner.controller.status.state == .fault }) else {
            throw FaultError("25 N did not latch the over-force fault (state \(scanner.controller.status.state))")
        }
        return scanner
    }

    private func secondOverForce() throws -> FaultRow {
        let wrench = SettableWrench()
        let scanner = try pressedWithWrench(wrench)
        defer { scanner.stop() }
        wrench.set(ForceTorqueSample(fx: 0, fy: 0, fz: 5, tx: 0, ty: 0, tz: 0))  // the retraction relieved it
        scanner.wait(seconds: 4) { Self.saw(scanner) { if case .retractFinished = $0 { true } else { false } } }
        let stopsBefore = scanner.stops.count
        let start = MonotonicClock.nowMicros()
        wrench.set(ForceTorqueSample(fx: 0, fy: 0, fz: 25, tx: 0, ty: 0, tz: 0))  // the patient pushes into the probe
        let stopped = scanner.wait(seconds: 1) { scanner.stops.count > stopsBefore }
        let after = Self.millis(since: start)
        let retractions = { scanner.events.filter { if case .retractStarted = $0 { true } else { false } }.count }
        let backedOff = scanner.wait(seconds: 2) { retractions() >= 2 }
        return FaultRow(scenario: "second over-force in fault", expected: "stopped and backed off again",
                        observed: stopped ? "\(scanner.stops.last?.kind.description ?? "") stop, \(retractions()) retractions" : "ignored",
                        safeMillis: stopped ? after : nil, forceN: nil, holds: stopped && backedOff)
    }

    private func disableInFault() throws -> FaultRow {
        let wrench = SettableWrench()
        let scanner = try pressedWithWrench(wrench)
        defer { scanner.stop() }
        let start = MonotonicClock.nowMicros()
        let answer: String
        do { answer = "accepted (\(try scanner.controller.perform(.safety(.disable)).rawValue))" } catch { answer = "refused: \(error)" }
        let off = scanner.wait(seconds: 1) { !Self.arm(scanner).drives }
        let after = Self.millis(since: start)
        let state = scanner.controller.status.state
        return FaultRow(scenario: "disable in fault", expected: "drives off, fault stays latched",
                        observed: "\(answer), drives \(off ? "off" : "on"), state \(state.rawValue)",
                        safeMillis: off ? after : nil, forceN: nil, holds: off && state == .fault)
    }

    static let forceLatchExpected = "category 1 stop, drives off; no reset until the board's CLEAR_FAULTS, refused while saturated"

    /// The patient pushes the probe past the sensor's measuring range: the force board latches
    /// `sensor_saturated` (severity 2). The host stops (category 1, drives off) and holds its own
    /// latch of the board's fault: a reset is refused until the board acknowledges CLEAR_FAULTS,
    /// which the board refuses while the cause persists (PROTOCOL.md §3.13).
    private func forceSensorLatches() throws -> FaultRow {
        let wrench = SettableWrench()
        let scanner = try makeRig(wrench: wrench)
        defer { scanner.stop() }
        try scanner.start()
        try scanner.controller.perform(.safety(.enable))
        try scanner.controller.perform(.safety(.enableMotion))
        wrench.set(ForceTorqueSample(fx: 0, fy: 0, fz: 8, tx: 0, ty: 0, tz: 0))
        Thread.sleep(forTimeInterval: 0.1)
        let start = MonotonicClock.nowMicros()
        wrench.set(ForceTorqueSample(fx: 0, fy: 0, fz: 250, tx: 0, ty: 0, tz: 0))  // the sensor's range is 200 N
        let stopped = scanner.wait(seconds: 1) { !scanner.stops.isEmpty }
        let off = scanner.wait(seconds: 1) { !Self.arm(scanner).drives }
        let after = Self.millis(since: start)
        let latched = scanner.wait(seconds: 1) { scanner.controller.status.forceBoardFault }
        func clearForceBoard() -> String {
            do throws(LinkError) {
                _ = try scanner.boards.forceSensor.request(.clearFaults)
                return "ACK"
            } catch {
                if case .rejected(_, let reason, _) = error { return "NACK \(reason)" }
                return "\(error)"
            }
        }
        let whileSaturated = clearForceBoard()
        wrench.set(ForceTorqueSample(fx: 0, fy: 0, fz: 0, tx: 0, ty: 0, tz: 0))
        Thread.sleep(forTimeInterval: 0.05)
        let resetBeforeClear: String
        do { resetBeforeClear = "accepted (\(try scanner.controller.perform(.safety(.reset)).rawValue))" } catch { resetBeforeClear = "\(error)" }
        let afterRelief = clearForceBoard()
        let hostCleared = scanner.wait(seconds: 0.5) { !scanner.controller.status.forceBoardFault }
        let resetAfterClear: String
        do { resetAfterClear = "accepted (\(try scanner.controller.perform(.safety(.reset)).rawValue))" } catch { resetAfterClear = "refused: \(error)" }
        // The jump also trips the force-rate interlock (a category 2 stop and back-off) first;
        // the saturated, latched sensor must still end in category 1 with the drives off.
        let stops = scanner.stops
        let holds = stopped && stops.contains { $0.kind == .category1 } && off && latched
            && whileSaturated == "NACK \(NackReason.faultActive)"
            && !resetBeforeClear.hasPrefix("accepted") && resetBeforeClear.contains(SafetyCause.boardFault.rawValue)
            && afterRelief == "ACK" && hostCleared && resetAfterClear.hasPrefix("accepted")
        return FaultRow(scenario: "force sensor latches a fault", expected: Self.forceLatchExpected,
                        observed: "stops: \(stops.isEmpty ? "none" : stops.map { "\($0.kind) (\($0.breach?.cause.rawValue ?? "operator"))" }.joined(separator: ", ")), "
                            + "drives \(off ? "off" : "on"); CLEAR_FAULTS while saturated: \(whileSaturated); reset before the "
                            + "board cleared: \(resetBeforeClear); CLEAR_FAULTS after: \(afterRelief); reset: \(resetAfterClear)",
                        safeMillis: off ? after : nil, forceN: nil, holds: holds)
    }

    private func releaseAfterEStop() throws -> FaultRow {
        let scanner = try scanningInContact()
        defer { scanner.stop() }
        scanner.armBoard.runner.withFirmware { ($0 as? ArmFirmware)?.setEmergencyStop(true) }
        guard scanner.wait(seconds: 1, until: { scanner.controller.status.state == .emergencyStop }) else {
            throw FaultError("the e-stop did not reach the controller")
        }
        Thread.sleep(forTimeInterval: 0.3)
        let clamped = scanner.truth.contact.normalForceN
        var refusedWhileIn = false
        do { try scanner.controller.perform(.release) } catch { refusedWhileIn = error == .release(.estopEngaged) }
        scanner.armBoard.runner.withFirmware { ($0 as? ArmFirmware)?.setEmergencyStop(false) }
        scanner.wait(seconds: 1) { !scanner.controller.status.armStatus.contains(.estopEngaged) }
        let origin = scanner.controller.status.probe
        let start = MonotonicClock.nowMicros()
        try scanner.controller.perform(.release)
        // The tip's speed over 100 ms windows (joint readings differ by quantisation per ms).
        var fastest = 0.0
        var previous = scanner.truth.probe.position
        var finished = false
        while !finished && Self.millis(since: start) < 8_000 {
            Thread.sleep(forTimeInterval: 0.1)
            let here = scanner.truth.probe.position
            fastest = max(fastest, (here - previous).length * 10)
            previous = here
            finished = Self.saw(scanner) { if case .releaseFinished = $0 { true } else { false } }
        }
        let off = Self.untilOffSkin(scanner, from: start, seconds: 0.5)
        let distance = -(scanner.controller.status.probe.position - origin.position).dot(origin.rotation.z)
        scanner.wait(seconds: 1) { !Self.arm(scanner).drives }
        let drives = Self.arm(scanner).drives
        let limit = scanner.controller.configuration.limits.releaseSpeedMMs
        let aborted = scanner.events.compactMap { event -> String? in
            if case .releaseAborted(let reason) = event { "; aborted: \(reason)" } else { nil }
        }.first ?? ""
        return FaultRow(
            scenario: "release after e-stop in contact", expected: "retract ≥ 14 mm at ≤ 5 mm/s, drives off",
            observed: String(format: "clamped at %.1f N; refused while the button was in: %@; retracted %.1f mm at ≤ %.1f mm/s, drives %@",
                             clamped, refusedWhileIn ? "yes" : "NO", distance, fastest, drives ? "on" : "off") + aborted,
            safeMillis: off, forceN: scanner.truth.contact.normalForceN,
            holds: refusedWhileIn && finished && distance >= 14 && fastest <= limit * 1.1 && !drives && off != nil)
    }

    private func motionAfterCategory2() throws -> FaultRow {
        let scanner = try makeRig()
        defer { scanner.stop() }
        try scanner.start()
        try scanner.controller.perform(.safety(.enable))
        try scanner.controller.perform(.safety(.enableMotion))
        try scanner.controller.perform(.safety(.protectiveStop))
        scanner.wait(seconds: 1) { !scanner.controller.status.armStatus.contains(.stopping) }
        Thread.sleep(forTimeInterval: 0.2)
        let before = scanner.truth.probe.position
        // A second writer (a stray process, a bug) sends a joint command without resume.
        let status = scanner.controller.status
        var targets = JointArray<JointTarget>(count: status.joints.count, filler: .zero)
        for index in 0..<status.joints.count {
            targets[index] = JointTarget(position: Float(status.joints[index] + 0.05), maxVelocity: 0.5, maxCurrent: 3)
        }
        let start = MonotonicClock.nowMicros()
        for _ in 0..<50 {
            _ = try? scanner.boards.arm.send(.jointCommand(JointCommand(joints: targets)))
            Thread.sleep(forTimeInterval: 0.002)
        }
        let refused = scanner.wait(seconds: 1) {
            Self.saw(scanner) { if case .boardRefused(MessageType.jointCommand.rawValue, .wrongState, .arm) = $0 { true } else { false } }
        }
        Thread.sleep(forTimeInterval: 0.3)
        let drift = (scanner.truth.probe.position - before).length
        let state = scanner.controller.status.state
        return FaultRow(scenario: "motion after category 2 without resume", expected: "board refuses the command, arm still",
                        observed: String(format: "%@; moved %.2f mm; host state %@", refused ? "NACK wrong_state" : "accepted",
                                         drift, state.rawValue),
                        safeMillis: refused ? Self.millis(since: start) - 300 : nil, forceN: nil,
                        holds: refused && drift < 0.1)
    }

    /// Finding 8: the control loop streams joint commands at 1 kHz while two more threads send
    /// link frames (heartbeats) on the same port as fast as they can: one writer per port
    /// (PortWriter) means the board decodes every frame whole. A frame refused whole (the port
    /// full, or taken at a handover) shows at the board as a sequence gap, not as damage; every
    /// gap must be such a refusal. (PortWriterTests fills the tty until the kernel cuts writes,
    /// which this live run rarely does.)
    private func interleavedWriters() throws -> FaultRow {
        let scanner = try scanningInContact()
        defer { scanner.stop() }
        let link = scanner.boards.arm
        let sender = scanner.boards.armSender
        let before = (board: scanner.armBoard.runner.statistics, loopSent: sender.sent, loopRefused: sender.failed)
        let running = Atomic<Bool>(true)
        let extra = Atomic<UInt64>(0)
        let extraRefused = Atomic<UInt64>(0)
        let group = DispatchGroup()
        for _ in 0..<2 {
            DispatchQueue.global().async(group: group) {
                while running.load(ordering: .relaxed) {
                    if (try? link.send(.heartbeat(Heartbeat(state: .active)))) != nil {
                        extra.add(1, ordering: .relaxed)
                    } else {
                        extraRefused.add(1, ordering: .relaxed)
                    }
                    usleep(500)
                }
            }
        }
        Thread.sleep(forTimeInterval: 2)
        running.store(false, ordering: .relaxed)
        group.wait()
        Thread.sleep(forTimeInterval: 0.1)
        let after = scanner.armBoard.runner.statistics
        let damaged = after.receive.droppedFrames - before.board.receive.droppedFrames
        let gaps = after.hostLostFrames - before.board.hostLostFrames
        let refused = (sender.failed - before.loopRefused) + extraRefused.load(ordering: .relaxed)
        let received = after.receive.frames - before.board.receive.frames
        let stops = scanner.stops.count
        return FaultRow(scenario: "interleaved writers", expected: "0 damaged frames at the board, none lost",
                        observed: "\(sender.sent - before.loopSent) loop + \(extra.load(ordering: .relaxed)) extra link frames "
                            + "in 2 s; board decoded \(received), \(damaged) damaged, \(gaps) missing (\(refused) refused whole "
                            + "by the writer); \(link.cutWrites) cut writes finished; \(stops) stops",
                        safeMillis: nil, forceN: nil, holds: damaged == 0 && gaps <= refused && stops == 0)
    }

    /// Finding 14: a USB probe whose GET_INFO announces a 4 GiB frame, through the real libusb
    /// driver on the emulated probe: refused before any buffer is sized from it.
    private func probeAnnouncingHugeFrames() throws -> FaultRow {
        let name = "USB probe announcing a 4 GiB frame"
        let expected = "probe refused naming max_frame_bytes, no allocation"
        let suffix = Self.sequence.add(1, ordering: .relaxed).newValue
        let probe: EmulatedUSBProbe
        do { probe = try EmulatedUSBProbe.plug(serial: "PRB-FI\(suffix)", announcedMaxFrameBytes: .max) } catch {
            throw FaultError("cannot plug the emulated probe: \(error)")
        }
        defer { if probe.isPlugged { probe.unplug() } }
        let before = Self.peakResidentMiB()
        let imaging = ProbeImagingSettings(depthMM: 160, gainCentiDB: 0, rateCentiFPS: 3_000, width: 128, height: 128)
        let source = try USBProbeSource(configuration: USBProbeConfiguration(serial: "PRB-FI\(suffix)", imaging: imaging,
                                                                             reconnectInterval: 0.1))
        try source.start()
        var refusal = ""
        // Streaming within 3 s would be the failure; the refusal is what the driver says instead.
        do { try source.waitUntilStreaming(seconds: 3) } catch { refusal = error.description }
        source.close()
        let grown = Self.peakResidentMiB() - before
        let named = refusal.contains("max_frame_bytes 4294967295")
        return FaultRow(scenario: name, expected: expected,
                        observed: (named ? "refused: max_frame_bytes 4294967295 is larger than the largest frame"
                                   : (refusal.isEmpty ? "STREAMING" : "refused: \(refusal.prefix(100))"))
                            + String(format: "; peak memory +%.0f MiB", grown),
                        safeMillis: nil, forceN: nil, holds: named && grown < 64)
    }

    /// The process's peak resident set, MiB (getrusage).
    private static func peakResidentMiB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1_024
    }

    private func boardWithoutWatchdog() throws -> FaultRow {
        let bench = try requireBench()
        let robot = try Self.robot(rig)
        let suffix = "FI\(Self.sequence.add(1, ordering: .relaxed).newValue)"
        let firmware = ArmFirmware(serial: "ARM-\(suffix)", capabilities: [.jointPositionControl, .currentLimit, .estopInput, .brakes],
                                   configuration: ArmBoardConfiguration(robot: robot))
        let board = try BenchBoard(firmware: firmware, device: .arm(serial: "ARM-\(suffix)"), bench: bench)
        defer { board.unplug() }
        let events = Mutex<[LinkEvent]>([])
        let boards = ScannerBoards(arm: .path(board.devnode), forceSensor: .path("/dev/null"), armJointCount: robot.joints.count,
                                   onLinkEvent: { kind, event in if kind == .arm { events.withLock { $0.append(event) } } })
        let start = MonotonicClock.nowMicros()
        boards.arm.start()
        defer { boards.arm.stop() }
        var refusal: String?
        var connected = false
        let deadline = start + 2_000_000
        while refusal == nil && !connected && MonotonicClock.nowMicros() < deadline {
            Thread.sleep(forTimeInterval: 0.01)
            for event in events.withLock({ $0 }) {
                if case .connectFailed(_, let reason, _) = event, reason.contains("lacks") { refusal = reason }
                if case .connected = event { connected = true }
            }
        }
        let named = refusal?.contains("host_watchdog") == true && refusal?.contains("command_watchdog") == true
        return FaultRow(scenario: "arm board without host_watchdog", expected: "link refuses the board, naming it",
                        observed: refusal.map { "refused: \($0.split(separator: ":").last.map(String.init) ?? $0)" }
                            ?? (connected ? "ACCEPTED" : "no answer"),
                        safeMillis: refusal != nil ? Self.millis(since: start) : nil, forceN: nil, holds: named && !connected)
    }
}

extension FaultScenarios {
    /// A scratch directory for one scenario's files, removed by the caller.
    fileprivate static func scratchDirectory(_ tag: String) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sono-faults-\(getpid())-\(tag)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Runs `name`, the build's binary beside this one, to its end; its exit status, its
    /// stdout and stderr together, and when it started (monotonic µs).
    fileprivate static func runSibling(_ name: String, _ arguments: [String]) throws -> (status: Int32, output: String, startMicros: UInt64) {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: executable) else { throw FaultError("no \(name) at \(executable)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let start = MonotonicClock.nowMicros()
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text, start)
    }

    /// Finding 2, through the whole daemon: `sonod-sim` scans the rig's patient and, once the
    /// probe has pressed on it for 1.5 s, the simulated probe is unplugged (`unplug`) or every
    /// frame reaches the pipeline 400 ms old (`stall`). No fresh frame reaches the planner, so
    /// nothing renews the contact lease: the scan ends and the probe lifts off, with no stop.
    fileprivate func probeFaultInDaemon(_ fault: DaemonProbeFault) throws -> FaultRow {
        let name = fault == .unplug ? "probe unplugged in contact" : "frame pipeline stalled in contact"
        let expected = fault == .unplug ? "lease expires, scan ends, lift-off, no stop"
            : "stale frames unused, lease expires, lift-off, no stop"
        let directory = try Self.scratchDirectory("\(fault)")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let summaryPath = "\(directory)/summary.json"
        let (status, text, _) = try Self.runSibling("sonod-sim", [
            rig.patient, "--scan", "PLAX", "--exit-when-done", "--summary", summaryPath, "--no-recording",
            "--socket", "\(directory)/control.sock", "--inject-probe-fault", fault.rawValue])
        guard let data = FileManager.default.contents(atPath: summaryPath),
              let summary = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw FaultError("sonod-sim exited \(status) without a summary: \(text.suffix(300))")
        }
        let interruption = summary["interruption"] as? String ?? ""
        let stops = (summary["stops"] as? [Any])?.count ?? -1
        let faults = (summary["faults"] as? [Any])?.count ?? -1
        let line = text.split(separator: "\n").first { $0.hasPrefix("probe fault:") }.map(String.init) ?? ""
        let injected = line.contains("injected yes")
        let safe = line.range(of: #"off the skin (\d+) ms"#, options: .regularExpression).flatMap {
            Double(line[$0].split(separator: " ")[3])
        }
        let force = line.range(of: #"at exit [0-9.]+"#, options: .regularExpression).flatMap {
            Double(line[$0].split(separator: " ")[2])
        }
        let leaseExpired = interruption.contains("contact lease expired")
        let setUp = injected ? "" : " (the fault never struck: \(interruption.isEmpty ? "no contact" : interruption))"
        return FaultRow(scenario: name, expected: expected,
                        observed: (leaseExpired ? "scan ended: lease expired, lifted off" : "scan ended: \(interruption.prefix(80))")
                            + ", \(stops) stops, \(faults) faults" + setUp,
                        safeMillis: safe, forceN: force,
                        holds: injected && leaseExpired && stops == 0 && faults == 0 && safe != nil && (force ?? 99) < 0.5)
    }

    /// Finding 9: sonod (the service binary, beside this one) on hardware with a sono.toml whose
    /// stale-data deadline is looser than the hardware safety profile's 5 ms.
    fileprivate func siteFileLoosensDeadline() throws -> FaultRow {
        let hardware = URL(fileURLWithPath: rig.robot).standardizedFileURL.deletingLastPathComponent().path
        let directory = try Self.scratchDirectory("site-file")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = "\(directory)/sono.toml"
        try """
            [files]
            robot = "\(hardware)/arm.toml"
            safety = "\(hardware)/safety.toml"
            scan_prior = "\(hardware)/scan-prior.toml"
            [devices]
            arm = "/dev/sono-faults-no-arm"
            force_sensor = "/dev/sono-faults-no-force"
            probe = "none"
            [recording]
            directory = "\(directory)/sessions"
            mcap = false
            [control]
            socket = "\(directory)/control.sock"
            [realtime]
            stale_deadline_ms = 10
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let (status, text, start) = try Self.runSibling("sonod", ["--config", config, "--no-recording"])
        let named = text.contains("realtime.stale_deadline_ms = 10") && text.contains("looser than the safety profile")
        return FaultRow(scenario: "sono.toml loosening a deadline", expected: "sonod refuses to start: exit 78 naming the key",
                        observed: "exit \(status)" + (named ? ", names realtime.stale_deadline_ms against profile 'hardware'" : ", key NOT named"),
                        safeMillis: status == 78 ? Self.millis(since: start) : nil, forceN: nil, holds: status == 78 && named)
    }

    /// Finding 9: moves with a NaN and a negative limit, as a faulty planner or caller would send.
    fileprivate func badMotionLimits() throws -> FaultRow {
        let scanner = try makeRig()
        defer { scanner.stop() }
        try scanner.start()
        try scanner.controller.perform(.safety(.enable))
        try scanner.controller.perform(.safety(.enableMotion))
        Thread.sleep(forTimeInterval: 0.2)
        let before = scanner.truth.probe.position
        var target = scanner.controller.status.probe
        target.position += target.rotation.x * 10
        var nan = MotionLimits()
        nan.speedMMs = .nan
        var negative = MotionLimits()
        negative.accelerationMMs2 = -200
        var refused: [String] = []
        for limits in [nan, negative] {
            do { _ = try scanner.controller.perform(.move(to: target, limits: limits)) } catch {
                if case .invalidLimits(let bad) = error { refused.append(bad.field) }
            }
        }
        Thread.sleep(forTimeInterval: 0.3)
        let drift = (scanner.truth.probe.position - before).length
        let started = Self.saw(scanner) { if case .moveStarted = $0 { true } else { false } }
        return FaultRow(scenario: "NaN / negative motion limits", expected: "move refused naming the field, arm still",
                        observed: String(format: "refused %@; moved %.2f mm", refused.joined(separator: ", "), drift),
                        safeMillis: nil, forceN: nil,
                        holds: refused == ["speed_mm_s", "acceleration_mm_s2"] && !started && drift < 0.1)
    }
}

/// `sonod-sim --inject-probe-fault` (SonoSimHost.ProbeFault): the daemon-level rows.
enum DaemonProbeFault: String {
    case unplug, stall
}

struct FaultError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
