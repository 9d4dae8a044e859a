public import SonoGeometry
public import SonoProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The geometric Jacobian at the probe face, stored inline: column i is joint i's contribution
/// to the tip's linear velocity (mm/rad) and angular velocity (rad/rad).
public struct ProbeJacobian: Sendable {
    public var linear: InlineArray<8, Vector3>
    public var angular: InlineArray<8, Vector3>
    public let count: Int

    init(count: Int) {
        linear = InlineArray(repeating: .zero)
        angular = InlineArray(repeating: .zero)
        self.count = count
    }
}

/// The arm's kinematics in the form the control loop uses: the same chain as
/// `RobotDescription` (whose array-based FK/IK serve planning and tests), with every quantity
/// in fixed-size inline storage so forward kinematics, the Jacobian and an inverse-kinematics
/// step allocate nothing.
public struct ArmModel: Sendable {
    struct Link: Sendable {
        var d, a, cosAlpha, sinAlpha, offset: Double
    }

    public let robot: RobotDescription
    public let jointCount: Int
    private let links: InlineArray<8, Link>
    public let lower: JointArray<Double>
    public let upper: JointArray<Double>
    public let maxVelocity: JointArray<Double>
    public let maxCurrent: JointArray<Double>

    public enum ModelError: Error, Sendable, Equatable, CustomStringConvertible {
        case jointCount(Int)
        public var description: String {
            switch self {
            case .jointCount(let count): "the arm has \(count) joints; the controller supports 1…\(ProtocolConstants.maxJoints)"
            }
        }
    }

    public init(_ robot: RobotDescription) throws(ModelError) {
        let count = robot.joints.count
        guard (1...ProtocolConstants.maxJoints).contains(count) else { throw .jointCount(count) }
        self.robot = robot
        jointCount = count
        var links = InlineArray<8, Link>(repeating: Link(d: 0, a: 0, cosAlpha: 1, sinAlpha: 0, offset: 0))
        for (index, joint) in robot.joints.enumerated() {
            links[index] = Link(d: joint.d, a: joint.a, cosAlpha: cos(joint.alpha), sinAlpha: sin(joint.alpha),
                                offset: joint.offset)
        }
        self.links = links
        lower = JointArray(robot.joints.map(\.lower), filler: 0)
        upper = JointArray(robot.joints.map(\.upper), filler: 0)
        maxVelocity = JointArray(robot.joints.map(\.maxVelocity), filler: 0)
        maxCurrent = JointArray(robot.joints.map(\.maxCurrent), filler: 0)
    }

    /// The joint-safety limits the interlocks check, one per joint.
    public var jointSafetyLimits: [JointSafetyLimits] {
        robot.joints.map { JointSafetyLimits(lower: $0.lower, upper: $0.upper, maxVelocity: $0.maxVelocity) }
    }

    @inline(__always)
    private func transform(_ index: Int, _ q: Double) -> Pose {
        let link = links[index]
        let theta = q + link.offset
        let ct = cos(theta), st = sin(theta)
        let ca = link.cosAlpha, sa = link.sinAlpha
        return Pose(rotation: Rotation(x: Vector3(ct, st, 0), y: Vector3(-st * ca, ct * ca, sa),
                                       z: Vector3(st * sa, -ct * sa, ca)),
                    position: Vector3(link.a * ct, link.a * st, link.d))
    }

    /// The probe face in the chest frame.
    public func probePose(_ q: JointArray<Double>) -> Pose {
        var pose = robot.base
        for index in 0..<jointCount { pose = pose * transform(index, q[index]) }
        return pose * robot.tool
    }

    /// The probe pose and the Jacobian at `q`, from one pass over the chain.
    public func probePoseAndJacobian(_ q: JointArray<Double>) -> (Pose, ProbeJacobian) {
        var axes = InlineArray<8, Vector3>(repeating: .zero)
        var origins = InlineArray<8, Vector3>(repeating: .zero)
        var pose = robot.base
        for index in 0..<jointCount {
            axes[index] = pose.rotation.z
            origins[index] = pose.position
            pose = pose * transform(index, q[index])
        }
        let tip = pose * robot.tool
        var jacobian = ProbeJacobian(count: jointCount)
        for index in 0..<jointCount {
            jacobian.angular[index] = axes[index]
            jacobian.linear[index] = axes[index].cross(tip.position - origins[index])
        }
        return (tip, jacobian)
    }

