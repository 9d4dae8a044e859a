// What a session report shows: a plain data model, filled by whoever reads the session (the
// recorder's reader, a test), so the report knows nothing about how a session is stored.

/// One scalar sample: `t` seconds from the session's start.
public struct TimedValue: Sendable, Equatable {
    public var t: Double
    public var value: Double

    public init(t: Double, value: Double) {
        self.t = t
        self.value = value
    }
}

/// One position sample: `t` seconds from the session's start, x, y, z in millimetres.
public struct TimedPoint: Sendable, Equatable {
    public var t: Double
    public var x, y, z: Double

    public init(t: Double, x: Double, y: Double, z: Double) {
        self.t = t
        self.x = x
        self.y = y
        self.z = z
    }
}

/// Something that happened at one moment of the session.
public struct ReportMarker: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case stop, fault, estop, viewAcquired, viewFailed, stateChange
        case `operator`
    }

    public var t: Double
    public var kind: Kind
    /// What a person reads: the stop's reason, the fault, the new state (for `.stateChange`, the
    /// state's name alone: it labels the timeline's band), the operator's command.
    public var text: String
    /// The view this marker is about (`.viewAcquired`, `.viewFailed`), to colour it as that view's
    /// confidence curve; nil for the others.
    public var view: String?

    public init(t: Double, kind: Kind, text: String, view: String? = nil) {
        self.t = t
        self.kind = kind
        self.text = text
        self.view = view
    }
}

/// An 8-bit grayscale image, rows top to bottom: `pixels[y * width + x]`.
public struct ReportImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// The outcome of one target view of the scan.
public struct ReportView: Sendable, Equatable {
    public var name: String
    public var acquired: Bool
    /// From the start of this view's search to its acquisition (or to giving up).
    public var secondsToAcquire: Double?
    /// The smoothed classifier confidence when acquired (or the best one seen).
    public var confidence: Double?
    /// Distance from the reference pose, as the recorder words it (e.g. "4.2 mm, 3.1°").
    public var poseError: String?
    public var keyFrame: ReportImage?
    /// Why the view was not acquired.
    public var reason: String?
    /// The model's predicted diagnostic quality 0…1 of the view when acquired (or the best seen);
    /// nil with a model that predicts none.
    public var predictedQuality: Double?
    /// Simulation only: the simulator's true quality of the view over the acquired clip; an
    /// acquired view below the diagnostic line is a false acquisition.
    public var trueQuality: Double?

    public init(name: String, acquired: Bool, secondsToAcquire: Double? = nil, confidence: Double? = nil,
                poseError: String? = nil, keyFrame: ReportImage? = nil, reason: String? = nil,
                predictedQuality: Double? = nil, trueQuality: Double? = nil) {
        self.name = name
        self.acquired = acquired
        self.secondsToAcquire = secondsToAcquire
        self.confidence = confidence
        self.poseError = poseError
        self.keyFrame = keyFrame
        self.reason = reason
        self.predictedQuality = predictedQuality
        self.trueQuality = trueQuality
    }
}

/// Everything one session report shows. Text fields come from recordings: the report escapes all
/// of them. Series need not be sorted; non-finite samples are skipped.
public struct SessionReportData: Sendable {
    /// e.g. "Scan of default.toml (simulation)".
    public var title: String
    /// Key facts under the title. Known keys come first in this order (case-insensitive): patient,
    /// started, duration, model, sono version, outcome; any others follow alphabetically.
    public var subtitle: [String: String]
    /// Contact force along the probe axis (N) over time.
    public var forceN: [TimedValue]
    public var forceTargetN: Double?
    public var forceSoftLimitN: Double
    public var forceHardCapN: Double
    /// Per view label (PLAX, PSAX, A4C, A2C, SC4C, OTHER): the smoothed classifier probability 0…1.
    public var confidence: [String: [TimedValue]]
    /// The confidence a view must hold to be acquired (drawn as a line); nil draws none.
    public var confidenceThreshold: Double?
    /// Per view label, with a model that predicts quality: the smoothed predicted diagnostic
    /// quality 0…1. When there is any, the report plots it instead of `confidence`.
    public var quality: [String: [TimedValue]]
    /// The smoothed predicted quality a view must hold to be acquired (the planner's
    /// `acquireQuality`, drawn as the diagnostic line); nil draws none.
    public var qualityThreshold: Double?

    /// A view is diagnostic when its true quality is at or above this: an acquired view whose
    /// true quality is below it is a false acquisition.
    public static let diagnosticQuality = 0.7
    /// The probe tip (mm, robot base frame) over time.
    public var probePathMM: [TimedPoint]
    public var markers: [ReportMarker]
    /// One per target view, in scan order.
    public var views: [ReportView]
    /// e.g. frames recorded / dropped, messages, file size; shown sorted by key.
    public var counters: [String: String]

    public init(title: String, subtitle: [String: String] = [:], forceN: [TimedValue] = [],
                forceTargetN: Double? = nil, forceSoftLimitN: Double, forceHardCapN: Double,
                confidence: [String: [TimedValue]] = [:], confidenceThreshold: Double? = nil,
                quality: [String: [TimedValue]] = [:], qualityThreshold: Double? = nil,
                probePathMM: [TimedPoint] = [], markers: [ReportMarker] = [], views: [ReportView] = [],
                counters: [String: String] = [:]) {
        self.title = title
        self.subtitle = subtitle
        self.forceN = forceN
        self.forceTargetN = forceTargetN
        self.forceSoftLimitN = forceSoftLimitN
        self.forceHardCapN = forceHardCapN
        self.confidence = confidence
        self.confidenceThreshold = confidenceThreshold
        self.quality = quality
        self.qualityThreshold = qualityThreshold
        self.probePathMM = probePathMM
        self.markers = markers
        self.views = views
        self.counters = counters
    }
}
