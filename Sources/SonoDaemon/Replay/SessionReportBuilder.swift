import Foundation
import SonoGeometry
import SonoMotion
import SonoPlanner
import SonoProtocol
import SonoRecord
public import SonoReport

/// Reads a recording into what the session report shows: contact force against the limits,
/// the classifier's smoothed predicted quality of each view against the diagnostic line (or,
/// from a model without quality, its smoothed probability), the probe's path (forward kinematics of
/// the recorded joint states with the recording's own arm description), stops, faults, state
/// changes and views, and each acquired view's last frame before it was reported.
public enum SessionReportBuilder {
    public static func build(path: String, tolerant: Bool = false) throws(ReplayError) -> SessionReportData {
        let reader: MCAPReader
        do { reader = try MCAPReader(path: path) } catch { throw .unreadable("\(error)") }
        let decoder = JSONDecoder()
        let apiDecoder = APICoding.decoder()  // the control socket's events are snake_case by strategy

        var start: UInt64?
        var force: [TimedValue] = []
        var joints: [(t: Double, q: [Double])] = []
        var lastJointSample = -1.0
        var probabilities: [String: [TimedValue]] = [:]
        /// The smoothed predicted quality per label, as recorded (the planner's smoother).
        var quality: [String: [TimedValue]] = [:]
        var windows: [String: [Float]] = [:]
        var markers: [ReportMarker] = []
        var views: [ReportView] = []
        var latestImage: ReportImage?
        var frames = 0
        var contactTarget: Double?
        var threshold: Double?
        var qualityThreshold: Double?
        let metadata = { reader.metadata.first { $0.name == "sono" }?.entries ?? [:] }
        var labels: [String] = []

        let result: MCAPReadResult
        do {
            result = try reader.forEachMessage(tolerant: tolerant) { message in
                let origin = start ?? message.logTime
                start = origin
                let t = Double(Int64(bitPattern: message.logTime &- origin)) / 1e9
                switch message.channel.topic {
                case "/force":
                    if let sample = try? decoder.decode(ForceRecord.self, from: Data(message.data)) {
                        force.append(TimedValue(t: t, value: Double(sample.fz)))
                    }
                case "/joints":
                    // 50 Hz is plenty for a path a person looks at.
                    guard t - lastJointSample >= 0.02,
                          let state = try? decoder.decode(JointRecord.self, from: Data(message.data)) else { return }
                    lastJointSample = t
                    joints.append((t, state.position.map(Double.init)))
                case "/classifier":
                    guard let record = try? decoder.decode(RecordedClassification.self, from: Data(message.data)) else { return }
                    if labels.isEmpty { labels = metadata()["labels"]?.split(separator: ",").map(String.init) ?? record.probabilities.keys.sorted() }
                    // The planner's smoother: the mean over one second of frames (30 at 30 fps).
                    for (label, p) in record.probabilities {
                        var window = windows[label, default: []]
                        window.append(p)
                        if window.count > 30 { window.removeFirst() }
                        windows[label] = window
                        probabilities[label, default: []].append(TimedValue(t: t, value: Double(window.reduce(0, +)) / Double(window.count)))
                    }
                    for (label, q) in record.smoothedQuality ?? [:] {
                        quality[label, default: []].append(TimedValue(t: t, value: Double(q)))
                    }
                case "/probe/image":
                    frames += 1
                    if let image = RawImageMessage(protobuf: message.data) {
                        latestImage = ReportImage(width: image.width, height: image.height, pixels: image.pixels)
                    }
                case "/planner/io":
                    // The settings' fields one by one: a recording from before a setting existed still has the others.
                    if let call = try? decoder.decode(ScanCallRecord.self, from: Data(message.data)), call.call == "scan",
                       let settings = call.settings {
                        contactTarget = settings.contactForceN ?? contactTarget
                        threshold = settings.acquireConfidence ?? threshold
                        qualityThreshold = settings.acquireQuality ?? qualityThreshold
                    }
                case "/events":
                    guard let event = try? apiDecoder.decode(EventRecord.self, from: Data(message.data)) else { return }
                    switch event.name {
                    case "stop":
                        let stop = event.stop
                        markers.append(ReportMarker(t: t, kind: stop?.cause == "emergency_stop" ? .estop : .stop,
                                                    text: "\(stop?.kind ?? "stop"): \(stop?.cause ?? "")"
                                                        + (stop?.value.map { " \($0) (limit \(stop?.limit ?? 0))" } ?? "")))
                    case "fault":
                        markers.append(ReportMarker(t: t, kind: .fault, text: "\(event.fault?.board ?? "board"): \(event.fault?.code ?? "fault")"))
                    case "state":
                        markers.append(ReportMarker(t: t, kind: .stateChange, text: event.state?.to ?? "?"))
                    case "view_acquired", "view_failed":
                        guard let view = event.view else { return }
                        markers.append(ReportMarker(t: t, kind: view.acquired ? .viewAcquired : .viewFailed,
                                                    text: view.acquired ? "\(view.view) acquired" : "\(view.view) not found", view: view.view))
                        let error = view.poseError.map {
                            String(format: "%.1f mm, beam %.1f°, rotation %.1f° (simulator: %@)", $0.positionMM, $0.beamDeg,
                                   $0.rotationDeg, $0.truthView)
                        }
                        views.append(ReportView(name: view.view, acquired: view.acquired, secondsToAcquire: view.seconds,
                                                confidence: view.confidence, poseError: error,
                                                keyFrame: view.acquired ? latestImage : nil, reason: view.reason,
                                                predictedQuality: view.predictedQuality, trueQuality: view.trueQuality))
                    default:
                        break
                    }
                default:
                    break
                }
            }
        } catch {
            throw .unreadable("\(error) (report on the readable part with --tolerant)")
        }

        // The probe's path: the recording's arm, forward kinematics of each kept joint state.
        var probePath: [TimedPoint] = []
        var softLimit = 12.0, hardCap = 20.0
        let files = AttachedFiles(reader)
        if let armFile = files.path("arm.toml"), let robot = try? RobotDescription.load(path: armFile), let arm = try? ArmModel(robot) {
            for sample in joints where sample.q.count == arm.jointCount {
                let p = arm.probePose(JointArray(sample.q, filler: 0)).position
                probePath.append(TimedPoint(t: sample.t, x: p.x, y: p.y, z: p.z))
            }
        }
        // The report only shows the run's limits (nothing moves): a simulation recording's profile
        // is read as the simulation it came from.
        if let safetyFile = files.path("safety.toml"),
           let limits = try? SafetyLimits.load(path: safetyFile, simulation: metadata()["mode"] == "simulation") {
            softLimit = limits.forceSoftLimitN
            hardCap = limits.forceHardCapN
        }

        // Labels the model predicts no quality for (OTHER) are recorded as 0 throughout: not plotted.
        quality = quality.filter { $0.value.contains { $0.value > 0 } }
        if !quality.isEmpty && qualityThreshold == nil { qualityThreshold = Double(PlannerSettings().acquireQuality) }

        let facts = metadata()
        let duration = max(force.last?.t ?? 0, probabilities.values.compactMap { $0.last?.t }.max() ?? 0)
        let acquired = views.filter(\.acquired).count
        var subtitle = ["started": facts["started"] ?? "unknown", "duration": String(format: "%.1f s", duration),
                        "model": facts["model"] ?? "unknown", "sono version": facts["version"] ?? "unknown",
                        "outcome": views.isEmpty ? "no scan" : "\(acquired)/\(views.count) views acquired"]
        if let patient = facts["patient"] { subtitle["patient"] = patient }
        let name = URL(fileURLWithPath: path).lastPathComponent
        var fileSize = 0
        if let attributes = try? FileManager.default.attributesOfItem(atPath: path), let size = attributes[.size] as? Int { fileSize = size }
        return SessionReportData(
            title: "Session \(name) (\(facts["mode"] ?? "unknown mode"))", subtitle: subtitle, forceN: force,
            forceTargetN: contactTarget, forceSoftLimitN: softLimit, forceHardCapN: hardCap, confidence: probabilities,
            confidenceThreshold: threshold, quality: quality, qualityThreshold: qualityThreshold,
            probePathMM: probePath, markers: markers, views: views,
            counters: ["messages": "\(result.messages)", "probe frames recorded": "\(frames)",
                       "file size": String(format: "%.1f MB", Double(fileSize) / 1e6),
                       "file": result.complete ? "complete" : "incomplete: \(result.damage.map { "\($0)" } ?? "no summary")"])
    }
}

private struct ForceRecord: Decodable { var fz: Float }
private struct JointRecord: Decodable { var position: [Float] }

/// A `/planner/io` call, read for the `scan` call's settings the report draws (PlannerSettings'
/// own keys; each optional, so that settings recorded before one existed still give the others).
private struct ScanCallRecord: Decodable {
    struct Settings: Decodable {
        var contactForceN: Double?
        var acquireConfidence: Double?
        var acquireQuality: Double?
    }
    var call: String
    var settings: Settings?
}

/// An `/events` message (DaemonEventJSON): the control socket's event, its name as `type` and
/// its data's fields beside it.
private struct EventRecord: Decodable {
    var name: String
    var stop: StopJSON?
    var fault: FaultJSON?
    var state: StateChangeJSON?
    var view: ViewResultJSON?

    enum CodingKeys: String, CodingKey { case type }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .type)
        switch name {
        case "stop": stop = try? StopJSON(from: decoder)
        case "fault": fault = try? FaultJSON(from: decoder)
        case "state": state = try? StateChangeJSON(from: decoder)
        case "view_acquired", "view_failed": view = try? ViewResultJSON(from: decoder)
        default: break
        }
    }
}
