import Foundation
import SonoCore
import SonoDaemon
import SonoGeometry
import SonoMotion
import SonoPlanner
import SonoProtocol
import SonoSim
import SonoSystem
import SonoVision
import Synchronization

/// The fixed delays the stepped simulation puts where the daemon has threads and links. Both are
/// simulated time; neither changes from run to run (the daemon's vary with load).
public struct SteppedTiming: Sendable, Equatable, Codable {
    /// From a board's message (stamped at its tick) to the control cycle that ingests it, µs. On
    /// the daemon a 1 kHz stream reaches a 1 kHz loop through a link thread and a queue: a sample
    /// of tick t is drained by the next cycle. One tick.
    public var transportMicros: UInt64 = 1_000
    /// From a frame's acquisition to its observation reaching the planner, µs: the frame
    /// pipeline's render and classification (release sonoctl on this machine: about 1.5 ms to
    /// render a 128×128 frame and 2 ms to classify it; more in a debug build).
    public var framePipelineMicros: UInt64 = 5_000

    public init() {}
}

/// A stop, fault or lift-off the controller reported, on the simulated clock.
public struct SteppedIncident: Sendable, Equatable, Codable {
    public var seconds: Double
    public var kind: String
    public var detail: String
}

/// The scanner in simulated time, one 1 ms tick at a time, without threads, sockets or a wall
/// clock: the simulated boards' firmware (`SimulatedScanner`), the motion controller's core
/// (`MotionCore`: ingest, commands, cycle, exactly as `MotionController`'s loop body runs them),
/// the virtual probe (`SimulatedProbe`) and the view classifier with its smoother
/// (`FrameClassifier`, as the daemon's frame pipeline runs it).
///
/// Each tick at t: the boards step to t; their messages, and the arm's replies to what the
/// controller wrote, reach the core `SteppedTiming.transportMicros` after they were sent; a
/// command the environment handed over is handled; the core cycles at t, writing to the arm
/// board at once; a frame due by t is rendered at the probe's pose and force at t, tagged with
/// the controller's pose of the cycle nearest its acquisition (the daemon's `ProbeHistory`),
/// classified, and handed to the planner's queue `framePipelineMicros` later. Host heartbeats go
/// to both boards every 50 ms, as the links send them.
///
/// Deterministic: the same patient, configuration and model give bit-identical output.
final class SteppedWorld {
    let scanner: SimulatedScanner
    private(set) var core: MotionCore
    let labels: [String]
    let format: ProbeFrameFormat
    let timing: SteppedTiming
    static let tickMicros: UInt64 = 1_000
    static let heartbeatMicros: UInt64 = 50_000

    /// Simulated time, µs (the boards', the controller's and the probe's clock alike).
    private(set) var micros: UInt64 = 0
    private(set) var status: MotionStatus

    private let probe: SimulatedProbe
    private let clock: SteppedClock
    private var classifier: FrameClassifier
    private var pixels: [UInt8]
    private var framesRunning = false
    private let output: ArmDelivery
    /// Board inputs on their way to the controller, in arrival order (the delay is fixed).
    private var inbox: [(arrival: UInt64, input: BoardInput)] = []
    private var inboxHead = 0
    private var nextHeartbeat: UInt64 = 0
    private var forceSeq: UInt16 = 0
    private var pendingCommand: (ticket: UInt64, command: MotionCommand)?
    private var lastTicket: UInt64 = 0
    private var replies: [UInt64: Result<SafetyState, MotionRefusal>] = [:]
    /// The two latest control cycles (the probe history the frames are tagged from).
    private var previousSample = ProbeSample(micros: 0, probe: .identity, forceN: 0)
    private var currentSample = ProbeSample(micros: 0, probe: .identity, forceN: 0)
    /// Observations being classified (not yet the planner's), and those waiting in its queue.
    private var inFlight: [(available: UInt64, acquired: UInt64, observation: ViewObservation)] = []
    private var queue: [ViewObservation] = []
    private var queueHead = 0
    static let queueCapacity = 64
    /// When the newest frame handed to the planner's queue was acquired, µs (0: none yet).
    private(set) var lastAcquiredMicros: UInt64 = 0

