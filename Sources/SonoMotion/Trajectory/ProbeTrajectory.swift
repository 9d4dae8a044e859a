public import SonoGeometry
#if canImport(Glibc)
import Glibc
#endif

/// Speed, acceleration and jerk bounds of a probe move, linear (mm) and angular (rad).
public struct MotionLimits: Sendable, Equatable {
    public var speedMMs: Double
    public var accelerationMMs2: Double
    public var jerkMMs3: Double
    public var angularSpeed: Double
    public var angularAcceleration: Double
    public var angularJerk: Double

    /// Gentle defaults for moving a probe over a patient.
    public init(speedMMs: Double = 50, accelerationMMs2: Double = 200, jerkMMs3: Double = 20_000,
                angularSpeed: Double = 0.5, angularAcceleration: Double = 2, angularJerk: Double = 50) {
        self.speedMMs = speedMMs
        self.accelerationMMs2 = accelerationMMs2
        self.jerkMMs3 = jerkMMs3
        self.angularSpeed = angularSpeed
        self.angularAcceleration = angularAcceleration
        self.angularJerk = angularJerk
    }
}

/// A smooth, time-parameterised probe move: the tip travels a straight line while the
/// orientation turns about one fixed axis, both following the same quintic time law
/// s(τ) = 10τ³ − 15τ⁴ + 6τ⁵, which starts and ends at rest with zero acceleration. The duration
/// is the shortest for which speed, acceleration and jerk all stay within their limits, using
/// the law's peaks (1.875, 5.774 and 60 times distance over T, T² and T³). Sampling allocates
/// nothing, so the control loop can sample a trajectory every cycle; short corrective moves
/// get short durations.
public struct ProbeTrajectory: Sendable, Equatable {
    public let start: Pose
    public let target: Pose
    public let duration: Double
    private let translation: Vector3
    private let rotationAxis: Vector3
    private let rotationAngle: Double

    static let peakSpeed = 1.875
    static let peakAcceleration = 5.773_502_691_896_258  // 10/√3
    static let peakJerk = 60.0

    public init(from start: Pose, to target: Pose, limits: MotionLimits) {
        self.start = start
        self.target = target
        translation = target.position - start.position
        let twist = (start.rotation.transposed * target.rotation).rotationVector
        rotationAngle = twist.length
        rotationAxis = rotationAngle > 0 ? twist / rotationAngle : .unitZ
        let distance = translation.length
        duration = max(
            Self.minimumDuration(distance, speed: limits.speedMMs, acceleration: limits.accelerationMMs2,
                                 jerk: limits.jerkMMs3),
            Self.minimumDuration(rotationAngle, speed: limits.angularSpeed, acceleration: limits.angularAcceleration,
                                 jerk: limits.angularJerk))
    }

    static func minimumDuration(_ distance: Double, speed: Double, acceleration: Double, jerk: Double) -> Double {
        guard distance > 0 else { return 0 }
        return max(peakSpeed * distance / speed, (peakAcceleration * distance / acceleration).squareRoot(),
                   cbrt(peakJerk * distance / jerk))
    }

    /// Progress along the move at `t` seconds (clamped to the move), 0…1.
    @inline(__always)
    public func progress(at t: Double) -> Double {
        guard duration > 0 else { return 1 }
        let tau = max(0, min(1, t / duration))
        return tau * tau * tau * (10 + tau * (-15 + 6 * tau))
    }

    /// The probe pose at `t` seconds after the start.
    public func pose(at t: Double) -> Pose {
        let s = progress(at: t)
        let turn = rotationAngle > 0 ? Rotation(axis: rotationAxis, angle: rotationAngle * s) : .identity
        return Pose(rotation: start.rotation * turn, position: start.position + translation * s)
    }

    /// Tip speed at `t`, mm/s.
    public func speed(at t: Double) -> Double {
        guard duration > 0 else { return 0 }
        let tau = max(0, min(1, t / duration))
        let rate = 30 * tau * tau * (1 - tau) * (1 - tau) / duration
        return translation.length * rate
    }
}
