import ArgumentParser
import Foundation
import SonoDaemon
import SonoSystem

/// Options every control-socket command shares.
struct SocketOptions: ParsableArguments {
    @Option(help: "sonod's control socket (default: $SONO_SOCKET, else /run/sono/control.sock).")
    var socket: String?

    @Flag(help: "Print sonod's JSON answer instead of text.")
    var json = false

    var client: ControlClient {
        ControlClient(socketPath: socket ?? ProcessInfo.processInfo.environment["SONO_SOCKET"] ?? "/run/sono/control.sock")
    }

    /// Sends the request; prints the JSON on --json; returns the body of a 2xx answer, or exits
    /// with sonod's reason (status 1 for a refusal, 2 for a bad request, 4 for access).
    func call(_ method: String, _ path: String, body: Data? = nil) throws -> Data {
        let response: ControlClient.Response
        do { response = try client.request(method, path, body: body) } catch {
            throw CLIError(message: "\(error)", code: .unavailable)
        }
        guard (200..<300).contains(response.status) else {
            let error = try? APICoding.decoder().decode(ErrorJSON.self, from: response.body)
            let message = error.map { "\($0.error) [\(response.status) \($0.code)]" }
                ?? "HTTP \(response.status): \(String(decoding: response.body, as: UTF8.self))"
            let status: ExitStatus = switch response.status {
            case 403: .accessDenied
            case 409: .refused
            default: .badRequest
            }
            throw CLIError(message: message, code: status)
        }
        if json {
            print(String(decoding: response.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return response.body
    }

    func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
        do { return try APICoding.decoder().decode(type, from: data) } catch {
            throw CLIError(message: "cannot read sonod's answer as \(T.self): \(error)", code: .software)
        }
    }
}

extension ExitCode {
    init(_ status: ExitStatus) { self.init(status.rawValue) }
}

struct CLIError: Error, CustomStringConvertible {
    var message: String
    var code: ExitStatus
    var description: String { message }
}

/// Runs a command body, turning CLIError into "sonoctl: message" and its exit status.
func reporting(_ body: () throws -> Void) throws {
    do { try body() } catch let error as CLIError {
        FileHandle.standardError.write(Data("sonoctl: \(error.message)\n".utf8))
        throw ExitCode(error.code)
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The scanner's state, devices, interlocks, view, force and loop.")
    @OptionGroup var options: SocketOptions

    func run() throws {
        try reporting {
            let data = try options.call("GET", "/v1/status")
            guard !options.json else { return }
            print(StatusText.render(try options.decode(StatusJSON.self, data)))
        }
    }
}

/// One interlock command: POST, then print the new state.
struct StateCommand {
    static func run(_ options: SocketOptions, _ path: String) throws {
        try reporting {
            let data = try options.call("POST", path)
            guard !options.json else { return }
            print("state: \(try options.decode(StateJSON.self, data).state)")
        }
    }
}

struct Enable: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Drives on (disabled → ready). Operator group.")
    @OptionGroup var options: SocketOptions
    func run() throws { try StateCommand.run(options, "/v1/enable") }
}

struct EnableMotion: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "enable-motion",
                                                    abstract: "Allow motion (ready → operator_enabled). Operator group.")
    @OptionGroup var options: SocketOptions
    func run() throws { try StateCommand.run(options, "/v1/motion/enable") }
}

struct Disable: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stop and turn the drives off.")
    @OptionGroup var options: SocketOptions
    func run() throws { try StateCommand.run(options, "/v1/disable") }
}

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Protective stop (category 2): the arm stops and holds. Always accepted.")
    @OptionGroup var options: SocketOptions
    func run() throws { try StateCommand.run(options, "/v1/stop") }
}

struct EStop: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "estop", abstract: "Software emergency stop: drives off, latched until reset.")
    @OptionGroup var options: SocketOptions
    func run() throws { try StateCommand.run(options, "/v1/estop") }
}

struct Release: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Release the patient after an e-stop or fault: the probe retracts along its axis at reduced "
            + "speed, then the drives go off. The e-stop button must be out. Operator group.")
    @OptionGroup var options: SocketOptions
    func run() throws { try StateCommand.run(options, "/v1/release") }
}

struct Resume: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Leave a protective stop once its cause is gone. Operator group.")
    @OptionGroup var options: SocketOptions
    func run() throws { try StateCommand.run(options, "/v1/resume") }
}

struct Reset: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Clear a latched fault or e-stop once its cause is gone. Operator group.")
    @OptionGroup var options: SocketOptions
    func run() throws { try StateCommand.run(options, "/v1/reset") }
}