    // What the controller reported (the daemon's MoveTracker and scan record).
    private(set) var moveEnds: UInt64 = 0
    private(set) var lastMoveEnd: MoveEnd?
    enum MoveEnd: Equatable { case finished, aborted(String) }
    private(set) var incidents: [SteppedIncident] = []

    // Simulator truth (never seen by the controller, the classifier's input aside, or the planner).
    /// Every frame rendered: where the probe really was and how hard it really pressed.
    private(set) var frameTruth: [FrameTruth] = []
    /// The largest normal contact force on the skin since `resetForcePeaks()`, every tick.
    private(set) var truthForcePeakN = 0.0
    /// The largest axial force, and force magnitude (what the hard cap judges), the controller
    /// measured (its status, every cycle) since then.
    private(set) var axialForcePeakN = 0.0
    private(set) var forceMagnitudePeakN = 0.0

    // Where the wall time goes (not part of any result).
    private(set) var profile = SteppedProfile()

    struct FrameTruth {
        var frame: UInt64
        var seconds: Double
        var pose: Pose
        var forceN: Double
    }

    init(patient: VirtualPatient, setup: EvaluationSetup, classifier: ViewClassifier) {
        scanner = SimulatedScanner(patient: patient, kinematics: setup.robot, arm: ArmBoardConfiguration(robot: setup.robot),
                                   sensorOffsetMM: setup.robot.tool.position.z)
        core = MotionCore(arm: setup.arm, configuration: setup.motion)
        status = core.status
        timing = setup.timing
        labels = classifier.labels
        let clock = SteppedClock()
        self.clock = clock
        probe = SimulatedProbe(patient: patient, settings: setup.imaging, state: scanner.state,
                               clock: { clock.now }, sleep: { _ in })
        format = probe.format
        pixels = [UInt8](repeating: 0, count: probe.format.pixelCount)
        self.classifier = FrameClassifier(classifier: classifier, framesPerSecond: probe.format.framesPerSecond)
        output = ArmDelivery(scanner: scanner)
        inbox.reserveCapacity(64)
        frameTruth.reserveCapacity(8_192)
    }

    var seconds: Double { Double(micros) / 1e6 }

    // MARK: start-up, as the daemon's stages do it

    /// The board-link stage (both links up, the force sensor zeroed at home with the probe free,
    /// before the loop runs) and the command-line operator (enable, allow motion, start the scan).
    /// - Throws: the step that failed, as text.
    func bringUp() throws(SteppedError) {
        // The boards run while the links connect and the sensor settles: 100 ms, the daemon's
        // free-air window.
        stepBoardsOnly(untilMicros: 100_000)
        guard scanner.arm.positions.count == core.arm.jointCount else {
            throw .startup("the arm board drives \(scanner.arm.positions.count) joints, the arm model \(core.arm.jointCount)")
        }
        // TARE (PROTOCOL.md §3.14): acknowledged, then 100 samples averaged.
        var acknowledged = false
        forceSeq &+= 1
        scanner.forceSensor.receive(.tare, seq: forceSeq, at: scanner.micros) { reply in
            if case .ack = reply { acknowledged = true }
        }
        guard acknowledged else { throw .startup("the force sensor did not acknowledge TARE") }
        var tared = false
        let deadline = micros + 500_000
        while !tared && micros < deadline {
            let t = micros + Self.tickMicros
            scanner.step(to: t, force: { message in
                if case .forceTorqueSample(let sample) = message, !sample.status.contains(.tareInProgress) { tared = true }
            })
            micros = t
            if micros >= nextHeartbeat { sendHeartbeats() }
        }
        inbox.removeAll()
        guard tared else { throw .startup("the force sensor still reported tare_in_progress 500 ms after TARE") }
        // The control loop starts; the links report both boards up.
        clock.now = micros
        core.ingest(.link(.arm, alive: true)) { record($0) }
        core.ingest(.link(.forceTorque, alive: true)) { record($0) }
        framesRunning = true
        // The loop runs a while before the operator's first command (the daemon's later stages
        // start first): the controller knows the arm's pose and both boards' streams.
        for _ in 0..<100 { tick() }
        for command in [SafetyCommand.enable, .enableMotion, .startScan] {
            if case .failure(let refusal) = perform(.safety(command)) {
                throw .startup("\(command.rawValue) refused: \(refusal)")
            }
        }
    }

