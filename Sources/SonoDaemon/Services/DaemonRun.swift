public import ArgumentParser
import Foundation
public import SonoCore
public import Logging
import ServiceLifecycle
import SonoMotion
public import SonoSystem
#if canImport(Glibc)
import Glibc
#endif

/// The options every daemon entry point takes (`sonod`, and `sonod-sim` with the virtual patient).
public struct DaemonOptions: ParsableArguments {
    @Option(help: "Configuration file (sonod: default /etc/sono/sono.toml; sonod-sim: default the repository's hardware files).")
    public var config: String?

    @Option(help: "Control socket path (overrides the configuration; ignored under socket activation).")
    public var socket: String?

    @Option(help: "Write this run's recording (MCAP) into this directory (overrides recording.mcap_directory).")
    public var recordings: String?

    @Flag(help: "Do not record this run (overrides recording.mcap).")
    public var noRecording = false

    @Option(help: "Keep the session folders (events, summary, key frames) in this directory (overrides recording.directory).")
    public var sessions: String?

    public init() {}

    /// The configuration with these options' overrides applied.
    public func applied(to configuration: DaemonConfiguration) -> DaemonConfiguration {
        var settings = configuration
        if let recordings { settings.recordingsDirectory = recordings }
        if noRecording { settings.recordSessions = false }
        if let sessions { settings.sessionsDirectory = sessions }
        return settings
    }
}

