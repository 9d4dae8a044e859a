public import SonoProtocol

/// Limits and dynamics of the simulated arm's joints.
public struct ArmBoardConfiguration: Sendable {
    public var jointCount: Int
    public var lowerLimits: [Float]
    public var upperLimits: [Float]
    /// rad/s, rad/s², A per joint.
    public var maxVelocity: [Float]
    public var maxAcceleration: [Float]
    public var maxCurrent: [Float]
    /// Motor current per unit joint acceleration (A·s²/rad) and per unit velocity (A·s/rad).
    public var currentPerAcceleration: Float = 0.25
    public var currentPerVelocity: Float = 0.3
    /// Time constant of each drive's velocity response, s: the servo lags its set-point.
    public var responseTimeConstantS: Float = 0.015
    /// The board stops on its own when the host is silent this long (PROTOCOL.md §4.3).
    public var hostTimeoutMillis = 150
    /// While tracking, the board stops on its own when JOINT_COMMANDs stop for this long: the
    /// command watchdog, which watches the host's control loop rather than its link (§4.3).
    public var commandTimeoutMillis = 20
    public var initialPositions: [Float]

    public init(jointCount: Int = 6) {
        self.jointCount = jointCount
        lowerLimits = Array(repeating: -3.0, count: jointCount)
        upperLimits = Array(repeating: 3.0, count: jointCount)
        maxVelocity = Array(repeating: 1.5, count: jointCount)
        maxAcceleration = Array(repeating: 8, count: jointCount)
        maxCurrent = Array(repeating: 6, count: jointCount)
        initialPositions = Array(repeating: 0, count: jointCount)
    }
}

/// Firmware of the arm actuator board: joint position control with velocity, acceleration and
/// current limits, drive enable, IEC 60204-1 stop categories, the e-stop input, latched faults
/// and a host watchdog (PROTOCOL.md §3).
public final class ArmFirmware: BoardFirmware {
    public let deviceInfo: DeviceInfo
    public let configuration: ArmBoardConfiguration

    public private(set) var positions: [Float]
    public private(set) var velocities: [Float]
    public private(set) var currents: [Float]
    public private(set) var drivesEnabled = false
    public private(set) var estopEngaged = false
    public private(set) var latchedFault: FaultReport?
    /// The stop under way, if any.
    public private(set) var stopping: StopCategory?
    /// A category 2 stop has brought the arm to rest: JOINT_COMMAND is refused until the host
    /// resumes with SET_DRIVES 1 (PROTOCOL.md §3.10).
    public private(set) var heldAfterStop = false
    /// When the last JOINT_COMMAND was accepted while tracking (nil: not tracking).
    private var trackingSinceCommandMicros: UInt64?

    private var targets: [Float]
    private var commandVelocity: [Float]
    private var commandCurrent: [Float]
    private var lastMicros: UInt64?
    private var lastHostMessageMicros: UInt64?
    private var pendingMessages: [Message] = []
    private var estopSource: EStopSource = .none

    /// Called at the end of every tick with the board's time: the simulated world follows the
    /// joints from here (the probe's pose, its contact with the patient).
    public var onMotion: ((ArmFirmware, UInt64) -> Void)?

    /// Every capability this board has; fault injection builds boards that lack some.
    public static let capabilities: Capabilities = [.jointPositionControl, .currentLimit, .estopInput, .brakes,
                                                    .hostWatchdog, .commandWatchdog]

    public init(serial: String = "ARM-0001", sampleRateHz: UInt16 = 1_000, heartbeatPeriodMs: UInt16 = 50,
                capabilities: Capabilities = ArmFirmware.capabilities, configuration: ArmBoardConfiguration = .init()) {
        precondition((1...ProtocolConstants.maxJoints).contains(configuration.jointCount), "1…8 joints")
        deviceInfo = DeviceInfo(kind: .arm, firmwareMajor: 2, firmwareMinor: 1, firmwarePatch: 0,
                                serial: SerialNumber(serial),
                                capabilities: capabilities,
                                jointCount: UInt8(configuration.jointCount), sampleRateHz: sampleRateHz,
                                heartbeatPeriodMs: heartbeatPeriodMs)
        self.configuration = configuration
        positions = configuration.initialPositions
        velocities = Array(repeating: 0, count: configuration.jointCount)
        currents = velocities
        targets = positions
        commandVelocity = configuration.maxVelocity
        commandCurrent = configuration.maxCurrent
    }

    public var boardState: BoardState {
        if estopEngaged { return .emergencyStop }
        if latchedFault != nil { return .fault }
        if stopping != nil { return .stopped }
        return drivesEnabled ? .active : .ready
    }

