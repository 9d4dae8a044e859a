/// Why sonod could not start. Each names what to fix; sonod exits with it before it has
/// started anything (never a half-started daemon).
public enum StartupError: Error, Sendable, CustomStringConvertible {
    case configuration(String)
    case file(String)
    case simulation(String)
    case devices(String)
    case model(String)
    case socket(String)
    /// The web console's listener or its page files.
    case console(String)
    /// `[realtime] require` is on and the control loop did not get what it requires.
    case realTime(String)

    public var description: String {
        switch self {
        case .configuration(let reason): "configuration: \(reason)"
        case .file(let reason): reason
        case .simulation(let reason): "simulation: \(reason)"
        case .devices(let reason): "devices: \(reason)"
        case .model(let reason): "view classifier: \(reason)"
        case .socket(let reason): "control socket: \(reason)"
        case .console(let reason): "web console ([console] in sono.toml): \(reason)"
        case .realTime(let reason): "real time ([realtime] require = true): \(reason)"
        }
    }
}
