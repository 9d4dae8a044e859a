import SonoGeometry
import SonoProtocol
import SonoSystem

/// Settings of the motion controller. Safety limits live in `SafetyLimits` (hardware/safety.toml).
public struct MotionControllerConfiguration: Sendable {
    public var rateHz = 1_000.0
    public var limits = SafetyLimits()
    public var contact = ContactForceSettings()
    /// Limits of planned probe moves.
    public var motion = MotionLimits()
    /// How far the probe retracts along its axis after an over-force stop, and how gently.
    public var retractDistanceMM = 10.0
    public var retractLimits = MotionLimits(speedMMs: 10, accelerationMMs2: 100, jerkMMs3: 5_000)
    /// Largest inverse-kinematics residual accepted for a target, mm and rad.
    public var trackingTolerance = (positionMM: 1.0, orientationRad: 0.01)
    /// A STOP is resent at this interval until the board acknowledges it (PROTOCOL.md §4.4), µs.
    public var stopResendMicros: UInt64 = 20_000
    /// Longest wait for the arm to come to rest after the over-force stop, µs.
    public var holdTimeoutMicros: UInt64 = 1_000_000
    /// Longest wait for a joint state after CLEAR_FAULTS before a reset is decided, µs.
    public var resetSettleMicros: UInt64 = 60_000

    public init() {}
}

/// The motion controller's logic for one control cycle, without threads or I/O: board inputs
/// and commands in; messages to the arm (through an `ArmCommandOutput`) and events out. The
/// interlocks (`SafetyStateMachine`) decide whether anything may move; this decides what moves.
/// Nothing here allocates, locks or logs, so `MotionController` runs it in the 1 kHz loop and
/// tests run it step by step.
public struct MotionCore: Sendable {
    public let arm: ArmModel
    public let configuration: MotionControllerConfiguration
    public private(set) var safety: SafetyStateMachine
    public private(set) var cycle: UInt64 = 0

    // Latest inputs.
    private var force = Vector3.zero
    private var forceStatus: ForceTorqueStatus = []
    private var forceBoardMicros: UInt64 = 0
    private var forceReceivedMicros: UInt64 = 0
    private var forceSampleCycle: UInt64 = 0
    private var q: JointArray<Double>
    private var qdot: JointArray<Double>
    private var jointMicros: UInt64 = 0
    private var haveJoints = false
    private var armStatus: ArmStatus = []
    private var estop = false
    private var armFault = false
    private var forceAlive = false
    private var armAlive = false
    private var deadMan = false
    private var probe = Pose.identity
    private var tipSpeed = 0.0

    // What the controller is doing.
    private var commanded: JointArray<Double>
    private var holdPose = Pose.identity
    /// The planned pose of the previous cycle (before the force controller's offset).
    private var previousDesired = Pose.identity
    private var trajectory: ProbeTrajectory?
    private var trajectoryStartMicros: UInt64 = 0
    private var moveAborted = false
    private var admittance: AdmittanceController
    private var contactTargetN: Double?
    private var forceLimited = false
    private enum Retract: Sendable {
        case waitingForRest(since: UInt64)
        case moving(ProbeTrajectory, startMicros: UInt64, origin: Vector3)
    }
    private var retract: Retract?
    private var pendingStop: (kind: StopKind, sentMicros: UInt64)?
    private var pendingReset: (ticket: UInt64, sentMicros: UInt64)?
    private var lastState: SafetyState = .disabled
    private var lastCycleMicros: UInt64 = 0
    public private(set) var sendFailures: UInt64 = 0
    /// The last write to the arm was refused (the link full or gone).
    private var sendFailing = false

    public init(arm: ArmModel, configuration: MotionControllerConfiguration) {
        self.arm = arm
        self.configuration = configuration
        safety = SafetyStateMachine(limits: configuration.limits, joints: arm.jointSafetyLimits)
        q = JointArray(count: arm.jointCount, filler: 0)
        qdot = q
        commanded = q
        admittance = AdmittanceController(settings: configuration.contact)
    }

