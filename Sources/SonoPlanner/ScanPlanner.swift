import SonoCore
import SonoGeometry
import Foundation

/// The scan planner: for each target view, travel to its acoustic window from the prior, make
/// contact at the target force, search the window for the view on the classifier's output, hold
/// it while it stays diagnostic for a cardiac cycle (those frames are the clip), and move on. It
/// only proposes targets: the motion controller carries them out or refuses them.
///
/// The signal it climbs is the model's **predicted diagnostic quality** of the target view (a
/// quality meter: continuous, so the climb can centre the view); with a model that has no
/// quality output, the view's probability instead.
///
/// Search, per view (all poses relative to the prior's):
/// 1. *Window search*: candidate windows on rings around the prior window (in the plane across
///    the prior beam), nearest first, the beam kept aimed at the prior's aim point (the heart,
///    as the population has it), so that sliding over the chest also turns the beam the way a
///    sonographer does. Each candidate is scored by the mean per-frame score over a short
///    dwell; the first above `signalProbability` ends the window search.
/// 2. *Refinement*: coordinate ascent over slide (two directions), rotation about the beam and
///    tilt (two axes), steps halved when a round brings nothing, until the score reaches
///    `targetQuality` (with quality; `acquireConfidence` without), or the climb converges with
///    the score at least diagnostic (`acquireQuality`): the centring step.
/// 3. *Hold*: the smoothed quality must stay at least diagnostic, with the smoothed view the
///    target (or without quality, the smoothed view at `acquireConfidence`), for `holdSeconds`
///    and `clipSeconds`, the longer; those frames are the clip. If it does not, refinement resumes.
public final class ScanPlanner {
    public let prior: ScanPrior
    public let settings: PlannerSettings
    private let environment: any ScanEnvironment
    private let cancelled: @Sendable () -> Bool
    /// Each search step as text, for tuning (sonod logs it at debug level).
    public var trace: ((String) -> Void)?

    /// The planned pose last proposed.
    private var planned: Pose?
    private var contactOn = false
    private var standoffMM = 0.0
    private var currentWindow: Vector3?
    /// The window and offset where the last view was held.
    private var lastFound: (window: Vector3, offset: Offset)?
    /// Whether the frames carry predicted quality (known from the first frame seen).
    private var usesQuality = false

    public init(prior: ScanPrior, settings: PlannerSettings, environment: any ScanEnvironment,
                cancelled: @escaping @Sendable () -> Bool = { false }) {
        self.prior = prior
        self.settings = settings
        self.environment = environment
        self.cancelled = cancelled
    }

    public func run(_ scan: ScanProtocol) -> ScanReport {
        let start = environment.measured().seconds
        var outcomes: [ViewOutcome] = []
        var interruption: ScanInterruption?
        for view in scan.views {
            do {
                let outcome = try acquire(view)
                outcomes.append(outcome)
                environment.report(outcome.acquired ? .viewAcquired(outcome) : .viewFailed(outcome))
            } catch {
                interruption = error
                let outcome = ViewOutcome(view: view, acquired: false, seconds: 0, pose: nil, confidence: 0,
                                          maxForceN: 0, reason: "\(error)")
                outcomes.append(outcome)
                environment.report(.viewFailed(outcome))
                break
            }
        }
        if interruption == nil { try? lift() }
        return ScanReport(outcomes: outcomes, interruption: interruption,
                          seconds: environment.measured().seconds - start)
    }

    // MARK: one view

    /// Search parameters relative to the prior pose: slide (mm) across the prior beam, rotation
    /// about the beam and tilts about the prior's lateral and elevation axes (rad).
    struct Offset: Equatable {
        var u = 0.0, v = 0.0, rotation = 0.0, tiltLateral = 0.0, tiltElevation = 0.0
    }

    private struct ViewSearch {
        let view: StandardView
        let index: Int
        let prior: ViewPrior
        let started: Double
        var maxForceN = 0.0
        var best = (offset: Offset(), score: Float(-1))
    }