    /// Steps the boards alone (before the control loop runs; their output goes nowhere, as it
    /// overflows the queues of a daemon whose loop has not started).
    private func stepBoardsOnly(untilMicros target: UInt64) {
        while micros < target {
            micros += Self.tickMicros
            scanner.step(to: micros)
            if micros >= nextHeartbeat { sendHeartbeats() }
        }
    }

    // MARK: commands

    /// Hands a command to the controller and runs the tick that handles it (the planner's thread
    /// waits for the loop's next cycle in the daemon); its answer.
    @discardableResult
    func perform(_ command: MotionCommand) -> Result<SafetyState, MotionRefusal> {
        lastTicket += 1
        let ticket = lastTicket
        pendingCommand = (ticket, command)
        tick()
        return replies.removeValue(forKey: ticket) ?? .failure(.timedOut(millis: 1))
    }

    // MARK: the tick

    func tick() {
        let started = profile.enabled ? MonotonicClock.nowNanos() : 0
        let t = micros + Self.tickMicros
        let transport = timing.transportMicros
        scanner.step(to: t, arm: { message in
            if let input = Self.armInput(message, receivedMicros: t &+ transport) { inbox.append((t &+ transport, input)) }
        }, force: { message in
            if let input = Self.forceInput(message, boardMicros: t, receivedMicros: t &+ transport) {
                inbox.append((t &+ transport, input))
            }
        })
        micros = t
        clock.now = t
        if t >= nextHeartbeat { sendHeartbeats() }

        // The loop body: drain the inputs that have arrived, handle the command, cycle.
        while inboxHead < inbox.count, inbox[inboxHead].arrival <= t {
            core.ingest(inbox[inboxHead].input) { record($0) }
            inboxHead += 1
        }
        if inboxHead > 256 {
            inbox.removeFirst(inboxHead)
            inboxHead = 0
        }
        if let (ticket, command) = pendingCommand {
            pendingCommand = nil
            core.handle(command, ticket: ticket, now: t, output: output) { record($0) }
        }
        core.cycle(now: t, output: output) { record($0) }
        for reply in output.takeReplies() {
            if let input = Self.armInput(reply, receivedMicros: t &+ transport) { inbox.append((t &+ transport, input)) }
        }
        status = core.status
        axialForcePeakN = max(axialForcePeakN, status.force.z)
        forceMagnitudePeakN = max(forceMagnitudePeakN, status.force.length)
        previousSample = currentSample
        currentSample = ProbeSample(micros: t, probe: status.probe, forceN: status.force.z)

        let truth = scanner.state.current
        if truth.valid { truthForcePeakN = max(truthForcePeakN, truth.contact.normalForceN) }
        if framesRunning { frame(at: t) }
        if profile.enabled {
            profile.ticks += 1
            profile.tickNanos &+= MonotonicClock.nowNanos() &- started
        }
    }

