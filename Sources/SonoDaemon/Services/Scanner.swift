import Foundation
public import Logging

import SonoBoards
import SonoCore
import SonoDevices
import SonoGeometry
public import SonoMotion
import SonoPlanner
import SonoRecord
import SonoSystem
import SonoVision

/// A command the scanner refused, as the control socket reports it.
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

/// The scanner's parts, loaded, checked and wired in the one direction ARCHITECTURE.md draws
/// (devices → perception → decision → actuation), with nothing running: `stages` are what
/// start and stop them, as services of one ServiceGroup. The control socket and the command
/// line operate the scanner through this type.
public final class Scanner: Sendable {
    public static let version = "0.7.0"
    public let configuration: DaemonConfiguration
    public let mode: RunMode
    public let events = EventBus()
    public let controller: MotionController
    let boards: ScannerBoards
    let pipeline: FramePipeline?
    /// The USB probe's driver when one is configured (not in simulation).
    let usbProbe: USBProbeSource?
    /// Carries the USB probe's events to the event stream and the log once the scanner is up.
    let probeEvents = ProbeEventRelay()
    let sessions: SessionStore
    let prior: ScanPrior
    let limits: SafetyLimits
    let motionConfiguration: MotionControllerConfiguration
    /// The arm's home pose (hardware/arm.toml): where the force sensor may be zeroed.
    let home: [Double]
    /// The arm's kinematics and ratings (arm.toml).
    let arm: ArmModel
    /// This run's MCAP recording (nil when `recording.mcap` is off).
    let recording: SessionRecording?
    let scans: ScanControl
    let started = Date()
    /// The arm board's acknowledgements, for the shutdown's waits.
    let acknowledgements = AcknowledgementLog()
    private let sink: MotionEventSink

    /// Loads every file and checks it, creates the parts; starts nothing.
    /// - Throws: `StartupError` naming the file, key or device that is wrong.
    public init(configuration: DaemonConfiguration, mode: RunMode) throws(StartupError) {
        self.configuration = configuration
        self.mode = mode
        let robot: RobotDescription
        do { robot = try RobotDescription.load(path: configuration.robotPath) } catch {
            throw .file("robot description \(configuration.robotPath): \(error)")
        }
        home = robot.home
        let simulation = mode.simulation
        // The simulation's own profile in simulation (its wider stale-data deadlines are for the
        // emulated serial path); the hardware profile otherwise, which refuses a simulation
        // profile named in its place.
        let safetyPath = configuration.safetyProfilePath(simulated: simulation != nil)
        do { limits = try SafetyLimits.load(path: safetyPath, simulation: simulation != nil) } catch {
            throw .file("safety limits \(safetyPath): \(error)")
        }
        do { prior = try ScanPrior.load(path: configuration.priorPath) } catch { throw .file("\(error)") }
        let armModel: ArmModel
        do { armModel = try ArmModel(robot) } catch { throw .file("robot description \(configuration.robotPath): \(error)") }
        let motion = try Self.motionConfiguration(limits: limits, staleDeadlineMillis: configuration.staleDeadlineMillis,
                                                  arm: armModel)
        motionConfiguration = motion
        arm = armModel
        sessions = try SessionStore(directory: configuration.sessionsDirectory)

        boards = ScannerBoards(arm: simulation?.armPort ?? configuration.armPort,
                               forceSensor: simulation?.forceSensorPort ?? configuration.forceSensorPort,
                               armJointCount: robot.joints.count)

        // The probe: the simulation's, else the USB probe if configured (its driver starts with
        // the frame pipeline; the probe need not be plugged in yet: the driver opens it when it
        // arrives and reports it).
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

        var labels: [String] = []
        var classifier: ViewClassifier?
        if source != nil {
            do { classifier = try ViewClassifier(path: configuration.modelPath) } catch { throw .model("\(error)") }
            labels = classifier?.labels ?? []
            for view in configuration.scanProtocol where !labels.contains(view.rawValue) || prior.views[view] == nil {
                throw .configuration("planner.protocol: view \(view) is not both in the model's labels "
                    + "(\(labels.joined(separator: ","))) and the scan prior")
            }
        }
        // Everything that can refuse the configuration has run: only now is the recording
        // opened (its writer thread runs until the recording stage finishes it).
        // The recording is opened before the control loop's first cycle: it holds the whole tape.
        if configuration.recordSessions {
            // The active profile, under the name replay looks for.
            var attachments = [("arm.toml", configuration.robotPath), ("safety.toml", safetyPath),
                               ("scan-prior.toml", configuration.priorPath)]
            if let path = configuration.sourcePath { attachments.append(("sono.toml", path)) }
            if let simulation { attachments.append(("patient.toml", simulation.patientPath)) }
            var metadata = ["version": Self.version, "mode": mode.name,
                            "model": configuration.modelPath, "labels": labels.joined(separator: ","),
                            "started": rfc3339(Date())]
            if let millis = configuration.staleDeadlineMillis { metadata["stale_deadline_ms"] = "\(millis)" }
            metadata["safety_profile"] = limits.profile.name
            if let simulation { metadata["patient"] = simulation.patientPath }
            if let source { metadata["frames_per_second"] = "\(source.format.framesPerSecond)" }
            recording = try SessionRecording(directory: configuration.recordingsDirectory, mode: mode.name, labels: labels,
                                             attachments: attachments, metadata: metadata,
                                             minimumFreeBytes: UInt64(configuration.recordingMinimumFreeMiB) << 20)
        } else {
            recording = nil
        }
        let sink = MotionEventSink()
        self.sink = sink
        let recording = self.recording
        var onTape: MotionController.TapeHandler?
        if let recording { onTape = { entry in recording.tape(entry) } }
        let boards = self.boards
        let onEvent: MotionController.EventHandler = { event in
            if case .transition(_, let to, _) = event { boards.reportHostState(to) }
            sink.handle(event)
            recording?.motionEvent(event)
        }
        controller = MotionController(arm: armModel, configuration: motion, inputs: boards.inputs,
                                      output: boards.armSender, onEvent: onEvent, onTape: onTape)

        let events = self.events
        if let source, let classifier {
            let controller = self.controller
            pipeline = FramePipeline(source: source, classifier: classifier, recorder: recording,
                                     history: controller.probeHistory, frameAgeLimitMicros: motion.limits.frameAgeMicros,
                                     measured: { let s = controller.status; return (s.probe, s.force.z) },
                                     onViewChange: { observation in
                                         events.publish(DaemonEvent("view", ViewChangeJSON(
                                             label: observation.smoothedLabel,
                                             confidence: round2(Double(observation.smoothedConfidence)))))
                                     })
        } else {
            pipeline = nil
        }
        scans = ScanControl(configuration: configuration, prior: prior, limits: limits, controller: controller, pipeline: pipeline,
                            sessions: sessions, events: events, recording: recording, mode: mode)
        sink.scanner = self
        probeEvents.attach(publish: { event in events.publish(DaemonEvent("probe", ProbeEventJSON(event))) })
    }