    /// A frame's score for the view at `index`: its predicted quality, or its probability.
    private func score(_ frame: ViewObservation, index: Int) -> Float {
        if !frame.quality.isEmpty { return index < frame.quality.count ? frame.quality[index] : 0 }
        return index < frame.probabilities.count ? frame.probabilities[index] : 0
    }

    /// The score at which refinement stops climbing and the hold begins.
    private var readyScore: Float { usesQuality ? settings.targetQuality : settings.acquireConfidence }
    /// The least score worth a hold (the diagnostic line with quality).
    private var acquireScore: Float { usesQuality ? settings.acquireQuality : settings.acquireConfidence }

    private func acquire(_ view: StandardView) throws(ScanInterruption) -> ViewOutcome {
        guard let viewPrior = prior.views[view], let index = environment.labels.firstIndex(of: view.rawValue) else {
            return ViewOutcome(view: view, acquired: false, seconds: 0, pose: nil, confidence: 0, maxForceN: 0,
                               reason: "no prior or no classifier label for \(view)")
        }
        environment.report(.viewStarted(view))
        var search = ViewSearch(view: view, index: index, prior: viewPrior, started: environment.measured().seconds)
        try travel(to: viewPrior, &search)
        environment.report(.windowReached(view))

        // A view on the window just used (PLAX → PSAX, A4C → A2C) starts where the last one was
        // found: same place and tilt on this patient, the prior's turn about the beam.
        var offset = Offset()
        if let (window, found) = lastFound, (window - viewPrior.pose.position).length < 5 {
            offset = Offset(u: found.u, v: found.v, rotation: 0, tiltLateral: found.tiltLateral,
                            tiltElevation: found.tiltElevation)
        }
        var score = try evaluate(offset, &search)
        if score < settings.signalProbability {
            environment.report(.searching(view, step: "window"))
            if let found = try searchWindow(&search) { (offset, score) = found }
        }
        var steps = (slide: settings.refineSlideMM, rotation: settings.refineRotationDeg * .pi / 180,
                     tilt: settings.refineTiltDeg * .pi / 180)
        if search.best.score > score { (offset, score) = search.best }
        var centred = false
        while !timedOut(search) {
            if score >= readyScore || (centred && score >= acquireScore) {
                if try move(to: offset, &search) == .finished, let held = try hold(&search) {
                    lastFound = (viewPrior.pose.position, offset)
                    return held
                }
                // Lost while holding: this pose is at best marginal (a breath takes the view away),
                // so search on around it rather than trying the same hold again.
                score = min(score, acquireScore) * 0.9
            }
            centred = false
            environment.report(.searching(view, step: "refine"))
            let before = score
            (offset, score) = try refine(from: offset, score: score, steps: steps, &search)
            if score <= before + 0.02 {
                steps = (steps.slide / 2, steps.rotation / 2, steps.tilt / 2)
                if steps.slide < 1 {
                    // Converged: hold here if it is diagnostic; else start again from the best
                    // pose seen, with full steps.
                    centred = score >= acquireScore
                    steps = (settings.refineSlideMM, settings.refineRotationDeg * .pi / 180, settings.refineTiltDeg * .pi / 180)
                    if !centred, search.best.score > score { (offset, score) = search.best }
                    if score < settings.signalProbability, let found = try searchWindow(&search) { (offset, score) = found }
                }
            }
        }
        let measured = environment.measured()
        var outcome = ViewOutcome(view: view, acquired: false, seconds: measured.seconds - search.started,
                                  pose: search.best.score >= 0 ? pose(for: search.best.offset, search.prior) : nil,
                                  confidence: max(0, search.best.score), maxForceN: search.maxForceN,
                                  reason: "not found within \(Int(settings.viewTimeoutSeconds)) s "
                                      + "(best \(usesQuality ? "predicted quality" : "probability") "
                                      + "\(String(format: "%.2f", max(0, search.best.score))))")
        if usesQuality { outcome.predictedQuality = max(0, search.best.score) }
        return outcome
    }

