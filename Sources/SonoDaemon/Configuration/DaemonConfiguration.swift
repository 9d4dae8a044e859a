import Foundation
public import SonoCore
public import SonoDevices
import SonoMotion
public import SonoPlanner
import SonoTOML
import TOMLKit

/// sonod's configuration (`/etc/sono/sono.toml`; `systemd/sono.toml.example` documents every
/// key). Read and checked completely before anything starts: an invalid file is an error
/// naming the key, never a half-started daemon.
public struct DaemonConfiguration: Sendable {
    public enum ProbeSource: Sendable, Equatable {
        /// No probe: motion and status only; scans are refused.
        case none
        /// The USB probe (firmware-protocol/USB-PROBE.md), by VID:PID.
        case usb(vendor: UInt16, product: UInt16)
    }

    public var armPort: SerialPortSelector = .path("/dev/sono-arm")
    public var forceSensorPort: SerialPortSelector = .path("/dev/sono-force")
    public var probe: ProbeSource = .none
    /// How the USB probe is opened and imaged (`[probe]`); its IDs come from `devices.probe`.
    public var usbProbe = USBProbeConfiguration()
    public var robotPath = "/usr/share/sono/arm.toml"
    /// The hardware safety profile (hardware/safety.toml): the interlock limits sonod enforces.
    public var safetyPath = "/usr/share/sono/safety.toml"
    /// The simulation's safety profile (`[files] simulation_safety`); nil: safety-simulation.toml
    /// beside `safetyPath`. Only sonod-sim loads it; it is refused on hardware.
    public var simulationSafetyPath: String?
    public var priorPath = "/usr/share/sono/scan-prior.toml"
    public var modelPath = "/usr/share/sono/models/view-classifier.onnx"
    public var sessionsDirectory = "/var/lib/sono/sessions"
    /// Every daemon run is recorded as one MCAP file here (docs/RECORDING.md), unless turned off.
    public var recordingsDirectory = "/var/lib/sono/recordings"
    public var recordSessions = true
    /// Free space the recording leaves on its file system, MiB: below it the recording closes
    /// its file (complete up to there) and stops, rather than fill the disk. 0: no floor.
    public var recordingMinimumFreeMiB = 1024
    /// The file this configuration was read from (attached to recordings).
    public var sourcePath: String?
    public var socketPath = "/run/sono/control.sock"
    /// Members may read status over the socket (the socket file's group).
    public var socketGroup = "sono"
    /// Members may command motion.
    public var operatorGroup = "sono-operators"
    /// The operator console's web listener (`[console]`).
    public var console = ConsoleSettings()
    public var scanProtocol: [StandardView] = ScanProtocol.standard.views
    public var planner = PlannerSettings()
    /// Real-time priority of the control loop (SCHED_FIFO), and whether to lock memory.
    public var loopPriority: Int32 = 80
    public var lockMemory = true
    /// Whether sonod refuses to run when SCHED_FIFO or mlockall (when `lockMemory`) is refused;
    /// nil: on for hardware, off in simulation (`requiresRealTime(simulated:)`).
    public var requireRealTime: Bool?
    /// Stale-data deadlines (ms) tighter than the safety profile's; nil keeps the profile's.
    /// A value looser than the active profile is refused at start (Scanner.motionConfiguration):
    /// a site file may only tighten what the safety profile allows.
    public var staleDeadlineMillis: Int?

    public init() {}

    /// The safety profile this run loads: the simulation's in simulation, else `safetyPath`.
    public func safetyProfilePath(simulated: Bool) -> String {
        guard simulated else { return safetyPath }
        if let simulationSafetyPath { return simulationSafetyPath }
        let directory = (safetyPath as NSString).deletingLastPathComponent
        return directory.isEmpty ? "safety-simulation.toml" : "\(directory)/safety-simulation.toml"
    }

    /// `[realtime] require` as it applies to a run on hardware or in simulation.
    public func requiresRealTime(simulated: Bool) -> Bool { requireRealTime ?? !simulated }

    /// Where the installed data lives (`make install`).
    public static let installedRoot = "/usr/share/sono"

    /// The configuration for sonod-sim when no file is given: the hardware files and model
    /// of the source tree at `root`, or of the installed copies when `root` is `installedRoot`.
    public static func simulation(root: String) -> DaemonConfiguration {
        var configuration = DaemonConfiguration()
        let hardware = root == installedRoot ? root : "\(root)/hardware"
        configuration.robotPath = "\(hardware)/arm.toml"
        configuration.safetyPath = "\(hardware)/safety.toml"
        configuration.priorPath = "\(hardware)/scan-prior.toml"
        configuration.modelPath = "\(root)/models/view-classifier.onnx"
        configuration.sessionsDirectory = "/tmp/sono-sessions"
        configuration.recordingsDirectory = "/tmp/sono-recordings"
        configuration.socketPath = "/tmp/sono-control.sock"
        // Any free loopback port: several simulated daemons may run at once, and the login URL
        // (`sonoctl console`) says where the console is.
        configuration.console.port = 0
        configuration.console.assetsDirectory = "\(root)/console"
        return configuration
    }

