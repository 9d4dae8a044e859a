public import Foundation

import SonoCore
import SonoDevices
import SonoGeometry
public import SonoMotion
import SonoPlanner
import SonoProtocol
import SonoRecord
import SonoSim
import SonoVision
import Synchronization

/// A command the runtime refused, as the control socket reports it.
public enum CommandError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not allowed in the current state (409).
    case conflict(String)
    /// The request itself is wrong (400).
    case badRequest(String)
    /// The daemon cannot do it in this configuration (503).
    case unavailable(String)

    public var description: String {
        switch self {
        case .conflict(let reason), .badRequest(let reason), .unavailable(let reason): reason
        }
    }
}

/// The running scanner: devices (or the virtual patient behind emulated devices), the motion
/// controller, the frame pipeline with the view classifier, the scan planner and sessions,
/// wired in the one direction ARCHITECTURE.md draws. The control socket and sonod's command
/// line both operate it through this type.
public final class ScannerRuntime: @unchecked Sendable {
    public let configuration: DaemonConfiguration
    public let events = EventBus()
    public let version = "0.6.0"
    public let controller: MotionController
    let boards: ScannerBoards
    let simulation: SimulatedHardware?
    let pipeline: FramePipeline?
    /// The USB probe's driver when one is configured (not in simulation).
    let usbProbe: USBProbeSource?
    /// Carries the USB probe's events to the event stream and the log once the runtime is up.
    private let probeEvents = ProbeEventRelay()
    let sessions: SessionStore
    let prior: ScanPrior
    let limits: SafetyLimits
    let motionConfiguration: MotionControllerConfiguration
    /// This run's MCAP recording (nil when `recording.sessions` is off).
    let recording: SessionRecording?
    public var recordingPath: String? { recording?.path }
    private let moves = MoveTracker()
    private let started = Date()
    private let scanState = Mutex(ScanRecord())
    private let cancelScan = CancelFlag()
    private let scanDone = NSCondition()
    private let monitorRunning = Atomic<Bool>(false)
    private let monitorDone = DispatchSemaphore(value: 0)
    private let realTime = Mutex<RealTimeReport?>(nil)
    private let sink: EventSink

    struct ScanRecord {
        var running = false
        var views: [String] = []
        var current: String?
        var step: String?
        var started: Date?
        var results: [ViewResultJSON] = []
        var stops: [StopJSON] = []
        var faults: [FaultJSON] = []
        var maxForceN = 0.0
        var autoRecording = false
        var finishedScans = 0
        var seconds = 0.0
        var interruption: String?
    }

    public var isSimulation: Bool { simulation != nil }

