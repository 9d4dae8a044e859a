/// Settings of the contact-force controller along the probe axis.
public struct ContactForceSettings: Sendable, Equatable {
    /// Contact force held while scanning when the planner asks for none in particular, N.
    public var defaultTargetN = 8.0
    /// Targets the controller accepts, N. The upper end must stay below the interlocks' soft
    /// limit; a target outside is refused, not clamped.
    public var targetRange: ClosedRange<Double> = 2.0...10.0
    /// Virtual damping of the admittance, N·s/mm: 1 N of force error moves the probe at
    /// 1/damping mm/s. 0.4 keeps the loop's bandwidth (stiffness/damping ≈ 2–10 rad/s on the
    /// shipped patients) well below the drives' response (≈ 66 rad/s).
    public var dampingNsPerMM = 0.4
    /// Virtual mass, N·s²/mm: smooths the admittance's velocity (time constant mass/damping).
    public var massNs2PerMM = 0.004
    /// Fastest axial motion the controller commands, mm/s (approach in air, or retreat).
    public var maxSpeedMMs = 12.0
    /// Farthest the controller may move the probe along its axis from the planned pose, mm.
    public var maxTravelMM = 45.0
    /// Speed at which the probe retreats while the axial force is above the soft limit, mm/s.
    public var softLimitRetreatMMs = 4.0

    public init() {}
}

/// Admittance control of the contact force along the probe axis: a virtual mass–damper driven
/// by the force error, M·a + D·v = F_target − F_measured. Its output is an offset along the
/// probe's axis that the motion controller adds to the planned pose, so the planner moves the
/// probe over the skin while this holds the contact force. Above the soft limit it never
/// presses further, and retreats. Pure arithmetic: no allocation.
public struct AdmittanceController: Sendable, Equatable {
    public let settings: ContactForceSettings
    /// Offset along the probe axis (+ = into the body), mm.
    public private(set) var offsetMM = 0.0
    /// Axial speed, mm/s.
    public private(set) var velocityMMs = 0.0

    public init(settings: ContactForceSettings) { self.settings = settings }

    /// Starts again from the planned pose (after a stop, or a new contact).
    public mutating func reset(offsetMM: Double = 0) {
        self.offsetMM = offsetMM
        velocityMMs = 0
    }

    /// Takes back `millimetres` of the planned pose's advance into the body, so that above the
    /// soft limit the probe's net motion along its axis is never inward.
    public mutating func absorb(_ millimetres: Double) {
        guard millimetres > 0, millimetres.isFinite else { return }
        offsetMM = max(-settings.maxTravelMM, offsetMM - millimetres)
    }

    /// Advances one control period and returns the new axial offset.
    public mutating func update(measuredN: Double, targetN: Double, dt: Double, forceLimited: Bool) -> Double {
        guard dt > 0, measuredN.isFinite, targetN.isFinite else { return offsetMM }
        let error = targetN - measuredN
        let acceleration = (error - settings.dampingNsPerMM * velocityMMs) / settings.massNs2PerMM
        // Semi-implicit Euler, bounded so that a stiff virtual mass cannot overshoot in one step.
        let settled = error / settings.dampingNsPerMM
        var next = velocityMMs + acceleration * dt
        if (next - settled) * (velocityMMs - settled) < 0 { next = settled }
        next = max(-settings.maxSpeedMMs, min(settings.maxSpeedMMs, next))
        if forceLimited { next = min(next, -settings.softLimitRetreatMMs) }
        velocityMMs = next
        offsetMM = max(-settings.maxTravelMM, min(settings.maxTravelMM, offsetMM + next * dt))
        return offsetMM
    }
}