    /// Linear velocity of the probe tip, mm/s, for joint velocities `qdot`.
    public func tipVelocity(_ jacobian: ProbeJacobian, _ qdot: JointArray<Double>) -> Vector3 {
        var velocity = Vector3.zero
        for index in 0..<min(jacobian.count, qdot.count) { velocity += jacobian.linear[index] * qdot[index] }
        return velocity
    }

    /// Result of `track`: the joint target and how far its pose is from the one asked for.
    public struct Tracking: Sendable {
        public var joints: JointArray<Double>
        public var pose: Pose
        public var positionErrorMM: Double
        public var orientationErrorRad: Double
    }

    /// Differential inverse kinematics for the control loop: damped-least-squares steps from
    /// `seed` (the previous cycle's target) toward `target`, each clamped to the joint limits.
    /// A trajectory moves the target a fraction of a millimetre per cycle, so one or two steps
    /// track it; the remaining error is reported, never hidden.
    public func track(_ target: Pose, from seed: JointArray<Double>, iterations: Int = 3,
                      toleranceMM: Double = 0.005) -> Tracking {
        let weight = 100.0  // 1 rad of orientation error counts as 100 mm
        var q = seed
        var (pose, jacobian) = probePoseAndJacobian(q)
        for _ in 0..<iterations {
            let dp = target.position - pose.position
            let dw = (target.rotation * pose.rotation.transposed).rotationVector
            if dp.length < toleranceMM && dw.length * weight < toleranceMM { break }
            let error: InlineArray<6, Double> = [dp.x, dp.y, dp.z, dw.x * weight, dw.y * weight, dw.z * weight]
            let lambda = 0.5 + 0.02 * min(100, dp.length + weight * dw.length)
            guard let step = dampedLeastSquares(jacobian, error: error, weight: weight, lambda: lambda) else { break }
            var largest = 0.0
            for index in 0..<jointCount { largest = max(largest, abs(step[index])) }
            let scale = largest > 0.05 ? 0.05 / largest : 1
            for index in 0..<jointCount {
                q[index] = min(upper[index], max(lower[index], q[index] + step[index] * scale))
            }
            (pose, jacobian) = probePoseAndJacobian(q)
        }
        return Tracking(joints: q, pose: pose, positionErrorMM: (target.position - pose.position).length,
                        orientationErrorRad: (target.rotation * pose.rotation.transposed).rotationVector.length)
    }

    /// Δq = Jᵀ (J Jᵀ + λ² I)⁻¹ e with the angular rows of J scaled by `weight` (the loop's IK
    /// step, and the planning envelope's joint rates for a twist).
    func dampedLeastSquares(_ j: ProbeJacobian, error: InlineArray<6, Double>, weight: Double,
                                    lambda: Double) -> JointArray<Double>? {
        @inline(__always) func entry(_ row: Int, _ column: Int) -> Double {
            row < 3 ? j.linear[column][row] : j.angular[column][row - 3] * weight
        }
        var a = InlineArray<36, Double>(repeating: 0)
        for row in 0..<6 {
            for column in row..<6 {
                var sum = 0.0
                for k in 0..<jointCount { sum += entry(row, k) * entry(column, k) }
                a[row * 6 + column] = sum + (row == column ? lambda * lambda : 0)
                a[column * 6 + row] = a[row * 6 + column]
            }
        }
        guard let y = LinearSystem6.solve(a, error) else { return nil }
        var step = JointArray<Double>(count: jointCount, filler: 0)
        for k in 0..<jointCount {
            var sum = 0.0
            for row in 0..<6 { sum += entry(row, k) * y[row] }
            step[k] = sum
        }
        return step
    }
}

extension Vector3 {
    @inline(__always)
    subscript(axis: Int) -> Double { axis == 0 ? x : (axis == 1 ? y : z) }
}