    public var status: MotionStatus {
        var status = MotionStatus()
        status.cycle = cycle
        status.micros = lastCycleMicros
        status.state = safety.state
        status.latched = safety.latched
        status.force = force
        status.probe = probe
        status.tipSpeedMMs = tipSpeed
        status.contactTargetN = contactTargetN
        status.forceLimited = forceLimited
        status.moving = trajectory != nil
        status.retracting = retract != nil
        status.haveJointState = haveJoints
        status.armStatus = armStatus
        status.joints = q
        return status
    }

    // MARK: - Inputs

    public mutating func ingest(_ input: BoardInput, emit: (MotionEvent) -> Void) {
        switch input {
        case .force(let sample, let boardMicros, let receivedMicros):
            force = Vector3(Double(sample.fx), Double(sample.fy), Double(sample.fz))
            forceStatus = sample.status
            forceBoardMicros = boardMicros
            forceReceivedMicros = receivedMicros
            forceSampleCycle = cycle &+ 1  // inputs are taken before the cycle they belong to
        case .joints(let state, let receivedMicros):
            guard state.joints.count == arm.jointCount else { return }  // the interlocks see it go stale
            for index in 0..<arm.jointCount {
                q[index] = Double(state.joints[index].position)
                qdot[index] = Double(state.joints[index].velocity)
            }
            armStatus = state.status
            estop = state.status.contains(.estopEngaged)
            armFault = state.status.contains(.fault)
            jointMicros = receivedMicros
            haveJoints = true
        case .estop(let engaged):
            estop = engaged
        case .fault(let report, let board):
            if board == .arm { armFault = true }
            emit(.boardFault(report, board))
        case .ack(let type, let board):
            if board == .arm, type == MessageType.stop.rawValue, pendingStop != nil {
                pendingStop = nil
                emit(.stopAcknowledged(micros: lastCycleMicros))
            }
            if board == .arm, type == MessageType.setDrives.rawValue {
                emit(.drivesAcknowledged(micros: lastCycleMicros))
            }
        case .nack(let type, let reason, let board):
            emit(.boardRefused(ackedType: type, reason: reason, board))
        case .link(let board, let alive):
            if board == .arm { armAlive = alive } else { forceAlive = alive }
        }
    }

    private var safetyInputs: SafetyInputs {
        SafetyInputs(nowMicros: lastCycleMicros, force: force, forceMicros: forceReceivedMicros,
                     forceSampleMicros: forceBoardMicros,
                     forceTrusted: forceStatus.isDisjoint(with: [.saturated, .calibrationInvalid, .overTemperature,
                                                                  .tareInProgress]),
                     jointPositions: q, jointVelocities: qdot, jointMicros: jointMicros,
                     tipPosition: probe.position, tipSpeedMMs: tipSpeed, estopEngaged: estop,
                     boardsAlive: forceAlive && armAlive, boardFault: armFault, deadManHeld: deadMan)
    }

    // MARK: - Commands