    /// Loads everything and checks it; starts nothing (`start()` does). `simulatePatient`:
    /// run against that virtual patient instead of the configured devices.
    public init(configuration: DaemonConfiguration, simulatePatient: String?) throws(StartupError) {
        self.configuration = configuration
        let robot: RobotDescription
        do { robot = try RobotDescription.load(path: configuration.robotPath) } catch {
            throw .file("robot description \(configuration.robotPath): \(error)")
        }
        do { limits = try SafetyLimits.load(path: configuration.safetyPath) } catch {
            throw .file("safety limits \(configuration.safetyPath): \(error)")
        }
        do { prior = try ScanPrior.load(path: configuration.priorPath) } catch { throw .file("\(error)") }
        sessions = try SessionStore(directory: configuration.sessionsDirectory)

        if let simulatePatient {
            let hardware = try SimulatedHardware(patientPath: simulatePatient, robot: robot)
            simulation = hardware
            boards = ScannerBoards(arm: .path(hardware.armDevice), forceSensor: .path(hardware.forceDevice))
        } else {
            simulation = nil
            boards = ScannerBoards(arm: configuration.armPort, forceSensor: configuration.forceSensorPort)
        }
        let motion = Self.motionConfiguration(limits: limits, simulation: simulatePatient != nil,
                                              staleDeadlineMillis: configuration.staleDeadlineMillis)
        motionConfiguration = motion
        let armModel: ArmModel
        do { armModel = try ArmModel(robot) } catch { throw .file("robot description \(configuration.robotPath): \(error)") }

        // The probe: the virtual patient's in simulation, else the USB probe if configured (its
        // driver starts with the runtime; the probe need not be plugged in yet: the driver opens
        // it when it arrives and reports it).
        let source: (any ProbeFrameSource)?
        if let simulation {
            source = simulation.makeProbe()
            usbProbe = nil
        } else {
            switch configuration.probe {
            case .none:
                source = nil
                usbProbe = nil
            case .usb:
                let relay = probeEvents
                do {
                    let probe = try USBProbeSource(configuration: configuration.usbProbe) { relay.deliver($0) }
                    usbProbe = probe
                    source = probe
                } catch {
                    throw .devices("probe \(configuration.usbProbe.selector): \(error)")
                }
            }
        }

        // The recording starts before the control loop's first cycle: it holds the whole tape.
        var labels: [String] = []
        var classifier: ViewClassifier?
        if source != nil {
            do { classifier = try ViewClassifier(path: configuration.modelPath) } catch { throw .model("\(error)") }
            labels = classifier?.labels ?? []
        }
        if configuration.recordSessions {
            var attachments = [("arm.toml", configuration.robotPath), ("safety.toml", configuration.safetyPath),
                               ("scan-prior.toml", configuration.priorPath)]
            if let path = configuration.sourcePath { attachments.append(("sono.toml", path)) }
            if let simulatePatient { attachments.append(("patient.toml", simulatePatient)) }
            var metadata = ["version": version, "mode": simulatePatient != nil ? "simulation" : "hardware",
                            "model": configuration.modelPath, "labels": labels.joined(separator: ","),
                            "started": rfc3339(Date())]
            if let millis = configuration.staleDeadlineMillis { metadata["stale_deadline_ms"] = "\(millis)" }
            if let simulatePatient { metadata["patient"] = simulatePatient }
            if let source { metadata["frames_per_second"] = "\(source.format.framesPerSecond)" }
            recording = try SessionRecording(directory: configuration.recordingsDirectory,
                                             mode: simulatePatient != nil ? "simulation" : "hardware", labels: labels,
                                             attachments: attachments, metadata: metadata)
        } else {
            recording = nil
        }
        let sink = EventSink()
        self.sink = sink
        let recording = self.recording
        var onTape: MotionController.TapeHandler?
        if let recording { onTape = { entry in recording.tape(entry) } }
        let onEvent: MotionController.EventHandler = { event in
            sink.handle(event)
            recording?.motionEvent(event)
        }
        controller = MotionController(arm: armModel, configuration: motion, inputs: boards.inputs,
                                      output: boards.armSender, onEvent: onEvent, onTape: onTape)

        if let source, let classifier {
            for view in configuration.scanProtocol where !classifier.labels.contains(view) || prior.views[view] == nil {
                throw .configuration("planner.protocol: view \(view) is not both in the model's labels "
                    + "(\(classifier.labels.joined(separator: ","))) and the scan prior")
            }
            let controller = self.controller
            pipeline = FramePipeline(source: source, classifier: classifier,
                                     measured: { let s = controller.status; return (s.probe, s.force.z) })
            pipeline?.recorder = recording
        } else {
            pipeline = nil
        }
        sink.runtime = self
        let events = self.events
        probeEvents.attach(publish: { event in events.publish(DaemonEvent("probe", ProbeEventJSON(event))) })
    }

    /// The motion controller's settings for these limits. The simulation gives the stale-data
    /// deadlines headroom: umockdev relays every byte through one ordinary thread whose latency
    /// tail (p99.9 ≈ 6 ms on a 2-vCPU VM) would trip the 5 ms deadlines (as the emulated-link tests
    /// do). Hardware keeps safety.toml's. A replay derives the same settings from the recording.
    static func motionConfiguration(limits: SafetyLimits, simulation: Bool,
                                    staleDeadlineMillis: Int?) -> MotionControllerConfiguration {
        var motion = MotionControllerConfiguration()
        motion.limits = limits
        if simulation {
            motion.limits.forceDeadlineMicros = max(motion.limits.forceDeadlineMicros, 40_000)
            motion.limits.jointStateDeadlineMicros = max(motion.limits.jointStateDeadlineMicros, 40_000)
        }
        if let millis = staleDeadlineMillis {
            motion.limits.forceDeadlineMicros = UInt64(millis) * 1_000
            motion.limits.jointStateDeadlineMicros = UInt64(millis) * 1_000
        }
        return motion
    }

    // MARK: lifecycle

