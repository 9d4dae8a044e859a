import Foundation
import Logging
import SonoDaemon
import ServiceLifecycle

/// Starts the scanner, tells systemd it is ready, runs the command-line scan if asked, and on
/// shutdown brings the arm to a safe stop before anything else stops.
struct ScannerService: Service {
    let runtime: ScannerRuntime
    let notifier: SystemdNotifier
    let logger: Logger
    let scan: String?
    let exitWhenDone: Bool

    func run() async throws {
        do {
            try runtime.start { logger.info("\($0)") }
        } catch {
            logger.critical("cannot start: \(error)")
            throw error
        }
        defer { runtime.shutdown { logger.notice("\($0)") } }
        let mode = runtime.isSimulation ? "simulation" : "hardware"
        notifier.notify("READY=1\nSTATUS=\(mode): \(runtime.controller.status.state.rawValue), waiting for an operator")
        logger.notice("sonod \(runtime.version) ready (\(mode)); the arm stays disabled until an operator enables it")

        if scan != nil {
            // The command line is the operator here (simulation only): enable, then scan.
            for command in [SafetyCommandName.enable, .enableMotion] {
                if case .failure(let error) = runtime.perform(command.command) {
                    logger.error("\(command.rawValue) refused: \(error)")
                    return
                }
            }
            switch runtime.startScan(views: runtime.configuration.scanProtocol) {
            case .success(let status): logger.notice("scan started: \(status.views.joined(separator: ", "))")
            case .failure(let error):
                logger.error("scan refused: \(error)")
                return
            }
            if exitWhenDone {
                while !Task.isShuttingDownGracefully && runtime.scanStatus().running {
                    try? await Task.sleep(for: .milliseconds(100))
                }
                return
            }
        }
        try? await gracefulShutdown()
        notifier.notify("STOPPING=1\nSTATUS=stopping: bringing the arm to a safe stop")
    }
}

/// systemd's watchdog, fed only while the control loop cycles: a stalled loop stops the
/// keep-alives and systemd restarts the service (which comes back with the arm disabled).
struct WatchdogService: Service {
    let runtime: ScannerRuntime
    let notifier: SystemdNotifier
    let periodMicros: UInt64
    let logger: Logger

    func run() async throws {
        var lastCycles = runtime.loopCycles()
        var reportedStall = false
        while !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .microseconds(Int64(periodMicros)))
            let cycles = runtime.loopCycles()
            if cycles > lastCycles {
                let status = runtime.status()
                notifier.notify("WATCHDOG=1\nSTATUS=\(status.mode): \(status.state), view \(status.view?.label ?? "-"), "
                    + "force \(status.forceN.z) N")
                reportedStall = false
            } else if !reportedStall {
                logger.critical("the control loop has not cycled for \(periodMicros / 1000) ms: withholding the watchdog keep-alive")
                reportedStall = true
            }
            lastCycles = cycles
        }
    }
}
