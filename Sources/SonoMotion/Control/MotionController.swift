import Dispatch
import Foundation
public import SonoProtocol
import SonoSystem
import Synchronization

/// The queues by which board data reaches the control loop: one single-producer queue per
/// board, fed from that board's link thread, drained by the loop every cycle.
public final class MotionInputs: Sendable {
    let force = SPSCQueue<BoardInput>(capacity: 1_024)
    let arm = SPSCQueue<BoardInput>(capacity: 1_024)

    public init() {}

    /// A frame from the force/torque board; call from that board's link thread only.
    public func forceSensor(_ frame: Frame, receivedAt micros: UInt64) {
        switch frame.message {
        case .forceTorqueSample(let sample):
            force.push(.force(sample, boardMicros: frame.timestampMicros, receivedMicros: micros))
        case .faultReport(let report): force.push(.fault(report, board: .forceTorque))
        case .ack(let ack): force.push(.ack(ackedType: ack.ackedType, board: .forceTorque))
        case .nack(let ack, let reason): force.push(.nack(ackedType: ack.ackedType, reason: reason, board: .forceTorque))
        default: break
        }
    }

    /// A frame from the arm board; call from that board's link thread only.
    public func arm(_ frame: Frame, receivedAt micros: UInt64) {
        switch frame.message {
        case .jointState(let state): arm.push(.joints(state, receivedMicros: micros))
        case .estopState(let state): arm.push(.estop(engaged: state.engaged))
        case .faultReport(let report): arm.push(.fault(report, board: .arm))
        case .ack(let ack): arm.push(.ack(ackedType: ack.ackedType, board: .arm))
        case .nack(let ack, let reason): arm.push(.nack(ackedType: ack.ackedType, reason: reason, board: .arm))
        default: break
        }
    }

    /// A board's link connected or lost it; call from that board's link thread.
    public func link(_ board: BoardKind, alive: Bool) {
        (board == .arm ? arm : force).push(.link(board, alive: alive))
    }

    /// Board inputs dropped because the loop fell behind.
    public var overflows: UInt64 { force.overflowCount + arm.overflowCount }
}

/// The motion controller: `MotionCore` run by a fixed-rate `ControlLoop`. Board data arrives
/// through `MotionInputs`, commands through a queue (answered through the event queue), and
/// the loop publishes its status through a triple buffer: the loop never waits on anyone.
/// Events (stops, transitions, replies) are delivered to `onEvent` on a separate thread.
public final class MotionController: Sendable {
    public typealias EventHandler = @Sendable (MotionEvent) -> Void

    public let configuration: MotionControllerConfiguration
    public let inputs: MotionInputs
    private let core: CoreBox
    /// Commands with the monotonic time after which the loop drops them unhandled (their caller
    /// has stopped waiting: a late effect would surprise it).
    private let commands = SPSCQueue<(ticket: UInt64, deadlineMicros: UInt64, command: MotionCommand)>(capacity: 64)
    /// Serialises command producers (off the real-time path) and hands out tickets.
    private let producer = Mutex<UInt64>(0)
    private let events = SPSCQueue<MotionEvent>(capacity: 8_192)
    private let published: TripleBuffer<MotionStatus>
    /// Every cycle's probe pose and axial force, for tagging images with the pose at their
    /// acquisition (one consumer: the frame pipeline).
    public let probeHistory = ProbeHistory()
    private let waiters = Mutex<[UInt64: ReplySlot]>([:])
    private let onEvent: EventHandler
    private let pumpRunning = Atomic<Bool>(false)
    private let pumpFinished = DispatchSemaphore(value: 0)
    /// Completed passes of the event thread over the event queue (`waitForEventDelivery`).
    private let drainPasses = Atomic<UInt64>(0)
    private let loop: ControlLoop
    /// The loop's tape (inputs, clock, commands, sent messages) while `taping`; drained by the
    /// event thread into `onTape`. Sized for 16 ms of a busy loop at 1 kHz.
    private let tape = SPSCQueue<TapeEntry>(capacity: 16_384)
    private let onTape: TapeHandler?
    public typealias TapeHandler = @Sendable (TapeEntry) -> Void

    /// Everything the loop body touches, owned by the loop thread alone once it runs.
    private final class CoreBox: @unchecked Sendable {
        // @unchecked: after `start()` only the loop thread touches the variables (checked by
        // `loopThread` in debug builds; the init writes them before the thread exists).
        var core: MotionCore
        /// The peaks of `MotionStatus` (force, input ages), kept across cycles.
        var peaks = Peaks()
        var peaksEpoch: UInt64 = 0
        /// Bumped by `resetPeaks()` from any thread; the loop restarts the peaks when it
        /// sees a new value.
        let requestedPeaksEpoch = Atomic<UInt64>(0)
        /// The loop's thread, the one that may touch `core` once the loop runs.
        let loopThread = ThreadOwner("the control loop")
        let output: any ArmCommandOutput
        init(core: MotionCore, output: any ArmCommandOutput) {
            self.core = core
            self.output = output
        }
    }

