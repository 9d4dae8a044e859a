public import SonoGeometry
public import SonoProtocol

/// What a planned move may use of the interlocks' limits: `SafetyLimits.planningMargin` of each
/// (tip speed, joint speed, joint acceleration), so that tracking error, the contact
/// controller's own motion and the arm's configuration do not tip a move over an interlock
/// that it was timed against (issue 16, finding 13).
///
/// The bound holds along the whole path, not at its nominal speed alone:
/// - The interlock measures the speed of the probe face, which the contact controller moves
///   along the probe axis by up to `leverMM` from the planned pose and at up to `axialSpeedMMs`.
///   While the probe turns at ω, a point `leverMM` along its axis moves at ω·lever beyond the
///   planned tip's own speed, so the budget covers |v| + ω·lever + axial speed. The linear and
///   angular parts follow the same time law, so that sum peaks at 1.875·(d + θ·lever)/T.
/// - Joint speeds and accelerations come from the arm's inverse kinematics along the path
///   (`minimumDuration` samples it): q̇ = q′·ṡ and q̈ = q″·ṡ² + q′·s̈ with the law's peaks
///   ṡ ≤ 1.875/T and s̈ ≤ 5.774/T².
public struct PlanningEnvelope: Sendable {
    /// Tip speed a plan may reach at the measured probe face, mm/s (margin × interlock limit).
    public var tipSpeedMMs: Double
    /// Farthest the probe face may be from the planned pose along the probe axis (the contact
    /// controller's travel), mm.
    public var leverMM: Double
    /// The contact controller's fastest axial speed, mm/s, which adds to the planned speed.
    public var axialSpeedMMs: Double
    /// Joint speeds a plan may reach, rad/s (margin × rated × `speed.joint_fraction`).
    public var jointSpeed: JointArray<Double>
    /// Joint accelerations a plan may reach, rad/s² (margin × arm.toml's rated acceleration),
    /// so that the drives never fall behind the plan and catch up faster than it.
    public var jointAcceleration: JointArray<Double>

    /// Midpoint steps over the path for the joint bounds: a move's joint curvature changes
    /// slowly over the path, and each step costs two Jacobian solves in the loop's command
    /// handling.
    static let steps = 8
    /// The duration given to a move whose joint rates cannot be solved for (only a non-finite
    /// joint state does that: the damping keeps every pose solvable), s: slow enough to keep
    /// any margin, finite so that events and recordings stay numbers.
    static let unsolvedDuration = 60.0

    public init(limits: SafetyLimits, contact: ContactForceSettings, arm: ArmModel) {
        let margin = limits.planningMargin
        tipSpeedMMs = margin * limits.tipSpeedLimitMMs
        leverMM = contact.maxTravelMM
        axialSpeedMMs = contact.maxSpeedMMs
        jointSpeed = JointArray(count: arm.jointCount, filler: 0)
        jointAcceleration = jointSpeed
        for index in 0..<arm.jointCount {
            jointSpeed[index] = margin * arm.maxVelocity[index] * limits.jointSpeedFraction
            jointAcceleration[index] = margin * arm.robot.joints[index].maxAcceleration
        }
    }

    /// The tip-speed budget left for the plan's own motion once the contact controller's axial
    /// speed is set aside, mm/s; nil when there is none (`check` refuses that configuration).
    var plannedTipBudgetMMs: Double? {
        let budget = tipSpeedMMs - axialSpeedMMs
        return budget > 0 && budget.isFinite ? budget : nil
    }

    /// Refuses a configuration in which the contact controller alone could use the whole
    /// planning budget (a plan could then not keep its margin at any speed).
    public func check() throws(PlanningEnvelopeError) {
        guard plannedTipBudgetMMs != nil else {
            throw .noTipBudget(tipSpeedMMs: tipSpeedMMs, axialSpeedMMs: axialSpeedMMs)
        }
    }

