public import SonoGeometry
import SonoDaemon
import SonoMotion
public import SonoPlanner

/// The planner's world in the stepped simulation: what `MotionScanEnvironment` is in the
/// daemon, with simulated time in place of the wall clock. Every call runs the world forward
/// tick by tick until it can answer: a move until the controller reports its end (or 30 s), an
/// observation until its time is up or the planner has seen enough frames, a command for the
/// tick the controller handles it in (the daemon's planner waits for the loop's next cycle).
///
/// Semantics kept from the daemon: moves go to the controller as `MotionCommand.move` with
/// validated `MotionLimits` (a refused target is `.rejected`, any other refusal stops the
/// scan); the contact lease is renewed at most every 50 ms and only while a frame acquired
/// within the frame-age limit has reached the planner's queue; leaving `scanning` (a stop, a
/// fault, an expired lease's lift-off) is `ScanInterruption.stopped`; a second without frames
/// is `.noFrames`.
public final class SteppedScanEnvironment: ScanEnvironment {
    public var labels: [String] { world.labels }
    public let framesPerSecond: Double
    let world: SteppedWorld
    private let onEvent: (PlannerEvent) -> Void
    private let frameSilenceMicros: UInt64
    private var lastRenewal: UInt64 = 0

    init(world: SteppedWorld, onEvent: @escaping (PlannerEvent) -> Void) {
        self.world = world
        self.onEvent = onEvent
        framesPerSecond = world.format.framesPerSecond
        frameSilenceMicros = max(1, world.core.configuration.limits.frameAgeMicros)
    }

    public func measured() -> (probe: Pose, forceN: Double, seconds: Double) {
        (world.status.probe, world.status.force.z, world.seconds)
    }

    private func renewLeaseIfDue() {
        let now = world.micros
        guard now &- lastRenewal >= ScanRules.renewalIntervalMicros else { return }
        let acquired = world.lastAcquiredMicros
        guard acquired != 0, now &- acquired <= frameSilenceMicros else { return }
        if case .success = world.perform(.renewContactLease) { lastRenewal = now }
    }

    private func checkScanning() throws(ScanInterruption) {
        renewLeaseIfDue()
        if let interruption = ScanRules.interruption(world.status,
                                                     contactLeaseMicros: world.core.configuration.limits.contactLeaseMicros) {
            throw interruption
        }
    }

    public func move(to target: ProbeTarget, frame: (ViewObservation) -> Void) throws(ScanInterruption) -> MoveOutcome {
        try checkScanning()
        let before = world.moveEnds
        let limits = try ScanRules.limits(for: target)
        switch world.perform(.move(to: target.pose, limits: limits)) {
        case .success: break
        case .failure(.target(let rejection)): return .rejected("target rejected: \(rejection)")
        case .failure(let error): throw .stopped(error.description)
        }
        let deadline = world.micros &+ ScanRules.moveTimeoutMicros
        while world.micros < deadline {
            while let observation = world.nextObservation() { frame(observation) }
            if let ended = world.moveEnded(since: before) {
                if case .aborted(let reason) = ended { return .rejected(reason) }
                return .finished
            }
            try checkScanning()
            world.tick()
        }
        throw .stopped("a move did not finish within 30 s")
    }

    public func setContact(forceN: Double?) throws(ScanInterruption) {
        try checkScanning()
        if case .failure(let error) = world.perform(.contact(forceN: forceN)) { throw .stopped(error.description) }
    }

    public func observe(seconds: Double, frame: (ViewObservation) -> Bool) throws(ScanInterruption) {
        let start = world.micros
        let deadline = start &+ UInt64(max(0, seconds) * 1e6)
        var lastFrame = start
        while world.micros < deadline {
            try checkScanning()
            if let observation = world.nextObservation() {
                lastFrame = world.micros
                if !frame(observation) { return }
            } else {
                world.tick()
                if world.micros &- lastFrame > 1_000_000 { throw .noFrames("none for 1 s") }
            }
        }
    }

    public func report(_ event: PlannerEvent) { onEvent(event) }
}
