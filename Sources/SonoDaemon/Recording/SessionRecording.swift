import Foundation
import SonoCore
import SonoMotion
import SonoPlanner
import SonoProtocol
import SonoRecord
import SonoSystem

/// The daemon's recording: one MCAP file per daemon run, from before the control loop's first
/// cycle to shutdown, so that it holds the motion controller's whole tape and a replay can run
/// the controller again from its first cycle. Channels and their payloads: docs/RECORDING.md.
///
/// Control data (the tape, force, joints, commands, classifier outputs, planner calls, events)
/// goes through the recorder's never-dropping lane; probe images through its bounded lane,
/// where a disk that cannot keep up costs frames, counted, and nothing else.
final class SessionRecording: FrameRecorder, @unchecked Sendable {
    // @unchecked: `tapeState` is touched by the motion event thread only (the tape's one consumer); the recorder is thread-safe.
    let path: String
    private let recorder: SessionRecorder
    private let channels: Channels
    private let labels: [String]
    /// Touched by the motion event thread only (the tape's consumer).
    private var tapeState = TapeState()

    struct Channels {
        var tape, force, joints, jointCommands, motionCommands, motionEvents: UInt16
        var image, classifier, plannerIO, events: UInt16
    }

    private struct TapeState {
        /// The last tick's cycle (commands and sent messages after it belong to it).
        var cycle: UInt64 = 0
        /// The cycle the next inputs belong to (the one after the last tick).
        var inputCycle: UInt64 = 0
        var micros: UInt64 = 0
        var sequence: UInt32 = 0
        var bytes: [UInt8] = []
    }

    /// `base`.mcap, or `base`-2.mcap, `base`-3.mcap… when that exists.
    private static func createRecorder(base: String, options: MCAPWriterOptions,
                                       minimumFreeBytes: UInt64) throws(RecordError) -> (SessionRecorder, String) {
        var attempt = 1
        while true {
            let path = attempt == 1 ? "\(base).mcap" : "\(base)-\(attempt).mcap"
            do throws(RecordError) {
                return (try SessionRecorder(path: path, options: options, minimumFreeBytes: minimumFreeBytes), path)
            } catch .io(_, .fileExists, _) where attempt < 100 {
                attempt += 1
            }
        }
    }