    private func timedOut(_ search: ViewSearch) -> Bool {
        environment.measured().seconds - search.started > settings.viewTimeoutSeconds
    }

    /// Rings of candidate windows around the prior, nearest first; the first candidate whose
    /// score reaches the signal level is returned.
    private func searchWindow(_ search: inout ViewSearch) throws(ScanInterruption) -> (Offset, Float)? {
        let reach = max(settings.searchRadiusMM, 2.5 * search.prior.spreadMM)
        var radius = settings.ringStepMM
        var ringIndex = 0
        while radius <= reach + 1e-9 {
            let count = max(6, Int((2 * .pi * radius / settings.ringStepMM).rounded()))
            // Alternate the rings' phase so that successive rings fill each other's gaps.
            let phase = ringIndex % 2 == 0 ? 0 : .pi / Double(count)
            for k in 0..<count {
                if timedOut(search) { return nil }
                let angle = phase + 2 * .pi * Double(k) / Double(count)
                let candidate = Offset(u: radius * cos(angle), v: radius * sin(angle))
                let score = try evaluate(candidate, &search)
                if score >= settings.signalProbability { return (candidate, score) }
            }
            radius += settings.ringStepMM
            ringIndex += 1
        }
        return nil
    }

    /// One round of coordinate ascent around `offset`.
    private func refine(from offset: Offset, score: Float, steps: (slide: Double, rotation: Double, tilt: Double),
                        _ search: inout ViewSearch) throws(ScanInterruption) -> (Offset, Float) {
        var current = (offset, score)
        let directions: [(inout Offset, Double) -> Void] = [
            { $0.u += $1 }, { $0.v += $1 }, { $0.rotation += $1 }, { $0.tiltLateral += $1 }, { $0.tiltElevation += $1 },
        ]
        let sizes = [steps.slide, steps.slide, steps.rotation, steps.tilt, steps.tilt]
        for (change, size) in zip(directions, sizes) {
            for sign in [1.0, -1.0] {
                if timedOut(search) || current.1 >= readyScore { return current }
                var candidate = current.0
                change(&candidate, sign * size)
                let candidateScore = try evaluate(candidate, &search)
                if candidateScore > current.1 {
                    current = (candidate, candidateScore)
                    break  // keep going this way on the next round; try the next axis now
                }
            }
        }
        return current
    }

    /// How long one search step observes: the `dwellFrames` it scores, the one it skips and a
    /// few to spare, at half the source's frame rate, so that a source delivering only half
    /// its frames (a loaded machine) still fills the step.
    private var observationSeconds: Double {
        Double(settings.dwellFrames + 4) / (max(1, environment.framesPerSecond) / 2)
    }

    /// Moves to `offset`, lets the image settle and returns the mean per-frame score of the view
    /// (predicted quality, or probability) over `dwellFrames` frames; -1 when the controller
    /// rejected the pose.
    private func evaluate(_ offset: Offset, _ search: inout ViewSearch) throws(ScanInterruption) -> Float {
        guard try move(to: offset, &search) == .finished else { return -1 }
        var sum: Float = 0
        var frames = 0
        var skipped = 0
        let index = search.index
        var maxForce = search.maxForceN
        // The first frame after a move may have been rendered while it was still moving.
        let window = observationSeconds
        var quality = usesQuality
        try environment.observe(seconds: window) { frame in
            maxForce = max(maxForce, frame.forceN)
            quality = !frame.quality.isEmpty
            if skipped < 1 { skipped += 1; return true }
            sum += self.score(frame, index: index)
            frames += 1
            return frames < settings.dwellFrames
        }
        usesQuality = quality
        search.maxForceN = maxForce
        guard frames > 0 else { throw .noFrames("none in \(window) s") }
        let score = sum / Float(frames)
        if score > search.best.score { search.best = (offset, score) }
        trace?("\(search.view) " + String(format: "u %.1f v %.1f rot %.1f° tilt %.1f° %.1f° → %.2f", offset.u, offset.v,
                      offset.rotation * 180 / .pi, offset.tiltLateral * 180 / .pi, offset.tiltElevation * 180 / .pi, score))
        return score
    }

