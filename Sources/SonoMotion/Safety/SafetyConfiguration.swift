import Foundation
import SonoGeometry
import SonoTOML
import TOMLKit

public enum SafetyConfigurationError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case syntax(source: String, message: String)
    case unknownKey(source: String, key: String)
    case wrongType(source: String, key: String, expected: String)
    /// A limit looser than its default: the file may only tighten.
    case looserThanDefault(source: String, key: String, value: Double, limit: Double)
    /// A value outside what the key can mean at all (e.g. a planning margin of 0 or 1.2).
    case outOfRange(source: String, key: String, value: Double, allowed: String)
    /// The simulation-only profile (`[profile] simulation = true`) loaded where the arm is real.
    case simulationProfileRefused(source: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot read safety configuration \(path): \(reason)"
        case .syntax(let source, let message): "\(source): not valid TOML: \(message)"
        case .unknownKey(let source, let key): "\(source): unknown key \(key)"
        case .wrongType(let source, let key, let expected): "\(source): \(key) must be \(expected)"
        case .looserThanDefault(let source, let key, let value, let limit):
            "\(source): \(key) = \(value) is looser than the built-in limit \(limit); a site may only tighten limits"
        case .outOfRange(let source, let key, let value, let allowed): "\(source): \(key) = \(value) must be \(allowed)"
        case .simulationProfileRefused(let source):
            "\(source) is the simulation safety profile ([profile] simulation = true), whose stale-data deadlines "
                + "are wider than the hardware's; it is refused outside the simulation: set [files] safety to the "
                + "hardware profile (safety.toml)"
        }
    }
}

