import Foundation
import SonoGeometry
@testable import SonoMotion
import SonoProtocol
import SonoTestSupport
import Testing

/// Issue 16, finding 13: planned moves keep `[planning] margin` below every interlock along their
/// whole path. Random reachable start/goal pairs of the shipped arm (hardware/arm.toml) are
/// planned as the motion controller plans them, then followed at the loop's 1 kHz with its
/// inverse kinematics; every sample's probe-face speed, joint speed and joint acceleration is
/// compared with the interlock's limit.
@Suite struct PlanningMarginTests {

    static func arm() throws -> ArmModel { try ArmModel(RobotDescription.load(path: Repository.path("hardware/arm.toml"))) }
    static func limits() throws -> SafetyLimits { try SafetyLimits.load(path: Repository.path("hardware/safety.toml")) }

    /// The largest ratio to its limit seen over a set of moves, and where.
    struct Peak: CustomStringConvertible {
        var ratio = 0.0
        var pair = -1
        mutating func note(_ value: Double, limit: Double, pair: Int) {
            let r = value / limit
            if r > ratio { (ratio, self.pair) = (r, pair) }
        }
        var description: String { String(format: "%.3f (pair %d)", ratio, pair) }
    }

    /// A reachable pose: joints near home within their limits, the probe face inside the
    /// interlocks' workspace and pointing into the chest (down), as the planner's targets do.
    static func reachable(_ arm: ArmModel, _ limits: SafetyLimits, _ random: inout TestRandom) -> JointArray<Double>? {
        var q = JointArray(arm.robot.home, filler: 0)
        for index in 0..<arm.jointCount {
            q[index] += Double.random(in: -0.45...0.45, using: &random)
            guard (arm.lower[index]...arm.upper[index]).contains(q[index]) else { return nil }
        }
        let pose = arm.probePose(q)
        let inside = (limits.workspaceMin.x...limits.workspaceMax.x).contains(pose.position.x)
            && (limits.workspaceMin.y...limits.workspaceMax.y).contains(pose.position.y)
            && (limits.workspaceMin.z...limits.workspaceMax.z).contains(pose.position.z)
        return inside && pose.rotation.z.z < -0.3 ? q : nil
    }

    /// The shipped limits (where the tip-speed bound is the one that binds), and joint speeds cut
    /// to 30 % of their rating (where the joint bound binds).
    @Test(arguments: [(1.0, 200), (0.3, 60)])
    func noPlannedMoveComesCloserToAnInterlockThanTheMargin(jointFraction: Double, pairs: Int) throws {
        let arm = try Self.arm()
        var limits = try Self.limits()
        limits.jointSpeedFraction = jointFraction
        let contact = ContactForceSettings()
        let envelope = PlanningEnvelope(limits: limits, contact: contact, arm: arm)
        let margin = limits.planningMargin
        #expect(margin == 0.8, "the shipped margin")
        var random = TestRandom(seed: 16_013)
        var tip = Peak(), leverTip = Peak(), joint = Peak(), acceleration = Peak()
        var planned = 0, untracked = 0, stretched = 0, attempts = 0
        // Every 2 ms (the loop runs at 1 ms; the IK follows a 2 ms step as closely).
        let dt = 0.002
        while planned < pairs, attempts < 20_000 {
            attempts += 1
            guard let qStart = Self.reachable(arm, limits, &random), let qGoal = Self.reachable(arm, limits, &random) else {
                continue
            }
            let start = arm.probePose(qStart), goal = arm.probePose(qGoal)
            // What a planner may ask for, up to and past the interlock's own limit: the plan must
            // keep its margin whatever it is asked.
            var asked = MotionLimits()
            asked.speedMMs = Double.random(in: 25...150, using: &random)
            asked.angularSpeed = Double.random(in: 0.2...2.0, using: &random)
            asked.accelerationMMs2 = Double.random(in: 100...2_000, using: &random)
            let move = ProbeTrajectory(from: start, to: goal, limits: asked, within: envelope, arm: arm, joints: qStart)
            if move.duration > ProbeTrajectory(from: start, to: goal, limits: asked).duration * 1.000_001 { stretched += 1 }

            // Follow it as the loop does: IK from the last target, every sample.
            var commanded: [JointArray<Double>] = [qStart]
            var tracked = true
            // Per cycle: the face the arm is commanded to (IK included), and the plan's own points
            // at the contact controller's reach along the axis, either way.
            var samples: [(face: Vector3, leverPlus: Vector3, leverMinus: Vector3)] = []
            for cycle in 0...Int((move.duration / dt).rounded(.up)) {
                let pose = move.pose(at: Double(cycle) * dt)
                let tracking = arm.track(pose, from: commanded[commanded.count - 1])
                guard tracking.positionErrorMM < 1, tracking.orientationErrorRad < 0.01 else {
                    tracked = false  // the controller would abort the move (not an interlock)
                    break
                }
                commanded.append(tracking.joints)
                let face = arm.probePose(tracking.joints)
                samples.append((face.position, pose.position + pose.rotation.z * contact.maxTravelMM,
                                pose.position - pose.rotation.z * contact.maxTravelMM))
            }
            guard tracked else {
                untracked += 1
                continue
            }
            let pair = planned
            planned += 1
            for index in 1..<samples.count {
                tip.note((samples[index].face - samples[index - 1].face).length / dt, limit: limits.tipSpeedLimitMMs, pair: pair)
                // The contact controller may hold the face up to its travel along the axis and move
                // it at its own axial speed: the interlock would see this much at worst.
                let plus = (samples[index].leverPlus - samples[index - 1].leverPlus).length / dt
                let minus = (samples[index].leverMinus - samples[index - 1].leverMinus).length / dt
                leverTip.note(max(plus, minus) + contact.maxSpeedMMs, limit: limits.tipSpeedLimitMMs, pair: pair)
            }
            // Joint speeds over each sample; accelerations over 10 ms (the IK's sub-micron
            // residuals would dominate a shorter second difference).
            for index in 1..<commanded.count {
                for j in 0..<arm.jointCount {
                    joint.note(abs(commanded[index][j] - commanded[index - 1][j]) / dt,
                               limit: arm.maxVelocity[j] * limits.jointSpeedFraction, pair: pair)
                }
            }
            let window = 5
            if commanded.count > 2 * window {
                for index in window..<(commanded.count - window) {
                    for j in 0..<arm.jointCount {
                        let second = commanded[index + window][j] - 2 * commanded[index][j] + commanded[index - window][j]
                        acceleration.note(abs(second) / pow(Double(window) * dt, 2),
                                          limit: arm.robot.joints[j].maxAcceleration, pair: pair)
                    }
                }
            }
        }
        print("planning margin \(margin), joint_fraction \(jointFraction): \(planned) moves planned (\(stretched) stretched by the envelope, "
              + "\(untracked) not trackable and skipped, \(attempts) draws); highest ratio to the interlock limit: "
              + "tip speed \(tip), tip speed with the contact controller's reach and axial speed \(leverTip), "
              + "joint speed \(joint), joint acceleration \(acceleration)")
        #expect(planned >= pairs, "enough reachable pairs: \(planned) of \(attempts) draws, \(untracked) untracked")
        #expect(tip.ratio <= margin, "tip speed \(tip)")
        #expect(leverTip.ratio <= margin, "tip speed with the contact controller's reach \(leverTip)")
        #expect(joint.ratio <= margin, "joint speed \(joint)")
        #expect(acceleration.ratio <= margin, "joint acceleration \(acceleration)")
        #expect(stretched > 0, "some asked-for speeds exceed the envelope and were slowed")
        if jointFraction < 1 {
            #expect(joint.ratio > 0.6, "the joint bound is the one that binds here: \(joint)")
        }
    }

