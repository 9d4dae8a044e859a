import SonoCore
import SonoGeometry
import SonoPlanner

/// The planner's environment in a replay: each call is answered from the recording, in order,
/// with the frames' classifications as the replay computed them. The call itself is checked
/// against the recorded one (same kind, same target, same contact force, same observation
/// length); the first call that differs is a divergence and ends the replayed scan, since the
/// recording cannot answer a question the planner did not ask then.
final class ReplayScanEnvironment: ScanEnvironment {
    let labels: [String]
    let framesPerSecond: Double
    private var calls: ArraySlice<PlannerCall>
    private let classification: (UInt64) -> ObservationRecord?
    private(set) var compared = 0
    private(set) var divergences: [String] = []
    /// The recording ended before this scan did (a cut-off file): not a divergence.
    private(set) var ranOut = false
    private let recordedToTheEnd: Bool
    private var diverged = false

    /// `classification`: the replay's own output for a frame number (nil: the frame was not
    /// recorded, the recorded output stands in).
    init(labels: [String], framesPerSecond: Double, calls: ArraySlice<PlannerCall>, recordedToTheEnd: Bool = true,
         classification: @escaping (UInt64) -> ObservationRecord?) {
        self.recordedToTheEnd = recordedToTheEnd
        self.labels = labels
        self.framesPerSecond = framesPerSecond
        self.calls = calls
        self.classification = classification
    }

    private func next(_ kind: PlannerCall.Kind, _ what: String) throws(ScanInterruption) -> PlannerCall {
        if diverged || ranOut { throw .stopped("replay ended") }
        guard let call = calls.popFirst() else {
            if !recordedToTheEnd {
                ranOut = true
                throw .stopped("the recording ends here")
            }
            try diverge("the planner asked \(what) after the recording's last call")
        }
        compared += 1
        guard call.call == kind else {
            try diverge("the planner asked \(what) where the recording has a \(call.call.rawValue) call")
        }
        return call
    }

    private func diverge(_ reason: String) throws(ScanInterruption) -> Never {
        diverged = true
        divergences.append("planner call \(compared): \(reason)")
        throw .stopped("replay diverged: \(reason)")
    }

    private func frames(_ call: PlannerCall) -> [ViewObservation] {
        (call.frames ?? []).map { recorded in
            var observation = recorded
            if let replayed = classification(recorded.frame) {
                observation.probabilities = replayed.probabilities
                observation.smoothedLabel = replayed.smoothedLabel
                observation.smoothedConfidence = replayed.smoothedConfidence
                observation.stableFrames = replayed.stableFrames
                observation.quality = replayed.quality
                observation.smoothedQuality = replayed.smoothedQuality
            }
            return observation.observation
        }
    }

    func measured() -> (probe: Pose, forceN: Double, seconds: Double) {
        // measured() cannot throw: a divergence here is noted and the next call ends the scan.
        guard !diverged, !ranOut, let call = calls.first, call.call == .measured else {
            if calls.isEmpty && !recordedToTheEnd { ranOut = true }
            if !diverged && !ranOut {
                diverged = true
                divergences.append("planner call \(compared + 1): the planner read the measured pose where the recording has "
                    + "\(calls.first.map { "a \($0.call.rawValue) call" } ?? "no more calls")")
            }
            return (.identity, 0, 0)
        }
        calls.removeFirst()
        compared += 1
        return (call.probe?.pose ?? .identity, call.forceN ?? 0, call.seconds ?? 0)
    }

    func move(to target: ProbeTarget, frame: (ViewObservation) -> Void) throws(ScanInterruption) -> MoveOutcome {
        let call = try next(.move, "for a move")
        if call.target != TargetRecord(target) {
            try diverge("move target \(target.pose) at \(target.speedMMs) mm/s; recorded "
                + "\(call.target?.pose.pose.map { "\($0)" } ?? "none") at \(call.target?.speedMMs ?? 0) mm/s")
        }
        for observation in frames(call) { frame(observation) }
        if let error = call.error { throw error.interruption }
        if let outcome = call.outcome, outcome.hasPrefix("rejected: ") { return .rejected(String(outcome.dropFirst(10))) }
        return .finished
    }

    func setContact(forceN: Double?) throws(ScanInterruption) {
        let call = try next(.contact, "to set the contact force")
        if call.forceN != forceN {
            try diverge("contact force \(forceN.map { "\($0) N" } ?? "off"); recorded \(call.forceN.map { "\($0) N" } ?? "off")")
        }
        if let error = call.error { throw error.interruption }
    }

    func observe(seconds: Double, frame: (ViewObservation) -> Bool) throws(ScanInterruption) {
        let call = try next(.observe, "to observe for \(seconds) s")
        if call.seconds != seconds { try diverge("observe for \(seconds) s; recorded \(call.seconds ?? 0) s") }
        let observations = frames(call)
        for (index, observation) in observations.enumerated() where !frame(observation) {
            if index != observations.count - 1 || call.outcome != "enough" {
                try diverge("the planner had enough after \(index + 1) of \(observations.count) frames; recorded: "
                    + (call.outcome == "enough" ? "after all \(observations.count)" : "it wanted more"))
            }
            return
        }
        if call.outcome == "enough" {
            try diverge("the planner wanted more than the \(observations.count) frames after which it had enough")
        }
        if let error = call.error { throw error.interruption }
    }

    /// The simulator's answer as recorded (nil when the recording has none: a hardware session).
    func trueQuality(of view: StandardView, over frames: [ViewObservation]) -> Double? {
        guard !diverged, !ranOut, let call = calls.first, call.call == .truth else { return nil }
        calls.removeFirst()
        compared += 1
        if call.view != view.rawValue {
            diverged = true
            divergences.append("planner call \(compared): asked the true quality of \(view); recorded \(call.view ?? "none")")
            return nil
        }
        return call.quality
    }

    func report(_ event: PlannerEvent) {
        guard !diverged, !ranOut else { return }
        guard let call = calls.first, call.call == .report else { return }
        calls.removeFirst()
        compared += 1
        let replayed = PlannerEventJSON(event)
        if call.plannerEvent != replayed {
            diverged = true
            divergences.append("planner call \(compared): reported \(EventCoding.encode(replayed)); recorded "
                + (call.plannerEvent.map(EventCoding.encode) ?? "nothing"))
        }
    }
}