extension SafetyLimits {
    /// - Parameter simulation: whether the arm is simulated; only then is the simulation
    ///   profile (hardware/safety-simulation.toml) accepted.
    public static func load(path: String, simulation: Bool = false) throws(SafetyConfigurationError) -> SafetyLimits {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .unreadable(path: path, reason: error.localizedDescription)
        }
        return try parse(toml: text, source: path, simulation: simulation)
    }

    /// Reads hardware/safety.toml's format. Every key is optional (the default applies); each
    /// may only tighten its default. The one exception is the simulation profile
    /// (`[profile] simulation = true`, accepted only when `simulation` is true): its
    /// `watchdog.*` deadlines may be wider, up to `simulationDeadlineCeilingMicros`, because
    /// the emulated serial path's latency is not the hardware's (Scanner.motionConfiguration).
    public static func parse(toml: String, source: String, simulation: Bool = false) throws(SafetyConfigurationError) -> SafetyLimits {
        let root: TOMLTable
        do { root = try TOMLDocument.parse(toml) } catch { throw .syntax(source: source, message: "\(error)") }
        let defaults = SafetyLimits()
        var limits = defaults
        // The profile first: it decides what the other keys may be.
        var isSimulationProfile = false
        var profileName: String?
        if let value = root["profile"] {
            guard let table = value.table else { throw .wrongType(source: source, key: "profile", expected: "a table") }
            for (name, field) in table {
                switch name {
                case "name":
                    guard let text = field.string, !text.isEmpty else {
                        throw .wrongType(source: source, key: "profile.name", expected: "a non-empty string")
                    }
                    profileName = text
                case "simulation":
                    guard let flag = field.bool else {
                        throw .wrongType(source: source, key: "profile.simulation", expected: "true or false")
                    }
                    isSimulationProfile = flag
                default:
                    throw .unknownKey(source: source, key: "profile.\(name)")
                }
            }
        }
        if isSimulationProfile && !simulation { throw .simulationProfileRefused(source: source) }
        limits.profile = SafetyProfile(name: profileName ?? (isSimulationProfile ? "simulation" : "hardware"),
                                       path: source, simulation: isSimulationProfile)
        // key → (read, whether a larger value is looser)
        let scalars: [String: (WritableKeyPath<SafetyLimits, Double>, Bool)] = [
            "force.hard_cap_n": (\.forceHardCapN, true), "force.soft_limit_n": (\.forceSoftLimitN, true),
            "force.rate_limit_n_per_s": (\.forceRateLimitNPerS, true), "speed.tip_mm_s": (\.tipSpeedLimitMMs, true),
            "speed.joint_fraction": (\.jointSpeedFraction, true),
            "contact.detect_n": (\.contactDetectN, true), "release.speed_mm_s": (\.releaseSpeedMMs, true),
            "release.force_rise_n": (\.releaseForceRiseN, true),
            "standstill.speed_mm_s": (\.standstillSpeedMMs, true),
            "standstill.displacement_mm": (\.standstillDisplacementMM, true),
            // Farther is safer: the probe ends clear of the skin.
            "contact.lift_off_mm": (\.liftOffMM, false), "release.distance_mm": (\.releaseDistanceMM, false),
        ]
        let deadlines: [String: WritableKeyPath<SafetyLimits, UInt64>] = [
            "watchdog.force_deadline_us": \.forceDeadlineMicros, "watchdog.joint_state_deadline_us": \.jointStateDeadlineMicros,
            "force.rate_window_us": \.forceRateWindowMicros,
            "watchdog.contact_lease_ms": \.contactLeaseMicros, "standstill.settle_ms": \.standstillSettleMicros,
            "watchdog.frame_age_ms": \.frameAgeMicros,
        ]
        // Deadlines given in ms in the file, µs in the limits.
        let millisecondKeys: Set<String> = ["watchdog.contact_lease_ms", "standstill.settle_ms", "watchdog.frame_age_ms"]
        // The stale-data deadlines, the only keys a simulation profile may widen (not the
        // contact lease, which is no latency allowance).
        let staleDataKeys: Set<String> = ["watchdog.force_deadline_us", "watchdog.joint_state_deadline_us"]
        for (tableName, value) in root where tableName != "profile" {
            guard let table = value.table else { throw .wrongType(source: source, key: tableName, expected: "a table") }
            for (name, field) in table {
                let key = "\(tableName).\(name)"
                if let (path, largerIsLooser) = scalars[key] {
                    let number = try Self.number(field, key, source)
                    let limit = defaults[keyPath: path]
                    guard number > 0, largerIsLooser ? number <= limit : number >= limit else {
                        throw .looserThanDefault(source: source, key: key, value: number, limit: limit)
                    }
                    limits[keyPath: path] = number
                } else if let path = deadlines[key] {
                    let scale = millisecondKeys.contains(key) ? 1_000.0 : 1.0
                    let number = try Self.number(field, key, source)
                    let widened = isSimulationProfile && staleDataKeys.contains(key)
                    let limit = Double(widened ? simulationDeadlineCeilingMicros : defaults[keyPath: path]) / scale
                    guard number > 0, number <= limit else {
                        throw .looserThanDefault(source: source, key: key, value: number, limit: limit)
                    }
                    limits[keyPath: path] = UInt64(number * scale)
                } else if key == "workspace.min_mm" || key == "workspace.max_mm" {
                    let corner = try Self.vector(field, key, source)
                    let isMin = key == "workspace.min_mm"
                    let bound = isMin ? defaults.workspaceMin : defaults.workspaceMax
                    for (value, limit) in [(corner.x, bound.x), (corner.y, bound.y), (corner.z, bound.z)]
                    where isMin ? value < limit : value > limit {
                        throw .looserThanDefault(source: source, key: key, value: value, limit: limit)
                    }
                    if isMin { limits.workspaceMin = corner } else { limits.workspaceMax = corner }
                } else if key == "planning.margin" {
                    let margin = try Self.number(field, key, source)
                    guard margin > 0, margin < 1 else {
                        throw .outOfRange(source: source, key: key, value: margin,
                                          allowed: "above 0 and below 1 (a fraction of each interlock limit)")
                    }
                    guard margin <= defaults.planningMargin else {
                        throw .looserThanDefault(source: source, key: key, value: margin, limit: defaults.planningMargin)
                    }
                    limits.planningMargin = margin
                } else if key == "operator.require_dead_man" {
                    guard let flag = field.bool else { throw .wrongType(source: source, key: key, expected: "true or false") }
                    // Requiring the dead-man is tighter; dropping it is allowed only where it is off by default.
                    limits.requireDeadMan = flag || defaults.requireDeadMan
                } else {
                    throw .unknownKey(source: source, key: key)
                }
            }
        }
        return limits
    }

    private static func number(_ value: any TOMLValueConvertible, _ key: String, _ source: String) throws(SafetyConfigurationError) -> Double {
        let number = value.double ?? value.int.map(Double.init)
        guard let number, number.isFinite else { throw .wrongType(source: source, key: key, expected: "a finite number") }
        return number
    }

    private static func vector(_ value: any TOMLValueConvertible, _ key: String, _ source: String) throws(SafetyConfigurationError) -> Vector3 {
        guard let array = value.array, array.count == 3 else {
            throw .wrongType(source: source, key: key, expected: "an array of 3 numbers")
        }
        return Vector3(try number(array[0], key, source), try number(array[1], key, source), try number(array[2], key, source))
    }
}