    /// Applies one command; the reply (accepted with the new state, or refused with the reason)
    /// is emitted as `.reply(ticket:)`. A reset is answered a few cycles later, once the arm
    /// has reported on the CLEAR_FAULTS sent with it.
    public mutating func handle(_ command: MotionCommand, ticket: UInt64, now: UInt64,
                                output: some ArmCommandOutput, emit: (MotionEvent) -> Void) {
        lastCycleMicros = max(lastCycleMicros, now)
        let result: Result<SafetyState, MotionRefusal>
        switch command {
        case .safety(.reset):
            guard safety.state == .fault || safety.state == .emergencyStop else {
                result = .failure(.safety(.notAllowed(.reset, in: safety.state)))
                break
            }
            send(.clearFaults, output, emit)
            pendingReset = (ticket, now)
            return
        case .safety(let command):
            do throws(SafetyStateMachine.Refusal) {
                if let out = try safety.handle(command, safetyInputs), let kind = out.stop {
                    issueStop(kind, breach: out.breach, now: now, output, emit)
                }
                result = .success(safety.state)
            } catch {
                result = .failure(.safety(error))
            }
        case .move(let pose, let limits):
            result = startMove(to: pose, limits: limits ?? configuration.motion, now: now, emit)
        case .contact(let forceN):
            if let forceN {
                guard forceN.isFinite, configuration.contact.targetRange.contains(forceN),
                      forceN < configuration.limits.forceSoftLimitN else {
                    result = .failure(.forceOutOfRange(forceN, allowed: configuration.contact.targetRange))
                    break
                }
            }
            contactTargetN = forceN
            result = .success(safety.state)
        case .hold:
            if let trajectory { holdPose = trajectory.pose(at: Double(now &- trajectoryStartMicros) * 1e-6) }
            trajectory = nil
            result = .success(safety.state)
        case .deadMan(let held):
            deadMan = held
            result = .success(safety.state)
        }
        emit(.reply(ticket: ticket, result))
        noticeTransition(now: now, output, emit)
    }

    private mutating func startMove(to target: Pose, limits: MotionLimits, now: UInt64,
                                    _ emit: (MotionEvent) -> Void) -> Result<SafetyState, MotionRefusal> {
        guard safety.state.allowsMotion else { return .failure(.target(.motionNotAllowed(safety.state))) }
        guard haveJoints else { return .failure(.noJointState) }
        guard target.position.isFinite, target.rotation.x.isFinite, target.rotation.y.isFinite,
              target.rotation.z.isFinite else { return .failure(.target(.outsideWorkspace(target.position))) }
        guard safety.contains(target.position) else { return .failure(.target(.outsideWorkspace(target.position))) }
        let from = trajectory?.pose(at: Double(now &- trajectoryStartMicros) * 1e-6) ?? holdPose
        let move = ProbeTrajectory(from: from, to: target, limits: limits)
        trajectory = move
        trajectoryStartMicros = now
        moveAborted = false
        emit(.moveStarted(duration: move.duration))
        return .success(safety.state)
    }

    // MARK: - The cycle

    /// One control period at `now` (µs, monotonic): interlocks first, then the reaction, then
    /// motion if allowed.
    public mutating func cycle(now: UInt64, output: some ArmCommandOutput, emit: (MotionEvent) -> Void) {
        let dt = lastCycleMicros == 0 ? 0 : min(0.01, Double(now &- lastCycleMicros) * 1e-6)
        lastCycleMicros = max(lastCycleMicros, now)
        cycle &+= 1

        let (pose, jacobian) = arm.probePoseAndJacobian(q)
        probe = pose
        tipSpeed = arm.tipVelocity(jacobian, qdot).length

        if let reset = pendingReset, jointMicros > reset.sentMicros || now &- reset.sentMicros > configuration.resetSettleMicros {
            pendingReset = nil
            do throws(SafetyStateMachine.Refusal) {
                _ = try safety.handle(.reset, safetyInputs)
                emit(.reply(ticket: reset.ticket, .success(safety.state)))
            } catch {
                emit(.reply(ticket: reset.ticket, .failure(.safety(error))))
            }
        }

        let out = safety.step(safetyInputs)
        forceLimited = out.forceLimited
        if let kind = out.stop { issueStop(kind, breach: out.breach, now: now, output, emit) }
        noticeTransition(now: now, output, emit)

        if let pending = pendingStop, now &- pending.sentMicros >= configuration.stopResendMicros {
            // Unacknowledged: resend (STOP is idempotent).
            pendingStop?.sentMicros = now
            send(.stop(category: pending.kind.rawValue), output, emit)
        }

        if out.backOff, retract == nil {
            retract = .waitingForRest(since: now)
            emit(.retractStarted(micros: now))
        }
        if retract != nil {
            runRetract(out, now: now, output, emit)
        } else if out.motionAllowed && haveJoints {
            runMotion(out, now: now, dt: dt, output, emit)
        }
    }