    /// `onTape`, when given, receives the loop's tape from the first cycle on (see `TapeEntry`):
    /// a recording of everything the controller decided from, for exact replay.
    public init(arm: ArmModel, configuration: MotionControllerConfiguration, inputs: MotionInputs,
                output: any ArmCommandOutput, onEvent: @escaping EventHandler = { _ in },
                onTape: TapeHandler? = nil) {
        self.configuration = configuration
        self.inputs = inputs
        let tape = self.tape
        let recording = onTape != nil
        let output: any ArmCommandOutput = onTape == nil ? output : TapingOutput(base: output, tape: tape)
        let core = CoreBox(core: MotionCore(arm: arm, configuration: configuration), output: output)
        self.core = core
        self.onEvent = onEvent
        self.onTape = onTape
        let published = TripleBuffer(core.core.status)
        self.published = published
        let commands = self.commands
        let events = self.events
        let history = probeHistory
        loop = ControlLoop(rateHz: configuration.rateHz) { _, _ in
            // The real-time path: drain, decide, write. No allocation, lock or log.
            // Closures passed inline stay non-escaping: their contexts live on the stack.
            assert(core.loopThread.isOwnedByCurrentThread(), "the motion core ran on a thread other than \(core.loopThread.role)'s")
            while let input = inputs.arm.pop() {
                if recording { tape.push(.input(input)) }
                core.core.ingest(input) { events.push($0) }
            }
            while let input = inputs.force.pop() {
                if recording { tape.push(.input(input)) }
                core.core.ingest(input) { events.push($0) }
            }
            // The cycle's time is taken after draining, so no input is stamped later than it.
            let now = MonotonicClock.nowMicros()
            if recording { tape.push(.tick(index: core.core.cycle, micros: now)) }
            while let (ticket, deadline, command) = commands.pop() {
                if now > deadline {
                    // Not taped: it had no effect, so a replay must not apply it either.
                    events.push(.reply(ticket: ticket, .failure(.expired(millis: Int((now &- deadline) / 1_000)))))
                    continue
                }
                if recording { tape.push(.command(ticket: ticket, command)) }
                core.core.handle(command, ticket: ticket, now: now, output: core.output) { events.push($0) }
            }
            core.core.cycle(now: now, output: core.output) { events.push($0) }
            var status = core.core.status
            let epoch = core.requestedPeaksEpoch.load(ordering: .relaxed)
            if epoch != core.peaksEpoch {
                core.peaksEpoch = epoch
                core.peaks = Peaks()
            }
            core.peaks.note(&status)
            published.write(status)
            history.record(ProbeSample(micros: now, probe: status.probe, forceN: status.force.z))
        }
    }

    deinit { stop() }

    /// Starts the event thread and the control loop; returns how the loop is scheduled.
    @discardableResult
    public func start(priority: Int32 = 80, lockMemory: Bool = true) -> RealTimeReport {
        if !pumpRunning.exchange(true, ordering: .acquiringAndReleasing) {
            let thread = Thread { [self] in
                ThreadScheduling.nameCurrentThread("sono-motion-events")
                while pumpRunning.load(ordering: .acquiring) {
                    drainEvents()
                    drainPasses.add(1, ordering: .releasing)
                    usleep(1_000)
                }
                drainEvents()
                pumpFinished.signal()
            }
            thread.start()
        }
        return loop.start(priority: priority, lockMemory: lockMemory)
    }

    /// Stops the loop (the arm's own host watchdog stops it if nothing else does) and the
    /// event thread. The daemon brings the arm to a stop through `perform` before this.
    public func stop() {
        loop.stop()
        core.loopThread.release()
        if pumpRunning.exchange(false, ordering: .acquiringAndReleasing) { pumpFinished.wait() }
    }

    public var status: MotionStatus { published.read() }

    /// Starts the peaks of `status` (`forcePeakN`, `forceAgePeakMicros`, `jointAgePeakMicros`)
    /// again from the next control cycle: a scan's own maxima.
    public func resetPeaks() { core.requestedPeaksEpoch.add(1, ordering: .relaxed) }
    public var loopStatistics: ControlLoopStatistics { loop.statistics }
    /// How the loop thread is scheduled (nil before `start`).
    public var realTime: RealTimeReport? { loop.realTime }
    /// Events the loop could not queue (the event thread fell behind).
    public var droppedEvents: UInt64 { events.overflowCount }

