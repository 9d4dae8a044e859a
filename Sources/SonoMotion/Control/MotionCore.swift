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
    /// Longest wait for the arm board's answer to CLEAR_FAULTS before a reset is refused, µs
    /// (PROTOCOL.md §4.4: boards answer within 20 ms).
    public var resetAnswerMicros: UInt64 = 100_000
    /// Longest wait for the drives to come on for a release, µs.
    public var releasePowerMicros: UInt64 = 500_000

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
    /// The force board's latched fault (FAULT_REPORT severity 2), until its CLEAR_FAULTS is acknowledged.
    private var forceFault = false
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
        /// At rest after the category 2 stop: the board takes joint commands again only after
        /// SET_DRIVES 1 (PROTOCOL.md §3.10); waiting for its acknowledgement.
        case rearming(since: UInt64, acks: UInt64)
        case moving(ProbeTrajectory, startMicros: UInt64, origin: Vector3)
    }
    private var retract: Retract?
    /// The operator's release after a category 0/1 stop.
    private enum Release: Sendable {
        case poweringOn(since: UInt64, acks: UInt64)
        case moving(ProbeTrajectory, startMicros: UInt64, origin: Vector3, startForceN: Double)
    }
    private var release: Release?
    /// The arm board refused the latest SET_DRIVES.
    private var drivesRefused = false
    /// SET_DRIVES acknowledgements so far (a phase waits for the next one).
    private var drivesAcks: UInt64 = 0
    /// Contact is held until this time unless the lease is renewed (µs, monotonic).
    private var leaseExpiresMicros: UInt64 = 0
    /// The lift-off under way (`trajectory` carries it) and where it started.
    private var liftOff: (reason: LiftOffReason, origin: Vector3)?
    private var lastLiftOff: LiftOffReason?
    private var pendingStop: (kind: StopKind, sentMicros: UInt64)?
    /// A reset waiting for the arm board's answer to CLEAR_FAULTS.
    private var pendingReset: (ticket: UInt64, sentMicros: UInt64, answer: ResetAnswer?)?
    private enum ResetAnswer: Sendable { case cleared, refused(NackReason) }
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
        status.liftingOff = liftOff != nil
        status.lastLiftOff = lastLiftOff
        status.releasing = release != nil
        status.inContact = inContact
        status.leaseRemainingMicros = inContact && leaseExpiresMicros > lastCycleMicros ? leaseExpiresMicros - lastCycleMicros : 0
        status.haveJointState = haveJoints
        status.armStatus = armStatus
        status.joints = q
        status.forceBoardFault = forceFault
        status.forceAgeMicros = Self.age(of: forceReceivedMicros, at: lastCycleMicros)
        status.jointAgeMicros = haveJoints ? Self.age(of: jointMicros, at: lastCycleMicros) : 0
        return status
    }

    /// How long before `now` an input stamped `micros` arrived; 0 before any arrived (or for
    /// one stamped after `now`, which the interlocks judge on its own).
    private static func age(of micros: UInt64, at now: UInt64) -> UInt64 {
        micros == 0 || micros > now ? 0 : now - micros
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
            // PROTOCOL.md §3.7: severity 1 is a warning (nothing latched, reported only); 2 a
            // latched fault with drives off. A severity this host does not know counts as a fault.
            if report.severity != 1 {
                if board == .arm { armFault = true } else { forceFault = true }
            }
            emit(.boardFault(report, board))
        case .ack(let type, let board):
            if board == .arm, type == MessageType.stop.rawValue, pendingStop != nil {
                pendingStop = nil
                emit(.stopAcknowledged(micros: lastCycleMicros))
            }
            if board == .arm, type == MessageType.setDrives.rawValue {
                drivesRefused = false
                drivesAcks &+= 1
                emit(.drivesAcknowledged(micros: lastCycleMicros))
            }
            if board == .arm, type == MessageType.clearFaults.rawValue, pendingReset != nil {
                // The board's latch is cleared; its next JOINT_STATE says so too.
                armFault = false
                pendingReset?.answer = .cleared
            }
            if board == .forceTorque, type == MessageType.clearFaults.rawValue { forceFault = false }
        case .nack(let type, let reason, let board):
            if board == .arm, type == MessageType.setDrives.rawValue { drivesRefused = true }
            if board == .arm, type == MessageType.clearFaults.rawValue, pendingReset != nil {
                pendingReset?.answer = .refused(reason)
            }
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
                     boardsAlive: forceAlive && armAlive, boardFault: armFault || forceFault, deadManHeld: deadMan,
                     supervisedMotion: release != nil || retract != nil)
    }

    /// The worst breach of the host's own checks: the board's latched fault left out, the one
    /// cause its CLEAR_FAULTS (for a reset) or SET_DRIVES answer (for a release) decides.
    private var hostBreach: SafetyBreach? {
        var inputs = safetyInputs
        inputs.boardFault = false
        return safety.worstBreach(inputs)
    }

    /// What makes a release unsafe: any host breach but the over-force a release is for.
    private var releaseBlocker: SafetyBreach? {
        guard let breach = hostBreach, breach.cause != .forceHardCap, breach.cause != .forceRate else { return nil }
        return breach
    }

    /// The probe is on the patient as far as the lease is concerned: a contact force is being
    /// held, or the axial force says the probe presses on something.
    private var inContact: Bool {
        contactTargetN != nil || !(force.z <= configuration.limits.contactDetectN)
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
            // The host's own causes first: the board's latch is cleared only when the host
            // would reset too. A board fault is the one cause CLEAR_FAULTS itself may clear.
            if let breach = hostBreach {
                result = .failure(.safety(.causePresent(breach)))
                break
            }
            // The force board's latch is cleared through its own link (the daemon sends its
            // CLEAR_FAULTS before the reset); while it stands, the reset cannot succeed.
            if forceFault {
                result = .failure(.safety(.causePresent(SafetyBreach(cause: .boardFault, value: 1, limit: 0))))
                break
            }
            send(.clearFaults, output, emit)
            pendingReset = (ticket, now, nil)
            return
        case .safety(.disable):
            retract = nil
            release = nil
            do throws(SafetyStateMachine.Refusal) {
                if let out = try safety.handle(.disable, safetyInputs), let kind = out.stop {
                    issueStop(kind, breach: out.breach, now: now, output, emit)
                }
                // In a latched state the state does not change, so the transition that turns the
                // drives off elsewhere does not happen: turn them off here.
                if safety.state != .disabled { send(.setDrives(enable: false), output, emit) }
                result = .success(safety.state)
            } catch {
                result = .failure(.safety(error))
            }
        case .safety(.protectiveStop) where release != nil:
            // Stopping a release ends it the way the latched state stopped: powered off.
            release = nil
            issueStop(.category1, breach: nil, now: now, output, emit)
            send(.setDrives(enable: false), output, emit)
            emit(.releaseAborted(.breach(SafetyBreach(cause: .operatorStop, value: 1, limit: 0))))
            result = .success(safety.state)
        case .safety(let command):
            do throws(SafetyStateMachine.Refusal) {
                if let out = try safety.handle(command, safetyInputs), let kind = out.stop {
                    if retract != nil {
                        retract = nil
                        emit(.retractAborted(.breach(SafetyBreach(cause: .operatorStop, value: 1, limit: 0))))
                    }
                    issueStop(kind, breach: out.breach, now: now, output, emit)
                }
                result = .success(safety.state)
            } catch {
                result = .failure(.safety(error))
            }
        case .move(let pose, let limits):
            if liftOff != nil {
                result = .failure(.liftingOff)
                break
            }
            result = startMove(to: pose, limits: limits ?? configuration.motion, now: now, emit)
        case .renewContactLease:
            leaseExpiresMicros = now &+ configuration.limits.contactLeaseMicros
            result = .success(safety.state)
        case .release:
            result = startRelease(now: now, output, emit)
        case .contact(let forceN):
            if forceN != nil, liftOff != nil {
                result = .failure(.liftingOff)
                break
            }
            if forceN != nil, !safety.state.allowsMotion {
                result = .failure(.target(.motionNotAllowed(safety.state)))
                break
            }
            if let forceN {
                guard forceN.isFinite, configuration.contact.targetRange.contains(forceN),
                      forceN < configuration.limits.forceSoftLimitN else {
                    result = .failure(.forceOutOfRange(forceN, allowed: configuration.contact.targetRange))
                    break
                }
            }
            // Taking contact takes the lease; its holder renews it from then on.
            if forceN != nil { leaseExpiresMicros = now &+ configuration.limits.contactLeaseMicros }
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
        // A NaN or non-positive limit would time the trajectory NaN, zero or forever (finding 9).
        do throws(MotionLimitsError) { _ = try limits.validated() } catch { return .failure(.invalidLimits(error)) }
        let from = trajectory?.pose(at: Double(now &- trajectoryStartMicros) * 1e-6) ?? holdPose
        // Timed to keep the planning margin below every interlock along the whole path (finding 13).
        let move = ProbeTrajectory(from: from, to: target, limits: limits,
                                   within: PlanningEnvelope(limits: configuration.limits, contact: configuration.contact, arm: arm),
                                   arm: arm, joints: commanded)
        trajectory = move
        trajectoryStartMicros = now
        moveAborted = false
        emit(.moveStarted(duration: move.duration))
        return .success(safety.state)
    }

    private mutating func startRelease(now: UInt64, _ output: some ArmCommandOutput,
                                       _ emit: (MotionEvent) -> Void) -> Result<SafetyState, MotionRefusal> {
        let state = safety.state
        guard state == .fault || state == .emergencyStop else { return .failure(.release(.notStopped(state))) }
        guard !estop else { return .failure(.release(.estopEngaged)) }
        guard haveJoints else { return .failure(.noJointState) }
        guard retract == nil, release == nil else { return .failure(.release(.busy)) }
        if let breach = releaseBlocker { return .failure(.release(.causePresent(breach))) }
        drivesRefused = false
        send(.setDrives(enable: true), output, emit)
        release = .poweringOn(since: now, acks: drivesAcks)
        emit(.releaseStarted(micros: now))
        return .success(state)
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

        if let reset = pendingReset {
            switch reset.answer {
            case .cleared?:
                pendingReset = nil
                do throws(SafetyStateMachine.Refusal) {
                    _ = try safety.handle(.reset, safetyInputs)
                    emit(.reply(ticket: reset.ticket, .success(safety.state)))
                } catch {
                    emit(.reply(ticket: reset.ticket, .failure(.safety(error))))
                }
            case .refused?:
                pendingReset = nil
                emit(.reply(ticket: reset.ticket, .failure(.safety(.causePresent(
                    SafetyBreach(cause: .boardFault, value: 1, limit: 0))))))
            case nil where now &- reset.sentMicros > configuration.resetAnswerMicros:
                pendingReset = nil
                emit(.reply(ticket: reset.ticket, .failure(.timedOut(millis: Int(configuration.resetAnswerMicros / 1_000)))))
            case nil:
                break
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

        if out.backOff, retract == nil, release == nil {
            retract = .waitingForRest(since: now)
            emit(.retractStarted(micros: now))
        }
        if release != nil {
            runRelease(now: now, output, emit)
        } else if retract != nil {
            runRetract(out, now: now, output, emit)
        } else if out.motionAllowed && haveJoints {
            superviseContact(now: now, emit)
            runMotion(out, now: now, dt: dt, output, emit)
        }
    }

    /// Contact is held only under a live lease: without one the scan ends (if it ran) and the
    /// probe lifts off.
    private mutating func superviseContact(now: UInt64, _ emit: (MotionEvent) -> Void) {
        guard liftOff == nil, inContact, now > leaseExpiresMicros else { return }
        if safety.state == .scanning {
            safety.endScan()
            lastState = safety.state  // the lift-off reports the scan's end; no drives change
            emit(.transition(from: .scanning, to: safety.state, micros: now))
        }
        startLiftOff(.leaseExpired, now: now, emit)
    }

    /// Backs the probe off along its axis by `liftOffMM` from where it is commanded now (the
    /// contact controller's offset included), at the retraction's gentle limits, and holds.
    private mutating func startLiftOff(_ reason: LiftOffReason, now: UInt64, _ emit: (MotionEvent) -> Void) {
        var from = trajectory?.pose(at: Double(now &- trajectoryStartMicros) * 1e-6) ?? holdPose
        from.position += from.rotation.z * admittance.offsetMM
        var target = from
        target.position -= from.rotation.z * configuration.limits.liftOffMM
        contactTargetN = nil
        admittance.reset()
        holdPose = from
        previousDesired = from
        trajectory = ProbeTrajectory(from: from, to: target, limits: configuration.retractLimits)
        trajectoryStartMicros = now
        moveAborted = false
        liftOff = (reason, probe.position)
        lastLiftOff = reason
        emit(.liftOffStarted(reason, micros: now))
    }

    private mutating func runRelease(now: UInt64, _ output: some ArmCommandOutput, _ emit: (MotionEvent) -> Void) {
        guard let phase = release else { return }
        // Every interlock but the over-force the release is for stays active.
        if let breach = releaseBlocker {
            endRelease(.breach(breach), now: now, output, emit)
            return
        }
        switch phase {
        case .poweringOn(let since, let acks):
            if drivesRefused {
                endRelease(.drivesRefused, now: now, output, emit)
            } else if drivesAcks > acks && jointMicros > since {
                let origin = arm.probePose(q)
                var target = origin
                target.position -= origin.rotation.z * configuration.limits.releaseDistanceMM
                var limits = configuration.retractLimits
                limits.speedMMs = min(limits.speedMMs, configuration.limits.releaseSpeedMMs)
                commanded = q
                release = .moving(ProbeTrajectory(from: origin, to: target, limits: limits), startMicros: now,
                                  origin: origin.position, startForceN: force.z)
            } else if now &- since > configuration.releasePowerMicros {
                endRelease(.drivesRefused, now: now, output, emit)
            }
        case .moving(let move, let start, let origin, let startForce):
            // Breathing moves the chest under a slow retraction: the bound is the larger of the
            // starting force and the soft limit, plus the allowed rise.
            let bound = max(startForce, configuration.limits.forceSoftLimitN) + configuration.limits.releaseForceRiseN
            if !(force.z <= bound) {
                endRelease(.forceRose(force.z), now: now, output, emit)
                return
            }
            let t = Double(now &- start) * 1e-6
            let tracking = arm.track(move.pose(at: t), from: commanded)
            if tracking.positionErrorMM > configuration.trackingTolerance.positionMM {
                endRelease(.trackingError(positionMM: tracking.positionErrorMM,
                                          orientationRad: tracking.orientationErrorRad), now: now, output, emit)
                return
            }
            do throws(SafetyStateMachine.TargetRejection) {
                try safety.checkLimits(target: tracking.joints, tip: tracking.pose.position)
            } catch {
                endRelease(.rejected(error), now: now, output, emit)
                return
            }
            sendJoints(tracking.joints, output, emit)
            if t >= move.duration {
                release = nil
                issueStop(.category1, breach: nil, now: now, output, emit)
                send(.setDrives(enable: false), output, emit)
                emit(.releaseFinished(micros: now, distanceMM: (probe.position - origin).length))
            }
        }
    }

    /// Ends a release early: the arm stops and powers off, as the latched state had it.
    private mutating func endRelease(_ reason: MoveAbort, now: UInt64, _ output: some ArmCommandOutput,
                                     _ emit: (MotionEvent) -> Void) {
        release = nil
        issueStop(.category1, breach: nil, now: now, output, emit)
        send(.setDrives(enable: false), output, emit)
        emit(.releaseAborted(reason))
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
                if let lift = liftOff {
                    liftOff = nil
                    emit(.liftOffFinished(micros: now, distanceMM: (probe.position - lift.origin).length))
                } else {
                    emit(.moveFinished(micros: now))
                }
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
        if liftOff != nil {
            liftOff = nil
            emit(.liftOffAborted(reason))
        } else if !moveAborted {
            emit(.moveAborted(reason))
        }
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
                drivesRefused = false
                retract = .rearming(since: now, acks: drivesAcks)
                send(.setDrives(enable: true), output, emit)
            } else if now &- since > configuration.holdTimeoutMicros {
                retract = nil
                issueStop(.category1, breach: nil, now: now, output, emit)
                emit(.retractAborted(.holdTimeout))
            }
        case .rearming(let since, let acks):
            if drivesAcks > acks {
                let origin = arm.probePose(q)
                var target = origin
                target.position -= origin.rotation.z * configuration.retractDistanceMM
                commanded = q
                retract = .moving(ProbeTrajectory(from: origin, to: target, limits: configuration.retractLimits),
                                  startMicros: now, origin: origin.position)
            } else if drivesRefused || now &- since > configuration.releasePowerMicros {
                retract = nil
                issueStop(.category1, breach: nil, now: now, output, emit)
                emit(.retractAborted(.drivesRefused))
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
        safety.noteStop(kind)
        if liftOff != nil {
            liftOff = nil
            emit(.liftOffAborted(breach.map { .breach($0) } ?? .holdTimeout))
        }
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
            // The interlock's joint speed (rated × speed.joint_fraction), not arm.toml's rating:
            // the board must not be allowed faster than the host would accept (finding 9).
            let velocity = arm.maxVelocity[index] * configuration.limits.jointSpeedFraction
            targets[index] = JointTarget(position: Float(joints[index]), maxVelocity: Float(velocity),
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
        } else if (previous == .disabled || previous == .protectiveStop) && state == .ready {
            // From a protective stop this is the resume the board waits for before it takes
            // joint commands again (PROTOCOL.md §3.10).
            send(.setDrives(enable: true), output, emit)
        }
        if previous == .scanning && state == .operatorEnabled && inContact && liftOff == nil {
            // The scan ended (stopped, cancelled, failed) with the probe on the patient: nobody
            // supervises the contact any more.
            startLiftOff(.scanEnded, now: now, emit)
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
            liftOff = nil
        }
    }
}
