import Foundation
import SonoCore
import SonoGeometry
@testable import SonoPlanner
import SonoTestSupport
import Testing

/// The planner against a synthetic world: views sit at hidden true poses near (not at) the
/// prior; the "classifier" sees a view when the probe is within a tolerance of its true pose.
/// No simulator, no threads: the planner's search logic alone.
final class SyntheticScene: ScanEnvironment {
    let labels = ["PLAX", "PSAX", "A4C", "A2C", "SC4C", "OTHER"]
    let framesPerSecond = 30.0
    var truth: [StandardView: Pose]
    var probe = Pose.identity
    var seconds = 0.0
    var moves = 0
    var rejectAboveX = Double.infinity
    var rejected = 0
    var stopAfterMoves = Int.max
    var events: [PlannerEvent] = []
    private var history: [Float] = []
    /// When set, frames carry a predicted quality: the view's pose quality 2^−e² (e² = (d/12)² +
    /// (β/12)² + (ρ/15)², as the simulator's) times this window factor, smoothed over 30 frames.
    var qualityWindow: Double?
    private var qualityHistory: [[Float]] = []

    init(truth: [StandardView: Pose]) { self.truth = truth }

    func measured() -> (probe: Pose, forceN: Double, seconds: Double) { (probe, 8, seconds) }

    func move(to target: ProbeTarget, frame: (ViewObservation) -> Void) throws(ScanInterruption) -> MoveOutcome {
        moves += 1
        if moves > stopAfterMoves { throw .stopped("the controller is protective_stop (force_hard_cap)") }
        if target.pose.position.x > rejectAboveX {
            rejected += 1
            return .rejected("target rejected: outside the workspace")
        }
        let distance = (target.pose.position - probe.position).length
        seconds += 0.1 + distance / target.speedMMs
        probe = target.pose
        return .finished
    }

    func setContact(forceN: Double?) throws(ScanInterruption) {}

    func observe(seconds duration: Double, frame: (ViewObservation) -> Bool) throws(ScanInterruption) {
        let end = seconds + duration
        while seconds < end {
            seconds += 1.0 / 30
            if !frame(observation()) { return }
        }
    }

    func report(_ event: PlannerEvent) { events.append(event) }

    /// The scene's own quality at each frame's probe: what a simulator would answer.
    func trueQuality(of view: StandardView, over frames: [ViewObservation]) -> Double? {
        guard qualityWindow != nil, !frames.isEmpty, let index = labels.firstIndex(of: view.rawValue) else { return nil }
        return frames.reduce(0) { $0 + Double(quality(at: $1.probe)[index]) } / Double(frames.count)
    }

    /// Errors of `probe` from a view's true pose: across the beam (mm), beam angle and plane rotation (°).
    func errors(_ probe: Pose, from pose: Pose) -> (across: Double, beam: Double, plane: Double) {
        let offset = probe.position - pose.position
        let across = (offset - pose.rotation.z * offset.dot(pose.rotation.z)).length
        let beam = probe.rotation.z.angle(to: pose.rotation.z) * 180 / .pi
        let aligned = pose.rotation.x - probe.rotation.z * pose.rotation.x.dot(probe.rotation.z)
        var plane = probe.rotation.x.angle(to: aligned) * 180 / .pi
        if plane > 90 { plane = 180 - plane }
        return (across, beam, plane)
    }

    func quality(at probe: Pose) -> [Float] {
        labels.map { label in
            guard let window = qualityWindow, let view = StandardView(rawValue: label), let pose = truth[view] else { return 0 }
            let e = errors(probe, from: pose)
            let e2 = (e.across / 12) * (e.across / 12) + (e.beam / 12) * (e.beam / 12) + (e.plane / 15) * (e.plane / 15)
            return Float(window * exp2(-e2))
        }
    }

