import Foundation
import Logging
import ServiceLifecycle
import SonoBoards
import SonoDevices
import SonoMotion
import SonoSystem

/// What the run leaves on disk: the MCAP recording (opened with the scanner, before the
/// control loop's first cycle) and the operator sessions' event logs. Every daemon event is
/// written into both as it is published. First up and last down, so that it holds everything
/// the other stages do, their shutdown included.
struct RecordingStage: DaemonStage {
    let recording: SessionRecording?
    let sessions: SessionStore
    let events: EventBus
    let controller: MotionController
    let log: Logger
    private let subscription = SubscriptionID()
    var name: String { "recording" }

    init(recording: SessionRecording?, sessions: SessionStore, events: EventBus, controller: MotionController, log: Logger) {
        self.recording = recording
        self.sessions = sessions
        self.events = events
        self.controller = controller
        self.log = log
    }

    func start() async throws(StartupError) {
        let sessions = self.sessions
        let recording = self.recording
        subscription.id = events.subscribe {
            sessions.record($0)
            recording?.event($0)
        }
        if let recording { log.info("recording: \(recording.path)") }
    }

    /// Says once, in the log, when the recording stops before the run does (a write error, or
    /// its disk at the free-space floor); `GET /v1/status` says it for as long as it lasts.
    func run() async {
        guard let recording else { return await waitForShutdown() }
        let log = self.log
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if let error = recording.counters.writeError {
                    log.error("recording stopped: \(error)")
                    break
                }
            }
            await waitForShutdown()
        }
    }

    private func waitForShutdown() async { try? await gracefulShutdown() }

    func stop() async {
        if let id = subscription.id { events.unsubscribe(id) }
        sessions.stop()
        guard let recording else { return }
        do {
            let counters = try recording.finish(tapeOverflows: controller.tapeOverflows)
            let megabytes = String(format: "%.1f", Double(counters.bytesWritten) / 1e6)
            let text = "recording \(recording.path): \(counters.messages) messages, \(megabytes) MB in \(counters.chunks) chunks, "
                + "\(counters.bulkDropped) of \(counters.bulkOffered) frames dropped, \(controller.tapeOverflows) tape entries lost"
            log.notice("\(text)")
        } catch .diskLow {
            // Closed complete at the floor, and said so then; only the loss is news.
            let counters = recording.counters
            let text = "recording \(recording.path): closed at the free-space floor, complete; "
                + "\(counters.lostAfterError) items offered after it were not recorded"
            log.notice("\(text)")
        } catch {
            let text = "recording \(recording.path) did not close cleanly: \(error) "
                + "(everything up to its last complete chunk is readable; `sonoctl session recover` rewrites it)"
            log.error("\(text)")
        }
    }
}

/// The simulation's boards: plugged in before the links look for them, unplugged after the
/// links closed.
struct SimulationStage: DaemonStage {
    let host: any SimulationHost
    let log: Logger
    var name: String { "simulated hardware" }

    func start() async throws(StartupError) {
        try host.plugIn()
        log.info("simulation: \(host.patientPath); arm at \(host.armPort), force sensor at \(host.forceSensorPort)")
    }

    func stop() async { host.unplug() }
}

/// The board links: connect, zero the force sensor. In simulation a board that does not come
/// is an error; on hardware the links keep trying (motion stays disabled until both are up).
struct BoardLinkStage: DaemonStage {
    let boards: ScannerBoards
    let simulated: Bool
    /// The arm's home pose (hardware/arm.toml): the force sensor is zeroed only there.
    let home: [Double]
    let log: Logger
    var name: String { "board links" }

    func start() async throws(StartupError) {
        let boards = self.boards
        boards.start()
        let missing = await offloaded { boards.waitUntilConnected(timeoutMillis: simulated ? 5_000 : 3_000) }
        if let missing {
            if simulated {
                boards.stop()
                throw .simulation("the simulated \(missing) board did not connect")
            }
            log.warning("the \(missing) board is not connected yet (the link keeps trying; motion stays disabled until it is)")
        }
        guard boards.forceSensor.waitUntilConnected(timeoutMillis: 1) != nil else { return }
        do throws(TareError) {
            let home = self.home
            let seconds = try await offloaded { () throws(TareError) in try boards.tareIfFree(home: home, timeoutMillis: 500) }
            log.info("force sensor zeroed in \(Int(seconds * 1000)) ms")
        } catch {
            // A restart with the probe on the patient must not zero the sensor under its load:
            // it keeps the zero it has, the last good one.
            log.warning("force sensor: \(error)")
        }
    }

