import Foundation
import SonoCore
import SonoGeometry
import SonoPlanner

/// One call of the planner to its environment and what the environment answered: the planner's
/// whole view of the world. The planner is deterministic given these answers, so a replay that
/// gives the same answers must see the same calls (targets, contact forces, observation lengths).
struct PlannerCall: Codable, Equatable {
    enum Kind: String, Codable { case scan, measured, move, contact, observe, report, truth, end }
    var call: Kind
    // scan
    var views: [String]?
    var settings: PlannerSettings?
    // measured
    var probe: PoseRecord?
    var forceN: Double?
    var seconds: Double?
    // move
    var target: TargetRecord?
    var outcome: String?
    // observe: `seconds`; move and observe: the frames handed over
    var frames: [ObservationRecord]?
    /// The interruption the call threw, if any.
    var error: InterruptionRecord?
    /// report: what the planner reported.
    var plannerEvent: PlannerEventJSON?
    /// end: the scan's outcome as text ("3/4 views").
    var event: String?
    /// truth: the view whose true quality the planner asked for, and the simulator's answer
    /// (absent on hardware).
    var view: String?
    var quality: Double?

    enum CodingKeys: String, CodingKey {
        case call, views, settings, probe, forceN = "force_n", seconds, target, outcome, frames, error,
             plannerEvent = "planner_event", event, view, quality
    }

    /// The calls of `/planner/io`, by `call`.
    static let catalog = EventCatalog(
        title: "one call of the planner to its environment and the answer (docs/RECORDING.md, Planner calls)",
        discriminator: "call",
        types: [
            EventType(name: "scan", title: "a scan started with these views and settings",
                      fields: [.required("views", .strings), .required("settings", .object)]),
            EventType(name: "measured", title: "the planner read the measured pose, force (N) and clock (s)", fields: [
                .required("probe", .object), .required("force_n", .number), .required("seconds", .number),
            ]),
            EventType(name: "move", title: "a proposed move, its outcome and the frames meanwhile", fields: [
                .required("target", .object), .optional("outcome", .string), .optional("frames", .objects),
                .optional("error", .object),
            ]),
            EventType(name: "contact", title: "the contact force set (absent: position control only)",
                      fields: [.optional("force_n", .number), .optional("error", .object)]),
            EventType(name: "observe", title: "frames observed for up to `seconds`", fields: [
                .required("seconds", .number), .optional("outcome", .oneOf(["timeout", "enough"])),
                .optional("frames", .objects), .optional("error", .object),
            ]),
            EventType(name: "report", title: "the planner reported an event",
                      fields: [.required("planner_event", .nested(PlannerEventJSON.catalog))]),
            EventType(name: "truth", title: "in simulation, the simulator's mean true quality of the view over a clip (scoring only)",
                      fields: [.required("view", .string), .optional("quality", .number)]),
            EventType(name: "end", title: "the scan ended", fields: [.optional("event", .string)]),
        ])
}

struct PoseRecord: Codable, Equatable {
    var position: [Double]
    var rotation: [Double]

    init(_ pose: Pose) {
        position = [pose.position.x, pose.position.y, pose.position.z]
        let r = pose.rotation
        rotation = [r.x.x, r.x.y, r.x.z, r.y.x, r.y.y, r.y.z, r.z.x, r.z.y, r.z.z]
    }

    var pose: Pose? {
        guard position.count == 3, rotation.count == 9 else { return nil }
        let r = rotation
        return Pose(rotation: Rotation(x: Vector3(r[0], r[1], r[2]), y: Vector3(r[3], r[4], r[5]), z: Vector3(r[6], r[7], r[8])),
                    position: Vector3(position[0], position[1], position[2]))
    }
}

struct TargetRecord: Codable, Equatable {
    var pose: PoseRecord
    var speedMMs: Double
    var angularSpeedRadS: Double
    enum CodingKeys: String, CodingKey { case pose, speedMMs = "speed_mm_s", angularSpeedRadS = "angular_speed_rad_s" }

    init(_ target: ProbeTarget) {
        pose = PoseRecord(target.pose)
        speedMMs = target.speedMMs
        angularSpeedRadS = target.angularSpeedRadS
    }
}

struct ObservationRecord: Codable, Equatable {
    var frame: UInt64
    var seconds: Double
    var probabilities: [Float]
    var smoothedLabel: String
    var smoothedConfidence: Float
    var stableFrames: Int
    var probe: PoseRecord
    var forceN: Double
    /// With a model that predicts quality (label order); absent without.
    var quality: [Float]?
    var smoothedQuality: [Float]?
    enum CodingKeys: String, CodingKey {
        case frame, seconds, probabilities, smoothedLabel = "smoothed_label", smoothedConfidence = "smoothed_confidence",
             stableFrames = "stable_frames", probe, forceN = "force_n", quality, smoothedQuality = "smoothed_quality"
    }