    /// The default patient of that layout.
    public static func simulationPatient(root: String) -> String {
        root == installedRoot ? "\(root)/patients/default.toml" : "\(root)/hardware/patients/default.toml"
    }

    public static func load(path: String) throws(ConfigurationError) -> DaemonConfiguration {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .unreadable(path: path, reason: error.localizedDescription)
        }
        return try parse(text, path: path)
    }

    public static func parse(_ text: String, path: String) throws(ConfigurationError) -> DaemonConfiguration {
        let table: TOMLTable
        do { table = try TOMLDocument.parse(text) } catch {
            throw .unreadable(path: path, reason: "not valid TOML: \(error)")
        }
        var reader = TableReader(path: path, table: table)
        var c = DaemonConfiguration()
        c.sourcePath = path
        try reader.section("devices", keys: ["arm", "force_sensor", "probe"]) { r throws(ConfigurationError) in
            if let arm = try r.string("arm") { c.armPort = try port(arm, key: r.key("arm"), path: path) }
            if let force = try r.string("force_sensor") { c.forceSensorPort = try port(force, key: r.key("force_sensor"), path: path) }
            if let probe = try r.string("probe") { c.probe = try probeSource(probe, key: r.key("probe"), path: path) }
        }
        try reader.section("probe", keys: ["serial", "depth_mm", "gain_db", "frame_rate", "width", "height",
                                           "sector_deg", "transfers_in_flight", "buffered_frames"]) { r throws(ConfigurationError) in
            c.usbProbe.serial = try r.string("serial")
            if let depth = try r.int("depth_mm", 10...400) { c.usbProbe.imaging.depthMM = UInt16(depth) }
            if let gain = try r.double("gain_db", -60...60) { c.usbProbe.imaging.gainCentiDB = Int16((gain * 100).rounded()) }
            if let rate = try r.double("frame_rate", 1...200) { c.usbProbe.imaging.rateCentiFPS = UInt16((rate * 100).rounded()) }
            if let width = try r.int("width", 16...1024) { c.usbProbe.imaging.width = width }
            if let height = try r.int("height", 16...1024) { c.usbProbe.imaging.height = height }
            if let sector = try r.double("sector_deg", 10...120) { c.usbProbe.sectorDeg = sector }
            if let transfers = try r.int("transfers_in_flight", 4...32) { c.usbProbe.transfersInFlight = transfers }
            if let frames = try r.int("buffered_frames", 1...256) { c.usbProbe.bufferedFrames = frames }
        }
        if case .usb(let vendor, let product) = c.probe {
            c.usbProbe.vendorID = vendor
            c.usbProbe.productID = product
        }
        try reader.section("files", keys: ["robot", "safety", "simulation_safety", "scan_prior", "model"]) { r throws(ConfigurationError) in
            c.robotPath = try r.string("robot") ?? c.robotPath
            c.safetyPath = try r.string("safety") ?? c.safetyPath
            c.simulationSafetyPath = try r.string("simulation_safety")
            c.priorPath = try r.string("scan_prior") ?? c.priorPath
            c.modelPath = try r.string("model") ?? c.modelPath
        }
        try reader.section("recording", keys: ["directory", "mcap_directory", "mcap", "min_free_mib"]) { r throws(ConfigurationError) in
            c.sessionsDirectory = try r.string("directory") ?? c.sessionsDirectory
            c.recordingsDirectory = try r.string("mcap_directory") ?? c.recordingsDirectory
            c.recordSessions = try r.bool("mcap") ?? c.recordSessions
            if let floor = try r.int("min_free_mib", 0...1_048_576) { c.recordingMinimumFreeMiB = floor }
        }
        try reader.section("control", keys: ["socket", "socket_group", "operator_group"]) { r throws(ConfigurationError) in
            c.socketPath = try r.string("socket") ?? c.socketPath
            c.socketGroup = try r.string("socket_group") ?? c.socketGroup
            c.operatorGroup = try r.string("operator_group") ?? c.operatorGroup
        }
        try reader.section("console", keys: ["enabled", "listen", "assets", "tls_certificate", "tls_key",
                                             "login_s", "session_min"]) { r throws(ConfigurationError) in
            c.console.enabled = try r.bool("enabled") ?? c.console.enabled
            if let listen = try r.string("listen") {
                guard let (host, port) = ConsoleSettings.parseListen(listen) else {
                    throw .invalid(path: path, key: r.key("listen"), reason: "'\(listen)' must be HOST:PORT, e.g. 127.0.0.1:8470 or [::1]:8470")
                }
                c.console.host = host
                c.console.port = port
            }
            c.console.assetsDirectory = try r.string("assets") ?? c.console.assetsDirectory
            c.console.tlsCertificate = try r.string("tls_certificate")
            c.console.tlsKey = try r.string("tls_key")
            if let seconds = try r.int("login_s", 5...600) { c.console.loginSeconds = seconds }
            if let minutes = try r.int("session_min", 1...1440) { c.console.sessionMinutes = minutes }
        }
        try reader.section("realtime", keys: ["loop_priority", "lock_memory", "require", "stale_deadline_ms"]) { r throws(ConfigurationError) in
            if let priority = try r.int("loop_priority", 1...99) { c.loopPriority = Int32(priority) }
            c.lockMemory = try r.bool("lock_memory") ?? c.lockMemory
            c.requireRealTime = try r.bool("require")
            c.staleDeadlineMillis = try r.int("stale_deadline_ms", 1...100)
        }
        try reader.section("planner", keys: ["protocol", "contact_force_n", "view_timeout_s", "acquire_confidence",
                                             "acquire_quality", "target_quality", "hold_s", "clip_s", "search_radius_mm"]) { r throws(ConfigurationError) in
            if let views = try r.stringArray("protocol") {
                guard !views.isEmpty else { throw .invalid(path: path, key: r.key("protocol"), reason: "needs at least one view") }
                var protocolViews: [StandardView] = []
                for name in views {
                    guard let view = StandardView(name: name), view != .other else {
                        throw .invalid(path: path, key: r.key("protocol"), reason: "\(name) is not a standard view ("
                            + StandardView.standard.map(\.rawValue).joined(separator: ", ") + ")")
                    }
                    protocolViews.append(view)
                }
                c.scanProtocol = protocolViews
            }
            if let force = try r.double("contact_force_n", 2...10) { c.planner.contactForceN = force }
            if let timeout = try r.double("view_timeout_s", 5...600) { c.planner.viewTimeoutSeconds = timeout }
            if let confidence = try r.double("acquire_confidence", 0.5...0.999) { c.planner.acquireConfidence = Float(confidence) }
            if let quality = try r.double("acquire_quality", 0.5...0.99) { c.planner.acquireQuality = Float(quality) }
            if let quality = try r.double("target_quality", 0.5...0.99) { c.planner.targetQuality = Float(quality) }
            guard c.planner.targetQuality >= c.planner.acquireQuality else {
                throw .invalid(path: path, key: "planner.target_quality",
                               reason: "must be at least planner.acquire_quality (\(c.planner.acquireQuality)), got \(c.planner.targetQuality)")
            }
            if let hold = try r.double("hold_s", 0.3...10) { c.planner.holdSeconds = hold }
            if let clip = try r.double("clip_s", 0...30) { c.planner.clipSeconds = clip }
            if let radius = try r.double("search_radius_mm", 5...80) { c.planner.searchRadiusMM = radius }
        }
        do throws(MotionLimitsError) { _ = try c.planner.validatedMotionLimits() } catch {
            throw .invalid(path: path, key: error.field, reason: error.description)
        }
        try reader.finish()
        for (key, value) in [("control.socket", c.socketPath), ("recording.directory", c.sessionsDirectory),
                             ("recording.mcap_directory", c.recordingsDirectory)]
            where !value.hasPrefix("/") {
            throw .invalid(path: path, key: key, reason: "must be an absolute path, got '\(value)'")
        }
        if let problem = c.console.problem {
            throw .invalid(path: path, key: problem.key, reason: problem.reason)
        }
        return c
    }

    static func port(_ text: String, key: String, path: String) throws(ConfigurationError) -> SerialPortSelector {
        if text.hasPrefix("/") { return .path(text) }
        if text.hasPrefix("usb:") {
            let ids = try vidPid(String(text.dropFirst(4)), key: key, path: path)
            return .usb(vendorID: ids.0, productID: ids.1, serial: nil)
        }
        throw .invalid(path: path, key: key, reason: "'\(text)' is neither a device path (/dev/…) nor usb:VID:PID")
    }

    static func probeSource(_ text: String, key: String, path: String) throws(ConfigurationError) -> ProbeSource {
        if text == "none" { return .none }
        if text.hasPrefix("usb:") {
            let ids = try vidPid(String(text.dropFirst(4)), key: key, path: path)
            return .usb(vendor: ids.0, product: ids.1)
        }
        throw .invalid(path: path, key: key, reason: "'\(text)' is neither 'none' nor usb:VID:PID")
    }

    static func vidPid(_ text: String, key: String, path: String) throws(ConfigurationError) -> (UInt16, UInt16) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let vendor = UInt16(parts[0], radix: 16), let product = UInt16(parts[1], radix: 16) else {
            throw .invalid(path: path, key: key, reason: "'usb:\(text)' must be usb:VID:PID in hex, e.g. usb:1209:5301")
        }
        return (vendor, product)
    }
}