    /// Sends a command to the loop and waits for its answer: the new state, or the reason for
    /// the refusal. Safe from any thread except the loop's.
    ///
    /// The command carries a deadline `timeoutMillis` from now: a loop that reaches it later
    /// drops it and answers `.expired`, so a command never takes effect after its caller gave
    /// up on it.
    /// - Throws: the controller's refusal (`.safety`, `.target`, `.release`, …); `.expired` when
    ///   the loop reached the command too late; `.timedOut` when the loop did not answer at all
    ///   (it is not running its cycles); `.queueFull`; `.notRunning` before `start`.
    @discardableResult
    public func perform(_ command: MotionCommand, timeoutMillis: Int = 500) throws(MotionRefusal) -> SafetyState {
        assert(core.loopThread.isNotOwnedByCurrentThread(), "perform waits for the loop's answer: never call it from the loop")
        guard pumpRunning.load(ordering: .acquiring) else { throw .notRunning }
        let slot = ReplySlot()
        let deadline = MonotonicClock.nowMicros() &+ UInt64(max(0, timeoutMillis)) * 1_000
        let ticket = producer.withLock { next -> UInt64? in
            next += 1
            waiters.withLock { $0[next] = slot }
            return commands.push((next, deadline, command)) ? next : nil
        }
        guard let ticket else { throw .queueFull }
        // Past the deadline the loop answers `.expired`; the grace covers the event thread's
        // delivery. No answer by then means the loop is not cycling.
        let answer = slot.wait(millis: timeoutMillis + Self.answerGraceMillis)
        waiters.withLock { $0[ticket] = nil }
        guard let answer else { throw .timedOut(millis: timeoutMillis) }
        return try answer.get()
    }

    /// How long `perform` waits beyond a command's deadline for the loop's answer.
    static let answerGraceMillis = 250

    /// Renews the contact lease; false when the loop did not take the renewal (stopped, or
    /// not answering within `timeoutMillis`).
    @discardableResult
    public func renewContactLease(timeoutMillis: Int = 50) -> Bool {
        (try? perform(.renewContactLease, timeoutMillis: timeoutMillis)) != nil
    }

    /// Waits until every event the loop has emitted so far (stops, faults, transitions) has been
    /// handed to `onEvent`: a reader of `status` that saw a stop can then rely on the stop's
    /// event having been handled. The loop queues a cycle's events before it publishes that
    /// cycle's status, so a drain pass that starts after this call delivers them.
    /// - Returns: false when `timeoutMillis` passed first (the event thread is not running or is
    ///   stuck in a handler).
    @discardableResult
    public func waitForEventDelivery(timeoutMillis: Int = 100) -> Bool {
        assert(core.loopThread.isNotOwnedByCurrentThread(), "the loop must not wait for its own event thread")
        guard pumpRunning.load(ordering: .acquiring) else { return false }
        // The pass under way may have started before this call: wait for the one after it.
        let target = drainPasses.load(ordering: .acquiring) &+ 2
        let deadline = MonotonicClock.nowMicros() &+ UInt64(max(0, timeoutMillis)) * 1_000
        while drainPasses.load(ordering: .acquiring) < target {
            guard MonotonicClock.nowMicros() < deadline else { return false }
            usleep(200)
        }
        return true
    }

    /// Tape entries lost because the event thread fell behind (a recording with a gap).
    public var tapeOverflows: UInt64 { tape.overflowCount }

    private func drainEvents() {
        if let onTape {
            while let entry = tape.pop() { onTape(entry) }
        }
        while let event = events.pop() {
            if case .reply(let ticket, let result) = event {
                waiters.withLock { $0[ticket] }?.finish(result)
            }
            onEvent(event)
        }
    }
}

/// A waiting `perform` call: the event thread fills in the answer and wakes it.
private final class ReplySlot: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let answer = Mutex<Result<SafetyState, MotionRefusal>?>(nil)

    func finish(_ result: Result<SafetyState, MotionRefusal>) {
        answer.withLock { $0 = result }
        semaphore.signal()
    }

    func wait(millis: Int) -> Result<SafetyState, MotionRefusal>? {
        guard semaphore.wait(timeout: .now() + .milliseconds(millis)) == .success else { return nil }
        return answer.withLock { $0 }
    }
}


/// The arm's output with every message also put on the tape (from the loop thread: the tape's
/// single producer). Pushing copies the message into a preallocated slot: no allocation.
private struct TapingOutput: ArmCommandOutput {
    let base: any ArmCommandOutput
    let tape: SPSCQueue<TapeEntry>
    func send(_ message: Message) -> Bool {
        let delivered = base.send(message)
        tape.push(.sent(message, delivered: delivered))
        return delivered
    }
}

/// The running maxima the loop adds to each cycle's status.
private struct Peaks {
    var forceN = 0.0
    var forceAgeMicros: UInt64 = 0
    var jointAgeMicros: UInt64 = 0

    mutating func note(_ status: inout MotionStatus) {
        forceN = max(forceN, status.force.z)
        forceAgeMicros = max(forceAgeMicros, status.forceAgeMicros)
        jointAgeMicros = max(jointAgeMicros, status.jointAgeMicros)
        status.forcePeakN = forceN
        status.forceAgePeakMicros = forceAgeMicros
        status.jointAgePeakMicros = jointAgeMicros
    }
}
