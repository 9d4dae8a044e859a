public import Foundation
import SonoCore
import SonoGeometry
import SonoMotion
import SonoPlanner
import SonoProtocol
import SonoRecord
import SonoSim
import SonoVision

/// How to replay a recording.
public struct ReplayOptions: Sendable {
    /// Multiple of real time (1 = as recorded); nil: as fast as possible.
    public var rate: Double?
    /// Another model to classify the recorded frames with (default: the recording's).
    public var modelPath: String?
    /// Replay the readable part of a damaged file instead of refusing it.
    public var tolerant = false
    /// Called about five times a second with (recorded seconds done, recorded seconds in all).
    public var progress: (@Sendable (Double, Double) -> Void)?

    public init() {}
}

/// One replayed stream against the recording.
public struct StreamComparison: Sendable, Codable {
    public var stream: String
    public var compared: Int
    public var diverged: Int
    /// Every divergence, as text (the printed report shows the first ten of each stream).
    public var divergences: [String]
    /// Something to know about the comparison that is not a divergence (e.g. the recording ends early).
    public var note: String?
}

/// What a replay did and found.
public struct ReplayReport: Sendable, Codable, CustomStringConvertible {
    public var path: String
    public var recordedSeconds: Double
    public var wallSeconds: Double
    public var messages: Int
    public var streams: [StreamComparison]
    /// Why the file could not be read to its end (tolerant replays only).
    public var damage: String?

    public var identical: Bool { streams.allSatisfy { $0.diverged == 0 } }

    /// The whole comparison as JSON (every divergence of every stream): `--compare FILE`.
    public func json() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return (try? encoder.encode(self)) ?? Data()
    }

    public var description: String {
        var lines = ["Replay of \(path): \(messages) messages, \(String(format: "%.1f", recordedSeconds)) s recorded, "
            + "replayed in \(String(format: "%.1f", wallSeconds)) s (\(String(format: "%.1f", recordedSeconds / max(wallSeconds, 1e-9)))× real time)"]
        if let damage { lines.append("  damaged file, replayed up to: \(damage)") }
        for stream in streams {
            lines.append("  \(stream.stream.padding(toLength: 30, withPad: " ", startingAt: 0)) \(stream.compared) compared, "
                + (stream.diverged == 0 ? "identical" : "\(stream.diverged) diverged") + (stream.note.map { " (\($0))" } ?? ""))
            for divergence in stream.divergences.prefix(10) { lines.append("      \(divergence)") }
            if stream.divergences.count > 10 {
                lines.append("      … and \(stream.divergences.count - 10) more (--compare FILE writes them all)")
            }
        }
        lines.append(identical ? "  replay identical to the recording" : "  replay DIVERGES from the recording")
        return lines.joined(separator: "\n")
    }
}

public enum ReplayError: Error, Sendable, CustomStringConvertible {
    case unreadable(String)
    case incomplete(String)

    public var description: String {
        switch self {
        case .unreadable(let reason): reason
        case .incomplete(let reason): "the recording cannot be replayed: \(reason)"
        }
    }
}