public enum ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case invalid(path: String, key: String, reason: String)
    case unknownKey(path: String, key: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot read configuration \(path): \(reason)"
        case .invalid(let path, let key, let reason): "\(path): \(key): \(reason)"
        case .unknownKey(let path, let key): "\(path): unknown key '\(key)' (misspelt? see systemd/sono.toml.example)"
        }
    }
}

/// Reads typed values out of TOML sections, naming the key in every error and rejecting keys
/// it does not know (a misspelt limit must not silently fall back to a default).
struct TableReader {
    let path: String
    let table: TOMLTable
    private var known: Set<String> = []

    init(path: String, table: TOMLTable) {
        self.path = path
        self.table = table
    }

    struct Section {
        let path: String
        let name: String
        let table: TOMLTable

        func key(_ key: String) -> String { "\(name).\(key)" }

        func string(_ key: String) throws(ConfigurationError) -> String? {
            guard let value = table[key] else { return nil }
            guard let string = value.string, !string.isEmpty else {
                throw .invalid(path: path, key: self.key(key), reason: "must be a non-empty string")
            }
            return string
        }

        func stringArray(_ key: String) throws(ConfigurationError) -> [String]? {
            guard let value = table[key] else { return nil }
            guard let array = value.array else { throw .invalid(path: path, key: self.key(key), reason: "must be an array of strings") }
            var strings: [String] = []
            for item in array {
                guard let string = item.string else { throw .invalid(path: path, key: self.key(key), reason: "must be an array of strings") }
                strings.append(string)
            }
            return strings
        }