    /// Without the envelope (the trajectory timed on the asked-for limits alone, as before), the
    /// same kind of request reaches past the margin: the test above can fail.
    @Test func theNominalProfileAloneDoesNotKeepTheMargin() throws {
        let arm = try Self.arm()
        let limits = try Self.limits()
        let q = JointArray(arm.robot.home, filler: 0)
        let start = arm.probePose(q)
        var goal = start
        goal.position += Vector3(60, -40, 0)
        goal.rotation = start.rotation * Rotation(axis: .unitX, angle: 0.4)
        var asked = MotionLimits()
        asked.speedMMs = limits.tipSpeedLimitMMs  // at the interlock's own limit
        asked.angularSpeed = 1.0
        asked.accelerationMMs2 = 2_000
        let nominal = ProbeTrajectory(from: start, to: goal, limits: asked)
        let bounded = ProbeTrajectory(from: start, to: goal, limits: asked,
                                      within: PlanningEnvelope(limits: limits, contact: ContactForceSettings(), arm: arm),
                                      arm: arm, joints: q)
        // What planning costs the loop's command handling (one call per move), printed: a debug
        // build's figure, several times a release build's.
        let envelope = PlanningEnvelope(limits: limits, contact: ContactForceSettings(), arm: arm)
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for _ in 0..<100 { _ = ProbeTrajectory(from: start, to: goal, limits: asked, within: envelope, arm: arm, joints: q) }
        }
        print("planning one move within the envelope: \(elapsed / 100) (this build)")
        let nominalPeak = nominal.speed(at: nominal.duration / 2)
        #expect(nominalPeak > limits.planningMargin * limits.tipSpeedLimitMMs, "\(nominalPeak) mm/s")
        #expect(bounded.speed(at: bounded.duration / 2) <= limits.planningMargin * limits.tipSpeedLimitMMs)
        #expect(bounded.duration > nominal.duration)
    }

    @Test func theEnvelopeRefusesAConfigurationWithNoTipBudget() throws {
        var limits = SafetyLimits()
        limits.tipSpeedLimitMMs = 14  // × 0.8 = 11.2 mm/s, below the contact controller's 12 mm/s
        let envelope = PlanningEnvelope(limits: limits, contact: ContactForceSettings(), arm: try Self.arm())
        #expect(throws: PlanningEnvelopeError.self) { try envelope.check() }
        #expect(throws: Never.self) { try PlanningEnvelope(limits: SafetyLimits(), contact: ContactForceSettings(), arm: try Self.arm()).check() }
    }
}