    /// Creates `directory/sono-<UTC time>-<mode>.mcap` and its channels, with the files that
    /// define the run attached (configuration, robot, limits, prior, patient) and the facts
    /// about it as metadata.
    init(directory: String, mode: String, labels: [String], attachments: [(name: String, path: String)],
         metadata: [String: String], minimumFreeBytes: UInt64 = 0) throws(StartupError) {
        let stamp = ISO8601DateFormatter.string(from: Date(), timeZone: TimeZone(identifier: "UTC") ?? .current,
                                                formatOptions: [.withFullDate, .withTime, .withTimeZone])
            .replacingOccurrences(of: ":", with: "")
        // A daemon restarted within the same second (systemd's Restart=, a test) gets `-2`, `-3`…:
        // a recording never overwrites another.
        let base = "\(directory)/sono-\(stamp)-\(mode)"
        var chosen = "\(base).mcap"
        self.labels = labels
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            if minimumFreeBytes > 0, let free = SessionRecorder.freeBytes(at: directory), free < minimumFreeBytes {
                throw StartupError.file("recording: \(directory) has \(free >> 20) MiB free, below [recording] min_free_mib "
                    + "(\(minimumFreeBytes >> 20) MiB): free space there, lower the floor, or turn recording off ([recording] mcap = false)")
            }
            var options = MCAPWriterOptions()
            options.library = "sono \(metadata["version"] ?? "")"
            let (recorder, created) = try Self.createRecorder(base: base, options: options, minimumFreeBytes: minimumFreeBytes)
            chosen = created
            path = created
            self.recorder = recorder
            func jsonChannel(_ topic: String, _ schema: String, _ name: String) throws(RecordError) -> UInt16 {
                try recorder.channel(topic: topic, messageEncoding: "json",
                                     schema: FoxgloveSchemas.jsonSchema(name: name, json: schema), metadata: [:])
            }
            let channels = Channels(
                tape: try recorder.channel(topic: "/motion/tape", messageEncoding: MotionTapeCodec.encoding, schema: nil,
                                           metadata: ["doc": "docs/RECORDING.md"]),
                force: try jsonChannel("/force", RecordingSchemas.force, "sono.ForceSample"),
                joints: try jsonChannel("/joints", RecordingSchemas.joints, "sono.JointState"),
                jointCommands: try jsonChannel("/joint_commands", RecordingSchemas.armMessage, "sono.ArmMessage"),
                motionCommands: try jsonChannel("/motion/commands", RecordingSchemas.motionCommand, "sono.MotionCommand"),
                motionEvents: try jsonChannel("/motion/events", RecordingSchemas.motionEvent, "sono.MotionEvent"),
                image: try recorder.channel(topic: "/probe/image", messageEncoding: "protobuf",
                                            schema: FoxgloveSchemas.rawImage, metadata: [:]),
                classifier: try jsonChannel("/classifier", RecordingSchemas.classifier, "sono.Classification"),
                plannerIO: try jsonChannel("/planner/io", RecordingSchemas.plannerCall, "sono.PlannerCall"),
                events: try jsonChannel("/events", RecordingSchemas.event, "sono.DaemonEvent"))
            self.channels = channels
            for attachment in attachments {
                guard let data = FileManager.default.contents(atPath: attachment.path) else { continue }
                recorder.attach(name: attachment.name, mediaType: "application/toml", logTime: Self.now(), data: [UInt8](data))
            }
            recorder.metadata(name: "sono", metadata)
        } catch let error as RecordError {
            throw .file("recording \(chosen): \(error)")
        } catch let error as StartupError {
            throw error
        } catch {
            throw .file("recording \(chosen): \(error)")
        }
    }

    static func now() -> UInt64 { MonotonicClock.nowMicros() * 1_000 }

    // MARK: the motion controller's tape (motion event thread)

    func tape(_ entry: TapeEntry) {
        if case .tick(let index, let micros) = entry {
            tapeState.cycle = index
            tapeState.inputCycle = index + 1
            tapeState.micros = micros
        }
        // Entries before the first tick take the clock now (the same monotonic clock as the ticks).
        let logTime = tapeState.micros > 0 ? tapeState.micros * 1_000 : Self.now()
        tapeState.bytes.removeAll(keepingCapacity: true)
        MotionTapeCodec.encode(entry, into: &tapeState.bytes)
        tapeState.sequence &+= 1
        recorder.record(channel: channels.tape, sequence: tapeState.sequence, logTime: logTime, data: tapeState.bytes)
        switch entry {
        case .input(.force(let sample, let boardMicros, let receivedMicros)):
            record(channels.force, logTime, "{\"cycle\":\(tapeState.inputCycle),\"board_us\":\(boardMicros),\"received_us\":\(receivedMicros),"
                + "\"fx\":\(json(sample.fx)),\"fy\":\(json(sample.fy)),\"fz\":\(json(sample.fz)),\"tx\":\(json(sample.tx)),"
                + "\"ty\":\(json(sample.ty)),\"tz\":\(json(sample.tz)),\"status\":\(sample.status.rawValue)}")
        case .input(.joints(let state, let receivedMicros)):
            record(channels.joints, logTime, "{\"cycle\":\(tapeState.inputCycle),\"received_us\":\(receivedMicros),\"status\":\(state.status.rawValue),"
                + "\"position\":\(json(state.joints.map(\.position))),\"velocity\":\(json(state.joints.map(\.velocity))),"
                + "\"current\":\(json(state.joints.map(\.current)))}")
        case .sent(let message, let delivered):
            var fields = "\"cycle\":\(tapeState.cycle),\"t_us\":\(tapeState.micros),\"type\":\"\(message.type)\",\"delivered\":\(delivered)"
            switch message {
            case .jointCommand(let command):
                fields += ",\"position\":\(json(command.joints.map(\.position))),\"max_velocity\":\(json(command.joints.map(\.maxVelocity)))"
            case .stop(let category): fields += ",\"category\":\(category)"
            case .setDrives(let enable): fields += ",\"enable\":\(enable)"
            default: break
            }
            record(channels.jointCommands, logTime, "{\(fields)}")
        case .command(let ticket, let command):
            record(channels.motionCommands, logTime, MotionCommandJSON(command, cycle: tapeState.cycle, ticket: ticket).text)
        default:
            break
        }
    }

    /// The controller's events as documented JSON (MotionEventJSON): what `sonoctl replay`
    /// compares a replay against.
    func motionEvent(_ event: MotionEvent) {
        if case .reply = event { return }  // answers to callers, already implied by the commands
        record(channels.motionEvents, Self.now(), MotionEventJSON(event).text)
    }

    // MARK: frames (frame pipeline thread)

    func frame(_ pixels: [UInt8], width: Int, height: Int, info: ProbeFrameInfo, observation: ViewObservation) {
        let logTime = Self.now()
        // Copied into a pooled buffer and encoded as foxglove.RawImage on the writer thread.
        pixels.withUnsafeBytes { raw in
            _ = recorder.offerMono8Frame(channel: channels.image, sequence: UInt32(truncatingIfNeeded: info.frameNumber),
                                         logTime: logTime, width: width, height: height, pixels: raw)
        }
        record(channels.classifier, logTime, "{\"frame\":\(info.frameNumber),\"t_us\":\(info.timestampMicros),"
            + "\(observationFields(observation))}")
    }

    /// The fields of an observation as the classifier channel holds them.
    private func observationFields(_ o: ViewObservation) -> String {
        var probabilities: [String] = []
        for (index, label) in labels.enumerated() where index < o.probabilities.count {
            probabilities.append("\(quoted(label)):\(json(o.probabilities[index]))")
        }
        var fields = "\"probabilities\":{\(probabilities.joined(separator: ","))},\"smoothed_label\":\(quoted(o.smoothedLabel)),"
            + "\"smoothed_confidence\":\(json(o.smoothedConfidence)),\"stable_frames\":\(o.stableFrames)"
        // The model's predicted quality per label, and the smoothed one the planner acquires on.
        if !o.quality.isEmpty {
            var quality: [String] = [], smoothed: [String] = []
            for (index, label) in labels.enumerated() where index < o.quality.count && index < o.smoothedQuality.count {
                quality.append("\(quoted(label)):\(json(o.quality[index]))")
                smoothed.append("\(quoted(label)):\(json(o.smoothedQuality[index]))")
            }
            fields += ",\"quality\":{\(quality.joined(separator: ","))},\"smoothed_quality\":{\(smoothed.joined(separator: ","))}"
        }
        return fields
    }

    // MARK: planner and daemon events

    func plannerCall(_ json: String) { record(channels.plannerIO, Self.now(), json) }

    func event(_ event: DaemonEvent) { record(channels.events, Self.now(), DaemonEventJSON.text(event)) }

    var counters: RecorderCounters { recorder.counters }

    /// Drains everything queued and closes the file (summary and index written), with what was
    /// lost noted in metadata `sono.end`: motion tape entries the event thread could not take in
    /// time (a replay of the motion controller is then not exact) and probe frames dropped.
    func finish(tapeOverflows: UInt64) throws(RecordError) -> RecorderCounters {
        recorder.metadata(name: "sono.end", ["tape_overflows": "\(tapeOverflows)",
                                                 "frames_dropped": "\(recorder.counters.bulkDropped)",
                                                 "ended": rfc3339(Date())])
        return try recorder.finish()
    }

    private func record(_ channel: UInt16, _ logTime: UInt64, _ text: String) {
        recorder.record(channel: channel, sequence: 0, logTime: logTime, data: Array(text.utf8))
    }
}

// MARK: JSON pieces (hand-made: the 1 kHz channels are written without an encoder's overhead)

fileprivate func json(_ value: Float) -> String { value.isFinite ? "\(value)" : "null" }
fileprivate func json(_ values: [Float]) -> String { "[" + values.map(json).joined(separator: ",") + "]" }

/// A JSON string literal.
fileprivate func quoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case let c where c.value < 0x20: out += String(format: "\\u%04x", c.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