    /// Connects the boards, tares the force sensor, starts the control loop, the frame
    /// pipeline and the monitor. The arm stays disabled: an operator enables it.
    public func start(log: @escaping @Sendable (String) -> Void) throws(StartupError) {
        // The probe's driver first: libusb starts (and enumerates) before the board links' threads.
        if let usbProbe {
            probeEvents.attach(log: { log("probe: \($0)") })
            log("probe: looking for \(usbProbe.configuration.selector)")
            do { try usbProbe.start() } catch { throw .devices("probe \(usbProbe.configuration.selector): \(error)") }
        }
        boards.start()
        let wait = simulation != nil ? 5_000 : 3_000
        if let missing = boards.waitUntilConnected(timeoutMillis: wait) {
            if simulation != nil {
                boards.stop()
                throw .simulation("the simulated \(missing) board did not connect")
            }
            log("warning: the \(missing) board is not connected yet (the link keeps trying; motion stays disabled until it is)")
        }
        if boards.forceSensor.waitUntilConnected(timeoutMillis: 1) != nil {
            do {
                _ = try boards.forceSensor.request(.tare)
                Thread.sleep(forTimeInterval: 0.15)  // the sensor averages 100 samples
            } catch {
                log("warning: force sensor TARE failed: \(error)")
            }
        }
        let report = controller.start(priority: configuration.loopPriority, lockMemory: configuration.lockMemory)
        realTime.withLock { $0 = report }
        log("control loop: \(report)")
        pipeline?.start()
        monitorRunning.store(true, ordering: .releasing)
        let monitor = Thread { [self] in runMonitor(); monitorDone.signal() }
        monitor.name = "sono-monitor"
        monitor.start()
    }

    /// Brings the arm to a safe stop (scan ended, probe held, drives off), then stops
    /// everything in reverse order.
    public func shutdown(log: (String) -> Void) {
        _ = stopScan()
        waitForScanThread(seconds: 5)
        var state = controller.status.state
        if state.allowsMotion {
            // Category 2 first: the arm decelerates along its path and holds, then drives off.
            state = (try? controller.perform(.safety(.protectiveStop))) ?? state
            Thread.sleep(forTimeInterval: 0.05)
        }
        if state != .disabled, state != .emergencyStop, state != .fault {
            state = (try? controller.perform(.safety(.disable))) ?? state
        }
        log("arm stopped, drives off (state \(state.rawValue))")
        if monitorRunning.exchange(false, ordering: .acquiringAndReleasing) { monitorDone.wait() }
        pipeline?.stop()
        if let usbProbe {
            usbProbe.close()
            log("probe: \(ProbeStatisticsText(usbProbe.statistics))")
        }
        controller.stop()
        boards.stop()
        simulation?.unplug()
        sessions.stop()
        if let recording {
            do {
                let counters = try recording.finish(tapeOverflows: controller.tapeOverflows)
                log("recording \(recording.path): \(counters.messages) messages, "
                    + String(format: "%.1f MB", Double(counters.bytesWritten) / 1e6) + " in \(counters.chunks) chunks, "
                    + "\(counters.bulkDropped) of \(counters.bulkOffered) frames dropped, "
                    + "\(controller.tapeOverflows) tape entries lost")
            } catch {
                log("error: recording \(recording.path) did not close cleanly: \(error) "
                    + "(everything up to its last complete chunk is readable; `sonoctl session recover` rewrites it)")
            }
        }
    }

    /// True while the control loop is cycling (the systemd watchdog's health).
    public func loopCycles() -> UInt64 { controller.status.cycle }

    // MARK: commands

    public func perform(_ command: SafetyCommand) -> Result<SafetyState, CommandError> {
        do {
            return .success(try controller.perform(.safety(command)))
        } catch {
            switch error {
            case .notRunning, .timedOut, .queueFull: return .failure(.unavailable(error.description))
            default: return .failure(.conflict(error.description))
            }
        }
    }

    public func startScan(views requested: [String]?) -> Result<ScanStatusJSON, CommandError> {
        guard let pipeline else {
            return .failure(.unavailable("no probe is configured (devices.probe = \"none\"): a scan needs frames"))
        }
        let names = (requested ?? configuration.scanProtocol).map { $0.uppercased() }
        let known = Set(pipeline.classifier.labels).intersection(prior.views.keys)
        let scanProtocol: ScanProtocol
        do { scanProtocol = try ScanProtocol(views: names, known: known) } catch {
            return .failure(.badRequest("\(error)"))
        }
        let claimed = scanState.withLock { s -> Bool in
            if s.running { return false }
            s = ScanRecord(running: true, views: scanProtocol.views, started: Date(), finishedScans: s.finishedScans)
            return true
        }
        guard claimed else { return .failure(.conflict("a scan is already running")) }
        let state = controller.status.state
        if state != .scanning {
            if case .failure(let error) = perform(.startScan) {
                scanState.withLock { $0.running = false }
                return .failure(.conflict("cannot start a scan in state \(state.rawValue): \(error)"))
            }
        }
        if sessions.activePath == nil, (try? sessions.start(name: nil)) != nil {
            scanState.withLock { $0.autoRecording = true }
            events.publish(DaemonEvent("recording", sessions.status))
        }
        cancelScan.set(false)
        let scanThread = Thread { [self] in runScan(scanProtocol) }
        scanThread.name = "sono-planner"
        scanThread.start()
        let status = scanStatus()
        events.publish(DaemonEvent("scan", status))
        return .success(status)
    }