/// A scan request: send it, then print the scan status sonod answers with.
enum ScanCommand {
    static func run(_ options: SocketOptions, _ method: String, _ path: String, body: Data? = nil) throws {
        let data = try options.call(method, path, body: body)
        guard !options.json else { return }
        print(StatusText.render(scan: try options.decode(ScanStatusJSON.self, data)))
    }
}

struct Scan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start, stop or show the autonomous scan.",
        subcommands: [ScanStart.self, ScanStop.self, ScanShow.self, ScanSummarize.self], defaultSubcommand: ScanShow.self)
}

struct ScanStart: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Scan these views (default: the configured protocol).")
    @OptionGroup var options: SocketOptions
    @Argument(help: "Target views, in order (PLAX PSAX A4C A2C SC4C).") var views: [String] = []

    func run() throws {
        try reporting {
            let body = APICoding.encode(ScanRequestJSON(views: views.isEmpty ? nil : views.map { $0.uppercased() }))
            try ScanCommand.run(options, "POST", "/v1/scan", body: body)
        }
    }
}

struct ScanStop: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "End the scan; the arm holds where it is.")
    @OptionGroup var options: SocketOptions
    func run() throws {
        try reporting { try ScanCommand.run(options, "POST", "/v1/scan/stop") }
    }
}

struct ScanShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "The scan's progress and results.")
    @OptionGroup var options: SocketOptions
    func run() throws {
        try reporting { try ScanCommand.run(options, "GET", "/v1/scan") }
    }
}

struct Record: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start or stop recording a session.",
                                                    subcommands: [RecordStart.self, RecordStop.self])
}

struct RecordStart: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Start recording (a new session folder).")
    @OptionGroup var options: SocketOptions
    @Option(help: "Session name (default: session-DATE-TIME).") var name: String?
    func run() throws {
        try reporting {
            let data = try options.call("POST", "/v1/recording/start", body: APICoding.encode(RecordingRequestJSON(name: name)))
            guard !options.json else { return }
            let status = try options.decode(RecordingStatusJSON.self, data)
            print("recording \(status.session ?? "?") in \(status.path ?? "?")")
        }
    }
}

struct RecordStop: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop recording.")
    @OptionGroup var options: SocketOptions
    func run() throws {
        try reporting {
            let data = try options.call("POST", "/v1/recording/stop")
            guard !options.json else { return }
            _ = try options.decode(RecordingStatusJSON.self, data)
            print("not recording")
        }
    }
}

struct Sessions: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Recorded sessions.")
    @OptionGroup var options: SocketOptions
    func run() throws {
        try reporting {
            let data = try options.call("GET", "/v1/sessions")
            guard !options.json else { return }
            let list = try options.decode(SessionsJSON.self, data)
            if list.sessions.isEmpty { print("no sessions") }
            for s in list.sessions {
                print("\(s.name)  \(s.startedAt)  \(s.bytes / 1024) KiB  views: \(s.viewsAcquired.joined(separator: ",").isEmpty ? "-" : s.viewsAcquired.joined(separator: ","))  \(s.path)")
            }
        }
    }
}

struct Limits: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The interlocks' limits in force.")
    @OptionGroup var options: SocketOptions
    func run() throws {
        try reporting {
            let data = try options.call("GET", "/v1/limits")
            guard !options.json else { return }
            let object = try JSONSerialization.jsonObject(with: data)
            let pretty = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: pretty, as: UTF8.self))
        }
    }
}

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stream sonod's events (state changes, views, stops, faults) until interrupted.")
    @OptionGroup var options: SocketOptions
    @Option(help: "Exit after this many events.") var count: Int?

    func run() throws {
        try reporting {
            var seen = 0
            do {
                try options.client.events("/v1/events") { name, data in
                    emit(options.json ? "{\"event\":\"\(name)\",\"data\":\(data)}" : "\(Self.time()) \(name) \(data)")
                    seen += 1
                    return count.map { seen < $0 } ?? true
                }
            } catch {
                throw CLIError(message: "\(error)", code: .unavailable)
            }
        }
    }

    static func time() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm:ss.SSS"
        return formatter.string(from: Date())
    }
}

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A live view of state, force, view and scan (Ctrl-C to quit).")
    @OptionGroup var options: SocketOptions
    @Option(help: "Refresh interval, s.") var interval = 0.25
    @Option(help: "Stop after this many refreshes (for scripts).") var count: Int?

    func run() throws {
        try reporting {
            var shown = 0
            let tty = isatty(STDOUT_FILENO) == 1
            while count.map({ shown < $0 }) ?? true {
                let data = try options.call("GET", "/v1/status")
                if !options.json {
                    let status = try options.decode(StatusJSON.self, data)
                    emit((tty ? "\u{1B}[H\u{1B}[2J" : "") + StatusText.render(status, compact: true) + (tty ? "" : "\n"))
                }
                shown += 1
                Thread.sleep(forTimeInterval: max(0.05, interval))
            }
        }
    }
}

