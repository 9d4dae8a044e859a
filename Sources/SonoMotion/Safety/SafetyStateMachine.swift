public import SonoGeometry
public import SonoProtocol

/// The interlocks' states. Motion is allowed in `operatorEnabled` and `scanning` only.
public enum SafetyState: String, Sendable, Equatable, CaseIterable {
    /// Drives off.
    case disabled
    /// Drives on, holding; no motion until the operator enables it.
    case ready
    /// Motion allowed (operator's commands, e.g. jogging or positioning).
    case operatorEnabled = "operator_enabled"
    /// Motion allowed, driven by the scan planner.
    case scanning
    /// Stopped and holding (category 2); `resume` once the cause is gone.
    case protectiveStop = "protective_stop"
    /// The e-stop circuit opened; `reset` after it is released.
    case emergencyStop = "emergency_stop"
    /// A latched fault; `reset` once its cause is gone.
    case fault

    public var allowsMotion: Bool { self == .operatorEnabled || self == .scanning }
}

/// What the interlocks see on one control cycle.
public struct SafetyInputs: Sendable, Equatable {
    public var nowMicros: UInt64
    /// Latest force in the probe frame (N) and when it arrived (host clock, µs).
    public var force: Vector3
    public var forceMicros: UInt64
    /// When the sensor took that sample (its own stamp, µs): the force rate is taken over
    /// sample times, since receive times bunch up when frames arrive together.
    public var forceSampleMicros: UInt64
    /// False when the sensor flags its sample (saturated, calibration invalid).
    public var forceTrusted: Bool
    public var jointPositions: JointArray<Double>
    public var jointVelocities: JointArray<Double>
    public var jointMicros: UInt64
    /// Probe tip position (chest frame, mm) and speed (mm/s), from forward kinematics.
    public var tipPosition: Vector3
    public var tipSpeedMMs: Double
    public var estopEngaged: Bool
    /// Both boards within their liveness deadlines.
    public var boardsAlive: Bool
    /// A board reports a latched fault of its own.
    public var boardFault: Bool
    public var deadManHeld: Bool
    /// The controller is moving the arm on purpose while stopped (the over-force retraction or
    /// the operator's release): standstill is not monitored meanwhile.
    public var supervisedMotion: Bool

    public init(nowMicros: UInt64, force: Vector3, forceMicros: UInt64, forceSampleMicros: UInt64? = nil,
                forceTrusted: Bool = true,
                jointPositions: JointArray<Double>, jointVelocities: JointArray<Double>, jointMicros: UInt64,
                tipPosition: Vector3, tipSpeedMMs: Double, estopEngaged: Bool = false, boardsAlive: Bool = true,
                boardFault: Bool = false, deadManHeld: Bool = false, supervisedMotion: Bool = false) {
        self.nowMicros = nowMicros
        self.force = force
        self.forceMicros = forceMicros
        self.forceSampleMicros = forceSampleMicros ?? forceMicros
        self.forceTrusted = forceTrusted
        self.jointPositions = jointPositions
        self.jointVelocities = jointVelocities
        self.jointMicros = jointMicros
        self.tipPosition = tipPosition
        self.tipSpeedMMs = tipSpeedMMs
        self.estopEngaged = estopEngaged
        self.boardsAlive = boardsAlive
        self.boardFault = boardFault
        self.deadManHeld = deadManHeld
        self.supervisedMotion = supervisedMotion
    }
}

/// Limits of one joint, radians and rad/s.
public struct JointSafetyLimits: Sendable, Equatable {
    public var lower: Double
    public var upper: Double
    public var maxVelocity: Double

    public init(lower: Double, upper: Double, maxVelocity: Double) {
        self.lower = lower
        self.upper = upper
        self.maxVelocity = maxVelocity
    }
}

/// An operator's (or the planner's) request to the interlocks.
public enum SafetyCommand: String, Sendable, Equatable, CaseIterable {
    case enable, disable
    case enableMotion = "enable_motion"
    case startScan = "start_scan"
    case stopScan = "stop_scan"
    case protectiveStop = "protective_stop"
    case emergencyStop = "emergency_stop"
    case resume, reset
}

/// A breach: its cause, the measured value and the limit it broke.
public struct SafetyBreach: Sendable, Equatable {
    public var cause: SafetyCause
    public var value: Double
    public var limit: Double
}

/// Something the interlocks did, for the event log and the control socket.
public struct SafetyEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case stop(SafetyBreach, StopKind)
        case transition(from: SafetyState, to: SafetyState)
    }

    public var kind: Kind
    public var micros: UInt64
}