/// Replays a recording: the motion controller runs again on its recorded tape (the same inputs,
/// clock and commands), the view classifier on the recorded frames, and the planner against the
/// recorded answers of its environment with the replay's classifications; each stream's outputs
/// are compared with the recorded ones, message for message.
public enum SessionReplay {
    public static func run(path: String, options: ReplayOptions = .init()) throws(ReplayError) -> ReplayReport {
        let reader: MCAPReader
        do { reader = try MCAPReader(path: path) } catch { throw .unreadable("\(error)") }
        let started = Date()

        // The recorded span (for pacing and progress) from the summary; a file that was not closed
        // has none and is read once first (which also teaches the reader its attachments). Log
        // times are not monotonic in file order (the recorder's two lanes interleave), hence min/max.
        var span = reader.messageTimeRange
        if span == nil {
            var first: UInt64?
            var last: UInt64 = 0
            do {
                _ = try reader.forEachMessage(tolerant: true) { message in
                    first = min(first ?? message.logTime, message.logTime)
                    last = max(last, message.logTime)
                }
            } catch { throw .unreadable("\(error)") }
            span = first.map { $0...max($0, last) }
        }
        let start = span?.lowerBound ?? 0
        let total = Double((span?.upperBound ?? 0) - start) / 1e9
        let setup = try Setup(reader: reader, modelPath: options.modelPath)

        var motion = MotionTapeReplayer(arm: setup.arm, configuration: setup.motion)
        var recordedSent: [Message] = []
        var recordedEvents: [String] = []
        var frameClassifier = FrameClassifier(classifier: setup.classifier, framesPerSecond: setup.framesPerSecond)
        var replayedFrames: [UInt64: ObservationRecord] = [:]
        var recordedFrames: [UInt64: ObservationRecord] = [:]
        var plannerCalls: [PlannerCall] = []
        var decodeFailures: [String] = []
        var lastProgress = Date.distantPast
        let decoder = JSONDecoder()

        let result: MCAPReadResult
        do {
            result = try reader.forEachMessage(tolerant: options.tolerant) { message in
                let elapsed = Double(message.logTime >= start ? message.logTime - start : 0) / 1e9
                if let rate = options.rate {
                    let due = started.addingTimeInterval(elapsed / rate)
                    let wait = due.timeIntervalSinceNow
                    if wait > 0.001 { Thread.sleep(forTimeInterval: wait) }
                }
                if let progress = options.progress, Date().timeIntervalSince(lastProgress) > 0.2 {
                    lastProgress = Date()
                    progress(elapsed, total)
                }
                switch message.channel.topic {
                case "/motion/tape":
                    do {
                        let entry = try MotionTapeCodec.decode(message.data)
                        if case .sent(let sent, _) = entry { recordedSent.append(sent) }
                        motion.feed(entry)
                    } catch {
                        decodeFailures.append("motion tape message \(message.sequence): \(error)")
                    }
                case "/motion/events":
                    // Compared as text: the replay encodes its events with the same encoder.
                    recordedEvents.append(String(decoding: message.data, as: UTF8.self))
                case "/probe/image":
                    guard let image = RawImageMessage(protobuf: message.data) else {
                        decodeFailures.append("probe image \(message.sequence) is not a mono8 foxglove.RawImage")
                        return
                    }
                    let info = ProbeFrameInfo(frameNumber: UInt64(message.sequence), timestampMicros: image.timestampNanos / 1_000)
                    let observation = image.pixels.withUnsafeBufferPointer { buffer in
                        try? frameClassifier.observe(buffer, width: image.width, height: image.height, info: info,
                                                     probe: .identity, forceN: 0)
                    }
                    if let observation { replayedFrames[info.frameNumber] = ObservationRecord(observation) }
                case "/classifier":
                    if let record = try? decoder.decode(RecordedClassification.self, from: Data(message.data)) {
                        recordedFrames[record.frame] = record.observation(labels: setup.labels)
                    }
                case "/planner/io":
                    do { plannerCalls.append(try decoder.decode(PlannerCall.self, from: Data(message.data))) } catch {
                        decodeFailures.append("planner call: \(error)")
                    }
                default:
                    break
                }
            }
        } catch {
            throw .unreadable("\(error) (replay the readable part with --tolerant, or rewrite it with `sonoctl session recover`)")
        }
        motion.finish()
        options.progress?(total, total)

        // A run that did not end cleanly (crash, power loss, a cut copy) stops mid-cycle: the last
        // cycle's recorded outputs may be missing, so the motion streams are compared over what both have.
        let endedCleanly = reader.metadata.contains { $0.name == "sono.end" } && result.damage == nil
        var streams: [StreamComparison] = []
        let replayedEvents = motion.events.compactMap { event -> String? in
            if case .reply = event { return nil }
            return MotionEventJSON(event).text
        }
        var sentStream = compare("motion: messages to the arm", recorded: recordedSent, replayed: motion.sent,
                                 prefixOnly: !endedCleanly) { "\($0)" }
        var eventStream = compare("motion: safety events", recorded: recordedEvents.map(MotionEventJSON.withoutWriteTime),
                                  replayed: replayedEvents.map(MotionEventJSON.withoutWriteTime), prefixOnly: !endedCleanly) { $0 }
        if !endedCleanly {
            sentStream.note = "the recording ends without a clean shutdown: compared up to its end"
            eventStream.note = sentStream.note
        }
        streams += [sentStream, eventStream]
        streams.append(compareClassifications(recorded: recordedFrames, replayed: replayedFrames))
        streams.append(replayPlanner(plannerCalls, setup: setup, classifications: replayedFrames))
        let end = reader.metadata.first { $0.name == "sono.end" }?.entries ?? [:]
        if let lost = end["tape_overflows"].flatMap({ Int($0) }), lost > 0 {
            streams.append(StreamComparison(stream: "motion tape completeness", compared: 1, diverged: 1, divergences: [
                "the recording lost \(lost) tape entries (the daemon's event thread fell behind): the motion replay cannot be exact"]))
        }
        if !decodeFailures.isEmpty {
            streams.append(StreamComparison(stream: "undecodable messages", compared: decodeFailures.count,
                                            diverged: decodeFailures.count, divergences: decodeFailures))
        }
        return ReplayReport(path: path, recordedSeconds: total, wallSeconds: Date().timeIntervalSince(started),
                            messages: result.messages, streams: streams, damage: result.damage.map { "\($0)" })
    }