    func stop() async {
        let boards = self.boards
        await offloaded { boards.stop() }
    }
}

/// The 1 kHz control loop. Its stop is the arm's safe stop: protective stop (category 2: the
/// arm decelerates along its path and holds) and the board's STOP acknowledgement, then drives
/// off and the board's SET_DRIVES acknowledgement, each waited for with a deadline; then the
/// loop stops.
struct MotionStage: DaemonStage {
    let scanner: Scanner
    let log: Logger
    var name: String { "motion control" }

    /// PROTOCOL.md §4.4: answered within 20 ms, resent after 50 ms up to 3 times.
    static let acknowledgementDeadlineMillis = 200
    /// Longest the shutdown waits for a lift-off: the lease (300 ms), then 15 mm along the axis.
    static let liftOffWaitMicros: UInt64 = 4_000_000

    func start() async throws(StartupError) {
        let configuration = scanner.configuration
        let report = scanner.controller.start(priority: configuration.loopPriority, lockMemory: configuration.lockMemory)
        log.info("control loop: \(report)")
        if configuration.requiresRealTime(simulated: scanner.mode.simulation != nil), let missing = RealTimePolicy.missing(report, lockMemory: configuration.lockMemory) {
            scanner.controller.stop()
            throw .realTime(missing)
        }
    }

    func stop() async {
        let scanner = self.scanner
        let log = self.log
        await offloaded { Self.bringToSafeStop(scanner, log: log) }
        scanner.controller.stop()
    }

    private static func bringToSafeStop(_ scanner: Scanner, log: Logger) {
        let controller = scanner.controller
        let acknowledgements = scanner.acknowledgements
        let deadline = acknowledgementDeadlineMillis
        var state = controller.status.state
        // A probe on the patient comes off before the stop: stopping in contact would leave it
        // pressing on the chest with the drives then off. Ending the scan lifts it off; contact
        // without a scan lifts off when its lease runs out, which nobody renews any more.
        if state.allowsMotion, controller.status.inContact || controller.status.liftingOff {
            if state == .scanning { state = (try? controller.perform(.safety(.stopScan))) ?? controller.status.state }
            let start = MonotonicClock.nowMicros()
            let deadline = start + Self.liftOffWaitMicros
            while MonotonicClock.nowMicros() < deadline {
                let status = controller.status
                if !status.state.allowsMotion || (!status.liftingOff && !status.inContact) { break }
                usleep(10_000)
            }
            let status = controller.status
            let waited = (MonotonicClock.nowMicros() - start) / 1_000
            if !status.liftingOff && !status.inContact {
                log.info("arm: probe lifted off the patient before the stop (\(waited) ms)")
            } else {
                log.critical("arm: probe still in contact after \(waited) ms of lift-off (state \(status.state.rawValue)); stopping anyway")
            }
            state = status.state
        }
        if state.allowsMotion {
            let mark = acknowledgements.mark()
            state = (try? controller.perform(.safety(.protectiveStop))) ?? controller.status.state
            if let waited = acknowledgements.waitForStop(after: mark, deadlineMillis: deadline) {
                log.info("arm: STOP acknowledged after \(waited) ms")
            } else {
                log.critical("arm: no STOP acknowledgement within \(deadline) ms of the protective stop")
            }
        }
        if state != .disabled, state != .emergencyStop, state != .fault {
            let mark = acknowledgements.mark()
            state = (try? controller.perform(.safety(.disable))) ?? controller.status.state
            if let waited = acknowledgements.waitForDrives(after: mark, deadlineMillis: deadline) {
                log.info("arm: drives off acknowledged after \(waited) ms")
            } else {
                let text = "arm: no acknowledgement of drives off within \(deadline) ms "
                    + "(the board's host watchdog stops it when the link goes quiet)"
                log.critical("\(text)")
            }
        }
        log.notice("arm stopped, drives off (state \(state.rawValue))")
    }
}