    init(_ o: ViewObservation) {
        frame = o.frame
        seconds = o.seconds
        probabilities = o.probabilities
        smoothedLabel = o.smoothedLabel
        smoothedConfidence = o.smoothedConfidence
        stableFrames = o.stableFrames
        probe = PoseRecord(o.probe)
        forceN = o.forceN
        quality = o.quality.isEmpty ? nil : o.quality
        smoothedQuality = o.smoothedQuality.isEmpty ? nil : o.smoothedQuality
    }

    var observation: ViewObservation {
        var observation = ViewObservation(seconds: seconds, probabilities: probabilities, smoothedLabel: smoothedLabel,
                                          smoothedConfidence: smoothedConfidence, stableFrames: stableFrames,
                                          probe: probe.pose ?? .identity, forceN: forceN, frame: frame)
        observation.quality = quality ?? []
        observation.smoothedQuality = smoothedQuality ?? []
        return observation
    }
}

struct InterruptionRecord: Codable, Equatable {
    var kind: String
    var reason: String?

    init(_ interruption: ScanInterruption) {
        switch interruption {
        case .stopped(let reason): kind = "stopped"; self.reason = reason
        case .cancelled: kind = "cancelled"
        case .noFrames(let reason): kind = "no_frames"; self.reason = reason
        }
    }

    var interruption: ScanInterruption {
        switch kind {
        case "cancelled": .cancelled
        case "no_frames": .noFrames(reason ?? "")
        default: .stopped(reason ?? "")
        }
    }
}

enum PlannerTapeCoding {
    static func encode(_ call: PlannerCall) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(call)).map { String(decoding: $0, as: UTF8.self) } ?? "{\"call\":\"\(call.call.rawValue)\"}"
    }
}

/// The planner's environment with every call and answer written to the recording.
final class RecordingScanEnvironment: ScanEnvironment {
    private let base: any ScanEnvironment
    private let write: (PlannerCall) -> Void

    init(base: any ScanEnvironment, write: @escaping (PlannerCall) -> Void) {
        self.base = base
        self.write = write
    }

    var labels: [String] { base.labels }
    var framesPerSecond: Double { base.framesPerSecond }

    func measured() -> (probe: Pose, forceN: Double, seconds: Double) {
        let measured = base.measured()
        write(PlannerCall(call: .measured, probe: PoseRecord(measured.probe), forceN: measured.forceN, seconds: measured.seconds))
        return measured
    }

    func move(to target: ProbeTarget, frame: (ViewObservation) -> Void) throws(ScanInterruption) -> MoveOutcome {
        var call = PlannerCall(call: .move, target: TargetRecord(target), frames: [])
        do {
            let outcome = try base.move(to: target) { observation in
                call.frames?.append(ObservationRecord(observation))
                frame(observation)
            }
            if case .rejected(let reason) = outcome { call.outcome = "rejected: " + reason } else { call.outcome = "finished" }
            write(call)
            return outcome
        } catch {
            call.error = InterruptionRecord(error)
            write(call)
            throw error
        }
    }

    func setContact(forceN: Double?) throws(ScanInterruption) {
        var call = PlannerCall(call: .contact, forceN: forceN)
        do {
            try base.setContact(forceN: forceN)
            write(call)
        } catch {
            call.error = InterruptionRecord(error)
            write(call)
            throw error
        }
    }

    func observe(seconds: Double, frame: (ViewObservation) -> Bool) throws(ScanInterruption) {
        var call = PlannerCall(call: .observe, seconds: seconds, frames: [])
        call.outcome = "timeout"
        do {
            try base.observe(seconds: seconds) { observation in
                call.frames?.append(ObservationRecord(observation))
                let more = frame(observation)
                if !more { call.outcome = "enough" }
                return more
            }
            write(call)
        } catch {
            call.error = InterruptionRecord(error)
            write(call)
            throw error
        }
    }

    func report(_ event: PlannerEvent) {
        write(PlannerCall(call: .report, plannerEvent: PlannerEventJSON(event)))
        base.report(event)
    }

    func trueQuality(of view: StandardView, over frames: [ViewObservation]) -> Double? {
        let quality = base.trueQuality(of: view, over: frames)
        write(PlannerCall(call: .truth, view: view.rawValue, quality: quality))
        return quality
    }
}