    /// The motion controller's settings for the active safety profile's limits. The stale-data
    /// deadlines are the profile's: the simulation's wider ones come from its own profile
    /// (hardware/safety-simulation.toml: umockdev relays every byte through one ordinary thread
    /// whose latency tail would trip the 5 ms hardware deadlines), never from here.
    /// `[realtime] stale_deadline_ms` may only tighten them. A replay derives the same settings
    /// from the recording, and the stepped simulation (SonoEvaluation) builds its controller with it.
    /// - Throws: `StartupError.configuration` naming the key that would loosen a limit, or a
    ///   motion limit that is not a finite positive number.
    public static func motionConfiguration(limits: SafetyLimits, staleDeadlineMillis: Int?,
                                           arm: ArmModel) throws(StartupError) -> MotionControllerConfiguration {
        var motion = MotionControllerConfiguration()
        motion.limits = limits
        if let millis = staleDeadlineMillis {
            let micros = UInt64(max(0, millis)) * 1_000
            let allowed = min(limits.forceDeadlineMicros, limits.jointStateDeadlineMicros)
            guard millis > 0, micros <= allowed else {
                throw .configuration("realtime.stale_deadline_ms = \(millis) is looser than the safety profile "
                    + "'\(limits.profile.name)' (\(limits.profile.path ?? "built-in")) allows: its stale-data deadlines are "
                    + "\(Double(limits.forceDeadlineMicros) / 1000) ms (force) and \(Double(limits.jointStateDeadlineMicros) / 1000) ms "
                    + "(joint state); sono.toml may only tighten them (remove the key or set at most \(Double(allowed) / 1000))")
            }
            motion.limits.forceDeadlineMicros = micros
            motion.limits.jointStateDeadlineMicros = micros
        }
        for (name, value) in [("motion", motion.motion), ("retract", motion.retractLimits)] {
            do throws(MotionLimitsError) { _ = try value.validated() } catch {
                throw .configuration("\(name) limits: \(error)")
            }
        }
        do throws(PlanningEnvelopeError) {
            try PlanningEnvelope(limits: motion.limits, contact: motion.contact, arm: arm).check()
        } catch {
            throw .configuration("safety profile \(limits.profile.path ?? "built-in"): \(error)")
        }
        return motion
    }