/// The result of one cycle: whether the arm may move, and the stop to issue now, if any.
public struct SafetyOutput: Sendable, Equatable {
    public var state: SafetyState
    public var motionAllowed: Bool
    /// A stop to send to the arm board on this very cycle.
    public var stop: StopKind?
    /// The breach that caused it.
    public var breach: SafetyBreach?
    /// Retract the probe along its axis (over-force).
    public var backOff: Bool
    /// Axial force above the soft limit: the controller must not press further.
    public var forceLimited: Bool
    /// The over-force fault permits its one motion: retracting the probe along its axis.
    /// False as soon as anything else is wrong (stale data, e-stop, a limit).
    public var retractAllowed: Bool = false
}

/// The interlocks as a pure state machine: inputs are samples, timestamps and commands; outputs
/// are whether motion is allowed and which stop to issue. No I/O, no clock, no allocation in
/// `step`, so it can be tested exhaustively and run in the 1 kHz loop.
public struct SafetyStateMachine: Sendable {
    public let limits: SafetyLimits
    public let joints: [JointSafetyLimits]
    public private(set) var state: SafetyState = .disabled
    /// The breach that latched the current fault, emergency or protective stop.
    public private(set) var latched: SafetyBreach?
    /// The strongest stop issued since the arm last was allowed to move: a later breach whose
    /// reaction is stronger still gets it (a category 1 cause in a category 2 fault).
    public private(set) var strongestStop: StopKind?
    private var forceHistory = ForceHistory()
    /// An over-force is under way (above the cap, and not yet back under the soft limit): a new
    /// over-force breach is a rising edge, reacted to in every state that can still retract,
    /// unless the retraction (the reaction itself) is running.
    private var overForce = false
    /// Monitored standstill after a category 2 stop: since when the arm is to stand still, and
    /// where the tip stood once it had `standstillSettleMicros` to stop.
    private var standstill: (since: UInt64, reference: Vector3?)?

    public init(limits: SafetyLimits, joints: [JointSafetyLimits]) {
        self.limits = limits
        self.joints = joints
    }

    /// One control cycle: evaluates every check and reacts to the worst breach.
    public mutating func step(_ inputs: SafetyInputs) -> SafetyOutput {
        let breach = worstBreach(inputs) ?? standstillBreach(inputs)
        forceHistory.record(inputs.force.length, at: inputs.forceSampleMicros)
        let overForceNow = breach?.cause == .forceHardCap
        // Hysteresis: an over-force ends only once the force is back under the soft limit, so
        // noise around the cap is one over-force, not a train of them.
        defer { overForce = overForceNow || (overForce && !(inputs.force.length < limits.forceSoftLimitN)) }
        var stop: StopKind?
        var backOff = false
        if let breach, shouldReact(to: breach) {
            stop = enter(breach)
            backOff = breach.cause == .forceHardCap
        } else if overForceNow && !overForce && state == .fault && strongestStop == .category2 && !inputs.supervisedMotion {
            // A second over-force in the over-force fault (the patient pressed into the probe after
            // the retraction): the same reaction again, stop and back off.
            stop = .category2
            backOff = true
        }
        noteStandstill(inputs)
        let axial = inputs.force.z
        let overForceOnly = breach == nil || breach?.cause == .forceHardCap || breach?.cause == .forceRate
        return SafetyOutput(state: state, motionAllowed: state.allowsMotion && breach == nil, stop: stop,
                            breach: breach, backOff: backOff,
                            forceLimited: axial.isFinite ? axial > limits.forceSoftLimitN : true,
                            retractAllowed: state == .fault && latched?.cause == .forceHardCap && overForceOnly
                                && strongestStop == .category2)
    }

    /// Whether the arm is in a stopped state that keeps power on (category 2): the one where it
    /// could move without being commanded to.
    private var holdsPowered: Bool {
        (state == .protectiveStop || state == .fault) && strongestStop == .category2
    }

    /// Motion while the arm should stand still after a category 2 stop (checked once it had
    /// `standstillSettleMicros` to come to rest, against where it then stood).
    private func standstillBreach(_ inputs: SafetyInputs) -> SafetyBreach? {
        guard holdsPowered, !inputs.supervisedMotion, let standstill, let reference = standstill.reference else { return nil }
        let drift = (inputs.tipPosition - reference).length
        if drift > limits.standstillDisplacementMM {
            return SafetyBreach(cause: .standstillLost, value: drift, limit: limits.standstillDisplacementMM)
        }
        if inputs.tipSpeedMMs > limits.standstillSpeedMMs {
            return SafetyBreach(cause: .standstillLost, value: inputs.tipSpeedMMs, limit: limits.standstillSpeedMMs)
        }
        return nil
    }