extension AsyncParsableCommand {
    /// Parses `arguments` (the command line after any rewriting the entry point does) and runs
    /// the command; on an error exits as ArgumentParser's own `main()` would.
    public static func main(arguments: [String]) async {
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// A scan the command line starts at once (the command line is the operator: simulation only).
public struct CommandLineScan: Sendable {
    public var views: [StandardView]
    /// End the run when the scan is done.
    public var exitWhenDone: Bool
    public init(views: [StandardView], exitWhenDone: Bool) {
        self.views = views
        self.exitWhenDone = exitWhenDone
    }
}

/// How a daemon run ended, as an exit status (sysexits.h where one fits).
public enum DaemonExit: Error, Sendable, Equatable {
    /// EX_CONFIG (78): the configuration, a file it names, a device, the socket or the
    /// real-time policy stopped the daemon before it ran.
    case cannotStart
    /// 3: a command-line scan ended without every view.
    case viewsMissing
    /// EX_IOERR (74): an output file could not be written.
    case ioError

    public var status: ExitStatus {
        switch self {
        case .cannotStart: .configuration
        case .viewsMissing: .scanIncomplete
        case .ioError: .ioError
        }
    }
}

/// The daemon's body, the same for hardware and simulation: the scanner's stages, the control
/// server and (simulation) a command-line scan, as ordered services of one ServiceGroup.
public enum DaemonRun {
    /// Runs until SIGTERM/SIGINT (or, with `scan.exitWhenDone`, the scan's end).
    /// - Returns: the scan's summary when the command line scanned.
    /// - Throws: `DaemonExit.cannotStart` when any part could not start (the parts already up
    ///   are stopped in reverse order first; the log names what failed).
    public static func run(configuration: DaemonConfiguration, mode: RunMode, socket: String?,
                           scan: CommandLineScan?, logger: Logger) async throws(DaemonExit) -> ScanSummaryJSON? {
        let scanner: Scanner
        do { scanner = try Scanner(configuration: configuration, mode: mode) } catch {
            logger.critical("cannot start: \(error)")
            throw .cannotStart
        }
        let notifier = SystemdNotifier()
        let endpoint: ControlServer.Endpoint
        if let fd = SocketActivation.takeDescriptors().first {
            endpoint = .descriptor(fd)
        } else {
            endpoint = .path(socket ?? configuration.socketPath, group: configuration.socketGroup)
        }
        let gate = configuration.console.enabled ? ConsoleGate(settings: configuration.console) : nil
        let api = ControlAPI(scanner: scanner, authorizer: PeerAuthorizer(socketGroup: configuration.socketGroup,
                                                                          operatorGroup: configuration.operatorGroup),
                             console: gate)
        let server = ControlServer(api: api, events: scanner.events, logger: logger)
        var stages = scanner.stages(notifier: notifier, log: logger)
        // The console listens before the socket opens (its login URLs come from the socket) and
        // closes right after it.
        if let gate {
            let console = ConsoleServer(settings: configuration.console, gate: gate, api: api, scanner: scanner, logger: logger)
            stages.append(ConsoleServerStage(server: console, gate: gate, log: logger))
        }
        stages.append(ControlServerStage(server: server, endpoint: endpoint, scanner: scanner, notifier: notifier, log: logger))
        if let scan { stages.append(CommandLineScanStage(scanner: scanner, scan: scan, log: logger)) }
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: OrderedStages.services(stages, logger: logger),
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do { try await group.run() } catch {
            if !(error is StartupError) { logger.critical("sonod: \(error)") }
            throw .cannotStart
        }
        return scan == nil ? nil : scanner.summary()
    }
}

/// The control socket: opened last, once the scanner is up (then systemd is told READY), closed
/// first, so that no command arrives while the rest stops.
struct ControlServerStage: DaemonStage {
    let server: ControlServer
    let endpoint: ControlServer.Endpoint
    let scanner: Scanner
    let notifier: SystemdNotifier
    let log: Logger
    var name: String { "control server" }

    func start() async throws(StartupError) {
        let server = self.server
        let endpoint = self.endpoint
        do {
            try await offloaded { () throws(StartupError) in try server.start(endpoint) }
        } catch {
            await offloaded { server.stop() }  // its event loop thread
            throw error
        }
        switch endpoint {
        case .descriptor(let fd): log.info("control socket: passed by systemd (fd \(fd))")
        case .path(let path, _): log.info("control socket: \(path)")
        }
        let mode = scanner.mode.name
        notifier.notify("READY=1\nSTATUS=\(mode): \(scanner.controller.status.state.rawValue), waiting for an operator")
        log.notice("sonod \(Scanner.version) ready (\(mode)); the arm stays disabled until an operator enables it")
    }

    func stop() async {
        notifier.notify("STOPPING=1\nSTATUS=stopping: bringing the arm to a safe stop")
        log.notice("stopping: the control socket closes first, then the scan, the arm and the rest in reverse")
        let server = self.server
        await offloaded { server.stop() }
    }
}

/// The operator console's web listener (ConsoleServer). Its configuration is checked with the
/// rest at start; a listener that then cannot start (the port taken, the page's files missing)
/// does not stop sonod: the arm is run through the control socket and stopped by the hardware
/// e-stop without it. The error is logged, and `sonoctl console` answers with it.
struct ConsoleServerStage: DaemonStage {
    let server: ConsoleServer
    let gate: ConsoleGate
    let log: Logger
    var name: String { "web console" }

    func start() async throws(StartupError) {
        let server = self.server
        do {
            try await offloaded { () throws(StartupError) in try server.start() }
        } catch {
            gate.failed(error.description)
            log.error("\(error); sonod runs without the console")
        }
    }

    func stop() async {
        let server = self.server
        await offloaded { server.stop() }
    }
}

/// The command line as the operator: enable, allow motion, scan; with `exitWhenDone` the run
/// ends when the scan does.
struct CommandLineScanStage: DaemonStage {
    let scanner: Scanner
    let scan: CommandLineScan
    let log: Logger
    private let started = AtomicFlag()
    var name: String { "command-line scan" }

    init(scanner: Scanner, scan: CommandLineScan, log: Logger) {
        self.scanner = scanner
        self.scan = scan
        self.log = log
    }

    func start() async throws(StartupError) {
        for command in [SafetyCommand.enable, .enableMotion] {
            if case .failure(let error) = scanner.perform(command) {
                log.error("\(command.rawValue) refused: \(error)")
                return
            }
        }
        switch scanner.startScan(views: scan.views.map(\.rawValue)) {
        case .success(let status):
            log.notice("scan started: \(status.views.joined(separator: ", "))")
            started.set(true)
        case .failure(let error):
            log.error("scan refused: \(error)")
        }
    }

    /// Ends the run when the scan could not start, or (exitWhenDone) when it is over.
    func run() async {
        guard started.isSet else { return }
        guard scan.exitWhenDone else {
            try? await gracefulShutdown()
            return
        }
        while !Task.isShuttingDownGracefully && scanner.scanStatus().running {
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    func stop() async {}
}