    /// Ends the scan; the arm holds where it is.
    public func stopScan() -> ScanStatusJSON {
        if scanState.withLock({ $0.running }) {
            cancelScan.set(true)
            waitForScanThread(seconds: 5)
        }
        return scanStatus()
    }

    /// Blocks until no scan is running (or `seconds` pass).
    @discardableResult
    public func waitForScanThread(seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        scanDone.lock()
        defer { scanDone.unlock() }
        while scanState.withLock({ $0.running }) {
            if !scanDone.wait(until: deadline) { return false }
        }
        return true
    }

    private func runScan(_ scanProtocol: ScanProtocol) {
        guard let pipeline else { return }
        pipeline.queue.clear()
        let cancelled = cancelScan
        let environment = MotionScanEnvironment(
            labels: pipeline.classifier.labels, controller: controller, frames: pipeline.queue, moves: moves,
            cancelled: { cancelled.isSet }, onEvent: { [weak self] in self?.plannerEvent($0) })
        let recorded: any ScanEnvironment
        if let recording {
            recording.plannerCall(PlannerTapeCoding.encode(
                PlannerCall(call: .scan, views: scanProtocol.views, settings: configuration.planner)))
            recorded = RecordingScanEnvironment(base: environment) { recording.plannerCall(PlannerTapeCoding.encode($0)) }
        } else {
            recorded = environment
        }
        let planner = ScanPlanner(prior: prior, settings: configuration.planner, environment: recorded,
                                  cancelled: { cancelled.isSet })
        if ProcessInfo.processInfo.environment["SONO_PLANNER_TRACE"] != nil {
            planner.trace = { FileHandle.standardError.write(Data("planner: \($0)\n".utf8)) }
        }
        let report = planner.run(scanProtocol)
        recording?.plannerCall(PlannerTapeCoding.encode(PlannerCall(call: .end, event: "\(report.outcomes.filter(\.acquired).count)/\(report.outcomes.count) views")))
        if controller.status.state == .scanning { _ = perform(.stopScan) }
        let summary = scanState.withLock { s -> ScanRecord in
            s.running = false
            s.current = nil
            s.step = nil
            s.seconds = report.seconds
            s.interruption = report.interruption.map(\.description)
            s.finishedScans += 1
            return s
        }
        sessions.write(APICoding.encode(makeSummary(summary), pretty: true), named: "summary.json")
        events.publish(DaemonEvent("scan", scanStatus()))
        if summary.autoRecording {
            events.publish(DaemonEvent("recording", sessions.stop()))
        }
        scanDone.lock()
        scanDone.broadcast()
        scanDone.unlock()
    }

    private func plannerEvent(_ event: PlannerEvent) {
        switch event {
        case .viewStarted(let view):
            scanState.withLock { $0.current = view; $0.step = "travel" }
        case .windowReached:
            scanState.withLock { $0.step = "contact" }
        case .searching(_, let step):
            scanState.withLock { $0.step = step }
        case .clipStarted(let view):
            scanState.withLock { $0.step = "clip" }
            if let frame = pipeline?.snapshot {
                sessions.writeFrame(frame.pixels, width: frame.width, height: frame.height, named: "\(view).png")
            }
        case .clipEnded:
            break
        case .viewAcquired(let outcome), .viewFailed(let outcome):
            let result = viewResult(outcome)
            scanState.withLock { $0.results.append(result) }
            events.publish(DaemonEvent(outcome.acquired ? "view_acquired" : "view_failed", result))
        }
    }