    /// The shortest duration of `move`'s path for which it stays inside this envelope, s, with
    /// the arm at `joints` at its start. Allocates nothing (the loop calls it for each move).
    public func minimumDuration(of move: ProbeTrajectory, arm: ArmModel, joints: JointArray<Double>) -> Double {
        let peakSpeed = ProbeTrajectory.peakSpeed, peakAcceleration = ProbeTrajectory.peakAcceleration
        // Tip: (d + θ·lever)·ṡ must stay within the budget left beside the axial motion. Without
        // any budget (`check` refuses that), the plan gets a tenth of the tip limit.
        let budget = plannedTipBudgetMMs ?? 0.1 * tipSpeedMMs
        let tipPath = move.translation.length + move.rotationAngle * leverMM
        var duration = budget > 0 ? peakSpeed * tipPath / budget : 0
        guard move.translation.length > 0 || move.rotationAngle > 0 else { return duration }

        // Joints: the path's twist per unit of progress is constant (a straight line, a turn
        // about one fixed axis), so q′(s) = J(q(s))⁻¹·ξ; q(s) follows by midpoint steps from
        // the arm's joints. Two Jacobian solves per step, no iterative IK: this runs in the
        // loop's command handling. q′ is sampled at every step and half-step, q″ from those.
        let count = arm.jointCount
        let linear = move.translation
        let angular = move.start.rotation * move.rotationAxis * move.rotationAngle
        let step = 1.0 / Double(Self.steps)
        var q = joints
        var peaks = Peaks(count: count, spacing: 0.5 * step)
        for sample in 0...Self.steps {
            guard let slope = Self.jointRates(arm, q, linear: linear, angular: angular) else {
                return max(duration, Self.unsolvedDuration)
            }
            peaks.note(slope)
            guard sample < Self.steps else { break }
            var middle = q
            for index in 0..<count { middle[index] += slope[index] * 0.5 * step }
            guard let midSlope = Self.jointRates(arm, middle, linear: linear, angular: angular) else {
                return max(duration, Self.unsolvedDuration)
            }
            peaks.note(midSlope)
            for index in 0..<count { q[index] += midSlope[index] * step }
        }
        let halfStep = 0.5 * step
        let firstPeak = peaks.first, secondPeak = peaks.second
        for index in 0..<count {
            // Between two samples half a step apart the slope can exceed the larger of them by
            // up to half the curvature times that spacing.
            let slope = firstPeak[index] + 0.5 * secondPeak[index] * halfStep
            let speed = jointSpeed[index], acceleration = jointAcceleration[index]
            if speed > 0 { duration = max(duration, peakSpeed * slope / speed) }
            if acceleration > 0 {
                let need = peakSpeed * peakSpeed * secondPeak[index] + peakAcceleration * slope
                duration = max(duration, (need / acceleration).squareRoot())
            }
        }
        return duration
    }

    /// The largest |q′| and |q″| per joint over samples of q′ `spacing` apart in progress.
    struct Peaks {
        var first: JointArray<Double>
        var second: JointArray<Double>
        private var previous: JointArray<Double>
        private var sampled = false
        let spacing: Double

        init(count: Int, spacing: Double) {
            first = JointArray(count: count, filler: 0)
            second = first
            previous = first
            self.spacing = spacing
        }

        mutating func note(_ slope: JointArray<Double>) {
            for index in 0..<slope.count {
                first[index] = max(first[index], abs(slope[index]))
                if sampled { second[index] = max(second[index], abs(slope[index] - previous[index]) / spacing) }
            }
            previous = slope
            sampled = true
        }
    }

    /// q′ = Jᵀ(J·Jᵀ + λ²I)⁻¹·ξ at `q` for the twist ξ = (linear, angular), the angular rows
    /// weighted as the loop's IK weighs them. The small damping keeps a singular pose
    /// solvable; there the rates grow large and the move slow, as it must be.
    static func jointRates(_ arm: ArmModel, _ q: JointArray<Double>, linear: Vector3, angular: Vector3) -> JointArray<Double>? {
        let weight = 100.0, lambda = 0.1
        let (_, j) = arm.probePoseAndJacobian(q)
        let twist: InlineArray<6, Double> = [linear.x, linear.y, linear.z,
                                             angular.x * weight, angular.y * weight, angular.z * weight]
        guard let rates = arm.dampedLeastSquares(j, error: twist, weight: weight, lambda: lambda) else { return nil }
        for k in 0..<arm.jointCount where !rates[k].isFinite { return nil }
        return rates
    }
}

/// A configuration in which no plan can keep the planning margin.
public enum PlanningEnvelopeError: Error, Sendable, Equatable, CustomStringConvertible {
    case noTipBudget(tipSpeedMMs: Double, axialSpeedMMs: Double)

    public var description: String {
        switch self {
        case .noTipBudget(let tip, let axial):
            "speed.tip_mm_s × planning.margin = \(tip) mm/s leaves no tip speed for planned moves beside the contact "
                + "controller's own \(axial) mm/s along the probe axis: speed.tip_mm_s × planning.margin must exceed it"
        }
    }
}

extension ProbeTrajectory {
    /// A move timed by `limits` and stretched, if need be, to stay inside `envelope` along its
    /// whole path, the arm being at `joints` where it starts.
    public init(from start: Pose, to target: Pose, limits: MotionLimits, within envelope: PlanningEnvelope,
                arm: ArmModel, joints: JointArray<Double>) {
        let nominal = ProbeTrajectory(from: start, to: target, limits: limits)
        self.init(from: start, to: target, limits: limits,
                  minimumDuration: envelope.minimumDuration(of: nominal, arm: arm, joints: joints))
    }
}
