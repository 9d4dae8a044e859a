import Foundation
import SonoCore
import SonoMotion
import SonoPlanner
import SonoSystem
import Synchronization

/// The autonomous scan: the planner on its own thread, driving the motion controller through
/// `MotionScanEnvironment`, and the scan's record (results, stops, faults) for the status,
/// the summary and the session.
final class ScanControl: Sendable {
    struct Record {
        var running = false
        var views: [StandardView] = []
        var current: StandardView?
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
        /// The loop's counters when the scan began, and its input-age peaks at the end.
        var loopAtStart: ControlLoopStatistics?
        var timing: ScanTimingJSON?
    }

    let moves = MoveTracker()
    private let configuration: DaemonConfiguration
    private let prior: ScanPrior
    private let controller: MotionController
    private let pipeline: FramePipeline?
    private let sessions: SessionStore
    private let events: EventBus
    private let recording: SessionRecording?
    /// In simulation, the host whose ground truth each acquisition is reported with.
    private let mode: RunMode
    private let limits: SafetyLimits
    private let record = Mutex(Record())
    private let cancelled = AtomicFlag()
    private let done = MonotonicCondition()

    init(configuration: DaemonConfiguration, prior: ScanPrior, limits: SafetyLimits, controller: MotionController,
         pipeline: FramePipeline?, sessions: SessionStore, events: EventBus, recording: SessionRecording?,
         mode: RunMode) {
        self.configuration = configuration
        self.prior = prior
        self.limits = limits
        self.controller = controller
        self.pipeline = pipeline
        self.sessions = sessions
        self.events = events
        self.recording = recording
        self.mode = mode
    }

    /// Claims the scan, puts the controller into `scanning` (through `perform`, the operator's
    /// path) and starts the planner's thread.
    func start(views requested: [String]?,
               perform: (SafetyCommand) -> Result<SafetyState, CommandError>) -> Result<ScanStatusJSON, CommandError> {
        guard let pipeline else {
            return .failure(.unavailable("no probe is configured (devices.probe = \"none\"): a scan needs frames"))
        }
        let known = Set(prior.views.keys).filter { pipeline.classifier.labels.contains($0.rawValue) }
        let scanProtocol: ScanProtocol
        do {
            if let requested {
                scanProtocol = try ScanProtocol(names: requested, known: known)
            } else {
                scanProtocol = try ScanProtocol(views: configuration.scanProtocol, known: known)
            }
        } catch {
            return .failure(.badRequest("\(error)"))
        }
        let claimed = record.withLock { s -> Bool in
            if s.running { return false }
            s = Record(running: true, views: scanProtocol.views, started: Date(), finishedScans: s.finishedScans,
                       loopAtStart: controller.loopStatistics)
            return true
        }
        guard claimed else { return .failure(.conflict("a scan is already running")) }
        let state = controller.status.state
        if state != .scanning {
            if case .failure(let error) = perform(.startScan) {
                record.withLock { $0.running = false }
                return .failure(.conflict("cannot start a scan in state \(state.rawValue): \(error)"))
            }
        }
        if sessions.activePath == nil, (try? sessions.start(name: nil)) != nil {
            record.withLock { $0.autoRecording = true }
            events.publish(DaemonEvent("recording", sessions.status))
        }
        cancelled.set(false)
        controller.resetPeaks()
        let thread = Thread { [self] in
            ThreadScheduling.nameCurrentThread("sono-planner")
            run(scanProtocol, pipeline: pipeline)
        }
        thread.start()
        let status = status()
        events.publish(DaemonEvent("scan", status))
        return .success(status)
    }

    /// Asks a running scan to end and waits (up to 5 s) for the planner to return; the arm
    /// holds where it is.
    @discardableResult
    func stop() -> ScanStatusJSON {
        if record.withLock({ $0.running }) {
            cancelled.set(true)
            waitUntilIdle(seconds: 5)
        }
        return status()
    }

    /// Blocks until no scan is running; false when `seconds` passed first.
    @discardableResult
    func waitUntilIdle(seconds: Double) -> Bool {
        let deadline = MonotonicClock.nowNanos() &+ UInt64(max(0, seconds) * 1e9)
        return done.withLock { done.wait(untilNanos: deadline) { record.withLock { $0.running } } }
    }

