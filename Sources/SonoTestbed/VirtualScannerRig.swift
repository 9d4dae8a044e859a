import Foundation
public import SonoBoards
public import SonoCore
import SonoDevices
public import SonoGeometry
public import SonoMotion
import SonoProtocol
public import SonoSim
import SonoSystem
import Synchronization

/// The whole control path against the virtual patient, hardware-free but real from the serial
/// driver up: the simulated arm and force boards run on emulated USB serial devices, and the
/// motion controller drives them through `ScannerBoards` (libserialport, the link layer, the
/// lock-free queues and the real-time sender). For tests and benchmarks (sonod-sim wires its own, SonoSimHost.SimulatedHardware).
public final class VirtualScannerRig: Sendable {
    public let robot: RobotDescription
    public let world: VirtualPatient
    public let geometry: StandardViewGeometry
    public let armBoard: BenchBoard
    public let forceBoard: BenchBoard
    public let boards: ScannerBoards
    public let controller: MotionController
    private let recorded = EventLog()
    private let scannerState: ScannerState

    public enum RigError: Error, CustomStringConvertible {
        case setup(String)
        public var description: String {
            switch self { case .setup(let reason): "virtual scanner rig: \(reason)" }
        }
    }

    /// `wrench` replaces the patient's contact force with a settable one (for benchmarks that
    /// inject force directly); the arm still moves the probe in the virtual patient.
    public init(robotPath: String, patientPath: String, configuration: MotionControllerConfiguration,
                serialSuffix: String, wrench: SettableWrench? = nil) throws {
        let bench = try EmulatedSerialBench.shared()
        do {
            robot = try RobotDescription.load(path: robotPath)
            world = VirtualPatient(try PatientParameters.load(path: patientPath))
        } catch { throw RigError.setup("\(error)") }
        geometry = StandardViewGeometry(patient: world)
        let scanner = SimulatedScanner(patient: world, kinematics: robot, arm: ArmBoardConfiguration(robot: robot),
                                       sensorOffsetMM: robot.tool.position.z)
        scannerState = scanner.state
        let forceFirmware = wrench.map { ForceSensorFirmware(serial: "FT-\(serialSuffix)", source: $0) } ?? scanner.forceSensor
        armBoard = try BenchBoard(firmware: scanner.arm, device: .arm(serial: "ARM-\(serialSuffix)"), bench: bench)
        forceBoard = try BenchBoard(firmware: forceFirmware, device: .forceSensor(serial: "FT-\(serialSuffix)"), bench: bench)
        let boards = ScannerBoards(arm: .path(armBoard.devnode), forceSensor: .path(forceBoard.devnode),
                                   armJointCount: robot.joints.count)
        self.boards = boards
        let recorded = self.recorded
        controller = MotionController(arm: try ArmModel(robot), configuration: configuration, inputs: boards.inputs,
                                      output: boards.armSender, onEvent: { event in
                                          if case .transition(_, let to, _) = event { boards.reportHostState(to) }
                                          recorded.append(event)
                                      })
    }

    /// Connects both boards, zeroes the force sensor and starts the control loop (tests leave
    /// their process's memory unlocked; benchmarks lock it as the daemon does).
    public func start(lockMemory: Bool = false) throws {
        boards.start()
        if let missing = boards.waitUntilConnected(timeoutMillis: 3_000) {
            throw RigError.setup("the simulated \(missing) board did not connect")
        }
        do { _ = try boards.tareIfFree(home: robot.home, timeoutMillis: 500) } catch { throw RigError.setup("\(error)") }
        controller.start(lockMemory: lockMemory)
        let deadline = Date().addingTimeInterval(2)
        while !controller.status.haveJointState && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
    }