    /// The e-stop input (the pendant button's contact).
    public func setEmergencyStop(_ engaged: Bool, source: EStopSource = .pendantButton) {
        guard engaged != estopEngaged else { return }
        estopEngaged = engaged
        estopSource = engaged ? source : .none
        if engaged { beginStop(.controlledThenPowerOff) }
        pendingMessages.append(.estopState(EStopState(engaged: engaged, source: estopSource.rawValue)))
    }

    public func receive(_ message: Message, seq: UInt16, at micros: UInt64, reply: (Message) -> Void) {
        lastHostMessageMicros = micros
        if case .getInfo = message {
            reply(.hello(deviceInfo))
            reply(.estopState(EStopState(engaged: estopEngaged, source: estopSource.rawValue)))
            return
        }
        if receiveCommon(message, reply: reply) { return }
        switch message {
        case .jointCommand(let command):
            if let reason = rejection(of: command) {
                reply(refuse(seq, .jointCommand, reason))
                return
            }
            trackingSinceCommandMicros = micros
            for index in 0..<configuration.jointCount {
                targets[index] = command.joints[index].position
                commandVelocity[index] = min(command.joints[index].maxVelocity, configuration.maxVelocity[index])
                commandCurrent[index] = min(command.joints[index].maxCurrent, configuration.maxCurrent[index])
            }
        case .setDrives(let enable):
            trackingSinceCommandMicros = nil
            if enable {
                if estopEngaged { reply(refuse(seq, .setDrives, .estopEngaged)); return }
                if latchedFault != nil { reply(refuse(seq, .setDrives, .faultActive)); return }
                drivesEnabled = true
                stopping = nil
                heldAfterStop = false
                targets = positions
            } else {
                drivesEnabled = false
                stopping = nil
                heldAfterStop = false
                for index in velocities.indices { velocities[index] = 0 }
            }
            reply(acknowledge(seq, .setDrives))
        case .stop(let raw):
            guard let category = StopCategory(rawValue: raw) else {
                // An invalid stop request is still a stop request (PROTOCOL.md §3.12).
                beginStop(.controlledThenPowerOff)
                reply(refuse(seq, .stop, .outOfRange))
                return
            }
            beginStop(category)
            reply(acknowledge(seq, .stop))
        case .clearFaults:
            if estopEngaged { reply(refuse(seq, .clearFaults, .estopEngaged)); return }
            // PROTOCOL.md §3.13: cleared only when the latched fault's cause is gone.
            if let fault = latchedFault, causePersists(fault) { reply(refuse(seq, .clearFaults, .faultActive)); return }
            latchedFault = nil
            reply(acknowledge(seq, .clearFaults))
        default:
            reply(refuse(seq, message.type, .unknownType))
        }
    }

    /// Whether a latched fault's cause is still there. Watchdog faults end with the host's
    /// message that asks to clear them; the others are measured again.
    private func causePersists(_ fault: FaultReport) -> Bool {
        let axis = fault.axis == FaultReport.noAxis ? nil : Int(fault.axis)
        switch fault.code {
        case .overCurrent:
            return currents.indices.contains { abs(currents[$0]) > commandCurrent[$0] }
        case .jointLimit:
            let joints = axis.map { [$0] } ?? Array(positions.indices)
            return joints.contains { positions[$0] < configuration.lowerLimits[$0] || positions[$0] > configuration.upperLimits[$0] }
        default:
            return false
        }
    }

    private func rejection(of command: JointCommand) -> NackReason? {
        guard command.joints.count == configuration.jointCount else { return .invalidPayload }
        for (index, joint) in command.joints.enumerated() {
            guard joint.position.isFinite, joint.maxVelocity.isFinite, joint.maxCurrent.isFinite,
                  joint.maxVelocity > 0, joint.maxCurrent > 0,
                  joint.position >= configuration.lowerLimits[index],
                  joint.position <= configuration.upperLimits[index]
            else { return .outOfRange }
        }
        if estopEngaged { return .estopEngaged }
        if latchedFault != nil { return .faultActive }
        if !drivesEnabled || stopping != nil || heldAfterStop { return .wrongState }
        return nil
    }

    private func beginStop(_ category: StopCategory) {
        trackingSinceCommandMicros = nil
        switch category {
        case .uncontrolled:
            drivesEnabled = false
            stopping = nil
            for index in velocities.indices { velocities[index] = 0 }
        case .controlledThenPowerOff, .controlledHold:
            guard drivesEnabled else { return }
            // A category 1 request overrides a category 2 stop under way, never the reverse.
            if stopping != .controlledThenPowerOff { stopping = category }
        }
    }

