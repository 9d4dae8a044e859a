import Foundation
public import SonoCore
import SonoGeometry
import SonoMotion
import SonoPlanner
public import SonoSim
import SonoSystem
public import SonoVision

/// How one view of an evaluated scan went: the planner's outcome, and the simulator's truth about
/// it (which the scan itself never saw).
public struct ViewEvaluation: Sendable, Equatable, Codable {
    public var view: String
    public var acquired: Bool
    /// From the view's start (travel included) to the view held, or to giving up, simulated s.
    public var seconds: Double
    /// The smoothed confidence at the end of the hold (or the best probability seen).
    public var confidence: Double
    public var reason: String?
    /// The largest axial force on the frames the planner searched and held with (its
    /// `ViewOutcome.maxForceN`: travel and lift-off not included), N.
    public var maxForceN: Double
    /// The largest axial force the controller measured, every 1 ms cycle from the view's start
    /// (the lift-off from the previous window included) to its end, N.
    public var maxAxialForceN: Double
    /// The largest magnitude of the measured force (axial and lateral: what the hard cap judges), N.
    public var maxForceMagnitudeN: Double
    /// Truth: the largest normal contact force on the skin over the same span, every tick, N.
    public var maxTrueForceN: Double
    /// The clip (acquired views), simulated s.
    public var clipStartSeconds: Double?
    public var clipEndSeconds: Double?
    /// Truth over the clip's frames: their number, and the mean, lowest and diagnostic share
    /// (q ≥ `ViewQuality.diagnostic`) of the true quality q of the target view.
    public var clipFrames: Int?
    public var clipMeanQuality: Double?
    public var clipMinQuality: Double?
    public var clipDiagnosticShare: Double?
    /// Acquired with a clip whose mean true quality is below `ViewQuality.diagnostic`.
    public var falseAcquisition: Bool
    /// Truth at the pose the view was held at (or the best pose found): its distance to the
    /// view's canonical pose (mm, beam °, rotation °) and the view the simulator labels there.
    public var poseErrorMM: Double?
    public var beamErrorDeg: Double?
    public var rotationErrorDeg: Double?
    public var truthView: String?
    /// The oracle: the best true quality of the view reachable on this patient by sliding over
    /// the skin (`StandardViewGeometry.bestReachableQuality`). Below `ViewQuality.diagnostic`, no
    /// planner could acquire the view diagnostic.
    public var reachableQuality: Double?
}

/// One evaluated scan of one patient.
public struct PatientEvaluation: Sendable, Equatable, Codable {
    public var patient: String
    public var patientSeed: UInt64
    /// The patient's file beside this summary (sonod-sim reruns it).
    public var patientFile: String
    public var views: [ViewEvaluation]
    public var acquired: Int
    public var falseAcquisitions: Int
    /// The planner's scan, simulated s.
    public var scanSeconds: Double
    /// Everything simulated, start-up included, s.
    public var simulatedSeconds: Double
    public var frames: Int
    public var interruption: String?
    public var incidents: [SteppedIncident]
    /// Why the scan could not run at all (start-up refused); nil normally.
    public var error: String?

    /// Views acquired with a diagnostic clip.
    public var trueAcquisitions: Int { acquired - falseAcquisitions }
}

