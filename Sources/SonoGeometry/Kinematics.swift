#if canImport(Glibc)
import Glibc
#endif

/// Forward kinematics, Jacobian and inverse kinematics of a `RobotDescription`'s chain.
extension RobotDescription {
    /// Frame i from frame i−1 at joint angle `q` (standard DH).
    @inline(__always)
    func link(_ index: Int, _ q: Double) -> Pose {
        let joint = joints[index]
        let theta = q + joint.offset
        let ct = cos(theta), st = sin(theta), ca = cos(joint.alpha), sa = sin(joint.alpha)
        return Pose(rotation: Rotation(x: Vector3(ct, st, 0), y: Vector3(-st * ca, ct * ca, sa),
                                       z: Vector3(st * sa, -ct * sa, ca)),
                    position: Vector3(joint.a * ct, joint.a * st, joint.d))
    }

    /// The flange in the chest frame.
    public func flangePose(_ q: [Double]) -> Pose {
        var pose = base
        for index in joints.indices { pose = pose * link(index, q[index]) }
        return pose
    }

    /// The probe face in the chest frame.
    public func probePose(_ q: [Double]) -> Pose { flangePose(q) * tool }

    /// The geometric Jacobian at the probe face: 6 rows (vx, vy, vz in mm/rad; ωx, ωy, ωz in
    /// rad/rad), one column per joint, column-major.
    public func jacobian(_ q: [Double]) -> [Double] {
        var frames: [Pose] = [base]
        var pose = base
        for index in joints.indices {
            pose = pose * link(index, q[index])
            frames.append(pose)
        }
        let tip = (pose * tool).position
        var columns: [Double] = []
        columns.reserveCapacity(6 * joints.count)
        for index in joints.indices {
            let axis = frames[index].rotation.z
            let linear = axis.cross(tip - frames[index].position)
            columns += [linear.x, linear.y, linear.z, axis.x, axis.y, axis.z]
        }
        return columns
    }

    public func isWithinLimits(_ q: [Double]) -> Bool {
        q.count == joints.count && zip(q, joints).allSatisfy { $0.isFinite && $0 >= $1.lower && $0 <= $1.upper }
    }

    public func clampedToLimits(_ q: [Double]) -> [Double] {
        zip(q, joints).map { min($1.upper, max($1.lower, $0)) }
    }

    public struct IKResult: Sendable, Equatable {
        public var joints: [Double]
        public var converged: Bool
        public var iterations: Int
        public var positionErrorMM: Double
        public var orientationErrorRad: Double
    }

    /// Joint angles that put the probe face at `target`, found by damped least squares from
    /// `seed`, within the joint limits. Orientation error is weighted as 1 rad ≈ 100 mm. Returns
    /// the best effort with `converged = false` when the target is out of reach.
    public func solveIK(target: Pose, seed: [Double], maxIterations: Int = 300,
                        positionToleranceMM: Double = 0.05, orientationToleranceRad: Double = 5e-4) -> IKResult {
        let weight = 100.0
        let n = joints.count
        var q = clampedToLimits(seed)
        var result = IKResult(joints: q, converged: false, iterations: 0, positionErrorMM: .infinity,
                              orientationErrorRad: .infinity)
        for iteration in 0...maxIterations {
            let pose = probePose(q)
            let positionError = target.position - pose.position
            let orientationError = (target.rotation * pose.rotation.transposed).rotationVector
            result = IKResult(joints: q, converged: false, iterations: iteration, positionErrorMM: positionError.length,
                              orientationErrorRad: orientationError.length)
            if positionError.length <= positionToleranceMM && orientationError.length <= orientationToleranceRad {
                result.converged = true
                return result
            }
            guard iteration < maxIterations else { break }
            let error = [positionError.x, positionError.y, positionError.z,
                         orientationError.x * weight, orientationError.y * weight, orientationError.z * weight]
            var jacobian = self.jacobian(q)
            for column in 0..<n { for row in 3..<6 { jacobian[column * 6 + row] *= weight } }
            // Damping grows near singularities and with the remaining error, bounding the step.
            let lambda = 2.0 + 0.02 * min(200, positionError.length + weight * orientationError.length)
            guard var step = Self.dampedLeastSquares(jacobian, n: n, error: error, lambda: lambda) else { break }
            let largest = step.map(abs).max() ?? 0
            if largest > 0.15 { step = step.map { $0 * 0.15 / largest } }
            q = clampedToLimits(zip(q, step).map(+))
        }
        return result
    }

    /// Δq = Jᵀ (J Jᵀ + λ² I)⁻¹ e for a 6×n Jacobian (column-major).
    static func dampedLeastSquares(_ j: [Double], n: Int, error: [Double], lambda: Double) -> [Double]? {
        var a = [Double](repeating: 0, count: 36)
        for row in 0..<6 {
            for column in 0..<6 {
                var sum = 0.0
                for k in 0..<n { sum += j[k * 6 + row] * j[k * 6 + column] }
                a[row * 6 + column] = sum + (row == column ? lambda * lambda : 0)
            }
        }
        var matrix = InlineArray<36, Double>(repeating: 0)
        var rhs = InlineArray<6, Double>(repeating: 0)
        for index in 0..<36 { matrix[index] = a[index] }
        for index in 0..<6 { rhs[index] = error[index] }
        guard let y = LinearSystem6.solve(matrix, rhs) else { return nil }
        return (0..<n).map { k in (0..<6).reduce(0) { $0 + j[k * 6 + $1] * y[$1] } }
    }
}