    private func latch(_ code: FaultCode, axis: Int?, value: Float, limit: Float) {
        guard latchedFault == nil else { return }
        let report = FaultReport(code: code, axis: axis.map { UInt8($0) } ?? FaultReport.noAxis, severity: 2,
                                 value: value, limit: limit)
        latchedFault = report
        pendingMessages.append(.faultReport(report))
    }

    public func tick(at micros: UInt64, emit: (Message) -> Void) {
        let dt = Float(micros &- (lastMicros ?? micros)) * 1e-6
        lastMicros = micros

        if drivesEnabled, let last = lastHostMessageMicros,
           micros &- last > UInt64(configuration.hostTimeoutMillis) * 1_000 {
            latch(.hostTimeout, axis: nil, value: Float(micros &- last) * 1e-3, limit: Float(configuration.hostTimeoutMillis))
            beginStop(.controlledThenPowerOff)
        }
        if drivesEnabled, stopping == nil, let last = trackingSinceCommandMicros,
           micros &- last > UInt64(configuration.commandTimeoutMillis) * 1_000 {
            latch(.commandTimeout, axis: nil, value: Float(micros &- last) * 1e-3, limit: Float(configuration.commandTimeoutMillis))
            beginStop(.controlledThenPowerOff)
        }
        if dt > 0 { integrate(dt) }

        for message in pendingMessages { emit(message) }
        pendingMessages.removeAll(keepingCapacity: true)

        var status: ArmStatus = [.homed]
        if drivesEnabled { status.insert(.drivesEnabled) }
        if estopEngaged { status.insert(.estopEngaged) }
        if latchedFault != nil { status.insert(.fault) }
        if stopping != nil { status.insert(.stopping) }
        if velocities.contains(where: { abs($0) > 1e-4 }) { status.insert(.moving) }
        var joints = JointArray(count: configuration.jointCount, filler: JointReading.zero)
        for index in 0..<configuration.jointCount {
            var flags: JointFlags = drivesEnabled ? [] : [.brakeEngaged]
            if positions[index] <= configuration.lowerLimits[index] { flags.insert(.atLowerLimit) }
            if positions[index] >= configuration.upperLimits[index] { flags.insert(.atUpperLimit) }
            joints[index] = JointReading(position: positions[index], velocity: velocities[index],
                                         current: currents[index], flags: flags)
        }
        emit(.jointState(JointState(status: status, joints: joints)))
        onMotion?(self, micros)
    }

    /// One step of each joint: a position servo with velocity and acceleration limits and a lagging
    /// velocity response.
    private func integrate(_ dt: Float) {
        for index in 0..<configuration.jointCount {
            let acceleration = configuration.maxAcceleration[index]
            var desired: Float = 0
            if drivesEnabled && stopping == nil {
                let error = targets[index] - positions[index]
                // Fastest velocity from which the joint can still stop at the target.
                let brakingVelocity = (2 * acceleration * abs(error)).squareRoot()
                let limit = min(commandVelocity[index], brakingVelocity)
                desired = error >= 0 ? min(limit, error / dt) : max(-limit, error / dt)
            }
            let previous = velocities[index]
            // First-order lag toward the set-point, never faster than the acceleration limit.
            // Within 1 mrad/s of the set-point the drive settles on it (a stop must end).
            let gap = desired - previous
            let lagged = abs(gap) < 1e-3 ? gap : gap * min(1, dt / max(configuration.responseTimeConstantS, dt))
            let change = max(-acceleration * dt, min(acceleration * dt, lagged))
            velocities[index] = drivesEnabled ? previous + change : 0
            let next = positions[index] + velocities[index] * dt
            positions[index] = min(configuration.upperLimits[index], max(configuration.lowerLimits[index], next))
            if positions[index] != next { velocities[index] = 0 }
            currents[index] = drivesEnabled
                ? configuration.currentPerAcceleration * (velocities[index] - previous) / dt
                    + configuration.currentPerVelocity * velocities[index]
                : 0
            if abs(currents[index]) > commandCurrent[index] {
                latch(.overCurrent, axis: index, value: abs(currents[index]), limit: commandCurrent[index])
                beginStop(.uncontrolled)
            }
        }
        if let category = stopping, velocities.allSatisfy({ $0 == 0 }) {
            stopping = nil
            if category == .controlledThenPowerOff {
                drivesEnabled = false
            } else {
                targets = positions
                heldAfterStop = true
            }
        }
    }
}