    /// Two message sequences, pairwise, every difference kept as text (over the common prefix
    /// only when `prefixOnly`: a recording cut off mid-cycle).
    static func compare<T: Equatable>(_ name: String, recorded: [T], replayed: [T], prefixOnly: Bool = false,
                                      describe: (T) -> String) -> StreamComparison {
        var divergences: [String] = []
        var diverged = 0
        let count = prefixOnly ? min(recorded.count, replayed.count) : max(recorded.count, replayed.count)
        for index in 0..<count {
            let a = index < recorded.count ? recorded[index] : nil
            let b = index < replayed.count ? replayed[index] : nil
            if a != b {
                diverged += 1
                divergences.append("#\(index + 1): recorded \(a.map(describe) ?? "nothing"), replayed \(b.map(describe) ?? "nothing")")
            }
        }
        return StreamComparison(stream: name, compared: count, diverged: diverged, divergences: divergences)
    }

    static func compareClassifications(recorded: [UInt64: ObservationRecord],
                                       replayed: [UInt64: ObservationRecord]) -> StreamComparison {
        var divergences: [String] = []
        var diverged = 0
        for frame in recorded.keys.sorted() {
            guard let a = recorded[frame] else { continue }
            guard let b = replayed[frame] else {
                diverged += 1
                divergences.append("frame \(frame): its image is not in the recording (dropped)")
                continue
            }
            if a.probabilities != b.probabilities || a.smoothedLabel != b.smoothedLabel || a.smoothedConfidence != b.smoothedConfidence
                || (a.quality ?? []) != (b.quality ?? []) || (a.smoothedQuality ?? []) != (b.smoothedQuality ?? []) {
                diverged += 1
                let difference = zip(a.probabilities, b.probabilities).map { abs($0 - $1) }.max() ?? 0
                divergences.append("frame \(frame): recorded \(a.smoothedLabel) \(a.smoothedConfidence), replayed "
                    + "\(b.smoothedLabel) \(b.smoothedConfidence) (largest probability difference \(difference))")
            }
        }
        return StreamComparison(stream: "classifier outputs", compared: recorded.count, diverged: diverged, divergences: divergences)
    }

    /// Each recorded scan, replayed with a fresh planner against the recorded answers.
    /// Why recorded planner settings cannot be replayed (a NaN or non-positive speed), if so.
    static func invalidMotion(_ settings: PlannerSettings) -> MotionLimitsError? {
        do throws(MotionLimitsError) {
            _ = try settings.validatedMotionLimits()
            return nil
        } catch {
            return error
        }
    }

    static func replayPlanner(_ calls: [PlannerCall], setup: Setup,
                              classifications: [UInt64: ObservationRecord]) -> StreamComparison {
        var compared = 0
        var divergences: [String] = []
        var note: String?
        var index = 0
        while index < calls.count {
            guard calls[index].call == .scan, let views = calls[index].views, let settings = calls[index].settings else {
                index += 1
                continue
            }
            var end = index + 1
            while end < calls.count, calls[end].call != .end, calls[end].call != .scan { end += 1 }
            let finished = end < calls.count && calls[end].call == .end
            let environment = ReplayScanEnvironment(labels: setup.labels, framesPerSecond: setup.framesPerSecond,
                                                    calls: calls[(index + 1)..<end],
                                                    recordedToTheEnd: finished) { classifications[$0] }
            if let invalid = Self.invalidMotion(settings) {
                divergences.append("scan \(views.joined(separator: ",")): the recorded planner settings are invalid: \(invalid)")
            } else if let scan = try? ScanProtocol(names: views, known: Set(views.compactMap { StandardView(name: $0) })) {
                _ = ScanPlanner(prior: setup.prior, settings: settings, environment: environment).run(scan)
            }
            compared += environment.compared
            divergences += environment.divergences.map { "scan \(views.joined(separator: ",")): \($0)" }
            if environment.ranOut { note = "the recording ends during the scan of \(views.joined(separator: ",")): replayed up to there" }
            index = end + 1
        }
        return StreamComparison(stream: "planner calls and targets", compared: compared, diverged: divergences.count,
                                divergences: divergences, note: note)
    }