    private func viewResult(_ outcome: ViewOutcome) -> ViewResultJSON {
        var poseError: PoseErrorJSON?
        if let simulation, let pose = outcome.pose, let view = StandardView(name: outcome.view),
           let distance = simulation.geometry.distance(from: pose, to: view) {
            let truth = simulation.truth
            let label = simulation.geometry.label(pose: truth.probe, contactForceN: truth.contact.normalForceN,
                                                  seconds: Double(truth.micros) / 1e6)
            poseError = PoseErrorJSON(positionMM: round2(distance.positionMM), beamDeg: round2(distance.beamAngleDeg),
                                      rotationDeg: round2(distance.planeRotationDeg), truthView: label.view.rawValue)
        }
        return ViewResultJSON(view: outcome.view, acquired: outcome.acquired, seconds: round2(outcome.seconds),
                              confidence: round2(Double(outcome.confidence)), maxForceN: round2(outcome.maxForceN),
                              reason: outcome.reason, pose: outcome.pose.map(PoseJSON.init), poseError: poseError)
    }

    // MARK: status

    public func scanStatus() -> ScanStatusJSON {
        scanState.withLock { s in
            ScanStatusJSON(running: s.running, views: s.views, currentView: s.current, step: s.step,
                           startedAt: s.started.map(rfc3339), results: s.results)
        }
    }

    public func status() -> StatusJSON {
        let motion = controller.status
        let loop = controller.loopStatistics
        let rt = realTime.withLock { $0 }
        var view: ViewJSON?
        var probeDevice = DeviceJSON(connected: false, source: "none", detail: "no probe configured")
        if let pipeline {
            let frames = pipeline.snapshot
            if let observation = frames.observation {
                view = ViewJSON(label: observation.smoothedLabel, confidence: round2(Double(observation.smoothedConfidence)),
                                stableFrames: observation.stableFrames, frame: frames.frameNumber)
            }
            if let usbProbe {
                let statistics = usbProbe.statistics
                probeDevice = DeviceJSON(connected: statistics.link == "streaming", source: usbProbe.configuration.selector,
                                         detail: ProbeStatisticsText(statistics).description)
            } else {
                probeDevice = DeviceJSON(connected: frames.failure == nil && frames.frames > 0, source: "simulated",
                                         detail: frames.failure ?? "\(frames.frames) frames, \(frames.dropped) dropped")
            }
        }
        func device(_ link: BoardLink, _ selector: String) -> DeviceJSON {
            if case .connected(let info, let path) = link.state {
                return DeviceJSON(connected: true, source: path, detail: "\(info.kind) \(info.serial) firmware \(info.firmwareVersion)")
            }
            return DeviceJSON(connected: false, source: selector, detail: link.state.description)
        }
        let armSource = simulation.map { "simulated (\($0.armDevice))" } ?? configuration.armPort.description
        let forceSource = simulation.map { "simulated (\($0.forceDevice))" } ?? configuration.forceSensorPort.description
        return StatusJSON(
            mode: simulation != nil ? "simulation" : "hardware", version: version,
            uptimeS: round2(Date().timeIntervalSince(started)), state: motion.state.rawValue,
            latched: motion.latched.map { LatchedJSON(cause: $0.cause.rawValue, value: round2($0.value), limit: $0.limit) },
            devices: DevicesJSON(arm: device(boards.arm, armSource), forceSensor: device(boards.forceSensor, forceSource),
                                 probe: probeDevice),
            forceN: VectorJSON(x: round2(motion.force.x), y: round2(motion.force.y), z: round2(motion.force.z)),
            contactTargetN: motion.contactTargetN, forceLimited: motion.forceLimited, probe: PoseJSON(motion.probe),
            moving: motion.moving, retracting: motion.retracting, view: view,
            loop: LoopJSON(cycles: loop.cycles, overruns: loop.overruns, periodP50Us: Double(loop.periodP50),
                           periodP99Us: Double(loop.periodP99), periodMaxUs: Double(loop.periodMax),
                           realtime: RealTimeJSON(scheduler: rt?.fifoPriority != nil ? "SCHED_FIFO" : "SCHED_OTHER",
                                                  priority: Int(rt?.fifoPriority ?? 0), memoryLocked: rt?.memoryLocked ?? false,
                                                  note: rt.flatMap { [$0.fifoError, $0.lockError].compactMap { $0 }.first })),
            scan: scanStatus(), recording: sessions.status)
    }