/// One whole autonomous scan of one patient in simulated time: `SteppedWorld` and
/// `SteppedScanEnvironment` under the daemon's planner, then the truth about each view.
public enum ScanEvaluation {
    /// - Parameters:
    ///   - classifier: this scan's own (a classifier is not shared between threads).
    ///   - patientFile: the file name recorded in the result.
    ///   - profile: receives where the wall time went (tick, render, classify).
    public static func run(patient parameters: PatientParameters, patientFile: String, views: [StandardView],
                           setup: EvaluationSetup, classifier: ViewClassifier,
                           profile: ((SteppedProfile) -> Void)? = nil) -> PatientEvaluation {
        let patient = VirtualPatient(parameters)
        var result = PatientEvaluation(patient: parameters.name, patientSeed: parameters.seed, patientFile: patientFile,
                                       views: [], acquired: 0, falseAcquisitions: 0, scanSeconds: 0, simulatedSeconds: 0,
                                       frames: 0, interruption: nil, incidents: [], error: nil)
        let scanProtocol: ScanProtocol
        do { scanProtocol = try ScanProtocol(views: views, known: setup.knownViews) } catch {
            result.error = "\(error)"
            return result
        }
        let world = SteppedWorld(patient: patient, setup: setup, classifier: classifier)
        if profile != nil { world.enableProfile() }
        defer { profile?(world.profile) }
        do { try world.bringUp() } catch {
            result.error = "\(error)"
            result.simulatedSeconds = round6(world.seconds)
            result.incidents = world.incidents
            return result
        }
        // The force peaks per view: from its start (which lifts off the last window) to its outcome.
        var peaks: [(axial: Double, magnitude: Double, truth: Double)] = []
        let environment = SteppedScanEnvironment(world: world) { event in
            switch event {
            case .viewStarted: world.resetForcePeaks()
            case .viewAcquired, .viewFailed: peaks.append((world.axialForcePeakN, world.forceMagnitudePeakN, world.truthForcePeakN))
            default: break
            }
        }
        world.clearObservations()
        let planner = ScanPlanner(prior: setup.prior, settings: setup.planner, environment: environment)
        let report = planner.run(scanProtocol)
        if world.status.state == .scanning { world.perform(.safety(.stopScan)) }

        let geometry = StandardViewGeometry(patient: patient)
        let truth = world.frameTruth
        for (index, outcome) in report.outcomes.enumerated() {
            var view = ViewEvaluation(view: outcome.view.rawValue, acquired: outcome.acquired, seconds: round6(outcome.seconds),
                                      confidence: round6(Double(outcome.confidence)), reason: outcome.reason,
                                      maxForceN: round6(outcome.maxForceN),
                                      maxAxialForceN: round6(index < peaks.count ? peaks[index].axial : 0),
                                      maxForceMagnitudeN: round6(index < peaks.count ? peaks[index].magnitude : 0),
                                      maxTrueForceN: round6(index < peaks.count ? peaks[index].truth : 0),
                                      falseAcquisition: false)
            if let start = outcome.clipStartSeconds, let end = outcome.clipEndSeconds {
                view.clipStartSeconds = round6(start)
                view.clipEndSeconds = round6(end)
                // Only the clip's frames get the simulator's ray casts.
                let qualities = truth.filter { $0.seconds >= start && $0.seconds <= end }.map {
                    geometry.quality(of: outcome.view, pose: $0.pose, contactForceN: $0.forceN, seconds: $0.seconds)
                }
                view.clipFrames = qualities.count
                if !qualities.isEmpty {
                    let mean = qualities.reduce(0, +) / Double(qualities.count)
                    view.clipMeanQuality = round6(mean)
                    view.clipMinQuality = round6(qualities.min() ?? 0)
                    view.clipDiagnosticShare = round6(Double(qualities.filter { $0 >= ViewQuality.diagnostic }.count)
                                                      / Double(qualities.count))
                }
            }
            if outcome.acquired {
                view.falseAcquisition = !((view.clipMeanQuality ?? 0) >= ViewQuality.diagnostic)
            }
            if let pose = outcome.pose, let distance = geometry.distance(from: pose, to: outcome.view) {
                view.poseErrorMM = round6(distance.positionMM)
                view.beamErrorDeg = round6(distance.beamAngleDeg)
                view.rotationErrorDeg = round6(distance.planeRotationDeg)
            }
            // The simulator's label at the held frame (the clip's first), as a reader would check it.
            if let start = outcome.clipStartSeconds, let held = truth.last(where: { $0.seconds <= start }) {
                view.truthView = geometry.label(pose: held.pose, contactForceN: held.forceN, seconds: held.seconds).view.rawValue
            }
            view.reachableQuality = geometry.bestReachableQuality(of: outcome.view,
                                                                  contactForceN: setup.planner.contactForceN).map { round6($0.quality) }
            result.views.append(view)
        }
        result.acquired = result.views.filter(\.acquired).count
        result.falseAcquisitions = result.views.filter(\.falseAcquisition).count
        result.scanSeconds = round6(report.seconds)
        result.simulatedSeconds = round6(world.seconds)
        result.frames = truth.count
        result.interruption = report.interruption.map(\.description)
        result.incidents = world.incidents
        return result
    }
}

/// Rounds to 6 decimals: results read as numbers people use, and stay bit-identical.
func round6(_ value: Double) -> Double {
    guard value.isFinite else { return value }
    return (value * 1e6).rounded() / 1e6
}
