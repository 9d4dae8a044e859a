import Foundation
@testable import SonoGeometry
import SonoTestSupport
import Testing

/// The arm's description and kinematics (hardware/arm.toml).
@Suite struct KinematicsTests {
    static let armFile = Repository.path("hardware/arm.toml")

    let robot: RobotDescription

    init() throws { robot = try RobotDescription.load(path: Self.armFile) }

    /// A probe pose over the chest: on the skin at (x, y), beam tilted `tilt` from straight
    /// down toward azimuth `azimuth`, marker turned by `roll`.
    static func chestPose(x: Double, y: Double, z: Double, tilt: Double, azimuth: Double, roll: Double) -> Pose {
        let beam = Vector3(sin(tilt) * cos(azimuth), sin(tilt) * sin(azimuth), -cos(tilt))
        return Pose(rotation: Rotation(forward: beam, right: Vector3(cos(roll), sin(roll), 0)), position: Vector3(x, y, z))
    }

    @Test func theDescriptionLoads() {
        #expect(robot.jointCount == 6)
        #expect(robot.joints.map(\.name) == ["shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3"])
        #expect(robot.isWithinLimits(robot.home))
        #expect(abs(robot.tool.position.z - 180) < 1e-9)
    }

    /// The UR5e forward kinematics written out independently (standard DH, 4×4 matrices).
    func referenceFlange(_ q: [Double]) -> Pose {
        let d = [162.5, 0, 0, 133.3, 99.7, 99.6], a = [0, -425, -392.2, 0, 0, 0.0]
        let alpha: [Double] = [Double.pi / 2, 0, 0, Double.pi / 2, -Double.pi / 2, 0]
        var m: [[Double]] = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
        for i in 0..<6 {
            let ct = cos(q[i]), st = sin(q[i]), ca = cos(alpha[i]), sa = sin(alpha[i])
            let t: [[Double]] = [[ct, -st * ca, st * sa, a[i] * ct], [st, ct * ca, -ct * sa, a[i] * st],
                                 [0, sa, ca, d[i]], [0, 0, 0, 1]]
            m = (0..<4).map { r in (0..<4).map { c in (0..<4).reduce(0) { $0 + m[r][$1] * t[$1][c] } } }
        }
        let local = Pose(rotation: Rotation(x: Vector3(m[0][0], m[1][0], m[2][0]), y: Vector3(m[0][1], m[1][1], m[2][1]),
                                            z: Vector3(m[0][2], m[1][2], m[2][2])),
                         position: Vector3(m[0][3], m[1][3], m[2][3]))
        return robot.base * local
    }

