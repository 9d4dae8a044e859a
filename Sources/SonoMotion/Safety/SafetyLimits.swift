public import SonoGeometry

/// Every limit the interlocks enforce, with its default. hardware/safety.toml documents them;
/// a deployment may only tighten them (enforced when the file is loaded).
public struct SafetyLimits: Sendable, Equatable {
    /// Contact force magnitude above which the arm stops and backs off, N.
    public var forceHardCapN = 20.0
    /// Axial force above which the controller backs off (no stop), N.
    public var forceSoftLimitN = 12.0
    /// Fastest allowed change of the force magnitude, N/s (a sudden blow or slip).
    public var forceRateLimitNPerS = 400.0
    /// Window over which the force rate is measured, µs.
    public var forceRateWindowMicros: UInt64 = 10_000
    /// Probe tip speed limit, mm/s.
    public var tipSpeedLimitMMs = 100.0
    /// Joint speed limit as a fraction of each joint's rated maximum.
    public var jointSpeedFraction = 1.0
    /// Where the probe tip may be, chest frame, mm: an axis-aligned box over the chest.
    public var workspaceMin = Vector3(-120, -220, -60)
    public var workspaceMax = Vector3(200, 120, 250)
    /// A force sample older than this stops the arm, µs.
    public var forceDeadlineMicros: UInt64 = 5_000
    /// A joint state older than this stops the arm, µs.
    public var jointStateDeadlineMicros: UInt64 = 5_000
    /// Whether motion needs the operator's dead-man switch held (manual mode).
    public var requireDeadMan = false
    /// Contact is held only while a supervising client (the scan planner, or an operator's
    /// explicit hold) renews its lease this often; an expired lease lifts the probe off, µs.
    public var contactLeaseMicros: UInt64 = 300_000
    /// A probe frame older than this (acquisition to classification) is not used by the
    /// planner and renews no lease; with no fresher frame the lease runs out, µs.
    public var frameAgeMicros: UInt64 = 200_000
    /// Axial force above which the probe counts as in contact (the lease is needed), N.
    public var contactDetectN = 2.0
    /// How far a lift-off takes the probe back along its axis, mm.
    public var liftOffMM = 15.0
    /// The operator's release after a category 0/1 stop: speed and distance of the retraction
    /// along the probe axis, and how much the axial force may rise above the larger of its value
    /// at the start and the soft limit (the patient following the probe, or a retraction
    /// pressing in) before it is stopped.
    public var releaseSpeedMMs = 5.0
    public var releaseDistanceMM = 15.0
    public var releaseForceRiseN = 2.0
    /// Monitored standstill after a category 2 stop: once the arm has had `standstillSettleMicros`
    /// to stop, tip speed above `standstillSpeedMMs` or a drift of more than
    /// `standstillDisplacementMM` from where it stopped is a category 1 fault.
    public var standstillSpeedMMs = 5.0
    public var standstillDisplacementMM = 2.0
    public var standstillSettleMicros: UInt64 = 500_000
    /// Fraction of every interlock limit (tip speed, joint speed, joint acceleration) a planned
    /// move may use (`[planning] margin`). Moves timed at the limit itself trip it on tracking
    /// error or the arm's configuration (issue 16, finding 13: 100.15 mm/s against 100); the
    /// rest is headroom for what the plan does not see. 0 < margin < 1; a site may lower it.
    public var planningMargin = 0.8
    /// The file these limits came from (status and `GET /v1/limits` show it).
    public var profile = SafetyProfile.builtIn

    /// The widest stale-data deadline a simulation profile may set, µs: the simulated boards
    /// reach the host through umockdev's relay thread, whose latency tail the 5 ms hardware
    /// deadlines do not allow for; beyond 100 ms the simulation would no longer exercise them.
    public static let simulationDeadlineCeilingMicros: UInt64 = 100_000

    public init() {}
}

/// Which safety profile is in force: hardware/safety.toml (or a site's tightened copy), or the
/// simulation-only hardware/safety-simulation.toml, which alone may widen the stale-data
/// deadlines and which sonod refuses on hardware.
public struct SafetyProfile: Sendable, Equatable {
    /// `[profile] name` ("hardware", "simulation", or a site's own).
    public var name: String
    /// The file it was read from; nil for the built-in defaults.
    public var path: String?
    /// `[profile] simulation = true`: the simulation's profile.
    public var simulation: Bool

    public init(name: String, path: String?, simulation: Bool) {
        self.name = name
        self.path = path
        self.simulation = simulation
    }

    /// SafetyLimits' own defaults, with no file.
    public static let builtIn = SafetyProfile(name: "built-in", path: nil, simulation: false)
}

/// IEC 60204-1 stop categories, as the interlocks request them.
public enum StopKind: UInt8, Sendable, Equatable, CustomStringConvertible {
    /// Remove drive power at once, brakes on.
    case category0 = 0
    /// Controlled stop at maximum deceleration, then remove power.
    case category1 = 1
    /// Controlled stop, power stays on, position held.
    case category2 = 2

    public var description: String { "category \(rawValue)" }
}

/// Why the interlocks acted. Each cause has one documented reaction (`reaction`).
public enum SafetyCause: String, Sendable, Equatable, CaseIterable {
    case forceHardCap = "force_hard_cap"
    case forceRate = "force_rate"
    case tipSpeed = "tip_speed"
    case jointSpeed = "joint_speed"
    case workspace = "workspace"
    case jointLimit = "joint_limit"
    case staleForce = "stale_force"
    case staleJointState = "stale_joint_state"
    case boardLost = "board_lost"
    case boardFault = "board_fault"
    case emergencyStop = "emergency_stop"
    case deadManReleased = "dead_man_released"
    case nonFiniteInput = "non_finite_input"
    case sensorUntrusted = "sensor_untrusted"
    case operatorStop = "operator_stop"
    /// The arm moved while it should stand still after a category 2 stop.
    case standstillLost = "standstill_lost"

    public enum Reaction: Sendable, Equatable {
        /// Stop, hold, and resume once the cause is gone and the operator resumes.
        case protectiveStop(StopKind)
        /// Stop and latch a fault: only an explicit reset, with the cause gone, clears it.
        case fault(StopKind)
        /// The emergency-stop circuit: stop category 0; reset needed after release.
        case emergencyStop
    }

    /// The documented reaction to each breach (hardware/safety.toml lists the same table).
    public var reaction: Reaction {
        switch self {
        // Over-force: stop without dropping power, so the controller can back the probe off.
        case .forceHardCap: .fault(.category2)
        case .forceRate: .protectiveStop(.category2)
        case .tipSpeed, .jointSpeed, .jointLimit, .nonFiniteInput, .boardFault, .standstillLost: .fault(.category1)
        case .workspace: .protectiveStop(.category2)
        // Without fresh force or joint data the arm cannot be trusted to hold: stop and power off.
        case .staleForce, .staleJointState, .boardLost, .sensorUntrusted: .fault(.category1)
        case .emergencyStop: .emergencyStop
        case .deadManReleased, .operatorStop: .protectiveStop(.category2)
        }
    }
}