    private func sendHeartbeats() {
        nextHeartbeat = micros + Self.heartbeatMicros
        // The host's state, as `ScannerBoards.reportHostState` maps it.
        let state: BoardState = switch core.safety.state {
        case .disabled, .ready: .ready
        case .operatorEnabled, .scanning: .active
        case .protectiveStop: .stopped
        case .emergencyStop: .emergencyStop
        case .fault: .fault
        }
        let heartbeat = Message.heartbeat(Heartbeat(state: state))
        _ = output.send(heartbeat)
        let transport = timing.transportMicros
        for reply in output.takeReplies() {
            if let input = Self.armInput(reply, receivedMicros: micros &+ transport) { inbox.append((micros &+ transport, input)) }
        }
        forceSeq &+= 1
        scanner.forceSensor.receive(heartbeat, seq: forceSeq, at: scanner.micros) { _ in }
    }

    /// The frame pipeline: a frame due by `t` is rendered, tagged, classified; classified frames
    /// whose pipeline time has passed go to the planner's queue.
    private func frame(at t: UInt64) {
        let rendered: ProbeFrameInfo?
        let before = profile.enabled ? MonotonicClock.nowNanos() : 0
        do {
            rendered = try pixels.withUnsafeMutableBufferPointer { buffer throws(FrameSourceError) in
                try probe.nextFrame(into: buffer, timeoutMicros: 0)
            }
        } catch {
            preconditionFailure("the frame buffer is the probe's own size: \(error)")
        }
        if let info = rendered {
            let truth = scanner.state.current
            frameTruth.append(FrameTruth(frame: info.frameNumber, seconds: Double(info.timestampMicros) / 1e6,
                                         pose: truth.probe, forceN: truth.valid ? truth.contact.normalForceN : 0))
            // The controller's cycle nearest the acquisition (ties to the newer, as ProbeHistory).
            let acquired = info.timestampMicros
            let nearer = acquired &- previousSample.micros < currentSample.micros &- acquired ? previousSample : currentSample
            let classified = profile.enabled ? MonotonicClock.nowNanos() : 0
            let observation: ViewObservation
            do {
                observation = try pixels.withUnsafeBufferPointer { buffer throws(ModelError) in
                    try classifier.observe(buffer, width: format.width, height: format.height, info: info,
                                           probe: nearer.probe, forceN: nearer.forceN)
                }
            } catch {
                preconditionFailure("the classifier failed on a frame of its own format: \(error)")
            }
            if profile.enabled {
                let done = MonotonicClock.nowNanos()
                profile.frames += 1
                profile.renderNanos &+= classified &- before
                profile.classifyNanos &+= done &- classified
            }
            inFlight.append((t &+ timing.framePipelineMicros, acquired, observation))
        }
        // Classified: a frame older than the age limit by now is not the planner's (FramePipeline).
        while let first = inFlight.first, first.available <= t {
            inFlight.removeFirst()
            guard t &- first.acquired <= core.configuration.limits.frameAgeMicros else { continue }
            lastAcquiredMicros = first.acquired
            if queue.count - queueHead == Self.queueCapacity { queueHead += 1 }
            queue.append(first.observation)
        }
    }

    /// The next observation in the planner's queue, if one is there (no time passes).
    func nextObservation() -> ViewObservation? {
        guard queueHead < queue.count else { return nil }
        let observation = queue[queueHead]
        queueHead += 1
        if queueHead == queue.count {
            queue.removeAll(keepingCapacity: true)
            queueHead = 0
        }
        return observation
    }

    func clearObservations() {
        queue.removeAll(keepingCapacity: true)
        queueHead = 0
    }

    func moveEnded(since count: UInt64) -> MoveEnd? { moveEnds > count ? lastMoveEnd : nil }

    func resetForcePeaks() {
        truthForcePeakN = 0
        axialForcePeakN = 0
        forceMagnitudePeakN = 0
    }

    func enableProfile() { profile.enabled = true }

    // MARK: events