    /// Probability 0.97 inside 10 mm / 10° / 12° of a view's true pose (position across the beam,
    /// as the planner's standoff moves the face along it), fading to 0 at twice that.
    func observation() -> ViewObservation {
        var probabilities = [Float](repeating: 0, count: labels.count)
        for (index, label) in labels.enumerated() {
            guard let view = StandardView(rawValue: label), let pose = truth[view] else { continue }
            let offset = probe.position - pose.position
            let across = (offset - pose.rotation.z * offset.dot(pose.rotation.z)).length
            let beam = probe.rotation.z.angle(to: pose.rotation.z) * 180 / .pi
            let aligned = pose.rotation.x - probe.rotation.z * pose.rotation.x.dot(probe.rotation.z)
            var plane = probe.rotation.x.angle(to: aligned) * 180 / .pi
            if plane > 90 { plane = 180 - plane }
            let d = max(across / 10, beam / 10, plane / 12)
            probabilities[index] = Float(d <= 1 ? 0.97 : max(0, 2 - d) * 0.97)
        }
        let best = probabilities.indices.max { probabilities[$0] < probabilities[$1] } ?? 5
        probabilities[5] = max(0, 1 - probabilities[best])
        history.append(probabilities[best] > 0.5 ? Float(best) : 5)
        if history.count > 30 { history.removeFirst() }
        let label = best < 5 && probabilities[best] > 0.5 ? labels[best] : "OTHER"
        let sameCount = history.reversed().prefix { Int($0) == (labels.firstIndex(of: label) ?? 5) }.count
        var observation = ViewObservation(seconds: seconds, probabilities: probabilities, smoothedLabel: label,
                                          smoothedConfidence: label == "OTHER" ? probabilities[5] : probabilities[best] * Float(sameCount) / 30,
                                          stableFrames: sameCount, probe: probe, forceN: 8)
        if qualityWindow != nil {
            let quality = quality(at: probe)
            qualityHistory.append(quality)
            if qualityHistory.count > 30 { qualityHistory.removeFirst() }
            observation.quality = quality
            observation.smoothedQuality = labels.indices.map { index in
                qualityHistory.reduce(Float(0)) { $0 + $1[index] } / Float(qualityHistory.count)
            }
        }
        return observation
    }
}

struct ScanPlannerTests {
    static func prior(_ views: [StandardView: Pose]) -> ScanPrior {
        ScanPrior(views: Dictionary(uniqueKeysWithValues: views.map { view, pose in
            (view, ViewPrior(view: view, pose: pose, aimDepthMM: 95, spreadMM: 10, spreadBeamDeg: 7, spreadRotationDeg: 12))
        }))
    }

    static let parasternal = Pose(rotation: Rotation(forward: Vector3(0, 0, -1), right: Vector3(1, 0, 0)),
                                  position: Vector3(30, 0, 0))

    /// The prior pose moved across the beam and turned about it.
    static func displaced(_ pose: Pose, by offset: Vector3, turn degrees: Double) -> Pose {
        var moved = pose
        moved.position += pose.rotation.x * offset.x + pose.rotation.y * offset.y
        moved.rotation = Rotation(axis: pose.rotation.z, angle: degrees * .pi / 180) * pose.rotation
        return moved
    }

    @Test func findsAViewAwayFromThePriorAndHoldsIt() throws {
        // The true window is 17 mm from the prior and turned 9°: outside the tolerance, so the
        // planner must search.
        let truth = Self.displaced(Self.parasternal, by: Vector3(12, -12, 0), turn: 9)
        let scene = SyntheticScene(truth: [.plax: truth])
        let planner = ScanPlanner(prior: Self.prior([.plax: Self.parasternal]), settings: PlannerSettings(), environment: scene)
        let report = planner.run(try ScanProtocol(views: [.plax], known: [.plax]))
        let outcome = try #require(report.outcomes.first)
        #expect(outcome.acquired, "\(outcome)")
        #expect(scene.events.contains(.searching(.plax, step: "window")))
        #expect(scene.events.contains(.clipStarted(.plax)) && scene.events.contains(.clipEnded(.plax)))
        let pose = try #require(outcome.pose)
        let offset = pose.position - truth.position
        #expect((offset - truth.rotation.z * offset.dot(truth.rotation.z)).length < 10, "held inside the view")
        #expect(outcome.seconds < 60)
    }

    @Test func climbsThePredictedQualityAndAcquiresOnlyADiagnosticHold() throws {
        // 17 mm away and turned 9°: q ≈ 0.1 at the prior. The climb must centre the view.
        let truth = Self.displaced(Self.parasternal, by: Vector3(12, -12, 0), turn: 9)
        let scene = SyntheticScene(truth: [.plax: truth])
        scene.qualityWindow = 1
        let settings = PlannerSettings()
        let planner = ScanPlanner(prior: Self.prior([.plax: Self.parasternal]), settings: settings, environment: scene)
        let report = planner.run(try ScanProtocol(views: [.plax], known: [.plax]))
        let outcome = try #require(report.outcomes.first)
        #expect(outcome.acquired, "\(outcome)")
        let predicted = try #require(outcome.predictedQuality)
        let trueQuality = try #require(outcome.trueQuality)
        #expect(predicted >= settings.acquireQuality && trueQuality >= 0.7, "predicted \(predicted), true \(trueQuality)")
        // The clip is the hold: every frame of it diagnostic, for the longer of the hold and the clip.
        let start = try #require(outcome.clipStartSeconds), end = try #require(outcome.clipEndSeconds)
        #expect(end - start >= max(settings.holdSeconds, settings.clipSeconds) - 1e-9)
        let pose = try #require(outcome.pose)
        let e = scene.errors(pose, from: truth)
        #expect(e.across < 8 && e.plane < 10, "centred: \(e)")
    }