    /// The arm, limits, prior and classifier the recording was made with, from its attachments
    /// and metadata.
    struct Setup {
        let arm: ArmModel
        let motion: MotionControllerConfiguration
        let prior: ScanPrior
        let classifier: ViewClassifier
        let labels: [String]
        let framesPerSecond: Double

        init(reader: MCAPReader, modelPath: String?) throws(ReplayError) {
            let metadata = reader.metadata.first { $0.name == "sono" }?.entries ?? [:]
            let files = AttachedFiles(reader)
            func attachment(_ name: String) throws(ReplayError) -> String {
                guard let path = files.path(name) else {
                    throw .incomplete("no \(name) attached (not a recording made by sonod?), or it cannot be written to a temporary file")
                }
                return path
            }
            do {
                let robot = try RobotDescription.load(path: try attachment("arm.toml"))
                arm = try ArmModel(robot)
                // The profile the run had (a simulation recording carries the simulation's).
                let limits = try SafetyLimits.load(path: try attachment("safety.toml"),
                                                   simulation: metadata["mode"] == "simulation")
                motion = try Scanner.motionConfiguration(limits: limits,
                                                         staleDeadlineMillis: metadata["stale_deadline_ms"].flatMap { Int($0) },
                                                         arm: arm)
                prior = try ScanPrior.load(path: try attachment("scan-prior.toml"))
            } catch let error as ReplayError {
                throw error
            } catch {
                throw .incomplete("an attached file does not load: \(error)")
            }
            guard let model = modelPath ?? metadata["model"] else { throw .incomplete("no model named in the metadata; pass --model") }
            do { classifier = try ViewClassifier(path: model) } catch { throw .unreadable("model \(model): \(error)") }
            labels = metadata["labels"].map { $0.split(separator: ",").map(String.init) } ?? classifier.labels
            framesPerSecond = metadata["frames_per_second"].flatMap { Double($0) } ?? 30
        }
    }
}

/// A `/classifier` message.
struct RecordedClassification: Decodable {
    var frame: UInt64
    var probabilities: [String: Float]
    var smoothedLabel: String
    var smoothedConfidence: Float
    var stableFrames: Int
    /// Per label, with a model that predicts quality.
    var quality: [String: Float]?
    var smoothedQuality: [String: Float]?
    enum CodingKeys: String, CodingKey {
        case frame, probabilities, smoothedLabel = "smoothed_label", smoothedConfidence = "smoothed_confidence",
             stableFrames = "stable_frames", quality, smoothedQuality = "smoothed_quality"
    }

    func observation(labels: [String]) -> ObservationRecord {
        var observation = ViewObservation(
            seconds: 0, probabilities: labels.map { probabilities[$0] ?? 0 }, smoothedLabel: smoothedLabel,
            smoothedConfidence: smoothedConfidence, stableFrames: stableFrames, probe: .identity, forceN: 0, frame: frame)
        if let quality, let smoothedQuality {
            observation.quality = labels.map { quality[$0] ?? 0 }
            observation.smoothedQuality = labels.map { smoothedQuality[$0] ?? 0 }
        }
        var record = ObservationRecord(observation)
        record.frame = frame
        return record
    }
}

/// A recording's attached files (arm, limits, prior, …) written to a private temporary folder,
/// since their loaders read paths; the folder goes when this does.
final class AttachedFiles {
    private let reader: MCAPReader
    private let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("sono-attachments-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path

    init(_ reader: MCAPReader) { self.reader = reader }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// The attachment's file, or nil when the recording has none of that name (or it cannot be written).
    func path(_ name: String) -> String? {
        guard let file = reader.attachments.first(where: { $0.name == name }) else { return nil }
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = "\(directory)/\(name)"
        return FileManager.default.createFile(atPath: path, contents: Data(file.data)) ? path : nil
    }
}
