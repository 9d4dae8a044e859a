import SonoCore
import SonoPlanner

/// What the planner reported (`PlannerEvent`), as the `report` calls of `/planner/io` hold it
/// in their `planner_event` field: a `type` and named fields (docs/RECORDING.md, "Planner events").
struct PlannerEventJSON: Codable, Equatable {
    var type: String
    var view: String
    var step: String?
    // view_acquired / view_failed
    var acquired: Bool?
    var durationS: Double?
    var confidence: Float?
    var maxForceN: Double?
    var reason: String?
    var pose: PoseRecord?
    var clipStartS: Double?
    var clipEndS: Double?
    var predictedQuality: Float?
    var trueQuality: Double?

    enum CodingKeys: String, CodingKey {
        case type, view, step, acquired, durationS = "duration_s", confidence, maxForceN = "max_force_n", reason, pose,
             clipStartS = "clip_start_s", clipEndS = "clip_end_s", predictedQuality = "predicted_quality",
             trueQuality = "true_quality"
    }

    init(_ event: PlannerEvent) {
        switch event {
        case .viewStarted(let view): self.init(type: "view_started", view: view)
        case .windowReached(let view): self.init(type: "window_reached", view: view)
        case .searching(let view, let step):
            self.init(type: "searching", view: view)
            self.step = step
        case .viewAcquired(let outcome): self.init(type: "view_acquired", outcome)
        case .clipStarted(let view): self.init(type: "clip_started", view: view)
        case .clipEnded(let view): self.init(type: "clip_ended", view: view)
        case .viewFailed(let outcome): self.init(type: "view_failed", outcome)
        }
    }

    private init(type: String, view: StandardView) {
        self.type = type
        self.view = view.rawValue
    }

    private init(type: String, _ outcome: ViewOutcome) {
        self.init(type: type, view: outcome.view)
        acquired = outcome.acquired
        durationS = EventCoding.finite(outcome.seconds)
        confidence = outcome.confidence.isFinite ? outcome.confidence : nil
        maxForceN = EventCoding.finite(outcome.maxForceN)
        reason = outcome.reason
        pose = outcome.pose.map(PoseRecord.init)
        clipStartS = outcome.clipStartSeconds.flatMap(EventCoding.finite)
        clipEndS = outcome.clipEndSeconds.flatMap(EventCoding.finite)
        predictedQuality = outcome.predictedQuality.flatMap { $0.isFinite ? $0 : nil }
        trueQuality = outcome.trueQuality.flatMap(EventCoding.finite)
    }

    private static let outcomeFields: [EventField] = [
        .required("view", .string), .required("acquired", .boolean), .optional("duration_s", .number),
        .optional("confidence", .number), .optional("max_force_n", .number), .optional("reason", .string),
        .optional("pose", .object), .optional("clip_start_s", .number), .optional("clip_end_s", .number),
        .optional("predicted_quality", .number), .optional("true_quality", .number),
    ]

    static let catalog = EventCatalog(title: "a planner event (docs/RECORDING.md, Planner events)", types: [
        EventType(name: "view_started", title: "the planner started on a view", fields: [.required("view", .string)]),
        EventType(name: "window_reached", title: "the probe reached the view's acoustic window",
                  fields: [.required("view", .string)]),
        EventType(name: "searching", title: "a search step for the view",
                  fields: [.required("view", .string), .required("step", .string)]),
        EventType(name: "view_acquired", title: "the view was held", fields: outcomeFields),
        EventType(name: "clip_started", title: "the view's clip started", fields: [.required("view", .string)]),
        EventType(name: "clip_ended", title: "the view's clip ended", fields: [.required("view", .string)]),
        EventType(name: "view_failed", title: "the planner gave up on the view", fields: outcomeFields),
    ])
}
