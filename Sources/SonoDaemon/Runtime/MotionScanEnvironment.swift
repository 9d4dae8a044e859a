import Foundation
import SonoCore
import SonoGeometry
public import SonoMotion
public import SonoPlanner
import SonoProtocol
import SonoSystem
import Synchronization

/// The planner's world in the daemon: proposals go to the motion controller (which carries
/// them out or refuses them), frames come from the frame pipeline.
final class MotionScanEnvironment: ScanEnvironment, Sendable {
    let labels: [String]
    let framesPerSecond: Double
    private let controller: MotionController
    private let frames: FrameQueue
    private let moves: MoveTracker
    private let cancelled: @Sendable () -> Bool
    private let onEvent: @Sendable (PlannerEvent) -> Void
    /// In simulation, the simulator's true quality of a view for a frame (scoring only).
    private let truth: (@Sendable (StandardView, ViewObservation) -> Double)?
    /// The planner's thread renews the contact lease as it waits for moves and frames, so a
    /// stuck planner lets it expire; so does frame silence: a renewal needs a frame acquired
    /// this recently (the safety profile's frame age limit).
    private let frameSilenceMicros: UInt64
    private let lastRenewal = Atomic<UInt64>(0)

    init(labels: [String], framesPerSecond: Double, controller: MotionController, frames: FrameQueue, moves: MoveTracker,
         cancelled: @escaping @Sendable () -> Bool, onEvent: @escaping @Sendable (PlannerEvent) -> Void,
         truth: (@Sendable (StandardView, ViewObservation) -> Double)? = nil) {
        self.truth = truth
        self.frameSilenceMicros = max(1, controller.configuration.limits.frameAgeMicros)
        self.labels = labels
        self.framesPerSecond = framesPerSecond
        self.controller = controller
        self.frames = frames
        self.moves = moves
        self.cancelled = cancelled
        self.onEvent = onEvent
    }

    func trueQuality(of view: StandardView, over frames: [ViewObservation]) -> Double? {
        guard let truth, !frames.isEmpty else { return nil }
        // The simulator's truth costs ray casts per frame; the probe is still on the patient, so
        // the lease is kept between frames as in every other wait of the planner.
        return frames.reduce(0) { sum, frame in
            renewLeaseIfDue()
            return sum + truth(view, frame)
        } / Double(frames.count)
    }

    func measured() -> (probe: Pose, forceN: Double, seconds: Double) {
        let status = controller.status
        return (status.probe, status.force.z, Double(MonotonicClock.nowMicros()) / 1e6)
    }

    /// Renews the contact lease at most every 50 ms, and only while frames arrive: this runs on
    /// the planner's own thread, from every wait of the planner.
    private func renewLeaseIfDue() {
        let now = MonotonicClock.nowMicros()
        guard now &- lastRenewal.load(ordering: .relaxed) >= ScanRules.renewalIntervalMicros else { return }
        let acquired = frames.lastAcquiredMicros
        guard acquired != 0, now &- acquired <= frameSilenceMicros else { return }
        if controller.renewContactLease() { lastRenewal.store(now, ordering: .relaxed) }
    }

    private func checkScanning() throws(ScanInterruption) {
        if cancelled() { throw .cancelled }
        renewLeaseIfDue()
        if let interruption = ScanRules.interruption(controller.status,
                                                     contactLeaseMicros: controller.configuration.limits.contactLeaseMicros) {
            throw interruption
        }
    }

    func move(to target: ProbeTarget, frame: (ViewObservation) -> Void) throws(ScanInterruption) -> MoveOutcome {
        try checkScanning()
        let before = moves.count
        let limits = try ScanRules.limits(for: target)
        do {
            _ = try controller.perform(.move(to: target.pose, limits: limits))
        } catch {
            switch error {
            case .target(let rejection): return .rejected("target rejected: \(rejection)")
            case .safety, .notRunning, .noJointState: throw .stopped(error.description)
            default: throw .stopped(error.description)
            }
        }
        let deadline = MonotonicClock.nowMicros() &+ ScanRules.moveTimeoutMicros
        while MonotonicClock.nowMicros() < deadline {
            if let observation = frames.next(within: 0.005) { frame(observation) }
            if let ended = moves.ended(since: before) {
                if case .aborted(let reason) = ended { return .rejected(reason) }
                return .finished
            }
            try checkScanning()
        }
        throw .stopped("a move did not finish within 30 s")
    }