    func note(stop: StopJSON) { record.withLock { if $0.running { $0.stops.append(stop) } } }

    func note(fault: FaultJSON) { record.withLock { if $0.running { $0.faults.append(fault) } } }

    func status() -> ScanStatusJSON {
        record.withLock { s in
            ScanStatusJSON(running: s.running, views: s.views.map(\.rawValue), currentView: s.current?.rawValue, step: s.step,
                           startedAt: s.started.map(rfc3339), results: s.results)
        }
    }

    func summary() -> ScanSummaryJSON { summary(of: snapshot()) }

    private func snapshot() -> Record {
        var s = record.withLock { $0 }
        if s.running {
            let status = controller.status
            s.maxForceN = max(s.maxForceN, status.forcePeakN)
            s.timing = timing(since: s.loopAtStart, status)
        }
        return s
    }

    /// The scan's timing so far: the input-age peaks since `resetPeaks()` at its start and the
    /// loop's cycles and overruns since `start`.
    private func timing(since start: ControlLoopStatistics?, _ status: MotionStatus) -> ScanTimingJSON {
        let now = controller.loopStatistics
        return ScanTimingJSON(forceAgeMaxMs: round2(Double(status.forceAgePeakMicros) / 1_000),
                              jointAgeMaxMs: round2(Double(status.jointAgePeakMicros) / 1_000),
                              forceDeadlineMs: Double(limits.forceDeadlineMicros) / 1_000,
                              jointDeadlineMs: Double(limits.jointStateDeadlineMicros) / 1_000,
                              loopCycles: now.cycles &- (start?.cycles ?? 0),
                              loopOverruns: now.overruns &- (start?.overruns ?? 0),
                              loopOverrunsLongBody: now.overrunsLongBody &- (start?.overrunsLongBody ?? 0))
    }

    private func summary(of s: Record) -> ScanSummaryJSON {
        ScanSummaryJSON(mode: mode.name, patient: mode.simulation?.patientPath, views: s.views.map(\.rawValue),
                        results: s.results, acquired: s.results.filter(\.acquired).count, scanSeconds: round2(s.seconds),
                        maxForceN: round2(s.maxForceN), hardCapN: limits.forceHardCapN, softLimitN: limits.forceSoftLimitN,
                        stops: s.stops, faults: s.faults, interruption: s.interruption, session: sessions.activePath,
                        recording: recording?.path, timing: s.timing)
    }