    @Test func forwardKinematicsMatchesTheUR5eDHChain() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            let q = robot.joints.map { Double.random(in: $0.lower...$0.upper, using: &rng) }
            let ours = robot.flangePose(q), reference = referenceFlange(q)
            #expect((ours.position - reference.position).length < 1e-9)
            let difference = [ours.rotation.x - reference.rotation.x, ours.rotation.y - reference.rotation.y,
                              ours.rotation.z - reference.rotation.z].map(\.length).max() ?? 1
            #expect(difference < 1e-12)
        }
    }

    @Test func jacobianMatchesFiniteDifferences() {
        let q = [0.3, -1.2, 1.4, -1.6, -1.5, 0.4]
        let jacobian = robot.jacobian(q)
        let h = 1e-6
        for joint in 0..<6 {
            var plus = q, minus = q
            plus[joint] += h
            minus[joint] -= h
            let p1 = robot.probePose(plus), p0 = robot.probePose(minus)
            let linear = (p1.position - p0.position) / (2 * h)
            let angular = (p1.rotation * p0.rotation.transposed).rotationVector / (2 * h)
            let column = Array(jacobian[(joint * 6)..<(joint * 6 + 6)])
            let numeric = [linear.x, linear.y, linear.z, angular.x, angular.y, angular.z]
            for row in 0..<6 {
                #expect(abs(column[row] - numeric[row]) <= 1e-4 * max(1, abs(numeric[row])), "J[\(row),\(joint)]")
            }
        }
    }

    @Test func inverseKinematicsRoundTripsRandomConfigurations() {
        var rng = SystemRandomNumberGenerator()
        var converged = 0
        for _ in 0..<40 {
            let q = robot.joints.map { Double.random(in: ($0.lower * 0.8)...($0.upper * 0.8), using: &rng) }
            let seed = zip(q, robot.joints).map { min($1.upper, max($1.lower, $0 + Double.random(in: -0.2...0.2, using: &rng))) }
            let result = robot.solveIK(target: robot.probePose(q), seed: seed)
            #expect(robot.isWithinLimits(result.joints))
            if result.converged {
                converged += 1
                #expect(result.positionErrorMM < 0.1 && result.orientationErrorRad < 1e-3)
            }
        }
        #expect(converged >= 36, "\(converged) of 40 converged from a nearby seed")
    }

    @Test func theArmReachesTheWholeChestWorkspaceFromHome() {
        var total = 0, reached = 0
        var worst = 0.0
        for x in stride(from: -60.0, through: 150, by: 35) {
            for y in stride(from: -180.0, through: 60, by: 40) {
                for tilt in [0.0, 30, 60] {
                    for azimuth in stride(from: 0.0, to: 360, by: tilt == 0 ? 360 : 90) {
                        for roll in [0.0, 90, 180, 270] {
                            total += 1
                            let target = Self.chestPose(x: x, y: y, z: 0, tilt: tilt * .pi / 180,
                                                        azimuth: azimuth * .pi / 180, roll: roll * .pi / 180)
                            let result = robot.solveIK(target: target, seed: robot.home)
                            if result.converged { reached += 1 } else { worst = max(worst, result.positionErrorMM) }
                        }
                    }
                }
            }
        }
        print("chest workspace: \(reached) of \(total) poses reached from home")
        #expect(Double(reached) / Double(total) > 0.9, "\(reached) of \(total) reached")
    }

    @Test func anUnreachableTargetIsReportedNotFaked() {
        let far = Pose(rotation: .identity, position: Vector3(3_000, 0, 0))
        let result = robot.solveIK(target: far, seed: robot.home)
        #expect(!result.converged)
        #expect(robot.isWithinLimits(result.joints))
        #expect(result.positionErrorMM > 1_000)
    }

    @Test func descriptionErrorsNameTheKey() throws {
        let text = try String(contentsOfFile: Self.armFile, encoding: .utf8)
        #expect(throws: RobotDescriptionError.missing(source: "x", key: "joint[1].d_mm")) {
            try RobotDescription.parse(toml: text.replacingOccurrences(of: "d_mm = 0.0\na_mm = -425.0", with: "a_mm = -425.0"),
                                       source: "x")
        }
        #expect(throws: RobotDescriptionError.invalid(source: "x", key: "joint[0] (shoulder_pan).lower_deg",
                                                      reason: "must be below upper_deg")) {
            try RobotDescription.parse(toml: text.replacingOccurrences(of: "lower_deg = -170.0", with: "lower_deg = 175.0"),
                                       source: "x")
        }
        #expect(throws: RobotDescriptionError.unknownKey(source: "x", key: "joint[2].max_velocty_deg_s")) {
            try RobotDescription.parse(toml: text.replacingOccurrences(of: "max_current_a = 5.0",
                                                                       with: "max_current_a = 5.0\nmax_velocty_deg_s = 10"),
                                       source: "x")
        }
        #expect(throws: RobotDescriptionError.wrongType(source: "x", key: "base.position_mm", expected: "an array of 3 numbers")) {
            try RobotDescription.parse(toml: text.replacingOccurrences(of: "position_mm = [350.0, 150.0, -200.0]",
                                                                       with: "position_mm = [350.0, -60.0]"), source: "x")
        }
    }

    @Test func homeParksTheProbeAboveTheSternumPointingDown() {
        let pose = robot.probePose(robot.home)
        #expect((pose.position - Vector3(40, -40, 150)).length < 1)
        #expect(pose.rotation.z.angle(to: Vector3(0, 0, -1)) < 0.01)
    }
}
