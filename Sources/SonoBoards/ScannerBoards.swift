public import SonoDevices
public import SonoProtocol
public import SonoMotion
import SonoSystem
import Synchronization

extension RealTimeSender: ArmCommandOutput {
    public func send(_ message: Message) -> Bool { send(message) == .sent }
}

/// The arm and force-sensor boards wired to a motion controller: each board's link thread feeds
/// the controller's input queue, and the loop writes to the arm through a `RealTimeSender`.
/// ros2_control's split: these are the hardware interfaces; the controller knows only queues.
public final class ScannerBoards: Sendable {
    public let arm: BoardLink
    public let forceSensor: BoardLink
    public let armSender: RealTimeSender
    public let inputs: MotionInputs
    private let forceProgress = ForceSampleProgress()
    private let readings = FreeAirReadings()

    /// `readerPriority`: SCHED_FIFO priority of the link threads, below the control loop's.
    /// `armJointCount`: the joints of the arm model (hardware/arm.toml); an arm board driving
    /// another number is refused, as is one without the host and command watchdogs.
    public init(arm: SerialPortSelector, forceSensor: SerialPortSelector, armJointCount: Int?, readerPriority: Int32? = 70,
                onLinkEvent: @escaping @Sendable (BoardKind, LinkEvent) -> Void = { _, _ in }) {
        let inputs = MotionInputs()
        self.inputs = inputs
        var armLink = BoardLinkConfiguration(name: "arm", port: arm, expectedKind: .arm)
        armLink.requiredCapabilities = [.jointPositionControl, .hostWatchdog, .commandWatchdog]
        armLink.expectedJointCount = armJointCount
        armLink.realTimePriority = readerPriority
        var forceLink = BoardLinkConfiguration(name: "force sensor", port: forceSensor, expectedKind: .forceTorque)
        forceLink.realTimePriority = readerPriority
        let readings = self.readings
        self.arm = BoardLink(armLink,
                             onFrame: { frame, received in
                                 if case .jointState(let state) = frame.message { readings.note(state) }
                                 inputs.arm(frame, receivedAt: received)
                             },
                             onEvent: { event in
                                 inputs.link(.arm, alive: event.isConnected)
                                 onLinkEvent(.arm, event)
                             })
        let forceProgress = self.forceProgress
        self.forceSensor = BoardLink(forceLink,
                                     onFrame: { frame, received in
                                         if case .forceTorqueSample(let sample) = frame.message {
                                             forceProgress.note(sample.status)
                                             readings.note(sample)
                                         }
                                         inputs.forceSensor(frame, receivedAt: received)
                                     },
                                     onEvent: { event in
                                         inputs.link(.forceTorque, alive: event.isConnected)
                                         onLinkEvent(.forceTorque, event)
                                     })
        armSender = RealTimeSender(link: self.arm)
    }

    public func start() {
        arm.start()
        forceSensor.start()
    }

    /// Tells both boards the interlocks' state through the host's heartbeats (PROTOCOL.md §3.2).
    public func reportHostState(_ state: SafetyState) {
        let board: BoardState = switch state {
        case .disabled, .ready: .ready
        case .operatorEnabled, .scanning: .active
        case .protectiveStop: .stopped
        case .emergencyStop: .emergencyStop
        case .fault: .fault
        }
        arm.reportHostState(board)
        forceSensor.reportHostState(board)
    }

    public func stop() {
        arm.stop()
        forceSensor.stop()
    }

    /// Zeroes the force sensor (PROTOCOL.md §3.14): sends TARE, and once it is acknowledged
    /// waits for a sample that no longer says `tare_in_progress` (the sensor averages its next
    /// 100 samples). Returns how long the zeroing took.
    /// - Throws: `TareError.refused` when the link could not get an ACK (NACK, timeout, not
    ///   connected); `.unfinished` when no finished sample came within `timeoutMillis` of the ACK.
    @discardableResult
    public func tare(timeoutMillis: Int) throws(TareError) -> Double {
        let begun = MonotonicClock.nowMicros()
        do { _ = try forceSensor.request(.tare) } catch { throw .refused("\(error)") }
        let acknowledged = forceProgress.samples
        let deadline = MonotonicClock.nowMicros() + UInt64(max(0, timeoutMillis)) * 1_000
        while MonotonicClock.nowMicros() < deadline {
            // The samples counted after the ACK carry the sensor's status after it took the TARE.
            if forceProgress.samples > acknowledged, !forceProgress.status.contains(.tareInProgress) {
                return Double(MonotonicClock.nowMicros() - begun) / 1e6
            }
            MonotonicClock.sleep(untilNanos: MonotonicClock.nowNanos() + 1_000_000)
        }
        throw .unfinished(waitedMillis: timeoutMillis)
    }

