import ArgumentParser
import Foundation
import Logging
import SonoDaemon
import SonoSystem
#if canImport(Glibc)
import Glibc
#endif

/// sonod: the scanner daemon on hardware, as `sono.service` runs it. Thin: everything it runs
/// lives in SonoDaemon. It carries no test bench and no simulator: the virtual patient is
/// `sonod-sim`, which runs the same daemon body on emulated devices.
@main
struct Sonod: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sonod",
        abstract: "Sono's scanner daemon: devices, view classifier, scan planner and the safety-interlocked motion controller.",
        discussion: "Runs as a systemd service (systemd/sono.service), operated through the control socket "
            + "(sonoctl, or curl --unix-socket). The virtual patient is sonod-sim (`sonod --simulate …` hands over to it).")

    @OptionGroup var daemon: DaemonOptions

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

    /// `sonod --simulate …` is sonod-sim's job: hand the whole command line over to it.
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.contains(where: { $0 == "--simulate" || $0.hasPrefix("--simulate=") }) {
            SimulatorHandOver.exec(arguments)
        }
        await main(arguments: arguments)
    }

    func validate() throws {
        if rate < 0 || !rate.isFinite { throw ValidationError("--rate must be 0 (as fast as possible) or a positive multiple of real time") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { JournalLogHandler(label: $0) }
        let logger = Logger(label: "sonod")
        if let replay {
            try runReplay(replay, logger: logger)
            return
        }
        let configuration: DaemonConfiguration
        let path = daemon.config ?? "/etc/sono/sono.toml"
        do { configuration = try DaemonConfiguration.load(path: path) } catch {
            logger.critical("invalid configuration: \(error)")
            throw ExitCode(ExitStatus.configuration.rawValue)
        }
        do {
            _ = try await DaemonRun.run(configuration: daemon.applied(to: configuration), mode: .hardware,
                                        socket: daemon.socket, scan: nil, logger: logger)
        } catch {
            throw ExitCode(error.status.rawValue)
        }
    }

    private func runReplay(_ replay: String, logger: Logger) throws {
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
                    throw ExitCode(ExitStatus.ioError.rawValue)
                }
            }
            print(report)
            if !report.identical { throw ExitCode(ExitStatus.replayDiverged.rawValue) }
        } catch let error as ReplayError {
            logger.critical("cannot replay \(replay): \(error)")
            throw ExitCode(ExitStatus.dataError.rawValue)
        }
    }
}

/// Runs sonod-sim, installed beside sonod, with sonod's arguments.
enum SimulatorHandOver {
    static func exec(_ arguments: [String]) -> Never {
        let directory = ((Bundle.main.executablePath ?? CommandLine.arguments[0]) as NSString).deletingLastPathComponent
        let simulator = "\(directory)/sonod-sim"
        guard FileManager.default.isExecutableFile(atPath: simulator) else {
            FileHandle.standardError.write(Data(("sonod: --simulate is sonod-sim's (the virtual patient), and there is no "
                + "\(simulator); build it (swift build --product sonod-sim) or run it directly\n").utf8))
            exit(ExitStatus.usage.rawValue)
        }
        var cArguments = ([simulator] + arguments).map { strdup($0) } + [nil]
        execv(simulator, &cArguments)
        FileHandle.standardError.write(Data("sonod: cannot run \(simulator): \(String(cString: strerror(errno)))\n".utf8))
        exit(ExitStatus.osError.rawValue)
    }
}
