public import SonoCore

/// An ordered list of target views: the exam.
public struct ScanProtocol: Sendable, Equatable, CustomStringConvertible {
    public static let standard = ScanProtocol(unchecked: [.plax, .psax, .a4c, .a2c])
    public let views: [StandardView]

    private init(unchecked views: [StandardView]) { self.views = views }

    /// Parses "PLAX,PSAX,A4C" against the views the prior and the model both know.
    public init(parsing text: String, known: Set<StandardView>) throws(PlannerError) {
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        try self.init(names: names, known: known)
    }

    /// Views by name (any case), each of which must be known.
    public init(names: [String], known: Set<StandardView>) throws(PlannerError) {
        var views: [StandardView] = []
        for name in names {
            guard let view = StandardView(name: name), known.contains(view) else {
                throw .unknownView(name.uppercased(), known: known.map(\.rawValue).sorted())
            }
            views.append(view)
        }
        try self.init(views: views, known: known)
    }

    public init(views: [StandardView], known: Set<StandardView>) throws(PlannerError) {
        guard !views.isEmpty else { throw .emptyProtocol }
        for view in views where !known.contains(view) {
            throw .unknownView(view.rawValue, known: known.map(\.rawValue).sorted())
        }
        self.views = views
    }

    /// The names, as the API and the recording write them.
    public var names: [String] { views.map(\.rawValue) }

    public var description: String { names.joined(separator: ",") }
}

/// How the planner searches. Defaults are for the virtual patient's probe (30 fps) and the
/// shipped classifier; each is a value a site may tune in sono.toml's `[planner]`.
public struct PlannerSettings: Sendable, Equatable, Codable {
    /// Contact force held while searching and recording, N.
    public var contactForceN = 8.0
    /// The probe starts this far back from the window along the beam and the contact force
    /// controller brings it onto the skin, mm.
    public var hoverMM = 15.0
    /// Height above the higher of two windows to travel between them, mm.
    public var clearanceMM = 40.0
    /// A view is given up after this long, s.
    public var viewTimeoutSeconds = 60.0
    /// With a model that predicts quality: the smoothed predicted quality at or above which a
    /// view is diagnostic and acquired (held for `holdSeconds`).
    public var acquireQuality: Float = 0.7
    /// With quality: refinement goes on climbing until the predicted quality reaches this (or
    /// the climb converges above `acquireQuality`), so that the hold starts with a margin.
    public var targetQuality: Float = 0.85
    /// With a model without quality: the smoothed confidence at or above which a view counts as seen.
    public var acquireConfidence: Float = 0.8
    /// A per-frame score (predicted quality, or probability without one) at or above which a
    /// search step has found the view's region.
    public var signalProbability: Float = 0.35
    /// How long the view must be held: at least one cardiac cycle at 40 beats/min, the slowest
    /// heart the planner expects (it does not know the patient's rate), s.
    public var holdSeconds = 1.5
    /// The clip is the frames of the hold: it lasts the longer of this and `holdSeconds`, s.
    public var clipSeconds = 2.0
    /// Frames observed at each search pose (after the probe settles there): 0.3 s, more than a
    /// cardiac cycle at 200 /min, so the score does not swing with the cycle's phase.
    public var dwellFrames = 9
    /// Speeds while sliding over the skin.
    public var slideSpeedMMs = 20.0
    public var turnSpeedRadS = 0.5
    /// Speed of the moves between windows, in air.
    public var travelSpeedMMs = 50.0
    /// Window search: rings of candidate windows around the prior, mm apart, out to this radius.
    public var ringStepMM = 7.0
    public var searchRadiusMM = 28.0
    /// Refinement steps (halved each round): slide, rotation about the beam and tilt.
    public var refineSlideMM = 5.0
    public var refineRotationDeg = 10.0
    public var refineTiltDeg = 6.0

    public init() {}

    /// Decodes recorded settings; a field a recording predates takes its default (so sessions
    /// recorded before a setting existed still replay).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = PlannerSettings()
        contactForceN = try c.decodeIfPresent(Double.self, forKey: .contactForceN) ?? d.contactForceN
        hoverMM = try c.decodeIfPresent(Double.self, forKey: .hoverMM) ?? d.hoverMM
        clearanceMM = try c.decodeIfPresent(Double.self, forKey: .clearanceMM) ?? d.clearanceMM
        viewTimeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .viewTimeoutSeconds) ?? d.viewTimeoutSeconds
        acquireQuality = try c.decodeIfPresent(Float.self, forKey: .acquireQuality) ?? d.acquireQuality
        targetQuality = try c.decodeIfPresent(Float.self, forKey: .targetQuality) ?? d.targetQuality
        acquireConfidence = try c.decodeIfPresent(Float.self, forKey: .acquireConfidence) ?? d.acquireConfidence
        signalProbability = try c.decodeIfPresent(Float.self, forKey: .signalProbability) ?? d.signalProbability
        holdSeconds = try c.decodeIfPresent(Double.self, forKey: .holdSeconds) ?? d.holdSeconds
        clipSeconds = try c.decodeIfPresent(Double.self, forKey: .clipSeconds) ?? d.clipSeconds
        dwellFrames = try c.decodeIfPresent(Int.self, forKey: .dwellFrames) ?? d.dwellFrames
        slideSpeedMMs = try c.decodeIfPresent(Double.self, forKey: .slideSpeedMMs) ?? d.slideSpeedMMs
        turnSpeedRadS = try c.decodeIfPresent(Double.self, forKey: .turnSpeedRadS) ?? d.turnSpeedRadS
        travelSpeedMMs = try c.decodeIfPresent(Double.self, forKey: .travelSpeedMMs) ?? d.travelSpeedMMs
        ringStepMM = try c.decodeIfPresent(Double.self, forKey: .ringStepMM) ?? d.ringStepMM
        searchRadiusMM = try c.decodeIfPresent(Double.self, forKey: .searchRadiusMM) ?? d.searchRadiusMM
        refineSlideMM = try c.decodeIfPresent(Double.self, forKey: .refineSlideMM) ?? d.refineSlideMM
        refineRotationDeg = try c.decodeIfPresent(Double.self, forKey: .refineRotationDeg) ?? d.refineRotationDeg
        refineTiltDeg = try c.decodeIfPresent(Double.self, forKey: .refineTiltDeg) ?? d.refineTiltDeg
    }
}
