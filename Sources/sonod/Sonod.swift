import ArgumentParser
import Foundation
import Logging
import SonoDaemon
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// sonod: the scanner daemon. Thin: everything it runs lives in SonoDaemon.
@main
struct Sonod: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sonod",
        abstract: "Sono's scanner daemon: devices, view classifier, scan planner and the safety-interlocked motion controller.",
        discussion: """
            Runs as a systemd service (systemd/sono.service), operated through the control socket
            (sonoctl, or curl --unix-socket). `--simulate [PATIENT.toml]` runs everything against the
            virtual patient, its simulated boards on emulated USB devices behind the same drivers.
            """)

    @Option(help: "Configuration file (default /etc/sono/sono.toml; with --simulate, the repository's hardware files).")
    var config: String?

    @Option(help: ArgumentHelp("Run against the virtual patient in PATIENT.toml ('--simulate' alone: the default patient).",
                               valueName: "PATIENT.toml"))
    var simulate: String?

    @Option(help: "With --simulate: start a scan of these views at once (e.g. PLAX,PSAX,A4C,A2C).")
    var scan: String?

    @Flag(help: "With --scan: exit when the scan is done (status 0 when every view was acquired, 3 otherwise).")
    var exitWhenDone = false

    @Option(help: "With --scan: write the scan's summary (JSON) here.")
    var summary: String?

    @Option(help: "Control socket path (overrides the configuration; ignored under socket activation).")
    var socket: String?

    @Option(help: "Write this run's recording (MCAP) into this directory (overrides recording.mcap_directory).")
    var recordings: String?

    @Flag(help: "Do not record this run (overrides recording.mcap).")
    var noRecording = false

    @Option(help: ArgumentHelp("Replay a recording (MCAP) instead of running devices: the motion controller on its "
        + "recorded tape, the classifier on its frames, the planner on its recorded world; prints how the replay "
        + "compares with the recording (exit 4 when it diverges).", valueName: "SESSION.mcap"))
    var replay: String?

    @Option(help: "With --replay: multiple of real time (default 1); 0 for as fast as possible.")
    var rate: Double = 1

    @Option(help: "With --replay: classify the frames with this model instead of the recording's.")
    var model: String?

    @Flag(help: "With --replay: replay the readable part of a damaged recording.")
    var tolerant = false

    @Option(help: "With --replay: write the whole comparison (every divergence) to this JSON file.")
    var compare: String?

    static let defaultPatientToken = "@default"

    /// `--simulate` may come without a patient: give it the default's token before parsing.
    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        if let index = arguments.firstIndex(of: "--simulate"),
           index + 1 == arguments.count || arguments[index + 1].hasPrefix("-") {
            arguments[index] = "--simulate=\(defaultPatientToken)"
        }
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

    func validate() throws {
        if scan != nil && simulate == nil {
            throw ValidationError("--scan starts motion at once, so it is only for --simulate; on hardware an operator "
                + "starts scans through the control socket (sonoctl scan start)")
        }
        if (exitWhenDone || summary != nil) && scan == nil { throw ValidationError("--exit-when-done and --summary need --scan") }
        if replay != nil && (simulate != nil || scan != nil) { throw ValidationError("--replay runs on its own: no --simulate or --scan") }
        if rate < 0 || !rate.isFinite { throw ValidationError("--rate must be 0 (as fast as possible) or a positive multiple of real time") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { JournalLogHandler(label: $0) }
        let logger = Logger(label: "sonod")
        if let replay {
            var options = ReplayOptions()
            options.rate = rate > 0 ? rate : nil
            options.modelPath = model
            options.tolerant = tolerant
            options.progress = ProgressBar.printer()
            do {
                let report = try SessionReplay.run(path: replay, options: options)
                if let compare {
                    do { try report.json().write(to: URL(fileURLWithPath: compare)) } catch {
                        logger.error("cannot write the comparison to \(compare): \(error)")
                        throw ExitCode(74)  // EX_IOERR
                    }
                }
                print(report)
                if !report.identical { throw ExitCode(4) }
            } catch let error as ReplayError {
                logger.critical("cannot replay \(replay): \(error)")
                throw ExitCode(65)  // EX_DATAERR
            }
            return
        }
        if simulate != nil { try reexecUnderUmockdevIfNeeded() }

        let configuration: DaemonConfiguration
        let patient: String?
        do { (configuration, patient) = try loadConfiguration() } catch let error as ConfigurationError {
            logger.critical("invalid configuration: \(error)")
            throw ExitCode(78)  // EX_CONFIG
        }
        var settings = configuration
        if let recordings { settings.recordingsDirectory = recordings }
        if noRecording { settings.recordSessions = false }
        let runtime: ScannerRuntime
        do { runtime = try ScannerRuntime(configuration: settings, simulatePatient: patient) } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(78)  // EX_CONFIG
        }
        let descriptors = SocketActivation.takeDescriptors()
        let server = ControlServer(api: ControlAPI(runtime: runtime,
                                                   authorizer: PeerAuthorizer(socketGroup: configuration.socketGroup,
                                                                              operatorGroup: configuration.operatorGroup)),
                                   events: runtime.events, logger: logger)
        do {
            if let fd = descriptors.first {
                try server.start(.descriptor(fd))
                logger.info("control socket: passed by systemd (fd \(fd))")
            } else {
                let path = socket ?? configuration.socketPath
                try server.start(.path(path, group: configuration.socketGroup))
                logger.info("control socket: \(path)")
            }
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(78)
        }
        defer { server.stop() }

        let notifier = SystemdNotifier()
        let scanner = ScannerService(runtime: runtime, notifier: notifier, logger: logger, scan: scan,
                                     exitWhenDone: exitWhenDone)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: scanner, successTerminationBehavior: .gracefullyShutdownGroup),
        ]
        if let micros = notifier.watchdogMicros {
            services.append(.init(service: WatchdogService(runtime: runtime, notifier: notifier, periodMicros: micros / 2,
                                                           logger: logger)))
        }
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()

        guard scan != nil else { return }
        let result = runtime.summary()
        if let summary {
            do { try APICoding.encode(result, pretty: true).write(to: URL(fileURLWithPath: summary)) } catch {
                logger.error("cannot write the summary to \(summary): \(error)")
                throw ExitCode(74)  // EX_IOERR
            }
        }
        print(ScanSummaryText.render(result))
        if exitWhenDone && result.acquired < result.views.count { throw ExitCode(3) }
    }

    /// The configuration and, in simulation, the patient file.
    func loadConfiguration() throws -> (DaemonConfiguration, String?) {
        var configuration: DaemonConfiguration
        let root = SimulationFiles.root()
        if let config {
            configuration = try DaemonConfiguration.load(path: config)
        } else if simulate != nil {
            configuration = DaemonConfiguration.simulation(root: root)
        } else {
            configuration = try DaemonConfiguration.load(path: "/etc/sono/sono.toml")
        }
        if let scan {
            configuration.scanProtocol = scan.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).uppercased() }
        }
        guard let simulate else { return (configuration, nil) }
        let patient = simulate == Self.defaultPatientToken ? DaemonConfiguration.simulationPatient(root: root) : simulate
        guard FileManager.default.isReadableFile(atPath: patient) else {
            throw ValidationError("--simulate: cannot read patient file \(patient)")
        }
        return (configuration, patient)
    }

    /// The simulated boards sit on umockdev-emulated devices, which need its preload library
    /// in the process from the start: run again under umockdev-wrapper when it is missing.
    func reexecUnderUmockdevIfNeeded() throws {
        if ProcessInfo.processInfo.environment["LD_PRELOAD"]?.contains("umockdev") == true { return }
        let wrapper = ["/usr/bin/umockdev-wrapper", "/usr/local/bin/umockdev-wrapper"]
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let wrapper else {
            throw ValidationError("--simulate needs umockdev (Debian package 'umockdev'): umockdev-wrapper was not found")
        }
        let executable = Bundle.main.executablePath ?? CommandLine.arguments[0]
        let arguments = [wrapper, executable] + CommandLine.arguments.dropFirst()
        var cArguments = arguments.map { strdup($0) } + [nil]
        execv(wrapper, &cArguments)
        throw ValidationError("cannot run \(wrapper): errno \(errno)")
    }
}

/// Where the hardware files are for a simulation without a configuration file: the source
/// tree when sonod runs from it, else the installed copies.
enum SimulationFiles {
    static func root() -> String {
        let cwd = FileManager.default.currentDirectoryPath
        return FileManager.default.fileExists(atPath: "\(cwd)/hardware/arm.toml") ? cwd : DaemonConfiguration.installedRoot
    }
}