    private mutating func runMotion(_ out: SafetyOutput, now: UInt64, dt: Double,
                                    _ output: some ArmCommandOutput, _ emit: (MotionEvent) -> Void) {
        var desired = holdPose
        if let move = trajectory {
            let t = Double(now &- trajectoryStartMicros) * 1e-6
            desired = move.pose(at: t)
            if t >= move.duration {
                holdPose = move.target
                trajectory = nil
                emit(.moveFinished(micros: now))
            }
        }
        if out.forceLimited {
            admittance.absorb((desired.position - previousDesired.position).dot(desired.rotation.z))
        }
        previousDesired = desired
        var offset = admittance.offsetMM
        if let target = contactTargetN {
            offset = admittance.update(measuredN: force.z, targetN: target, dt: dt, forceLimited: out.forceLimited)
        } else if out.forceLimited {
            // Position control never presses past the soft limit: yield along the axis.
            offset = admittance.update(measuredN: force.z, targetN: configuration.limits.forceSoftLimitN, dt: dt,
                                       forceLimited: true)
        }
        desired.position += desired.rotation.z * offset
        let tracking = arm.track(desired, from: commanded)
        if tracking.positionErrorMM > configuration.trackingTolerance.positionMM
            || tracking.orientationErrorRad > configuration.trackingTolerance.orientationRad {
            abortMove(.trackingError(positionMM: tracking.positionErrorMM, orientationRad: tracking.orientationErrorRad), emit)
            return
        }
        do throws(SafetyStateMachine.TargetRejection) {
            try safety.validate(target: tracking.joints, tip: tracking.pose.position)
        } catch {
            abortMove(.rejected(error), emit)
            return
        }
        sendJoints(tracking.joints, output, emit)
    }

    /// Cancels the move and holds at the last target sent; reported once per move.
    private mutating func abortMove(_ reason: MoveAbort, _ emit: (MotionEvent) -> Void) {
        trajectory = nil
        holdPose = arm.probePose(commanded)
        previousDesired = holdPose
        admittance.reset()
        if !moveAborted { emit(.moveAborted(reason)) }
        moveAborted = true
    }

    private mutating func runRetract(_ out: SafetyOutput, now: UInt64, _ output: some ArmCommandOutput,
                                     _ emit: (MotionEvent) -> Void) {
        guard out.retractAllowed, let phase = retract else {
            retract = nil
            let breach = out.breach
            if let breach, case .fault(let kind) = breach.cause.reaction {
                issueStop(kind, breach: breach, now: now, output, emit)
            } else {
                issueStop(.category1, breach: breach, now: now, output, emit)
            }
            emit(.retractAborted(breach.map { .breach($0) } ?? .holdTimeout))
            return
        }
        switch phase {
        case .waitingForRest(let since):
            let atRest = pendingStop == nil && jointMicros > since
                && !armStatus.contains(.stopping) && !armStatus.contains(.moving)
            if atRest {
                let origin = arm.probePose(q)
                var target = origin
                target.position -= origin.rotation.z * configuration.retractDistanceMM
                commanded = q
                retract = .moving(ProbeTrajectory(from: origin, to: target, limits: configuration.retractLimits),
                                  startMicros: now, origin: origin.position)
            } else if now &- since > configuration.holdTimeoutMicros {
                retract = nil
                issueStop(.category1, breach: nil, now: now, output, emit)
                emit(.retractAborted(.holdTimeout))
            }
        case .moving(let move, let start, let origin):
            let t = Double(now &- start) * 1e-6
            let tracking = arm.track(move.pose(at: t), from: commanded)
            var failure: MoveAbort?
            if tracking.positionErrorMM > configuration.trackingTolerance.positionMM {
                failure = .trackingError(positionMM: tracking.positionErrorMM, orientationRad: tracking.orientationErrorRad)
            } else {
                do throws(SafetyStateMachine.TargetRejection) {
                    try safety.checkLimits(target: tracking.joints, tip: tracking.pose.position)
                } catch {
                    failure = .rejected(error)
                }
            }
            if let failure {
                retract = nil
                issueStop(.category2, breach: nil, now: now, output, emit)
                emit(.retractAborted(failure))
                return
            }
            sendJoints(tracking.joints, output, emit)
            if t >= move.duration {
                retract = nil
                issueStop(.category2, breach: nil, now: now, output, emit)
                emit(.retractFinished(micros: now, distanceMM: (probe.position - origin).length))
            }
        }
    }

