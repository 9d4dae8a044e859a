import ArgumentParser
import Foundation
import Logging
import SonoCore
import SonoDaemon
import SonoSimHost
import SonoSystem
#if canImport(Glibc)
import Glibc
#endif

/// sonod-sim: sonod's daemon body on the virtual patient. The simulated arm and force sensor
/// run their firmware on umockdev-emulated USB serial devices, found and opened by the same
/// drivers, link layer and 1 kHz loop as real boards; the probe renders what it sees at the
/// arm's pose. Not what sono.service runs: that binary (sonod) carries neither umockdev nor
/// the simulator.
@main
struct SonodSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sonod-sim",
        abstract: "sonod on the virtual patient: simulated boards on emulated USB devices behind the real drivers.",
        discussion: "Operated like sonod, through the control socket (default /tmp/sono-control.sock).")

    @Argument(help: ArgumentHelp("The virtual patient (default: the default patient).", valueName: "PATIENT.toml"))
    var patient: String?

    @OptionGroup var daemon: DaemonOptions

    @Option(help: "Start a scan of these views at once (e.g. PLAX,PSAX,A4C,A2C): the command line is the operator.")
    var scan: String?

    @Flag(help: "With --scan: exit when the scan is done (status 0 when every view was acquired, 3 otherwise).")
    var exitWhenDone = false

    @Option(help: "With --scan: write the scan's summary (JSON) here.")
    var summary: String?

    @Option(help: ArgumentHelp("Fault injection: once the probe has pressed on the patient for 1.5 s, unplug the simulated "
                               + "probe (unplug) or make every frame arrive 400 ms late (stall). Prints what the simulator saw at exit.",
                               valueName: "unplug|stall"))
    var injectProbeFault: String?

    /// sonod hands `sonod --simulate [PATIENT] …` over as it is: `--simulate` names the patient.
    static func main() async {
        await main(arguments: handedOver(Array(CommandLine.arguments.dropFirst())))
    }

    /// `--simulate P` and `--simulate=P` become the patient argument; `--simulate` alone goes.
    static func handedOver(_ arguments: [String]) -> [String] {
        var result: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--simulate" {
                if index + 1 < arguments.count, !arguments[index + 1].hasPrefix("-") {
                    result.append(arguments[index + 1])
                    index += 1
                }
            } else if argument.hasPrefix("--simulate=") {
                result.append(String(argument.dropFirst("--simulate=".count)))
            } else {
                result.append(argument)
            }
            index += 1
        }
        return result
    }

    /// `--scan PLAX,A4C`: standard views, by name in any case.
    static func views(parsing list: String) throws -> [StandardView] {
        try list.split(separator: ",").map { item in
            let name = item.trimmingCharacters(in: .whitespaces)
            guard let view = StandardView(name: name), view != .other else {
                throw ValidationError("--scan: \(name) is not a standard view ("
                    + StandardView.standard.map(\.rawValue).joined(separator: ", ") + ")")
            }
            return view
        }
    }

    func validate() throws {
        if (exitWhenDone || summary != nil) && scan == nil { throw ValidationError("--exit-when-done and --summary need --scan") }
        if let injectProbeFault, ProbeFault(rawValue: injectProbeFault) == nil {
            throw ValidationError("--inject-probe-fault: '\(injectProbeFault)' is not one of "
                + ProbeFault.allCases.map(\.rawValue).joined(separator: ", "))
        }
    }

    func run() async throws {
        try UmockdevPreload.reexecIfNeeded()
        LoggingSystem.bootstrap { JournalLogHandler(label: $0) }
        let logger = Logger(label: "sonod-sim")
        let root = SimulationFiles.root()
        var configuration: DaemonConfiguration
        if let config = daemon.config {
            do { configuration = try DaemonConfiguration.load(path: config) } catch {
                logger.critical("invalid configuration: \(error)")
                throw ExitCode(ExitStatus.configuration.rawValue)
            }
        } else {
            configuration = DaemonConfiguration.simulation(root: root)
        }
        let views = try scan.map(Self.views(parsing:))
        if let views { configuration.scanProtocol = views }
        let patientPath = patient ?? DaemonConfiguration.simulationPatient(root: root)
        guard FileManager.default.isReadableFile(atPath: patientPath) else {
            throw ValidationError("cannot read patient file \(patientPath)")
        }
        let hardware: SimulatedHardware
        let probeFault = injectProbeFault.flatMap(ProbeFault.init(rawValue:)).map { (fault: $0, afterContactSeconds: 1.5) }
        do {
            hardware = try SimulatedHardware(patientPath: patientPath, robotPath: configuration.robotPath, probeFault: probeFault)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(ExitStatus.configuration.rawValue)
        }
        let result: ScanSummaryJSON?
        do {
            result = try await DaemonRun.run(configuration: daemon.applied(to: configuration), mode: .simulation(hardware),
                                             socket: daemon.socket,
                                             scan: views.map { CommandLineScan(views: $0, exitWhenDone: exitWhenDone) },
                                             logger: logger)
        } catch {
            throw ExitCode(error.status.rawValue)
        }
        if probeFault != nil {
            // One line for the fault-injection row that ran this (sono-devlab faults).
            let report = hardware.probeFaultReport
            var line = "probe fault: injected " + (report.injectedMicros != nil ? "yes" : "no") + "; off the skin "
            if let injected = report.injectedMicros, let off = report.offSkinMicros {
                line += String(format: "%.0f ms after it", Double(off) / 1_000 - Double(injected) / 1_000)
            } else {
                line += "never"
            }
            print(line + String(format: "; contact force at exit %.2f N", hardware.contactForceN))
        }
        guard let result else { return }
        if let summary {
            do { try APICoding.encode(result, pretty: true).write(to: URL(fileURLWithPath: summary)) } catch {
                logger.error("cannot write the summary to \(summary): \(error)")
                throw ExitCode(ExitStatus.ioError.rawValue)
            }
        }
        print(ScanSummaryText.render(result))
        if exitWhenDone && result.acquired < result.views.count { throw ExitCode(ExitStatus.scanIncomplete.rawValue) }
    }
}

/// Where the hardware files are without a configuration file: the source tree when run from
/// it, else the installed copies.
enum SimulationFiles {
    static func root() -> String {
        let cwd = FileManager.default.currentDirectoryPath
        return FileManager.default.fileExists(atPath: "\(cwd)/hardware/arm.toml") ? cwd : DaemonConfiguration.installedRoot
    }
}

/// The emulated devices need umockdev's preload library in the process from its start: run
/// again under umockdev-wrapper when it is missing.
enum UmockdevPreload {
    static func reexecIfNeeded() throws {
        if ProcessInfo.processInfo.environment["LD_PRELOAD"]?.contains("umockdev") == true { return }
        let wrapper = ["/usr/bin/umockdev-wrapper", "/usr/local/bin/umockdev-wrapper"]
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let wrapper else {
            throw ValidationError("sonod-sim needs umockdev (Debian package 'umockdev'): umockdev-wrapper was not found")
        }
        let executable = Bundle.main.executablePath ?? CommandLine.arguments[0]
        let arguments = [wrapper, executable] + CommandLine.arguments.dropFirst()
        var cArguments = arguments.map { strdup($0) } + [nil]
        execv(wrapper, &cArguments)
        throw ValidationError("cannot run \(wrapper): \(String(cString: strerror(errno)))")
    }
}
