import SonoGeometry
@testable import SonoMotion
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ProbeTrajectoryTests {
    let start = Pose(rotation: Rotation(forward: Vector3(0, 0, -1), right: .unitX), position: Vector3(40, -20, 60))

    func target(dx: Double, dy: Double, dz: Double, turn: Double) -> Pose {
        Pose(rotation: start.rotation * Rotation(axis: Vector3(1, 2, 0.5), angle: turn),
             position: start.position + Vector3(dx, dy, dz))
    }

    @Test func startsAndEndsExactlyWhereAsked() {
        let goal = target(dx: 80, dy: -30, dz: -40, turn: 0.6)
        let move = ProbeTrajectory(from: start, to: goal, limits: MotionLimits())
        #expect(move.pose(at: 0) == start)
        #expect((move.pose(at: move.duration).position - goal.position).length < 1e-9)
        #expect(move.pose(at: move.duration).rotation.angle(to: goal.rotation) < 1e-6)
        #expect(move.pose(at: move.duration + 5).position == move.pose(at: move.duration).position)
    }

    @Test(arguments: [(80.0, 0.0), (2.0, 0.0), (0.0, 0.8), (150.0, 1.2), (0.3, 0.01)])
    func staysWithinSpeedAccelerationAndJerkLimits(_ distance: Double, _ turn: Double) {
        let limits = MotionLimits()
        let move = ProbeTrajectory(from: start, to: target(dx: distance * 0.6, dy: distance * 0.8, dz: 0, turn: turn),
                                   limits: limits)
        let dt = move.duration / 2_000
        var positions: [Double] = []
        var angles: [Double] = []
        for index in 0...2_000 {
            let pose = move.pose(at: Double(index) * dt)
            positions.append((pose.position - start.position).length)
            // ‖R − I‖_F = 2√2·sin(θ/2): precise for small angles, unlike acos of the trace.
            let relative = start.rotation.transposed * pose.rotation
            let frobenius = ((relative.x - .unitX).lengthSquared + (relative.y - .unitY).lengthSquared
                             + (relative.z - .unitZ).lengthSquared).squareRoot()
            angles.append(2 * asin(min(1, frobenius / (2 * 2.0.squareRoot()))))
        }
        func peaks(_ x: [Double]) -> (Double, Double, Double) {
            let v = zip(x.dropFirst(), x).map { ($0 - $1) / dt }
            let a = zip(v.dropFirst(), v).map { ($0 - $1) / dt }
            let j = zip(a.dropFirst(), a).map { ($0 - $1) / dt }
            return (v.map(abs).max() ?? 0, a.map(abs).max() ?? 0, j.map(abs).max() ?? 0)
        }
        let (v, a, j) = peaks(positions)
        #expect(v <= limits.speedMMs * 1.001 && a <= limits.accelerationMMs2 * 1.01 && j <= limits.jerkMMs3 * 1.05,
                "linear peaks \(v) \(a) \(j) over \(move.duration) s")
        let (w, alpha, jerk) = peaks(angles)
        #expect(w <= limits.angularSpeed * 1.001 && alpha <= limits.angularAcceleration * 1.01
                    && jerk <= limits.angularJerk * 1.05, "angular peaks \(w) \(alpha) \(jerk)")
        // The duration is the shortest allowed: some limit is reached.
        let reached = [v / limits.speedMMs, a / limits.accelerationMMs2, j / limits.jerkMMs3,
                       w / limits.angularSpeed, alpha / limits.angularAcceleration, jerk / limits.angularJerk].max() ?? 0
        #expect(reached > 0.95)
        #expect(abs(move.speed(at: move.duration / 2) - v) < 0.01 * max(v, 1e-9) + 1e-9)
    }

    @Test func aMoveToWhereTheProbeIsTakesNoTime() {
        let move = ProbeTrajectory(from: start, to: start, limits: MotionLimits())
        #expect(move.duration == 0 && move.pose(at: 0.1) == start && move.speed(at: 0) == 0)
    }

    @Test func smallCorrectionsAreQuick() {
        let correction = ProbeTrajectory(from: start, to: target(dx: 0.5, dy: 0, dz: 0, turn: 0), limits: MotionLimits())
        #expect(correction.duration < 0.15)
    }
}
