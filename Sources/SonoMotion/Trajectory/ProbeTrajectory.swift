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

    /// The fields by the names configuration files, the API and the recording use.
    var namedFields: KeyValuePairs<String, Double> {
        ["speed_mm_s": speedMMs, "acceleration_mm_s2": accelerationMMs2, "jerk_mm_s3": jerkMMs3,
         "angular_speed_rad_s": angularSpeed, "angular_acceleration_rad_s2": angularAcceleration,
         "angular_jerk_rad_s3": angularJerk]
    }

    /// These limits if every field is a finite positive number. The trajectory divides by each
    /// of them: a zero gives an infinite duration, a NaN a NaN one (the loop would then sample
    /// NaN poses), a negative one a negative duration. So every edge where limits come from
    /// input (configuration, the planner, a recording, the API) calls this first.
    /// - Throws: `MotionLimitsError` naming the first bad field.
    public func validated() throws(MotionLimitsError) -> MotionLimits {
        for (name, value) in namedFields {
            guard value.isFinite, value > 0 else { throw MotionLimitsError(field: name, value: value) }
        }
        return self
    }

    /// Limits from input values, checked as `validated()` does.
    public init(validating speedMMs: Double, accelerationMMs2: Double, jerkMMs3: Double, angularSpeed: Double,
                angularAcceleration: Double, angularJerk: Double) throws(MotionLimitsError) {
        self = try MotionLimits(speedMMs: speedMMs, accelerationMMs2: accelerationMMs2, jerkMMs3: jerkMMs3,
                                angularSpeed: angularSpeed, angularAcceleration: angularAcceleration,
                                angularJerk: angularJerk).validated()
    }
}

/// A motion limit that is not a finite positive number.
public struct MotionLimitsError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The field's name (`speed_mm_s`, `angular_jerk_rad_s3`, …).
    public var field: String
    public var value: Double

    public init(field: String, value: Double) {
        self.field = field
        self.value = value
    }

    public var description: String {
        let what = value.isNaN ? "NaN" : value.isInfinite ? "infinite" : "\(value)"
        return "motion limit \(field) is \(what); it must be a finite number above 0"
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
    let translation: Vector3
    let rotationAxis: Vector3
    let rotationAngle: Double

    static let peakSpeed = 1.875
    static let peakAcceleration = 5.773_502_691_896_258  // 10/√3
    static let peakJerk = 60.0

    /// - Parameter minimumDuration: a floor on the duration, s (`PlanningEnvelope` sets it so
    ///   that the move keeps its margin below the interlocks).
    public init(from start: Pose, to target: Pose, limits: MotionLimits, minimumDuration floor: Double = 0) {
        self.start = start
        self.target = target
        translation = target.position - start.position
        let twist = (start.rotation.transposed * target.rotation).rotationVector
        rotationAngle = twist.length
        rotationAxis = rotationAngle > 0 ? twist / rotationAngle : .unitZ
        let distance = translation.length
        duration = max(
            floor.isFinite ? floor : 0,
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
    public func pose(at t: Double) -> Pose { pose(progress: progress(at: t)) }

    /// The probe pose at progress `s` (0…1) along the path.
    @inline(__always)
    func pose(progress s: Double) -> Pose {
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