    private func record(_ event: MotionEvent) {
        switch event {
        case .reply(let ticket, let result):
            replies[ticket] = result
        case .moveFinished:
            moveEnds += 1
            lastMoveEnd = .finished
        case .moveAborted(let reason):
            moveEnds += 1
            lastMoveEnd = .aborted(reason.description)
        case .stop(let stop):
            incidents.append(SteppedIncident(seconds: seconds, kind: "stop",
                                             detail: "\(stop.kind)" + (stop.breach.map { ", \($0.cause.rawValue)" } ?? "")))
        case .boardFault(let report, let board):
            incidents.append(SteppedIncident(seconds: seconds, kind: "fault", detail: "\(board): \(report.code)"))
        case .liftOffStarted(let reason, _):
            incidents.append(SteppedIncident(seconds: seconds, kind: "lift_off", detail: reason.rawValue))
        case .retractStarted:
            incidents.append(SteppedIncident(seconds: seconds, kind: "retract", detail: "over-force back-off"))
        default:
            break
        }
    }

    // MARK: the links' message mapping (MotionInputs)

    static func armInput(_ message: Message, receivedMicros: UInt64) -> BoardInput? {
        switch message {
        case .jointState(let state): .joints(state, receivedMicros: receivedMicros)
        case .estopState(let state): .estop(engaged: state.engaged)
        case .faultReport(let report): .fault(report, board: .arm)
        case .ack(let ack): .ack(ackedType: ack.ackedType, board: .arm)
        case .nack(let ack, let reason): .nack(ackedType: ack.ackedType, reason: reason, board: .arm)
        default: nil
        }
    }

    static func forceInput(_ message: Message, boardMicros: UInt64, receivedMicros: UInt64) -> BoardInput? {
        switch message {
        case .forceTorqueSample(let sample): .force(sample, boardMicros: boardMicros, receivedMicros: receivedMicros)
        case .faultReport(let report): .fault(report, board: .forceTorque)
        case .ack(let ack): .ack(ackedType: ack.ackedType, board: .forceTorque)
        case .nack(let ack, let reason): .nack(ackedType: ack.ackedType, reason: reason, board: .forceTorque)
        default: nil
        }
    }
}

public enum SteppedError: Error, Sendable, Equatable, CustomStringConvertible {
    case startup(String)
    public var description: String {
        switch self { case .startup(let reason): "start-up: \(reason)" }
    }
}

/// Wall time spent per part of the stepped simulation (for `--bench`; never in a result).
public struct SteppedProfile: Sendable {
    public var enabled = false
    public var ticks: UInt64 = 0
    public var frames: UInt64 = 0
    public var tickNanos: UInt64 = 0
    public var renderNanos: UInt64 = 0
    public var classifyNanos: UInt64 = 0

    public static func + (a: Self, b: Self) -> Self {
        var sum = a
        sum.ticks += b.ticks
        sum.frames += b.frames
        sum.tickNanos += b.tickNanos
        sum.renderNanos += b.renderNanos
        sum.classifyNanos += b.classifyNanos
        return sum
    }
}

/// The probe's clock: the world's simulated time.
private final class SteppedClock: Sendable {
    private let value = Atomic<UInt64>(0)
    var now: UInt64 {
        get { value.load(ordering: .relaxed) }
        set { value.store(newValue, ordering: .relaxed) }
    }
}

/// The controller's writes to the arm: delivered to the board's firmware at once (at its current
/// time); its answers are collected for the controller's inbox.
private final class ArmDelivery: ArmCommandOutput, @unchecked Sendable {
    // @unchecked: one stepped world on one thread uses it; never shared.
    private let scanner: SimulatedScanner
    private var seq: UInt16 = 0
    private var replies: [Message] = []

    init(scanner: SimulatedScanner) { self.scanner = scanner }

    func send(_ message: Message) -> Bool {
        seq &+= 1
        let answers = scanner.sendToArm(message, seq: seq)
        if !answers.isEmpty { replies.append(contentsOf: answers) }
        return true
    }

    func takeReplies() -> [Message] {
        guard !replies.isEmpty else { return [] }
        defer { replies.removeAll(keepingCapacity: true) }
        return replies
    }
}
