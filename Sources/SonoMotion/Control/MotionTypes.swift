public import SonoGeometry
public import SonoProtocol

/// What the boards deliver to the control loop (through lock-free queues from the link threads).
public enum BoardInput: Sendable, Equatable {
    /// A force/torque sample with the board's timestamp and the host's receive time, µs.
    case force(ForceTorqueSample, boardMicros: UInt64, receivedMicros: UInt64)
    case joints(JointState, receivedMicros: UInt64)
    case estop(engaged: Bool)
    case fault(FaultReport, board: BoardKind)
    case ack(ackedType: UInt8, board: BoardKind)
    case nack(ackedType: UInt8, reason: NackReason, board: BoardKind)
    /// A link connected (alive) or lost its board.
    case link(BoardKind, alive: Bool)
}

/// A request to the motion controller, from the planner or the control socket.
public enum MotionCommand: Sendable, Equatable {
    /// An interlock command: enable, disable, start/stop scan, stops, resume, reset.
    case safety(SafetyCommand)
    /// Move the probe to `pose` on a jerk-limited trajectory (default limits when nil).
    case move(to: Pose, limits: MotionLimits?)
    /// Hold the given contact force along the probe axis while moving (nil: position only).
    case contact(forceN: Double?)
    /// Cancel the current move and hold where the probe is going now.
    case hold
    /// The operator's enabling (dead-man) switch.
    case deadMan(held: Bool)
    /// Renews the contact lease for `SafetyLimits.contactLeaseMicros`: the supervising client
    /// (the scan planner, or an operator holding contact) says it is alive and still sees the
    /// patient. Contact without a live lease lifts the probe off.
    case renewContactLease
    /// The operator's patient release after a category 0/1 stop (accepted in `emergency_stop`
    /// and `fault`): powers the drives, retracts the probe along its axis at the release speed,
    /// force-limited and with every other interlock active, then stops and powers off again.
    case release
}

/// Why the controller lifted the probe off the patient on its own.
public enum LiftOffReason: String, Sendable, Equatable, CustomStringConvertible {
    /// Contact was held without its lease being renewed in time (planner or frames silent).
    case leaseExpired = "lease_expired"
    /// The scan ended (stopped, cancelled, failed) with the probe in contact.
    case scanEnded = "scan_ended"

    public var description: String {
        switch self {
        case .leaseExpired: "the contact lease expired (its supervisor stopped renewing it)"
        case .scanEnded: "the scan ended with the probe in contact"
        }
    }
}

/// Why a release cannot start.
public enum ReleaseRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// Release is for the stopped states; in others the operator moves the probe normally.
    case notStopped(SafetyState)
    /// The e-stop circuit is open: the drives cannot be powered.
    case estopEngaged
    /// A condition that makes powered motion unsafe (stale data, a lost board, …).
    case causePresent(SafetyBreach)
    /// A retraction or release is already under way.
    case busy

    public var description: String {
        switch self {
        case .notStopped(let state): "release is accepted in emergency_stop and fault, not in \(state.rawValue)"
        case .estopEngaged: "the e-stop circuit is open: release the e-stop button first, the drives cannot be powered"
        case .causePresent(let breach):
            "refused: \(breach.cause.rawValue) (\(breach.value) against \(breach.limit)) makes powered motion unsafe"
        case .busy: "a retraction or release is already under way"
        }
    }
}

/// Why the controller refused a command.
public enum MotionRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    case safety(SafetyStateMachine.Refusal)
    case target(SafetyStateMachine.TargetRejection)
    case forceOutOfRange(Double, allowed: ClosedRange<Double>)
    case noJointState
    case notRunning
    case timedOut(millis: Int)
    /// The command reached the loop after its deadline and was dropped without effect.
    case expired(millis: Int)
    case queueFull
    case release(ReleaseRefusal)
    /// The probe is lifting off: moves and contact wait until it is clear.
    case liftingOff
    /// A move's limits are not finite positive numbers (the field named).
    case invalidLimits(MotionLimitsError)

    public var description: String {
        switch self {
        case .safety(let refusal): refusal.description
        case .target(let rejection): "target rejected: \(rejection)"
        case .forceOutOfRange(let force, let allowed):
            "contact force \(force) N is outside the accepted \(allowed.lowerBound)…\(allowed.upperBound) N"
        case .noJointState: "no joint state from the arm yet: cannot plan from an unknown pose"
        case .notRunning: "the motion controller is not running"
        case .timedOut(let millis): "the control loop did not answer within \(millis) ms"
        case .expired(let millis):
            "the control loop reached the command after its \(millis) ms deadline and dropped it without effect"
        case .queueFull: "the control loop's command queue is full"
        case .release(let refusal): refusal.description
        case .liftingOff: "the probe is lifting off the patient; moves and contact are refused until it is clear"
        case .invalidLimits(let error): "move refused: \(error)"
        }
    }
}

/// One stop the controller issued, with the timing the breach-to-stop benchmark reports.
public struct StopRecord: Sendable, Equatable {
    public var kind: StopKind
    /// Nil for operator stops.
    public var breach: SafetyBreach?
    public var cycle: UInt64
    /// The cycle's time, µs (host monotonic clock).
    public var decidedMicros: UInt64
    /// The latest force sample at the time: the board's stamp and the host's receive time.
    public var forceBoardMicros: UInt64
    public var forceReceivedMicros: UInt64
    /// The cycle that first saw that sample: equal to `cycle` when the stop went out on the
    /// cycle the breaching sample arrived for.
    public var forceSampleCycle: UInt64
    /// When the STOP frame's write returned, µs; nil if it could not be written (resent next cycle).
    public var writtenMicros: UInt64?
}