    public func limitsJSON() -> Data {
        let l = motionConfiguration.limits
        let c = motionConfiguration.contact
        let body: [String: [String: AnyEncodable]] = [
            "force": ["soft_limit_n": .init(l.forceSoftLimitN), "hard_limit_n": .init(l.forceHardCapN),
                      "max_rate_n_per_s": .init(l.forceRateLimitNPerS), "rate_window_us": .init(Double(l.forceRateWindowMicros))],
            "speed": ["tip_mm_s": .init(l.tipSpeedLimitMMs), "joint_speed_fraction": .init(l.jointSpeedFraction)],
            "workspace": ["min_mm": .init([l.workspaceMin.x, l.workspaceMin.y, l.workspaceMin.z]),
                          "max_mm": .init([l.workspaceMax.x, l.workspaceMax.y, l.workspaceMax.z])],
            "stale": ["force_ms": .init(Double(l.forceDeadlineMicros) / 1000), "joints_ms": .init(Double(l.jointStateDeadlineMicros) / 1000)],
            "contact": ["default_n": .init(c.defaultTargetN), "min_n": .init(c.targetRange.lowerBound), "max_n": .init(c.targetRange.upperBound)],
        ]
        return APICoding.encode(body)
    }

    // MARK: summary

    public func summary() -> ScanSummaryJSON { makeSummary(scanState.withLock { $0 }) }

    private func makeSummary(_ s: ScanRecord) -> ScanSummaryJSON {
        ScanSummaryJSON(mode: simulation != nil ? "simulation" : "hardware", patient: simulation?.patientPath, views: s.views,
                    results: s.results, acquired: s.results.filter(\.acquired).count, scanSeconds: round2(s.seconds),
                    maxForceN: round2(s.maxForceN), hardCapN: limits.forceHardCapN, softLimitN: limits.forceSoftLimitN,
                    stops: s.stops, faults: s.faults, interruption: s.interruption, session: sessions.activePath,
                    recording: recording?.path)
    }

    // MARK: events and monitoring

    fileprivate func handle(_ event: MotionEvent) {
        moves.record(event)
        switch event {
        case .transition(let from, let to, _):
            events.publish(DaemonEvent("state", StateChangeJSON(from: from.rawValue, to: to.rawValue, at: rfc3339(Date()))))
        case .stop(let record):
            let stop = StopJSON(kind: "category_\(record.kind.rawValue)", cause: record.breach?.cause.rawValue ?? "operator",
                                value: record.breach.map { round2($0.value) }, limit: record.breach?.limit, at: rfc3339(Date()))
            scanState.withLock { if $0.running { $0.stops.append(stop) } }
            events.publish(DaemonEvent("stop", stop))
        case .boardFault(let report, let board):
            let fault = FaultJSON(board: board.description, code: "\(report.code)",
                                  detail: "axis \(report.axis) severity \(report.severity) value \(report.value) limit \(report.limit)")
            scanState.withLock { if $0.running { $0.faults.append(fault) } }
            events.publish(DaemonEvent("fault", fault))
        default:
            break
        }
    }

    /// Watches the contact force at 500 Hz for the scan's maximum, publishes view changes and
    /// records events into the session.
    private func runMonitor() {
        let recorder = events.subscribe { [sessions, recording] in
            sessions.record($0)
            recording?.event($0)
        }
        defer { events.unsubscribe(recorder) }
        var lastLabel: String?
        var tick = 0
        while monitorRunning.load(ordering: .acquiring) {
            let force = controller.status.force.z
            scanState.withLock { if $0.running { $0.maxForceN = max($0.maxForceN, force) } }
            tick += 1
            if tick % 25 == 0, let observation = pipeline?.snapshot.observation, observation.smoothedLabel != lastLabel {
                lastLabel = observation.smoothedLabel
                events.publish(DaemonEvent("view", ViewChangeJSON(label: observation.smoothedLabel,
                                                                  confidence: round2(Double(observation.smoothedConfidence)))))
            }
            usleep(2_000)
        }
    }
}

/// Delivers the motion controller's events to the runtime once it exists.
final class EventSink: @unchecked Sendable {
    weak var runtime: ScannerRuntime?
    func handle(_ event: MotionEvent) { runtime?.handle(event) }
}

/// A JSON value of a few shapes, for bodies assembled in code.
struct AnyEncodable: Encodable {
    private let encodeValue: (any Encoder) throws -> Void
    init(_ value: Double) { encodeValue = { try value.encode(to: $0) } }
    init(_ value: [Double]) { encodeValue = { try value.encode(to: $0) } }
    func encode(to encoder: any Encoder) throws { try encodeValue(encoder) }
}

/// A flag the planner polls to learn that the operator stopped the scan.
final class CancelFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set(_ flag: Bool) { value.store(flag, ordering: .releasing) }
}