    // MARK: - Output

    private mutating func issueStop(_ kind: StopKind, breach: SafetyBreach?, now: UInt64,
                                    _ output: some ArmCommandOutput, _ emit: (MotionEvent) -> Void) {
        trajectory = nil
        let sent = output.send(.stop(category: kind.rawValue))
        let written: UInt64? = sent ? MonotonicClock.nowMicros() : nil
        noteDelivery(sent, .stop, emit)
        // The strongest stop asked for stands until acknowledged (category 0 is the strongest).
        if let pending = pendingStop, pending.kind.rawValue < kind.rawValue {
            pendingStop = (pending.kind, sent ? now : pending.sentMicros)
        } else {
            pendingStop = (kind, sent ? now : 0)
        }
        emit(.stop(StopRecord(kind: kind, breach: breach, cycle: cycle, decidedMicros: now,
                              forceBoardMicros: forceBoardMicros, forceReceivedMicros: forceReceivedMicros,
                              forceSampleCycle: forceSampleCycle, writtenMicros: written)))
    }

    private mutating func sendJoints(_ joints: JointArray<Double>, _ output: some ArmCommandOutput,
                                     _ emit: (MotionEvent) -> Void) {
        var targets = JointArray<JointTarget>(count: arm.jointCount, filler: .zero)
        for index in 0..<arm.jointCount {
            targets[index] = JointTarget(position: Float(joints[index]), maxVelocity: Float(arm.maxVelocity[index]),
                                         maxCurrent: Float(arm.maxCurrent[index]))
        }
        send(.jointCommand(JointCommand(joints: targets)), output, emit)
        commanded = joints
    }

    private mutating func send(_ message: Message, _ output: some ArmCommandOutput, _ emit: (MotionEvent) -> Void) {
        noteDelivery(output.send(message), message.type, emit)
    }

    /// Counts a refused write, and emits the first of a run of them (`.sendFailed`): once, not at
    /// 1 kHz while the link stays full or gone.
    private mutating func noteDelivery(_ sent: Bool, _ type: MessageType, _ emit: (MotionEvent) -> Void) {
        if sent {
            sendFailing = false
            return
        }
        sendFailures &+= 1
        if !sendFailing { emit(.sendFailed(type)) }
        sendFailing = true
    }

    /// Side effects of a state change: drives follow `disabled`/`ready`, and motion restarts
    /// from where the arm is whenever it becomes allowed.
    private mutating func noticeTransition(now: UInt64, _ output: some ArmCommandOutput, _ emit: (MotionEvent) -> Void) {
        let state = safety.state
        guard state != lastState else { return }
        let previous = lastState
        lastState = state
        emit(.transition(from: previous, to: state, micros: now))
        if state == .disabled {
            send(.setDrives(enable: false), output, emit)
        } else if previous == .disabled && state == .ready {
            send(.setDrives(enable: true), output, emit)
        }
        if state.allowsMotion && !previous.allowsMotion {
            commanded = q
            holdPose = arm.probePose(q)
            previousDesired = holdPose
            admittance.reset()
            trajectory = nil
            moveAborted = false
        }
        if !state.allowsMotion {
            trajectory = nil
            contactTargetN = nil
        }
    }
}