    private func run(_ scanProtocol: ScanProtocol, pipeline: FramePipeline) {
        pipeline.queue.clear()
        let cancelled = self.cancelled
        var truth: (@Sendable (StandardView, ViewObservation) -> Double)?
        if let simulation = mode.simulation {
            truth = { view, frame in
                simulation.trueQuality(of: view, pose: frame.probe, forceN: frame.forceN, seconds: frame.seconds)
            }
        }
        let environment = MotionScanEnvironment(
            labels: pipeline.classifier.labels, framesPerSecond: pipeline.source.format.framesPerSecond,
            controller: controller, frames: pipeline.queue, moves: moves,
            cancelled: { cancelled.isSet }, onEvent: { [weak self] in self?.plannerEvent($0, pipeline: pipeline) },
            truth: truth)
        let recorded: any ScanEnvironment
        if let recording {
            recording.plannerCall(PlannerTapeCoding.encode(
                PlannerCall(call: .scan, views: scanProtocol.names, settings: configuration.planner)))
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
        recording?.plannerCall(PlannerTapeCoding.encode(PlannerCall(
            call: .end, event: "\(report.outcomes.filter(\.acquired).count)/\(report.outcomes.count) views")))
        if controller.status.state == .scanning { _ = try? controller.perform(.safety(.stopScan)) }
        // The planner may have seen a stop in the controller's status before the stop's event
        // reached `note(stop:)`: let it arrive while the scan still counts as running, so the
        // summary names the stop that ended the scan.
        controller.waitForEventDelivery()
        let motion = controller.status
        let peak = motion.forcePeakN
        let scanTiming = timing(since: record.withLock { $0.loopAtStart }, motion)
        let finished = record.withLock { s -> Record in
            s.timing = scanTiming
            s.running = false
            s.current = nil
            s.step = nil
            s.seconds = report.seconds
            s.maxForceN = max(s.maxForceN, peak)
            s.interruption = report.interruption.map(\.description)
            s.finishedScans += 1
            return s
        }
        sessions.write(APICoding.encode(summary(of: finished), pretty: true), named: "summary.json")
        events.publish(DaemonEvent("scan", status()))
        if finished.autoRecording {
            events.publish(DaemonEvent("recording", sessions.stop()))
        }
        done.withLock { done.broadcast() }
    }

    private func plannerEvent(_ event: PlannerEvent, pipeline: FramePipeline) {
        switch event {
        case .viewStarted(let view):
            record.withLock { $0.current = view; $0.step = "travel" }
        case .windowReached:
            record.withLock { $0.step = "contact" }
        case .searching(_, let step):
            record.withLock { $0.step = step }
        case .clipStarted(let view):
            record.withLock { $0.step = "clip" }
            let frame = pipeline.snapshot
            sessions.writeFrame(frame.pixels, width: frame.width, height: frame.height, named: "\(view).png")
        case .clipEnded:
            break
        case .viewAcquired(let outcome), .viewFailed(let outcome):
            let result = viewResult(outcome)
            record.withLock { $0.results.append(result) }
            events.publish(DaemonEvent(outcome.acquired ? "view_acquired" : "view_failed", result))
        }
    }

    private func viewResult(_ outcome: ViewOutcome) -> ViewResultJSON {
        let truth = outcome.pose.flatMap { mode.simulation?.groundTruth(view: outcome.view, pose: $0) }
        return ViewResultJSON(
            view: outcome.view.rawValue, acquired: outcome.acquired, seconds: round2(outcome.seconds),
            confidence: round2(Double(outcome.confidence)), maxForceN: round2(outcome.maxForceN),
            predictedQuality: outcome.predictedQuality.map { round2(Double($0)) },
            trueQuality: outcome.trueQuality.map(round2),
            reason: outcome.reason, pose: outcome.pose.map(PoseJSON.init),
            poseError: truth.map {
                PoseErrorJSON(positionMM: round2($0.positionMM), beamDeg: round2($0.beamAngleDeg),
                              rotationDeg: round2($0.planeRotationDeg), truthView: $0.truthView)
            })
    }
}

/// A flag one thread sets and others poll (the planner: "the operator stopped the scan").
final class AtomicFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set(_ flag: Bool) { value.store(flag, ordering: .releasing) }
}

/// The arm board's STOP and SET_DRIVES acknowledgements as they arrive (from the motion
/// controller's event thread), for the shutdown to wait on with a deadline.
final class AcknowledgementLog: @unchecked Sendable {
    // @unchecked: `counts` is only touched with `condition` locked.
    private let condition = MonotonicCondition()
    private var counts = Mark(stops: 0, drives: 0)

    struct Mark: Sendable {
        var stops: UInt64
        var drives: UInt64
    }

    func note(_ event: MotionEvent) {
        switch event {
        case .stopAcknowledged: update { $0.stops += 1 }
        case .drivesAcknowledged: update { $0.drives += 1 }
        default: break
        }
    }

    /// The acknowledgements so far; take it before sending the command to wait for.
    func mark() -> Mark {
        condition.withLock { counts }
    }

    /// Waits for a STOP acknowledgement after `mark`; the milliseconds it took, or nil when the
    /// deadline passed.
    func waitForStop(after mark: Mark, deadlineMillis: Int) -> Int? {
        wait(deadlineMillis) { $0.stops > mark.stops }
    }

    func waitForDrives(after mark: Mark, deadlineMillis: Int) -> Int? {
        wait(deadlineMillis) { $0.drives > mark.drives }
    }

    private func update(_ change: (inout Mark) -> Void) {
        condition.withLock {
            change(&counts)
            condition.broadcast()
        }
    }

    private func wait(_ deadlineMillis: Int, until done: (Mark) -> Bool) -> Int? {
        let begun = MonotonicClock.nowNanos()
        let deadline = begun &+ UInt64(max(0, deadlineMillis)) * 1_000_000
        let arrived = condition.withLock { condition.wait(untilNanos: deadline) { !done(counts) } }
        return arrived ? Int((MonotonicClock.nowNanos() &- begun) / 1_000_000) : nil
    }
}
