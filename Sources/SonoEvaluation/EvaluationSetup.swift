import Foundation
public import SonoCore
public import SonoDaemon
public import SonoGeometry
public import SonoMotion
public import SonoPlanner
public import SonoSim
import SonoVision

/// What every evaluated scan shares, loaded the way sonod-sim loads it: the robot description,
/// the simulation's safety profile and the motion controller's settings built from it
/// (`Scanner.motionConfiguration`), the scan prior, the planner's settings, the classifier's
/// model and the virtual probe's imaging. Loaded once; each scan builds its own boards,
/// controller core, probe and classifier from it.
public struct EvaluationSetup: Sendable {
    public var robot: RobotDescription
    public var arm: ArmModel
    public var motion: MotionControllerConfiguration
    public var prior: ScanPrior
    public var planner: PlannerSettings
    public var modelPath: String
    public var imaging: ImagingSettings
    public var timing: SteppedTiming
    /// The views the classifier and the prior both know (what a protocol may ask for).
    public var knownViews: Set<StandardView>

    /// From a daemon configuration: `DaemonConfiguration.simulation(root:)` is what sonod-sim runs
    /// without `--config`. `modelPath` replaces the configuration's model.
    /// - Throws: `StartupError` naming the file or key at fault, as sonod-sim would.
    public static func load(configuration: DaemonConfiguration, modelPath: String? = nil,
                            timing: SteppedTiming = SteppedTiming()) throws(StartupError) -> EvaluationSetup {
        let robot: RobotDescription
        do { robot = try RobotDescription.load(path: configuration.robotPath) } catch {
            throw .file("robot description \(configuration.robotPath): \(error)")
        }
        // The simulation's profile, as sonod-sim loads it (its stale-data deadlines are wider for
        // the emulated serial path; here inputs are never older than one tick).
        let safetyPath = configuration.safetyProfilePath(simulated: true)
        let limits: SafetyLimits
        do { limits = try SafetyLimits.load(path: safetyPath, simulation: true) } catch {
            throw .file("safety limits \(safetyPath): \(error)")
        }
        let prior: ScanPrior
        do { prior = try ScanPrior.load(path: configuration.priorPath) } catch { throw .file("\(error)") }
        let arm: ArmModel
        do { arm = try ArmModel(robot) } catch { throw .file("robot description \(configuration.robotPath): \(error)") }
        let motion = try Scanner.motionConfiguration(limits: limits, staleDeadlineMillis: configuration.staleDeadlineMillis,
                                                     arm: arm)
        let model = modelPath ?? configuration.modelPath
        let labels: [String]
        do { labels = try ViewClassifier(path: model, threads: 1).labels } catch { throw .model("\(error)") }
        let known = Set(prior.views.keys).filter { labels.contains($0.rawValue) }
        return EvaluationSetup(robot: robot, arm: arm, motion: motion, prior: prior, planner: configuration.planner,
                               modelPath: model, imaging: .virtualProbe, timing: timing, knownViews: known)
    }
}