/// Which real-time guarantee the control loop did not get, when `[realtime] require` is on.
enum RealTimePolicy {
    static func missing(_ report: RealTimeReport, lockMemory: Bool) -> String? {
        var missing: [String] = []
        if report.fifoPriority == nil {
            missing.append("SCHED_FIFO was refused (\(report.fifoError ?? "unknown"); needs CAP_SYS_NICE or "
                + "LimitRTPRIO=, as sono.service grants)")
        }
        if lockMemory && !report.memoryLocked {
            missing.append("mlockall was refused (\(report.lockError ?? "unknown"); needs CAP_IPC_LOCK or "
                + "LimitMEMLOCK=infinity, as sono.service grants)")
        }
        return missing.isEmpty ? nil : missing.joined(separator: "; ")
    }
}

/// The probe's frames through the classifier: the USB probe's driver (when configured) and the
/// pipeline thread.
struct FramePipelineStage: DaemonStage {
    let pipeline: FramePipeline
    let usbProbe: USBProbeSource?
    let probeEvents: ProbeEventRelay
    let log: Logger
    var name: String { "frame pipeline" }

    func start() async throws(StartupError) {
        if let usbProbe {
            let log = self.log
            probeEvents.attach(log: { log.info("probe: \($0)") })
            log.info("probe: looking for \(usbProbe.configuration.selector)")
            do { try usbProbe.start() } catch { throw .devices("probe \(usbProbe.configuration.selector): \(error)") }
        }
        pipeline.start()
    }

    func stop() async {
        let pipeline = self.pipeline
        await offloaded { pipeline.stop() }
        if let usbProbe {
            await offloaded { usbProbe.close() }
            log.info("probe: \(ProbeStatisticsText(usbProbe.statistics))")
        }
    }
}

/// The autonomous scan: started by command; its stop ends a running scan (the planner thread
/// returns) before the pipeline and the arm stop.
struct ScanStage: DaemonStage {
    let scans: ScanControl
    let log: Logger
    var name: String { "scan" }

    func start() async throws(StartupError) {}

    func stop() async {
        let scans = self.scans
        let ended = await offloaded { () -> Bool in
            scans.stop()
            return scans.waitUntilIdle(seconds: 5)
        }
        if !ended { log.error("the planner did not end within 5 s of the scan's stop") }
    }
}

/// systemd's watchdog, fed only while the control loop cycles: a stalled loop stops the
/// keep-alives and systemd restarts the service (which comes back with the arm disabled).
/// Without a watchdog (`WATCHDOG_USEC` unset) it has nothing to do.
struct MonitorStage: DaemonStage {
    let scanner: Scanner
    let notifier: SystemdNotifier
    let log: Logger
    var name: String { "monitor" }

    func start() async throws(StartupError) {}

    func run() async {
        guard let micros = notifier.watchdogMicros else {
            try? await gracefulShutdown()
            return
        }
        let period = micros / 2
        var lastCycles = scanner.loopCycles()
        var reportedStall = false
        while !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .microseconds(Int64(period)))
            let cycles = scanner.loopCycles()
            if cycles > lastCycles {
                let status = scanner.status()
                let view = status.view?.label ?? "-"
                notifier.notify("WATCHDOG=1\nSTATUS=\(status.mode): \(status.state), view \(view), force \(status.forceN.z) N")
                reportedStall = false
            } else if !reportedStall {
                log.critical("the control loop has not cycled for \(period / 1000) ms: withholding the watchdog keep-alive")
                reportedStall = true
            }
            lastCycles = cycles
        }
    }

    func stop() async {}
}

/// Where RecordingStage keeps its subscription between start and stop.
final class SubscriptionID: @unchecked Sendable {
    // @unchecked: written by the stage's start and read by its stop, which ServiceGroup runs
    // one after the other on the same service task.
    var id: UInt64?
}