/// Something the controller did, for the event log, the control socket and tests.
public enum MotionEvent: Sendable, Equatable {
    case reply(ticket: UInt64, Result<SafetyState, MotionRefusal>)
    case transition(from: SafetyState, to: SafetyState, micros: UInt64)
    case stop(StopRecord)
    case stopAcknowledged(micros: UInt64)
    /// The arm board acknowledged a `SET_DRIVES` (on or off, whichever was sent last).
    case drivesAcknowledged(micros: UInt64)
    case moveStarted(duration: Double)
    case moveFinished(micros: UInt64)
    /// The target could not be tracked (IK residual) or was rejected by the interlocks; the
    /// move was cancelled and the arm holds.
    case moveAborted(MoveAbort)
    case retractStarted(micros: UInt64)
    case retractFinished(micros: UInt64, distanceMM: Double)
    case retractAborted(MoveAbort)
    /// The probe lifts off along its axis to the lift-off clearance and holds there.
    case liftOffStarted(LiftOffReason, micros: UInt64)
    case liftOffFinished(micros: UInt64, distanceMM: Double)
    case liftOffAborted(MoveAbort)
    /// The operator's release after a category 0/1 stop.
    case releaseStarted(micros: UInt64)
    case releaseFinished(micros: UInt64, distanceMM: Double)
    case releaseAborted(MoveAbort)
    case boardFault(FaultReport, BoardKind)
    case boardRefused(ackedType: UInt8, reason: NackReason, BoardKind)
    case sendFailed(MessageType)
}

/// Why a move (or the over-force retraction) ended early. Values, not strings: the loop
/// that reports them must not allocate.
public enum MoveAbort: Sendable, Equatable, CustomStringConvertible {
    /// Inverse kinematics could not follow the target (out of reach or at a joint limit).
    case trackingError(positionMM: Double, orientationRad: Double)
    case rejected(SafetyStateMachine.TargetRejection)
    /// Another interlock opened during the retraction.
    case breach(SafetyBreach)
    /// The arm did not come to rest after the stop.
    case holdTimeout
    /// The arm board did not power its drives for a release (NACK or no answer).
    case drivesRefused
    /// The axial force rose during a release (N): the probe is pressing, not retracting.
    case forceRose(Double)

    public var description: String {
        switch self {
        case .trackingError(let position, let orientation):
            "cannot follow the target: \(position) mm / \(orientation) rad away (out of reach or at a joint limit)"
        case .rejected(let rejection): "target rejected: \(rejection)"
        case .breach(let breach): "\(breach.cause.rawValue) (\(breach.value) against \(breach.limit))"
        case .holdTimeout: "the arm did not come to rest after the stop"
        case .drivesRefused: "the arm board did not power its drives for the release"
        case .forceRose(let force): "the axial force rose to \(force) N during the release"
        }
    }
}

/// The controller's state as readers see it (published once per cycle).
public struct MotionStatus: Sendable, Equatable {
    public var cycle: UInt64 = 0
    public var micros: UInt64 = 0
    public var state: SafetyState = .disabled
    public var latched: SafetyBreach?
    /// Force in the probe frame, N (+z presses into the body).
    public var force: Vector3 = .zero
    public var probe: Pose = .identity
    public var tipSpeedMMs = 0.0
    public var contactTargetN: Double?
    public var forceLimited = false
    public var moving = false
    public var retracting = false
    /// The controller is lifting the probe off (`lastLiftOff` says why).
    public var liftingOff = false
    public var lastLiftOff: LiftOffReason?
    /// The operator's release is under way.
    public var releasing = false
    /// The probe counts as in contact (a contact force is held or the axial force is above
    /// `contactDetectN`), and how long its lease has left, µs (0: expired or never taken).
    public var inContact = false
    public var leaseRemainingMicros: UInt64 = 0
    public var haveJointState = false
    /// The force board reported a latched fault that its CLEAR_FAULTS has not cleared yet (a
    /// reset needs that first).
    public var forceBoardFault = false
    /// The arm board's own status from its latest JOINT_STATE.
    public var armStatus: ArmStatus = []
    /// Joint positions, rad.
    public var joints = JointArray<Double>(count: 0, filler: 0)
    /// The largest contact force (z, N) since the controller started or since
    /// `MotionController.resetPeaks()`, over every control cycle.
    public var forcePeakN = 0.0
    /// Age of the force sample and of the joint state the interlocks judged on this cycle
    /// (from their arrival at the host to the cycle's time), µs; 0 until the first arrived.
    /// The stale-data interlocks trip when one exceeds its deadline.
    public var forceAgeMicros: UInt64 = 0
    public var jointAgeMicros: UInt64 = 0
    /// The largest of those ages since the controller started or since
    /// `MotionController.resetPeaks()`: how close the inputs came to their deadlines.
    public var forceAgePeakMicros: UInt64 = 0
    public var jointAgePeakMicros: UInt64 = 0

    public init() {}
}

/// Writes messages to the arm board from the control loop. Implementations must not allocate,
/// lock or block (`RealTimeSender` writes with one non-blocking write(2)).
public protocol ArmCommandOutput: Sendable {
    /// True when the whole frame was written.
    func send(_ message: Message) -> Bool
}