    func setContact(forceN: Double?) throws(ScanInterruption) {
        try checkScanning()
        do { _ = try controller.perform(.contact(forceN: forceN)) } catch { throw .stopped(error.description) }
    }

    func observe(seconds: Double, frame: (ViewObservation) -> Bool) throws(ScanInterruption) {
        let start = MonotonicClock.nowMicros()
        let deadline = start &+ UInt64(max(0, seconds) * 1e6)
        var lastFrame = start
        while true {
            let now = MonotonicClock.nowMicros()
            guard now < deadline else { return }
            try checkScanning()
            let left = Double(deadline - now) * 1e-6
            if let observation = frames.next(within: min(0.05, max(0.001, left))) {
                lastFrame = MonotonicClock.nowMicros()
                if !frame(observation) { return }
            } else if MonotonicClock.nowMicros() &- lastFrame > 1_000_000 {
                throw .noFrames("none for 1 s")
            }
        }
    }

    func report(_ event: PlannerEvent) { onEvent(event) }
}

/// Counts the controller's move endings (the planner waits for its own move's end).
final class MoveTracker: Sendable {
    enum End: Sendable { case finished, aborted(String) }
    private let state = Mutex<(count: UInt64, last: End?)>((0, nil))

    var count: UInt64 { state.withLock { $0.count } }

    func record(_ event: MotionEvent) {
        switch event {
        case .moveFinished: state.withLock { $0 = ($0.count + 1, .finished) }
        case .moveAborted(let reason): state.withLock { $0 = ($0.count + 1, .aborted(reason.description)) }
        default: break
        }
    }

    func ended(since count: UInt64) -> End? {
        state.withLock { $0.count > count ? $0.last : nil }
    }
}

/// The rules a planner's world keeps over the motion controller, one copy for the daemon's
/// environment (`MotionScanEnvironment`) and the stepped evaluation's, so that a scan in
/// simulated time is judged as the daemon judges it.
public enum ScanRules {
    /// The planner's thread renews the contact lease at most this often, µs.
    public static let renewalIntervalMicros: UInt64 = 50_000
    /// A move that has not ended after this long ends the scan, µs.
    public static let moveTimeoutMicros: UInt64 = 30_000_000

    /// Why the scan cannot go on with the controller in `status` (the lease expired and the
    /// probe lifted off, or it left `scanning`); nil while it is scanning.
    public static func interruption(_ status: MotionStatus, contactLeaseMicros: UInt64) -> ScanInterruption? {
        if status.state == .operatorEnabled, status.liftingOff, status.lastLiftOff == .leaseExpired {
            return .stopped("the contact lease expired (no renewal from the planner with fresh frames within "
                + "\(contactLeaseMicros / 1_000) ms): the probe lifted off")
        }
        guard status.state == .scanning else {
            let cause = status.latched.map { " (\($0.cause.rawValue))" } ?? ""
            return .stopped("the controller is \(status.state.rawValue)\(cause)")
        }
        return nil
    }

    /// The planner's speeds as the move's limits.
    /// - Throws: `ScanInterruption.stopped` for a NaN or non-positive speed: it would time the
    ///   trajectory NaN or forever. That is a planner bug, not a target to try elsewhere.
    public static func limits(for target: ProbeTarget) throws(ScanInterruption) -> MotionLimits {
        var proposed = MotionLimits()
        proposed.speedMMs = target.speedMMs
        proposed.angularSpeed = target.angularSpeedRadS
        do throws(MotionLimitsError) { return try proposed.validated() } catch {
            throw .stopped("the planner proposed an invalid move: \(error)")
        }
    }
}