    private func move(to offset: Offset, _ search: inout ViewSearch) throws(ScanInterruption) -> MoveOutcome {
        if cancelled() { throw .cancelled }
        let target = ProbeTarget(pose: planned(for: pose(for: offset, search.prior)), speedMMs: settings.slideSpeedMMs,
                                 angularSpeedRadS: settings.turnSpeedRadS)
        var maxForce = search.maxForceN
        let outcome = try environment.move(to: target) { maxForce = max(maxForce, $0.forceN) }
        search.maxForceN = maxForce
        if outcome == .finished { planned = target.pose }
        return outcome
    }

    /// Holds the pose until the view has stayed diagnostic for the hold (`holdSeconds` and
    /// `clipSeconds`, the longer): the smoothed predicted quality at or above `acquireQuality`
    /// on every frame, or without quality the smoothed view the target at `acquireConfidence`.
    /// Those frames are the clip. Nil when the view did not hold.
    private func hold(_ search: inout ViewSearch) throws(ScanInterruption) -> ViewOutcome? {
        let duration = max(settings.holdSeconds, settings.clipSeconds)
        var clip: [ViewObservation] = []
        var held = false
        var last: ViewObservation?
        var maxForce = search.maxForceN
        let view = search.view
        let index = search.index
        // The smoother's window fills first, and one dip below the line may restart the hold.
        let window = 2 * duration + 1.5
        let quality = usesQuality, acquireQuality = settings.acquireQuality, acquireConfidence = settings.acquireConfidence
        try environment.observe(seconds: window) { frame in
            maxForce = max(maxForce, frame.forceN)
            last = frame
            // With quality, the view classifier must agree: its smoothed view is the target. Two
            // heads of the model that fail differently (a frame of one view mistaken for a good
            // frame of another shows up in the view head first).
            let diagnostic = quality
                ? index < frame.smoothedQuality.count && frame.smoothedQuality[index] >= acquireQuality
                    && frame.smoothedLabel == view.rawValue
                : frame.smoothedLabel == view.rawValue && frame.smoothedConfidence >= acquireConfidence
            guard diagnostic else { clip.removeAll(keepingCapacity: true); return true }
            clip.append(frame)
            if let first = clip.first, frame.seconds - first.seconds >= duration { held = true; return false }
            return true
        }
        search.maxForceN = maxForce
        let shown = last.map { quality && index < $0.smoothedQuality.count
            ? String(format: " (smoothed quality %.2f)", $0.smoothedQuality[index])
            : String(format: " (smoothed %@ %.2f)", $0.smoothedLabel, $0.smoothedConfidence) } ?? ""
        trace?("\(view) hold " + (held ? "kept" : "lost") + shown)
        guard held, let first = clip.first, let frame = clip.last else { return nil }
        environment.report(.clipStarted(view))
        environment.report(.clipEnded(view))
        var outcome = ViewOutcome(view: view, acquired: true, seconds: frame.seconds - search.started, pose: frame.probe,
                                  confidence: frame.smoothedConfidence, maxForceN: maxForce)
        outcome.clipStartSeconds = first.seconds
        outcome.clipEndSeconds = frame.seconds
        if quality {
            outcome.predictedQuality = clip.reduce(Float(0)) { $0 + score($1, index: index) } / Float(clip.count)
        }
        outcome.trueQuality = environment.trueQuality(of: view, over: clip)
        return outcome
    }