    @Test func aViewThatNeverTurnsDiagnosticIsNotAcquired() throws {
        // A half-shadowed window: the best the probe can do is q 0.65, below the diagnostic line,
        // though the view is plainly there (probability 0.97 at its pose).
        let scene = SyntheticScene(truth: [.plax: Self.parasternal])
        scene.qualityWindow = 0.65
        var settings = PlannerSettings()
        settings.viewTimeoutSeconds = 20
        let planner = ScanPlanner(prior: Self.prior([.plax: Self.parasternal]), settings: settings, environment: scene)
        let outcome = try #require(planner.run(try ScanProtocol(views: [.plax], known: [.plax])).outcomes.first)
        #expect(!outcome.acquired)
        #expect(outcome.reason?.contains("best predicted quality 0.6") == true, "\(outcome.reason ?? "")")
        #expect(!scene.events.contains(.clipStarted(.plax)))
    }

    @Test func givesUpAfterTheTimeoutWithAReason() throws {
        let scene = SyntheticScene(truth: [:])  // the view is nowhere
        var settings = PlannerSettings()
        settings.viewTimeoutSeconds = 20
        let planner = ScanPlanner(prior: Self.prior([.a4c: Self.parasternal]), settings: settings, environment: scene)
        let report = planner.run(try ScanProtocol(views: [.a4c], known: [.a4c]))
        let outcome = try #require(report.outcomes.first)
        #expect(!outcome.acquired)
        #expect(outcome.reason?.contains("not found within 20 s") == true, "\(outcome.reason ?? "")")
        #expect(outcome.seconds >= 20 && outcome.seconds < 30)
        #expect(report.interruption == nil)
    }

    @Test func aStopEndsTheScanAndIsReported() throws {
        let scene = SyntheticScene(truth: [.plax: Self.parasternal, .psax: Self.parasternal])
        scene.stopAfterMoves = 3
        let planner = ScanPlanner(prior: Self.prior([.plax: Self.parasternal, .psax: Self.parasternal]),
                                  settings: PlannerSettings(), environment: scene)
        let report = planner.run(try ScanProtocol(views: [.plax, .psax], known: [.plax, .psax]))
        #expect(report.interruption == .stopped("the controller is protective_stop (force_hard_cap)"))
        #expect(report.outcomes.count == 1 && report.outcomes[0].acquired == false, "PSAX is not attempted after a stop")
        #expect(scene.moves == 4, "no proposal after the stop")
    }

    @Test func searchesOnWhenTheControllerRejectsCandidates() throws {
        let truth = Self.displaced(Self.parasternal, by: Vector3(0, 14, 0), turn: 0)
        let scene = SyntheticScene(truth: [.plax: truth])
        let planner = ScanPlanner(prior: Self.prior([.plax: Self.parasternal]), settings: PlannerSettings(), environment: scene)
        // Every candidate more than 3 mm to one side is refused; the view lies elsewhere.
        scene.rejectAboveX = Self.parasternal.position.x + 3
        let report = planner.run(try ScanProtocol(views: [.plax], known: [.plax]))
        #expect(report.outcomes.first?.acquired == true, "\(report.outcomes)")
        #expect(scene.rejected > 0, "some candidates were refused and skipped")
    }

    @Test func protocolsNameOnlyKnownViews() {
        #expect(throws: PlannerError.unknownView("XYZ", known: ["A4C", "PLAX"])) {
            try ScanProtocol(parsing: "PLAX, xyz", known: [.plax, .a4c])
        }
        #expect(throws: PlannerError.emptyProtocol) { try ScanProtocol(parsing: " , ", known: [.plax]) }
        #expect((try? ScanProtocol(parsing: "plax,a4c", known: [.plax, .a4c]))?.views == [.plax, .a4c])
    }

    @Test func theShippedPriorLoadsAndBadOnesNameTheKey() throws {
        let prior = try ScanPrior.load(path: Repository.path("hardware/scan-prior.toml"))
        #expect(Set(prior.views.keys) == [.plax, .psax, .a4c, .a2c, .sc4c])
        let bad = "/tmp/sono-prior-\(UInt32.random(in: 0...UInt32.max)).toml"
        try "[view.PLAX]\nposition = [1, 2]\nbeam = [0, 0, -1]\nlateral = [1, 0, 0]\n".write(toFile: bad, atomically: true, encoding: .utf8)
        #expect(throws: PlannerError.invalid(path: bad, key: "view.PLAX.position", reason: "must be an array of 3 numbers")) {
            try ScanPrior.load(path: bad)
        }
    }
}
