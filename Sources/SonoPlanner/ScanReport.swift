public import SonoCore
public import SonoGeometry

/// How one view of the protocol went.
public struct ViewOutcome: Sendable, Equatable {
    public var view: StandardView
    public var acquired: Bool
    /// From the start of this view (travel included) to the view held, or to giving up, s.
    public var seconds: Double
    /// Measured probe pose where the view was held (or the best pose found).
    public var pose: Pose?
    /// The smoothed confidence at the end of the hold (or the best seen).
    public var confidence: Float
    public var maxForceN: Double
    /// Why the view was not acquired.
    public var reason: String?
    /// Clip on the scanner's clock, s.
    public var clipStartSeconds: Double?
    public var clipEndSeconds: Double?
    /// The model's smoothed predicted quality of the view at the end of the hold (or the best
    /// seen); nil when the model predicts none.
    public var predictedQuality: Float?
    /// In simulation, the simulator's mean true quality of the view over the clip's frames
    /// (`ScanEnvironment.trueQuality`); nil on hardware.
    public var trueQuality: Double?

    public init(view: StandardView, acquired: Bool, seconds: Double, pose: Pose?, confidence: Float, maxForceN: Double,
                reason: String? = nil) {
        self.view = view
        self.acquired = acquired
        self.seconds = seconds
        self.pose = pose
        self.confidence = confidence
        self.maxForceN = maxForceN
        self.reason = reason
    }
}

/// The whole scan: one outcome per view of the protocol, in order, and why it ended early if it did.
public struct ScanReport: Sendable, Equatable {
    public var outcomes: [ViewOutcome]
    public var interruption: ScanInterruption?
    public var seconds: Double

    public var acquiredCount: Int { outcomes.filter(\.acquired).count }
}
