import ArgumentParser
import Foundation
import SonoDaemon
import SonoRecord
import SonoReport
import SonoSystem

/// `sonoctl replay`: the same replay as `sonod --replay`, from the command line.
struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay a recording and compare the replay with it, message for message (exit 4 when it diverges).")

    @Argument(help: "The recording (sono-….mcap).")
    var recording: String

    @Option(help: "Multiple of real time (1 = as recorded); 0 for as fast as possible.")
    var rate: Double = 0

    @Option(help: "Classify the frames with this model instead of the recording's (to try a new model on old sessions).")
    var model: String?

    @Flag(help: "Replay the readable part of a damaged recording.")
    var tolerant = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Option(help: "Write the whole comparison (every divergence of every stream) to this JSON file.")
    var compare: String?

    func validate() throws {
        if rate < 0 || !rate.isFinite { throw ValidationError("--rate must be 0 (as fast as possible) or a positive multiple of real time") }
    }

    func run() throws {
        var options = ReplayOptions()
        options.rate = rate > 0 ? rate : nil
        options.modelPath = model
        options.tolerant = tolerant
        options.progress = json ? nil : ProgressBar.printer()
        let report: ReplayReport
        do { report = try SessionReplay.run(path: recording, options: options) } catch {
            try reporting { throw CLIError(message: "cannot replay \(recording): \(error)", code: .dataError) }
            return
        }
        if let compare {
            do { try report.json().write(to: URL(fileURLWithPath: compare)) } catch {
                try reporting { throw CLIError(message: "cannot write \(compare): \(error.localizedDescription)", code: .ioError) }
            }
        }
        if json {
            print(String(decoding: report.json(), as: UTF8.self))
        } else {
            print(report)
        }
        if !report.identical { throw ExitCode(.replayDiverged) }
    }
}

/// `sonoctl session …`: recordings on disk.
struct Session: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Look at, recover and report on recordings (MCAP).",
        subcommands: [Info.self, Recover.self, Report.self])

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Channels, message counts and attachments of a recording.")
        @Argument(help: "The recording.") var recording: String
        @Flag(help: "Read the readable part of a damaged recording.") var tolerant = false

        func run() throws {
            let reader: MCAPReader
            do { reader = try MCAPReader(path: recording) } catch {
                try reporting { throw CLIError(message: "\(error)", code: .dataError) }
                return
            }
            var counts: [String: Int] = [:]
            var first: UInt64 = .max, last: UInt64 = 0
            let result: MCAPReadResult
            do {
                result = try reader.forEachMessage(tolerant: tolerant) { message in
                    counts[message.channel.topic, default: 0] += 1
                    first = min(first, message.logTime)
                    last = max(last, message.logTime)
                }
            } catch {
                try reporting { throw CLIError(message: "\(error) (--tolerant reads the part before the damage)", code: .dataError) }
                return
            }
            print("\(recording): \(result.messages) messages over \(String(format: "%.1f", first <= last ? Double(last - first) / 1e9 : 0)) s, "
                + (result.complete ? "complete (summary and index)" : "INCOMPLETE"))
            if let damage = result.damage { print("  damage: \(damage)") }
            for channel in reader.channels.values.sorted(by: { $0.topic < $1.topic }) {
                print("  \(channel.topic.padding(toLength: 18, withPad: " ", startingAt: 0)) \(String(counts[channel.topic] ?? 0).leftPadded(8))  "
                    + "\(channel.messageEncoding)\(channel.schema.map { " (\($0.name))" } ?? "")")
            }
            for attachment in reader.attachments { print("  attachment \(attachment.name) (\(attachment.data.count) bytes)") }
            for metadata in reader.metadata {
                print("  metadata \(metadata.name): " + metadata.entries.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
            }
        }
    }

    struct Recover: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rewrite a recording cut off by a crash or power loss as a complete, indexed file.")
        @Argument(help: "The damaged recording.") var recording: String
        @Option(help: "Where to write the recovered file (default: NAME-recovered.mcap beside it).") var out: String?

        func run() throws {
            let output = out ?? (recording.hasSuffix(".mcap") ? String(recording.dropLast(5)) : recording) + "-recovered.mcap"
            do {
                let report = try MCAPRecovery.recover(from: recording, to: output)
                print("\(output): \(report)")
            } catch {
                try reporting { throw CLIError(message: "cannot recover \(recording): \(error)", code: .dataError) }
            }
        }
    }
}

extension Session {
    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a self-contained HTML page of a recording: force, classifier confidence, probe path, stops, views.")
        @Argument(help: "The recording.") var recording: String
        @Option(help: "The HTML file to write.") var out: String
        @Flag(help: "Report on the readable part of a damaged recording.") var tolerant = false

        func run() throws {
            let data: SessionReportData
            do { data = try SessionReportBuilder.build(path: recording, tolerant: tolerant) } catch {
                try reporting { throw CLIError(message: "cannot report on \(recording): \(error)", code: .dataError) }
                return
            }
            let html = SessionReport.html(data)
            do { try Data(html.utf8).write(to: URL(fileURLWithPath: out)) } catch {
                try reporting { throw CLIError(message: "cannot write \(out): \(error.localizedDescription)", code: .ioError) }
            }
            print("\(out): \(data.views.filter(\.acquired).count)/\(data.views.count) views, \(data.markers.count) markers, "
                + "\(html.utf8.count / 1024) KiB")
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