    private mutating func noteStandstill(_ inputs: SafetyInputs) {
        guard holdsPowered else {
            standstill = nil
            return
        }
        if inputs.supervisedMotion || standstill == nil {
            standstill = (inputs.nowMicros, nil)
        } else if let since = standstill?.since, standstill?.reference == nil,
                  inputs.nowMicros &- since >= limits.standstillSettleMicros {
            standstill?.reference = inputs.tipPosition
        }
    }

    /// Whether a breach seen now changes anything: a stopped arm is not stopped again, except
    /// that the e-stop overrides everything and a fault overrides a protective stop.
    private func shouldReact(to breach: SafetyBreach) -> Bool {
        switch (state, breach.cause.reaction) {
        case (.emergencyStop, _): false
        case (_, .emergencyStop): true
        case (.disabled, _): false
        // A latched fault reacts again to a cause that needs a stronger stop than it got.
        case (.fault, .fault(let kind)), (.fault, .protectiveStop(let kind)):
            strongestStop.map { kind.rawValue < $0.rawValue } ?? true
        case (.protectiveStop, .fault): true
        case (.protectiveStop, .protectiveStop): false
        default: true
        }
    }

    private mutating func enter(_ breach: SafetyBreach) -> StopKind {
        latched = breach
        let kind: StopKind
        switch breach.cause.reaction {
        case .emergencyStop:
            state = .emergencyStop
            kind = .category0
        case .fault(let stop):
            state = .fault
            kind = stop
        case .protectiveStop(let stop):
            // A protective-stop cause in a fault adds its stop; the fault stays latched.
            if state != .fault { state = .protectiveStop }
            kind = stop
        }
        noteStop(kind)
        return kind
    }

    /// Notes a stop the controller sent on its own (a retraction's or release's end), so that
    /// later breaches are weighed against the arm's real state.
    mutating func noteStop(_ kind: StopKind) {
        if let strongest = strongestStop, strongest.rawValue <= kind.rawValue { return }
        strongestStop = kind
    }

    public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        case notAllowed(SafetyCommand, in: SafetyState)
        case causePresent(SafetyBreach)