        func bool(_ key: String) throws(ConfigurationError) -> Bool? {
            guard let value = table[key] else { return nil }
            guard let bool = value.bool else { throw .invalid(path: path, key: self.key(key), reason: "must be true or false") }
            return bool
        }

        func int(_ key: String, _ range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
            guard let value = table[key] else { return nil }
            guard let int = value.int else { throw .invalid(path: path, key: self.key(key), reason: "must be an integer") }
            guard range.contains(int) else {
                throw .invalid(path: path, key: self.key(key), reason: "\(int) is outside \(range.lowerBound)…\(range.upperBound)")
            }
            return int
        }

        func double(_ key: String, _ range: ClosedRange<Double>) throws(ConfigurationError) -> Double? {
            guard let value = table[key] else { return nil }
            guard let number = value.double ?? value.int.map(Double.init), number.isFinite else {
                throw .invalid(path: path, key: self.key(key), reason: "must be a number")
            }
            guard range.contains(number) else {
                throw .invalid(path: path, key: self.key(key), reason: "\(number) is outside \(range.lowerBound)…\(range.upperBound)")
            }
            return number
        }
    }

    mutating func section(_ name: String, keys: Set<String>,
                          _ body: (Section) throws(ConfigurationError) -> Void) throws(ConfigurationError) {
        known.insert(name)
        guard let value = table[name] else { return }
        guard let sub = value.table else { throw .invalid(path: path, key: name, reason: "must be a table ([\(name)])") }
        for key in sub.keys where !keys.contains(key) { throw .unknownKey(path: path, key: "\(name).\(key)") }
        try body(Section(path: path, name: name, table: sub))
    }

    func finish() throws(ConfigurationError) {
        for key in table.keys where !known.contains(key) { throw .unknownKey(path: path, key: key) }
    }
}

extension PlannerSettings {
    /// The planner's move speeds as the motion limits they become (MotionScanEnvironment),
    /// each checked: a NaN, zero or negative speed would give the trajectory a NaN or infinite
    /// duration. Called where settings come from input: sono.toml's `[planner]` and a
    /// recording's planner calls (replay).
    /// - Throws: `MotionLimitsError` naming the setting (`planner.travel_speed_mm_s`, …).
    func validatedMotionLimits() throws(MotionLimitsError) -> (slide: MotionLimits, travel: MotionLimits) {
        for (name, value) in [("planner.slide_speed_mm_s", slideSpeedMMs), ("planner.travel_speed_mm_s", travelSpeedMMs),
                              ("planner.turn_speed_rad_s", turnSpeedRadS)]
            where !(value.isFinite && value > 0) {
            throw MotionLimitsError(field: name, value: value)
        }
        var slide = MotionLimits(), travel = MotionLimits()
        slide.speedMMs = slideSpeedMMs
        slide.angularSpeed = turnSpeedRadS
        travel.speedMMs = travelSpeedMMs
        travel.angularSpeed = turnSpeedRadS
        return (try slide.validated(), try travel.validated())
    }
}
