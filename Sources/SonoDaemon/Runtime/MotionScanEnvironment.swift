import Foundation
import SonoGeometry
import SonoMotion
import SonoPlanner
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

    init(labels: [String], framesPerSecond: Double, controller: MotionController, frames: FrameQueue, moves: MoveTracker,
         cancelled: @escaping @Sendable () -> Bool, onEvent: @escaping @Sendable (PlannerEvent) -> Void) {
        self.labels = labels
        self.framesPerSecond = framesPerSecond
        self.controller = controller
        self.frames = frames
        self.moves = moves
        self.cancelled = cancelled
        self.onEvent = onEvent
    }

    func measured() -> (probe: Pose, forceN: Double, seconds: Double) {
        let status = controller.status
        return (status.probe, status.force.z, Double(MonotonicClock.nowMicros()) / 1e6)
    }

    private func checkScanning() throws(ScanInterruption) {
        if cancelled() { throw .cancelled }
        let status = controller.status
        guard status.state == .scanning else {
            let cause = status.latched.map { " (\($0.cause.rawValue))" } ?? ""
            throw .stopped("the controller is \(status.state.rawValue)\(cause)")
        }
    }

    func move(to target: ProbeTarget, frame: (ViewObservation) -> Void) throws(ScanInterruption) -> MoveOutcome {
        try checkScanning()
        let before = moves.count
        var limits = MotionLimits()
        limits.speedMMs = target.speedMMs
        limits.angularSpeed = target.angularSpeedRadS
        do {
            _ = try controller.perform(.move(to: target.pose, limits: limits))
        } catch {
            switch error {
            case .target(let rejection): return .rejected("target rejected: \(rejection)")
            case .safety, .notRunning, .noJointState: throw .stopped(error.description)
            default: throw .stopped(error.description)
            }
        }
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
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
        let deadline = Date().addingTimeInterval(seconds)
        var lastFrame = Date()
        while Date() < deadline {
            try checkScanning()
            if let observation = frames.next(within: min(0.05, max(0.001, deadline.timeIntervalSinceNow))) {
                lastFrame = Date()
                if !frame(observation) { return }
            } else if Date().timeIntervalSince(lastFrame) > 1 {
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