        public var description: String {
            switch self {
            case .notAllowed(let command, let state): "\(command.rawValue) is not allowed in state \(state.rawValue)"
            case .causePresent(let breach):
                "refused: \(breach.cause.rawValue) still present (\(breach.value) against limit \(breach.limit))"
            }
        }
    }

    /// Applies a command, or refuses it with the reason. Stops are always accepted.
    public mutating func handle(_ command: SafetyCommand, _ inputs: SafetyInputs) throws(Refusal) -> SafetyOutput? {
        let breach = worstBreach(inputs)
        switch command {
        case .emergencyStop:
            if state == .emergencyStop { return nil }
            let stop = enter(SafetyBreach(cause: .emergencyStop, value: 1, limit: 0))
            return output(stop: stop, breach: latched)
        case .protectiveStop:
            switch state {
            case .disabled, .emergencyStop: return nil
            case .protectiveStop, .fault:
                // Already stopped: the stop is sent again (it ends a retraction under way), the
                // state and its latch stay.
                return output(stop: .category2, breach: latched)
            case .ready, .operatorEnabled, .scanning:
                let stop = enter(SafetyBreach(cause: .operatorStop, value: 1, limit: 0))
                return output(stop: stop, breach: latched)
            }
        case .disable:
            // Drives-off is accepted in every state. In a fault or an emergency stop the latch
            // stays (only `reset` clears it): the drives go off, the state does not change.
            noteStop(.category1)
            if state == .fault || state == .emergencyStop { return output(stop: .category1, breach: latched) }
            state = .disabled
            return output(stop: .category1, breach: nil)
        case .enable:
            guard state == .disabled else { throw .notAllowed(command, in: state) }
            if let breach { throw .causePresent(breach) }
            strongestStop = nil
            state = .ready
        case .enableMotion:
            guard state == .ready else { throw .notAllowed(command, in: state) }
            if let breach { throw .causePresent(breach) }
            state = .operatorEnabled
        case .startScan:
            // From operator_enabled only: a scan starts from motion the operator has enabled.
            guard state == .operatorEnabled else { throw .notAllowed(command, in: state) }
            if let breach { throw .causePresent(breach) }
            state = .scanning
        case .stopScan:
            guard state == .scanning else { throw .notAllowed(command, in: state) }
            state = .operatorEnabled
        case .resume:
            guard state == .protectiveStop else { throw .notAllowed(command, in: state) }
            if let breach { throw .causePresent(breach) }
            latched = nil
            strongestStop = nil
            state = .ready
        case .reset:
            guard state == .fault || state == .emergencyStop else { throw .notAllowed(command, in: state) }
            if let breach { throw .causePresent(breach) }
            latched = nil
            strongestStop = nil
            forceHistory = ForceHistory()
            state = .disabled
        }
        return output(stop: nil, breach: nil)
    }

    /// Ends a scan without an operator command: the controller lifted the probe off because the
    /// contact lease expired. The state returns to operator-enabled, motion stays allowed.
    mutating func endScan() {
        if state == .scanning { state = .operatorEnabled }
    }

    private func output(stop: StopKind?, breach: SafetyBreach?) -> SafetyOutput {
        SafetyOutput(state: state, motionAllowed: state.allowsMotion, stop: stop, breach: breach,
                     backOff: false, forceLimited: false)
    }

    /// Every check of one cycle; the most severe breach wins (e-stop first, then loss of
    /// trustworthy data, then limits). The force rate is taken against the previous cycle's sample.
    public func worstBreach(_ inputs: SafetyInputs) -> SafetyBreach? {
        let now = inputs.nowMicros
        if inputs.estopEngaged { return SafetyBreach(cause: .emergencyStop, value: 1, limit: 0) }
        if let nonFinite = firstNonFinite(inputs) { return nonFinite }
        if !inputs.boardsAlive { return SafetyBreach(cause: .boardLost, value: 1, limit: 0) }
        let forceAge = now &- inputs.forceMicros
        if inputs.forceMicros > now || forceAge > limits.forceDeadlineMicros {
            // A sample from the future (clocks disagree) is as untrustworthy as an old one;
            // its age is reported negative.
            return SafetyBreach(cause: .staleForce, value: Double(now) - Double(inputs.forceMicros),
                                limit: Double(limits.forceDeadlineMicros))
        }
        let jointAge = now &- inputs.jointMicros
        if inputs.jointMicros > now || jointAge > limits.jointStateDeadlineMicros {
            return SafetyBreach(cause: .staleJointState, value: Double(now) - Double(inputs.jointMicros),
                                limit: Double(limits.jointStateDeadlineMicros))
        }
        if !inputs.forceTrusted { return SafetyBreach(cause: .sensorUntrusted, value: 1, limit: 0) }
        if inputs.boardFault { return SafetyBreach(cause: .boardFault, value: 1, limit: 0) }
        for index in 0..<min(joints.count, inputs.jointPositions.count) {
            let position = inputs.jointPositions[index]
            if position < joints[index].lower || position > joints[index].upper {
                return SafetyBreach(cause: .jointLimit, value: position,
                                    limit: position < joints[index].lower ? joints[index].lower : joints[index].upper)
            }
        }
        for index in 0..<min(joints.count, inputs.jointVelocities.count) {
            let limit = joints[index].maxVelocity * limits.jointSpeedFraction
            let speed = abs(inputs.jointVelocities[index])
            if speed > limit { return SafetyBreach(cause: .jointSpeed, value: speed, limit: limit) }
        }
        if inputs.tipSpeedMMs > limits.tipSpeedLimitMMs {
            return SafetyBreach(cause: .tipSpeed, value: inputs.tipSpeedMMs, limit: limits.tipSpeedLimitMMs)
        }
        let magnitude = inputs.force.length
        if magnitude > limits.forceHardCapN {
            return SafetyBreach(cause: .forceHardCap, value: magnitude, limit: limits.forceHardCapN)
        }
        if let rate = forceHistory.rate(magnitude, at: inputs.forceSampleMicros, window: limits.forceRateWindowMicros) {
            if rate > limits.forceRateLimitNPerS {
                return SafetyBreach(cause: .forceRate, value: rate, limit: limits.forceRateLimitNPerS)
            }
        }
        if !contains(inputs.tipPosition) {
            return SafetyBreach(cause: .workspace, value: distanceOutside(inputs.tipPosition), limit: 0)
        }
        if limits.requireDeadMan && state.allowsMotion && !inputs.deadManHeld {
            return SafetyBreach(cause: .deadManReleased, value: 0, limit: 1)
        }
        return nil
    }

    private func firstNonFinite(_ inputs: SafetyInputs) -> SafetyBreach? {
        var finite = inputs.force.isFinite && inputs.tipPosition.isFinite && inputs.tipSpeedMMs.isFinite
        for index in 0..<inputs.jointPositions.count { finite = finite && inputs.jointPositions[index].isFinite }
        for index in 0..<inputs.jointVelocities.count { finite = finite && inputs.jointVelocities[index].isFinite }
        return finite ? nil : SafetyBreach(cause: .nonFiniteInput, value: .nan, limit: 0)
    }

    /// How far `point` is outside the workspace box, mm (0 inside).
    public func distanceOutside(_ point: Vector3) -> Double {
        let dx = max(limits.workspaceMin.x - point.x, 0, point.x - limits.workspaceMax.x)
        let dy = max(limits.workspaceMin.y - point.y, 0, point.y - limits.workspaceMax.y)
        let dz = max(limits.workspaceMin.z - point.z, 0, point.z - limits.workspaceMax.z)
        return (dx * dx + dy * dy + dz * dz).squareRoot()
    }

    public func contains(_ point: Vector3) -> Bool {
        point.x >= limits.workspaceMin.x && point.x <= limits.workspaceMax.x
            && point.y >= limits.workspaceMin.y && point.y <= limits.workspaceMax.y
            && point.z >= limits.workspaceMin.z && point.z <= limits.workspaceMax.z
    }

    public enum TargetRejection: Error, Sendable, Equatable, CustomStringConvertible {
        case motionNotAllowed(SafetyState)
        case nonFinite(joint: Int)
        case outsideJointLimits(joint: Int, value: Double, lower: Double, upper: Double)
        case outsideWorkspace(Vector3)
        case wrongJointCount(expected: Int, got: Int)

        public var description: String {
            switch self {
            case .motionNotAllowed(let state): "motion is not allowed in state \(state.rawValue)"
            case .nonFinite(let joint): "target for joint \(joint) is not a finite number"
            case .outsideJointLimits(let joint, let value, let lower, let upper):
                "target \(value) rad for joint \(joint) is outside \(lower)…\(upper) rad"
            case .outsideWorkspace(let point): "target tip position \(point) is outside the workspace"
            case .wrongJointCount(let expected, let got): "target has \(got) joints, the arm has \(expected)"
            }
        }
    }

    /// Checks a commanded target before it may be sent: outside a limit it is rejected, never
    /// clamped, so a wrong command is seen rather than silently altered.
    public func validate(target: JointArray<Double>, tip: Vector3) throws(TargetRejection) {
        guard state.allowsMotion else { throw .motionNotAllowed(state) }
        try checkLimits(target: target, tip: tip)
    }

    /// The limit checks of `validate` without the state check: the over-force retraction moves
    /// in the fault state and its targets obey the same limits.
    public func checkLimits(target: JointArray<Double>, tip: Vector3) throws(TargetRejection) {
        guard target.count == joints.count else { throw .wrongJointCount(expected: joints.count, got: target.count) }
        for index in 0..<target.count {
            let value = target[index]
            guard value.isFinite else { throw .nonFinite(joint: index) }
            guard value >= joints[index].lower && value <= joints[index].upper else {
                throw .outsideJointLimits(joint: index, value: value, lower: joints[index].lower, upper: joints[index].upper)
            }
        }
        guard tip.isFinite, contains(tip) else { throw .outsideWorkspace(tip) }
    }
}

