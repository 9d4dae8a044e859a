public import SonoCore
public import SonoGeometry

/// One classified frame as the planner sees it.
public struct ViewObservation: Sendable, Equatable {
    /// Frame time on the scanner's clock, s.
    public var seconds: Double
    /// Per-frame probability of each label, in the model's label order.
    public var probabilities: [Float]
    /// The temporal smoother's view over the last cardiac cycle, its mean probability, and for
    /// how many frames it has been that view.
    public var smoothedLabel: String
    public var smoothedConfidence: Float
    public var stableFrames: Int
    /// The model's predicted diagnostic quality of the frame as each label (label order; 0 for
    /// labels it has none for, such as OTHER), and its mean over the smoother's window. Both
    /// empty when the model has no quality output: the planner then climbs the probability.
    public var quality: [Float] = []
    public var smoothedQuality: [Float] = []
    /// Measured probe pose and axial contact force when the frame arrived.
    public var probe: Pose
    public var forceN: Double
    /// The probe's frame number (a recording's reference to the image).
    public var frame: UInt64

    public init(seconds: Double, probabilities: [Float], smoothedLabel: String, smoothedConfidence: Float,
                stableFrames: Int, probe: Pose, forceN: Double, frame: UInt64 = 0) {
        self.frame = frame
        self.seconds = seconds
        self.probabilities = probabilities
        self.smoothedLabel = smoothedLabel
        self.smoothedConfidence = smoothedConfidence
        self.stableFrames = stableFrames
        self.probe = probe
        self.forceN = forceN
    }
}

/// A probe target the planner proposes: the planned pose (before the contact-force
/// controller's offset along the beam) and how fast to get there.
public struct ProbeTarget: Sendable, Equatable {
    public var pose: Pose
    public var speedMMs: Double
    public var angularSpeedRadS: Double
}

/// How a proposed move ended.
public enum MoveOutcome: Sendable, Equatable {
    case finished
    /// The motion controller refused the target or cancelled the move (out of reach, outside
    /// the workspace, cannot be tracked): the planner tries elsewhere.
    case rejected(String)
}

/// Why the scan cannot go on: the controller left the scanning state (stop, fault, e-stop,
/// operator), the operator cancelled, or the probe stopped delivering frames.
public enum ScanInterruption: Error, Sendable, Equatable, CustomStringConvertible {
    case stopped(String)
    case cancelled
    case noFrames(String)

    public var description: String {
        switch self {
        case .stopped(let reason): "motion stopped: \(reason)"
        case .cancelled: "scan cancelled by the operator"
        case .noFrames(let reason): "no probe frames: \(reason)"
        }
    }
}

/// What the planner tells the world as it goes.
public enum PlannerEvent: Sendable, Equatable {
    case viewStarted(StandardView)
    case windowReached(StandardView)
    case searching(StandardView, step: String)
    case viewAcquired(ViewOutcome)
    case clipStarted(StandardView)
    case clipEnded(StandardView)
    case viewFailed(ViewOutcome)
}

/// The world as the planner acts on it: the motion controller (which decides whether a
/// proposal is carried out) and the stream of classified frames. The daemon implements it over
/// `MotionController` and the frame pipeline; tests over a synthetic scene.
public protocol ScanEnvironment: AnyObject {
    /// Labels of the classifier's probability vector.
    var labels: [String] { get }
    /// The rate the probe delivers frames at, frames/s: what turns a number of frames into time.
    var framesPerSecond: Double { get }
    /// The latest measured probe pose and axial force, and the scanner's clock, s.
    func measured() -> (probe: Pose, forceN: Double, seconds: Double)
    /// Proposes a move; returns once it has finished or was rejected, handing over every
    /// frame that arrives meanwhile.
    func move(to target: ProbeTarget, frame: (ViewObservation) -> Void) throws(ScanInterruption) -> MoveOutcome
    /// Sets the contact force to hold along the beam (nil: position control only).
    func setContact(forceN: Double?) throws(ScanInterruption)
    /// Hands over frames for up to `seconds`, or until `frame` returns false.
    func observe(seconds: Double, frame: (ViewObservation) -> Bool) throws(ScanInterruption)
    func report(_ event: PlannerEvent)
    /// In simulation, the simulator's mean true quality of `view` over `frames` (each frame's
    /// measured probe pose, force and time); nil where there is no simulator (hardware, replay).
    /// Scoring only: the planner never decides on it.
    func trueQuality(of view: StandardView, over frames: [ViewObservation]) -> Double?
}

extension ScanEnvironment {
    public func trueQuality(of view: StandardView, over frames: [ViewObservation]) -> Double? { nil }
}
