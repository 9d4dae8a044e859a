public import SonoGeometry
public import SonoProtocol

/// Where the probe is for given joint angles: the arm's forward kinematics with the
/// calibrated flange-to-probe transform (hardware/).
public protocol ArmKinematics: Sendable {
    func probePose(jointAngles: [Double]) -> Pose
}

/// The whole simulated scanner in simulated time: the arm board's firmware moves the joints,
/// forward kinematics places the probe, the contact model presses it into the virtual patient,
/// and the force sensor board measures the result. Stepping is deterministic: same patient,
/// commands and times give bit-identical board output.
///
/// The boards here are the same firmware `BoardRunner` runs over a serial line: hand `arm` and
/// `forceSensor` to two runners and the host's drivers talk to this world exactly as to
/// hardware, in real time (the arm's ticks move the probe, the sensor reads the contact).
public final class SimulatedScanner {
    public let patient: VirtualPatient
    public let state = ScannerState()
    public let arm: ArmFirmware
    public let forceSensor: ForceSensorFirmware
    public let contact: ContactModel
    private let kinematics: any ArmKinematics
    private let tickMicros: UInt64
    public private(set) var micros: UInt64

    public init(patient: VirtualPatient, kinematics: any ArmKinematics, arm configuration: ArmBoardConfiguration,
                sensorOffsetMM: Double = 180, startMicros: UInt64 = 0) {
        self.patient = patient
        self.kinematics = kinematics
        arm = ArmFirmware(configuration: configuration)
        contact = ContactModel(patient: patient, sensorOffsetMM: sensorOffsetMM)
        forceSensor = ForceSensorFirmware(source: ContactWrench(state: state, seed: patient.parameters.seed))
        tickMicros = 1_000_000 / UInt64(max(1, arm.deviceInfo.sampleRateHz))
        micros = startMicros
        arm.onMotion = { [state, contact, patient, kinematics] arm, micros in
            Self.follow(arm, at: micros, state: state, contact: contact, patient: patient, kinematics: kinematics)
        }
        Self.follow(arm, at: startMicros, state: state, contact: contact, patient: patient, kinematics: kinematics)
    }

    /// Advances the world to `target` µs in board ticks (1 kHz), passing what each board emits.
    public func step(to target: UInt64, arm armOutput: (Message) -> Void = { _ in },
                     force forceOutput: (Message) -> Void = { _ in }) {
        while micros + tickMicros <= target {
            micros += tickMicros
            arm.tick(at: micros, emit: armOutput)
            forceSensor.tick(at: micros, emit: forceOutput)
        }
    }

    /// Delivers a host message to the arm board at the current time; returns its replies.
    public func sendToArm(_ message: Message, seq: UInt16) -> [Message] {
        var replies: [Message] = []
        arm.receive(message, seq: seq, at: micros) { replies.append($0) }
        return replies
    }

    /// Moves the probe to where the joints put it and updates its contact with the patient.
    private static func follow(_ arm: ArmFirmware, at micros: UInt64, state: ScannerState, contact: ContactModel,
                               patient: VirtualPatient, kinematics: any ArmKinematics) {
        let pose = kinematics.probePose(jointAngles: arm.positions.map(Double.init))
        let rise = patient.chest.breathing(at: Double(micros) * 1e-6)
        state.update { value in
            let dt = Double(micros &- value.micros) * 1e-6
            let velocity = value.valid && dt > 0 ? (pose.position - value.probe.position) / dt : .zero
            value.micros = micros
            value.probe = pose
            value.velocity = velocity
            value.contact = contact.state(probe: pose, velocity: velocity, rise: rise)
            value.valid = true
        }
    }
}