    /// Zeroes the force sensor only when the probe is known to be free: the arm at its home
    /// pose (every joint within `jointToleranceRad` of `home`, hardware/arm.toml) and the force
    /// steady over 100 ms (peak to peak under `steadyN`: a probe resting on a breathing patient
    /// is not). Otherwise the sensor keeps the zero it has (the last good one) and the refusal
    /// says why. Call before the control loop runs, off the link threads.
    /// - Throws: `TareError.notFree` naming the joint or the force that failed the check;
    ///   the errors of `tare(timeoutMillis:)`.
    public func tareIfFree(home: [Double], jointToleranceRad: Double = 0.05, steadyN: Double = 1.0,
                           timeoutMillis: Int) throws(TareError) -> Double {
        let window = readings.collect(forMillis: 100)
        guard let joints = window.joints else { throw .notFree("no joint state from the arm: its pose is unknown") }
        guard joints.count == home.count else {
            throw .notFree("the arm reports \(joints.count) joints, hardware/arm.toml has \(home.count)")
        }
        for (index, position) in joints.enumerated() where !(abs(Double(position) - home[index]) <= jointToleranceRad) {
            throw .notFree(String(format: "the arm is not at its home pose (joint %d is %.3f rad from home, more than %.3f): "
                                  + "the probe may rest on the patient", index, abs(Double(position) - home[index]), jointToleranceRad))
        }
        guard window.samples >= 10, let range = window.forceRange else {
            throw .notFree("too few force samples (\(window.samples) in 100 ms) to check that the probe is free")
        }
        guard range.upperBound - range.lowerBound <= steadyN else {
            throw .notFree(String(format: "the force varies by %.2f N over 100 ms at home (more than %.2f N): something touches the probe",
                                  range.upperBound - range.lowerBound, steadyN))
        }
        return try tare(timeoutMillis: timeoutMillis)
    }

    /// Waits for both boards; nil when both are connected, else the name of the missing one.
    public func waitUntilConnected(timeoutMillis: Int) -> String? {
        if arm.waitUntilConnected(timeoutMillis: timeoutMillis) == nil { return "arm" }
        if forceSensor.waitUntilConnected(timeoutMillis: timeoutMillis) == nil { return "force sensor" }
        return nil
    }
}

extension LinkEvent {
    var isConnected: Bool {
        if case .connected = self { true } else { false }
    }
}

/// Why the force sensor could not be zeroed.
public enum TareError: Error, Sendable, CustomStringConvertible {
    case refused(String)
    case unfinished(waitedMillis: Int)
    /// The probe is not known to be free: zeroing now would shift every force limit by its load.
    case notFree(String)

    public var description: String {
        switch self {
        case .refused(let reason): "TARE was not acknowledged: \(reason)"
        case .unfinished(let millis):
            "the force sensor still reported tare_in_progress \(millis) ms after acknowledging TARE"
        case .notFree(let reason): "not zeroed (the sensor keeps its last zero): \(reason)"
        }
    }
}

/// The force sensor's latest sample status and how many samples have come: what shows that a
/// TARE has finished. The link thread writes, `tare` reads.
/// The arm's joint positions and the axial force over a window, for the free-air check made
/// before the control loop runs. The link threads note readings only while a window is open,
/// so normal operation takes no lock on their path.
private final class FreeAirReadings: Sendable {
    struct Window: Sendable {
        var joints: [Float]?
        var samples = 0
        var forceRange: ClosedRange<Double>?
    }
    private let open = Atomic<Bool>(false)
    private let window = Mutex(Window())

    func note(_ state: JointState) {
        guard open.load(ordering: .acquiring) else { return }
        var positions: [Float] = []
        for index in 0..<state.joints.count { positions.append(state.joints[index].position) }
        window.withLock { $0.joints = positions }
    }

    func note(_ sample: ForceTorqueSample) {
        guard open.load(ordering: .acquiring) else { return }
        let magnitude = Double((sample.fx * sample.fx + sample.fy * sample.fy + sample.fz * sample.fz).squareRoot())
        window.withLock { w in
            w.samples += 1
            guard magnitude.isFinite else { return }
            w.forceRange = w.forceRange.map { min($0.lowerBound, magnitude)...max($0.upperBound, magnitude) } ?? magnitude...magnitude
        }
    }

    /// Opens a window, waits `millis`, closes it and returns what was noted.
    func collect(forMillis millis: Int) -> Window {
        window.withLock { $0 = Window() }
        open.store(true, ordering: .releasing)
        MonotonicClock.sleep(untilNanos: MonotonicClock.nowNanos() + UInt64(max(0, millis)) * 1_000_000)
        open.store(false, ordering: .releasing)
        return window.withLock { $0 }
    }
}

private final class ForceSampleProgress: Sendable {
    private let count = Atomic<UInt64>(0)
    private let latest = Atomic<UInt16>(0)

    func note(_ status: ForceTorqueStatus) {
        latest.store(status.rawValue, ordering: .relaxed)
        count.add(1, ordering: .releasing)
    }

    var samples: UInt64 { count.load(ordering: .acquiring) }
    var status: ForceTorqueStatus { ForceTorqueStatus(rawValue: latest.load(ordering: .relaxed)) }
}