    /// The scanner's stages in start order; the reverse is the safe shutdown: the control
    /// server closes first, the scan ends, the pipeline stops, the arm stops and its drives go
    /// off, the links close, the simulated boards are unplugged, the recording closes last.
    public func stages(notifier: SystemdNotifier, log: Logger) -> [any DaemonStage] {
        var stages: [any DaemonStage] = [
            RecordingStage(recording: recording, sessions: sessions, events: events, controller: controller, log: log),
        ]
        if let simulation = mode.simulation { stages.append(SimulationStage(host: simulation, log: log)) }
        stages.append(BoardLinkStage(boards: boards, simulated: mode.simulation != nil, home: home, log: log))
        stages.append(MotionStage(scanner: self, log: log))
        if let pipeline {
            stages.append(FramePipelineStage(pipeline: pipeline, usbProbe: usbProbe, probeEvents: probeEvents, log: log))
        }
        stages.append(ScanStage(scans: scans, log: log))
        stages.append(MonitorStage(scanner: self, notifier: notifier, log: log))
        return stages
    }

    // MARK: commands

    /// Passes an operator's command to the motion controller. A reset clears the force
    /// board's latched fault first, through its link (the controller writes only to the arm).
    public func perform(_ command: SafetyCommand) -> Result<SafetyState, CommandError> {
        if command == .reset, controller.status.forceBoardFault {
            do { _ = try boards.forceSensor.request(.clearFaults) } catch {
                return .failure(.conflict("the force sensor did not clear its fault: \(error)"))
            }
            // Its ACK reaches the controller through the force board's input queue.
            let deadline = MonotonicClock.nowMicros() + 200_000
            while controller.status.forceBoardFault, MonotonicClock.nowMicros() < deadline { usleep(2_000) }
        }
        do {
            return .success(try controller.perform(.safety(command)))
        } catch {
            switch error {
            case .notRunning, .timedOut, .queueFull, .expired: return .failure(.unavailable(error.description))
            default: return .failure(.conflict(error.description))
            }
        }
    }

    /// Starts the operator's patient release (accepted in emergency_stop and fault): the probe
    /// retracts along its axis at the release speed, then the drives go off. Answers once the
    /// release has started; its end arrives as a `motion` event (release_finished / _aborted).
    public func release() -> Result<SafetyState, CommandError> {
        do {
            return .success(try controller.perform(.release))
        } catch {
            switch error {
            case .notRunning, .timedOut, .queueFull, .expired: return .failure(.unavailable(error.description))
            default: return .failure(.conflict(error.description))
            }
        }
    }

    /// Starts the autonomous scan of `requested` (the configured protocol when nil).
    public func startScan(views requested: [String]?) -> Result<ScanStatusJSON, CommandError> {
        scans.start(views: requested) { self.perform($0) }
    }

    /// Ends the scan; the arm holds where it is.
    @discardableResult
    public func stopScan() -> ScanStatusJSON { scans.stop() }

    public func scanStatus() -> ScanStatusJSON { scans.status() }

    public func summary() -> ScanSummaryJSON { scans.summary() }

    /// True while the control loop is cycling (the systemd watchdog's health).
    public func loopCycles() -> UInt64 { controller.status.cycle }

    // MARK: motion events

    fileprivate func handle(_ event: MotionEvent) {
        scans.moves.record(event)
        switch event {
        case .transition(let from, let to, _):
            events.publish(DaemonEvent("state", StateChangeJSON(from: from.rawValue, to: to.rawValue, at: rfc3339(Date()))))
        case .stop(let record):
            let stop = StopJSON(kind: "category_\(record.kind.rawValue)", cause: record.breach?.cause.rawValue ?? "operator",
                                value: record.breach.map { round2($0.value) }, limit: record.breach?.limit, at: rfc3339(Date()))
            scans.note(stop: stop)
            events.publish(DaemonEvent("stop", stop))
        case .boardFault(let report, let board):
            let fault = FaultJSON(board: board.description, code: "\(report.code)",
                                  detail: "axis \(report.axis) severity \(report.severity) value \(report.value) limit \(report.limit)")
            scans.note(fault: fault)
            events.publish(DaemonEvent("fault", fault))
        default:
            break
        }
        acknowledgements.note(event)
    }
}

/// Delivers the motion controller's events to the scanner once it exists (the controller is
/// made, with its event handler, inside the scanner's init).
final class MotionEventSink: @unchecked Sendable {
    // @unchecked: written once in Scanner.init before the controller's event thread starts,
    // only read after.
    weak var scanner: Scanner?
    func handle(_ event: MotionEvent) { scanner?.handle(event) }
}