/// Recent force magnitudes by sample time, for the force-rate check: the rate is taken over a
/// window (10 ms by default) rather than between two samples, so that sensor noise and the
/// step of touching the skin do not read as a blow, while a blow still does.
struct ForceHistory: Sendable {
    private var magnitudes = InlineArray<32, Double>(repeating: 0)
    private var times = InlineArray<32, UInt64>(repeating: 0)
    private var count = 0
    private var newest = -1

    mutating func record(_ magnitude: Double, at micros: UInt64) {
        guard magnitude.isFinite else { return }
        if count > 0 && micros <= times[newest] { return }
        newest = (newest + 1) % 32
        magnitudes[newest] = magnitude
        times[newest] = micros
        count = min(count + 1, 32)
    }

    /// |ΔF|/Δt between `magnitude` at `micros` and the latest earlier sample at least `window`
    /// older; with less history, against the oldest sample if it is at least half a window old.
    func rate(_ magnitude: Double, at micros: UInt64, window: UInt64) -> Double? {
        guard count > 0 else { return nil }
        var reference: Int?
        for step in 0..<count {
            let index = (newest - step + 32) % 32
            reference = index
            if micros > times[index] && micros - times[index] >= window { break }
        }
        guard let reference, micros > times[reference], micros - times[reference] >= window / 2 else { return nil }
        return abs(magnitude - magnitudes[reference]) / (Double(micros - times[reference]) * 1e-6)
    }
}
