public import SonoGeometry

/// Probe–skin contact: the tissue as a nonlinear (stiffening) spring–damper along the surface
/// normal, with Coulomb friction across it. Stiffness comes from the patient file; the skin
/// rises and falls with breathing.
public struct ContactModel: Sendable {
    public let surface: ChestSurface
    /// Stiffness at small indentation, N/mm.
    public let stiffnessNPerMM: Double
    /// Indentation at which stiffness has doubled, mm (tissue stiffens as it compresses).
    public let stiffeningMM: Double
    public let dampingNsPerMM: Double
    public let friction: Double
    /// Sliding speed at which friction reaches its full value, mm/s (smooths stick–slip).
    public let slipSpeedMMs: Double
    /// Probe tip to force/torque sensor distance along the probe axis, mm.
    public let sensorOffsetMM: Double

    public init(patient: VirtualPatient, sensorOffsetMM: Double = 180) {
        surface = patient.chest.surface
        stiffnessNPerMM = patient.parameters.chest.stiffnessNPerMM
        stiffeningMM = 8
        dampingNsPerMM = 0.04
        friction = 0.3
        slipSpeedMMs = 2
        self.sensorOffsetMM = sensorOffsetMM
    }

    public struct State: Sendable, Equatable {
        /// How deep the probe face is pressed below the skin, mm (0: not touching).
        public var indentationMM: Double
        /// Normal force, N (≥ 0).
        public var normalForceN: Double
        /// Force the probe exerts on the patient, chest frame, N.
        public var forceOnPatient: Vector3
        /// The force/torque sensor's reading: force the probe exerts on the patient, in the
        /// probe frame (+z along the beam: pressing reads positive), and the torque about the
        /// sensor, N·m.
        public var sensorForce: Vector3
        public var sensorTorque: Vector3

        public static let free = State(indentationMM: 0, normalForceN: 0, forceOnPatient: .zero,
                                       sensorForce: .zero, sensorTorque: .zero)
    }

    /// Contact for a probe face at `probe` moving with `velocity` (mm/s, chest frame), with the
    /// chest wall risen by `rise` mm.
    public func state(probe: Pose, velocity: Vector3, rise: Double) -> State {
        let tip = probe.position
        let normal = surface.normal(x: tip.x, y: tip.y)
        let skin = surface.height(x: tip.x, y: tip.y) + rise
        let indentation = (skin - tip.z) * normal.z
        guard indentation > 0 else { return .free }
        let indentationRate = -velocity.dot(normal)
        let spring = stiffnessNPerMM * indentation * (1 + indentation / stiffeningMM)
        let normalForce = max(0, spring + dampingNsPerMM * indentationRate)
        let tangential = velocity - normal * velocity.dot(normal)
        let speed = tangential.length
        let frictionForce = speed > 1e-9
            ? tangential * (-friction * normalForce * tanh(speed / slipSpeedMMs) / speed) : .zero
        let onProbe = normal * normalForce + frictionForce
        let onPatient = -onProbe
        let sensorForce = probe.rotation.transposed * onPatient
        // The force acts at the tip, `sensorOffsetMM` ahead of the sensor along +z; mm → m.
        let arm = Vector3(0, 0, sensorOffsetMM / 1_000)
        return State(indentationMM: indentation, normalForceN: normalForce, forceOnPatient: onPatient,
                     sensorForce: sensorForce, sensorTorque: arm.cross(sensorForce))
    }
}

#if canImport(Glibc)
import Glibc
#endif