    // MARK: poses

    /// The probe pose (face on the skin) for a search offset.
    func pose(for offset: Offset, _ prior: ViewPrior) -> Pose {
        let base = prior.pose.rotation
        let window = prior.pose.position + base.x * offset.u + base.y * offset.v
        var beam = (prior.aimPoint - window).normalized
        beam = Rotation(axis: base.x, angle: offset.tiltLateral) * beam
        beam = Rotation(axis: base.y, angle: offset.tiltElevation) * beam
        let lateral = Rotation(axis: base.z, angle: offset.rotation) * base.x
        return Pose(rotation: Rotation(forward: beam, right: lateral), position: window)
    }

    /// The planned pose for a probe face at `face`. The contact-force controller adds its own
    /// offset along the beam to whatever is planned, and that offset is not the planner's to
    /// reset: so the planner keeps one standoff per window, fixed when it arrived over it, and
    /// the controller's offset takes up the skin's depth under each pose (sliding over the
    /// chest never re-anchors the probe to the prior's idea of where the skin is).
    private func planned(for face: Pose) -> Pose {
        var pose = face
        pose.position -= face.rotation.z * standoffMM
        return pose
    }

    /// How far along the beam the contact controller has moved the probe from the planned pose.
    private func contactOffsetMM() -> Double {
        guard let planned else { return 0 }
        let measured = environment.measured().probe
        return (measured.position - planned.position).dot(planned.rotation.z)
    }

    // MARK: travel

    /// Lifts off (unless already on this window), travels above the view's window, comes down
    /// to hover over it and lets the contact controller bring the probe onto the skin.
    private func travel(to viewPrior: ViewPrior, _ search: inout ViewSearch) throws(ScanInterruption) {
        if let window = currentWindow, (window - viewPrior.pose.position).length < 5, contactOn {
            return  // same window (PLAX → PSAX, A4C → A2C): turn in place during the search
        }
        try lift()
        // Hover `hoverMM` off the window: the controller's current offset is still added.
        standoffMM = settings.hoverMM + contactOffsetMM()
        let hover = planned(for: pose(for: Offset(), viewPrior))
        let here = environment.measured().probe
        var above = hover
        above.position.z = max(hover.position.z, here.position.z) + settings.clearanceMM
        for target in [above, hover] {
            let outcome = try environment.move(to: ProbeTarget(pose: target, speedMMs: settings.travelSpeedMMs,
                                                               angularSpeedRadS: settings.turnSpeedRadS)) { _ in }
            if case .rejected(let reason) = outcome { throw .stopped("cannot reach \(viewPrior.view)'s window: \(reason)") }
            planned = target
        }
        try environment.setContact(forceN: settings.contactForceN)
        contactOn = true
        currentWindow = viewPrior.pose.position
        // Wait until the force has settled within 1 N of the target for 0.3 s (or 8 s).
        var steadySince: Double?
        var maxForce = search.maxForceN
        let force = settings.contactForceN
        try environment.observe(seconds: 8) { frame in
            maxForce = max(maxForce, frame.forceN)
            if abs(frame.forceN - force) < 1 {
                let since = steadySince ?? frame.seconds
                steadySince = since
                return frame.seconds - since < 0.3
            }
            steadySince = nil
            return true
        }
        search.maxForceN = maxForce
    }

    /// Releases the contact and backs the probe off the skin along its beam.
    private func lift() throws(ScanInterruption) {
        guard contactOn, let planned else { return }
        try environment.setContact(forceN: nil)
        contactOn = false
        var away = planned
        away.position -= planned.rotation.z * (contactOffsetMM() + settings.hoverMM)
        _ = try environment.move(to: ProbeTarget(pose: away, speedMMs: settings.slideSpeedMMs,
                                                 angularSpeedRadS: settings.turnSpeedRadS)) { _ in }
        self.planned = away
        currentWindow = nil
    }
}