    /// The rig's stand-in for the contact's supervisor (the planner, or an operator's hold):
    /// while on, a thread renews the contact lease every 50 ms. Off: the supervisor falls silent
    /// and the controller lifts the probe off when the lease runs out.
    public func holdContactLease(_ hold: Bool) {
        leaseHeld.store(hold, ordering: .relaxed)
        guard hold, !leaseThreadRunning.exchange(true, ordering: .relaxed) else { return }
        let thread = Thread { [self] in
            ThreadScheduling.nameCurrentThread("rig-lease")
            while leaseThreadRunning.load(ordering: .relaxed) {
                if leaseHeld.load(ordering: .relaxed) { controller.renewContactLease() }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        thread.start()
    }

    private let leaseHeld = Atomic<Bool>(false)
    private let leaseThreadRunning = Atomic<Bool>(false)

    public func stop() {
        leaseThreadRunning.store(false, ordering: .relaxed)
        controller.stop()
        boards.stop()
        armBoard.unplug()
        if forceBoardPlugged { forceBoard.unplug() }
    }

    private let forceUnplugged = Atomic<Bool>(false)
    private var forceBoardPlugged: Bool { !forceUnplugged.load(ordering: .relaxed) }

    /// Pulls the force sensor's USB cable.
    public func unplugForceSensor() {
        if !forceUnplugged.exchange(true, ordering: .relaxed) { forceBoard.unplug() }
    }

    /// The simulator's truth: the probe's pose and its contact with the patient.
    public var truth: ScannerState.Value { scannerState.current }

    public var events: [MotionEvent] { recorded.events }
    public func clearEvents() { recorded.clear() }

    public var stops: [StopRecord] { events.compactMap { if case .stop(let record) = $0 { record } else { nil } } }

    /// Polls `condition` every millisecond until it holds or `seconds` pass.
    @discardableResult
    public func wait(seconds: Double, until condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.001)
        }
        return condition()
    }

    /// Enables motion and brings the probe to `view`'s window, in contact at `forceN`.
    public func makeContact(at view: StandardView, forceN: Double, hoverMM: Double = 25) throws {
        guard let canonical = geometry.canonical[view] else { throw RigError.setup("no canonical pose for \(view)") }
        try controller.perform(.safety(.enable))
        try controller.perform(.safety(.enableMotion))
        var hover = canonical
        hover.position -= canonical.rotation.z * hoverMM
        // Over the window first, high enough to clear the chest, then down to the hover pose.
        var above = hover
        above.position.z = max(hover.position.z, controller.status.probe.position.z) + 30
        for pose in [above, hover] {
            do { try controller.perform(.move(to: pose, limits: nil)) } catch {
                let status = controller.status
                throw RigError.setup("move to \(view) refused: \(error); state \(status.state.rawValue), latched "
                    + "\(status.latched.map { "\($0.cause.rawValue) \($0.value) against \($0.limit)" } ?? "nothing"); "
                    + "last events: \(events.suffix(4))")
            }
            guard wait(seconds: 15, until: { !controller.status.moving }) else {
                throw RigError.setup("move to \(view) timed out; last events: \(events.suffix(4))")
            }
        }
        holdContactLease(true)
        try controller.perform(.contact(forceN: forceN))
        // Contact is made when the force has been within 1 N of the target for 200 ms.
        var steadySince: Date?
        let settled = wait(seconds: 15) {
            let force = controller.status.force.z
            if abs(force - forceN) < 1 { steadySince = steadySince ?? Date() } else { steadySince = nil }
            return steadySince.map { Date().timeIntervalSince($0) > 0.2 } ?? false
        }
        guard settled else {
            throw RigError.setup("contact at \(forceN) N not reached (force \(controller.status.force.z) N); last events: \(events.suffix(6))")
        }
    }
}

/// Events as the controller's event thread delivers them.
final class EventLog: Sendable {
    private let log = Mutex<[MotionEvent]>([])
    func append(_ event: MotionEvent) { log.withLock { $0.append(event) } }
    var events: [MotionEvent] { log.withLock { $0 } }
    func clear() { log.withLock { $0.removeAll() } }
}