/// Writes a line straight to stdout (unbuffered: a live stream must not sit in a buffer).
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

struct ScanSummarize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summarize",
        abstract: "Success rate and median time per view over scan summaries (sonod --summary files).")

    @Argument(help: "Summary files (JSON) written by sonod --summary.") var files: [String]

    func run() throws {
        var summaries: [ScanSummaryJSON] = []
        for file in files {
            do {
                summaries.append(try APICoding.decoder().decode(ScanSummaryJSON.self, from: Data(contentsOf: URL(fileURLWithPath: file))))
            } catch {
                throw ValidationError("\(file): not a scan summary: \(error)")
            }
        }
        guard !summaries.isEmpty else { throw ValidationError("no summaries given") }
        var views: [String] = []
        for s in summaries { for v in s.views where !views.contains(v) { views.append(v) } }
        print("Scans of \(summaries.count) patients:")
        print("  view   acquired   median time (s)   max time (s)   median pose error (mm / beam° / rot°)   truth agrees   diagnostic (true q ≥ 0.7)")
        var allAcquired = 0, all = 0, falseAcquisitions = 0
        for view in views {
            let results = summaries.compactMap { $0.results.first { $0.view == view } }
            let acquired = results.filter(\.acquired)
            let times = acquired.map(\.seconds).sorted()
            let errors = acquired.compactMap(\.poseError)
            func median(_ values: [Double]) -> Double {
                let sorted = values.sorted()
                return sorted.isEmpty ? .nan : sorted.count % 2 == 1 ? sorted[sorted.count / 2]
                    : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
            }
            let agree = errors.filter { $0.truthView == view }.count
            let judged = acquired.compactMap(\.trueQuality)
            let diagnostic = judged.filter { $0 >= 0.7 }.count
            falseAcquisitions += judged.count - diagnostic
            allAcquired += acquired.count
            all += summaries.count
            print("  " + view.padding(toLength: 6, withPad: " ", startingAt: 0)
                + String(format: " %2d/%-2d      %10.1f        %8.1f        %5.1f / %4.1f / %4.1f                       %d/%d          %d/%d",
                         acquired.count, summaries.count, median(times), times.last ?? .nan,
                         median(errors.map(\.positionMM)), median(errors.map(\.beamDeg)), median(errors.map(\.rotationDeg)),
                         agree, errors.count, diagnostic, judged.count))
        }
        let maxForce = summaries.map(\.maxForceN).max() ?? 0
        let cap = summaries.first?.hardCapN ?? 20
        let stops = summaries.reduce(0) { $0 + $1.stops.count }
        let faults = summaries.reduce(0) { $0 + $1.faults.count }
        print(String(format: "  all views: %d/%d acquired, %d false acquisitions (true q < 0.7); max contact force %.2f N (hard cap %.0f N%@); %d stops, %d faults",
                     allAcquired, all, falseAcquisitions, maxForce, cap, maxForce <= cap ? " never exceeded" : ": EXCEEDED", stops, faults))
        let timings = summaries.compactMap(\.timing)
        if let worst = timings.min(by: { $0.headroom < $1.headroom }) {
            print(String(format: "  oldest inputs the interlocks saw: force %.1f ms, joints %.1f ms (deadlines %.0f / %.0f ms); "
                         + "loop overruns %llu in %llu cycles",
                         timings.map(\.forceAgeMaxMs).max() ?? 0, timings.map(\.jointAgeMaxMs).max() ?? 0,
                         worst.forceDeadlineMs, worst.jointDeadlineMs,
                         timings.reduce(0) { $0 + $1.loopOverruns }, timings.reduce(0) { $0 + $1.loopCycles })
                  + String(format: " (%llu of them a cycle body longer than the period)",
                           timings.reduce(0) { $0 + ($1.loopOverrunsLongBody ?? 0) }))
        }
        let times = summaries.flatMap { $0.results.filter(\.acquired).map(\.seconds) }.sorted()
        if !times.isEmpty {
            print(String(format: "  median time per view %.1f s (target ≤ 30 s)", times[times.count / 2]))
        }
        if allAcquired < all || falseAcquisitions > 0 || maxForce > cap { throw ExitCode(.scanIncomplete) }
    }
}
