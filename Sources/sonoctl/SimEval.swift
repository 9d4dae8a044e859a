import ArgumentParser
import Foundation
import SonoCore
import SonoDaemon
import SonoEvaluation
import SonoSim
import SonoSystem

/// `sonoctl sim eval`: whole autonomous scans of random unseen patients in simulated time, and
/// how they went by the simulator's truth (README, "Evaluating scans in simulated time").
struct SimEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Scan random unseen patients in simulated time (planner, classifier, motion core, simulated boards) "
            + "and score each view by the simulator's truth.",
        discussion: """
            Each scan runs the daemon's planner, classifier with its smoother and motion controller core against \
            the simulated boards, stepped at 1 kHz on one thread: no umockdev, no sockets, no wall clock. The same \
            seed gives bit-identical results whatever --jobs is. A view is a false acquisition when the mean true \
            quality of the target view over its clip's frames is below 0.7 (ViewQuality.diagnostic). With --out, \
            DIR/scans/NAME.json is each scan's summary and DIR/scans/NAME.toml its patient (rerun it with \
            `sonod-sim NAME.toml --scan …`); DIR/aggregate.json the table below; DIR/timing.json the wall time \
            (the one file that differs between runs). Exit status 0 unless something failed to run, or a \
            --require-* threshold is not met (3).
            """)

    @Option(help: "Patients to draw from the training population (tools/vision/make_patients.py's sampling), seeds disjoint from training and validation.")
    var patients: Int?

    @Option(help: "Seed of the draw: patient seeds 500000 + 1000·seed + i.")
    var seed: UInt64 = 0

    @Option(help: "Scans run at once (threads, each with its own classifier on one thread).")
    var jobs: Int = 1

    @Option(help: "Write each scan's summary and patient file, and the aggregate, to this folder.")
    var out: String?

    @Option(help: "The view classifier (default: the configuration's).")
    var model: String?

    @Option(help: "Views to scan, in order (default: the configuration's protocol).")
    var views: String?

    @Option(help: "Scan the patient files (*.toml) in this folder instead of drawing patients.")
    var patientFiles: String?

    @Option(help: "A sono.toml to take files and planner settings from (default: sonod-sim's, the repository's files).")
    var config: String?

    @Option(help: "Fail (exit 3) unless every view's success rate is at least this fraction.")
    var requireSuccess: Double?

    @Option(help: "Fail (exit 3) when there are more false acquisitions than this, over all views.")
    var requireFalseAtMost: Int?

    @Flag(help: "Benchmark: scan one drawn patient (or --patients) on one job and print simulated seconds per wall second and where the time went.")
    var bench = false

    @Flag(help: "No line per scan as it ends.")
    var quiet = false

    func validate() throws {
        if let patients, !(1...PatientPopulation.patientsPerSeed).contains(patients) {
            throw ValidationError("--patients must be 1…\(PatientPopulation.patientsPerSeed) (more would reach the next seed's patients)")
        }
        if patients != nil && patientFiles != nil { throw ValidationError("--patients and --patient-files exclude each other") }
        if !(1...64).contains(jobs) { throw ValidationError("--jobs must be 1…64") }
        if let requireSuccess, !(0...1).contains(requireSuccess) { throw ValidationError("--require-success is a fraction, 0…1") }
    }

    func run() throws {
        var configuration: DaemonConfiguration
        if let config {
            do { configuration = try DaemonConfiguration.load(path: config) } catch { throw ValidationError("\(error)") }
        } else {
            let cwd = FileManager.default.currentDirectoryPath
            let root = FileManager.default.fileExists(atPath: "\(cwd)/hardware/arm.toml") ? cwd : DaemonConfiguration.installedRoot
            configuration = DaemonConfiguration.simulation(root: root)
        }
        let setup: EvaluationSetup
        do { setup = try EvaluationSetup.load(configuration: configuration, modelPath: model) } catch {
            throw ValidationError("\(error)")
        }
        let scanViews: [StandardView]
        do {
            if let views {
                scanViews = try ScanProtocolNames.parse(views, known: setup.knownViews)
            } else {
                scanViews = try ScanProtocolNames.check(configuration.scanProtocol, known: setup.knownViews)
            }
        } catch { throw ValidationError("--views: \(error)") }

        // The patients: drawn, or the files of a folder.
        var cases: [EvaluationCase] = []
        var files: [String: String] = [:]
        if let patientFiles {
            let folder = URL(fileURLWithPath: patientFiles)
            guard let entries = try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil) else {
                throw ValidationError("cannot read patient folder \(patientFiles)")
            }
            for url in entries.filter({ $0.pathExtension == "toml" }).sorted(by: { $0.path < $1.path }) {
                let parameters: PatientParameters
                do { parameters = try PatientParameters.load(path: url.path) } catch { throw ValidationError("\(error)") }
                let name = url.deletingPathExtension().lastPathComponent
                cases.append(EvaluationCase(parameters: parameters, file: "\(name).toml"))
                files[name] = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
            }
            guard !cases.isEmpty else { throw ValidationError("\(patientFiles) holds no patient files (*.toml)") }
        } else {
            let count = patients ?? (bench ? 1 : 100)
            let members: [PatientPopulation.Member]
            do { members = try PatientPopulation(seed: seed).members(count) } catch {
                throw ValidationError("the population sampler drew an invalid patient: \(error)")
            }
            for member in members {
                cases.append(EvaluationCase(parameters: member.parameters, file: "\(member.name).toml"))
                files[member.name] = member.toml
            }
        }
        let jobs = bench ? 1 : self.jobs

        let scansFolder = out.map { "\($0)/scans" }
        if let scansFolder {
            do { try FileManager.default.createDirectory(atPath: scansFolder, withIntermediateDirectories: true) } catch {
                throw ValidationError("cannot create \(scansFolder): \(error)")
            }
        }
        let source = patientFiles.map { "the patient files in \($0)" }
            ?? "\(cases.count) random patients (seed \(seed), patient seeds \(PatientPopulation(seed: seed).patientSeed(0))…)"
        print("sim eval: \(source); views \(scanViews.map(\.rawValue).joined(separator: ",")); model \(setup.modelPath); "
            + "\(jobs) job\(jobs == 1 ? "" : "s")")

        let total = cases.count
        let quiet = self.quiet
        let patientTexts = files
        let written = WriteFailures()
        let started = MonotonicClock.nowNanos()
        let cpuAtStart = Self.processCPUSeconds()
        let outcome: EvaluationRunner.Outcome
        do {
            outcome = try EvaluationRunner.run(cases, views: scanViews, setup: setup, jobs: jobs, profile: bench) { index, result in
                if let scansFolder {
                    let name = (result.patientFile as NSString).deletingPathExtension
                    do {
                        try Self.json(result).write(to: URL(fileURLWithPath: "\(scansFolder)/\(name).json"))
                        try (patientTexts[name] ?? "").write(toFile: "\(scansFolder)/\(result.patientFile)", atomically: true, encoding: .utf8)
                    } catch {
                        written.note("\(scansFolder)/\(name): \(error)")
                    }
                }
                guard !quiet else { return }
                let views: [String] = result.views.map { v in
                    let mark = v.acquired ? (v.falseAcquisition ? "false" : "ok") : "-"
                    return "\(v.view) \(mark)"
                }
                var line = String(format: "  [%d/%d] %@: %d/%d diagnostic, %d false, %.1f s", index + 1, total, result.patient,
                                  result.trueAcquisitions, result.views.count, result.falseAcquisitions, result.scanSeconds)
                line += " (" + views.joined(separator: ", ") + ")"
                if let error = result.error {
                    line += "; failed: " + error
                } else if let interruption = result.interruption {
                    line += "; " + interruption
                }
                print(line)
                fflush(nil)  // every stream: the progress shows when stdout is a file
            }
        } catch {
            throw ValidationError("view classifier \(setup.modelPath): \(error)")
        }
        let wallSeconds = Double(MonotonicClock.nowNanos() - started) / 1e9
        let aggregate = EvaluationAggregate(results: outcome.results, views: scanViews, model: setup.modelPath)
        print(aggregate.text)
        let speed = aggregate.simulatedSeconds / max(1e-9, wallSeconds * Double(jobs))
        // CPU time as well: on a machine shared with other work the wall time per job says more
        // about the neighbours than about the simulation.
        let cpuSeconds = Self.processCPUSeconds() - cpuAtStart
        let cpuSpeed = aggregate.simulatedSeconds / max(1e-9, cpuSeconds)
        print(String(format: "  simulated %.1f s in %.1f s wall on %d job%@: %.1f× real time per job; %.1f CPU s: %.1f× per CPU second",
                     aggregate.simulatedSeconds, wallSeconds, jobs, jobs == 1 ? "" : "s", speed, cpuSeconds, cpuSpeed))
        if bench {
            let p = outcome.profile
            let frames = Double(max(1, p.frames)), ticks = Double(max(1, p.ticks))
            let coreNanos = Double(p.tickNanos) - Double(p.renderNanos) - Double(p.classifyNanos)
            print(String(format: "  per frame: render %.2f ms, classify %.2f ms (%llu frames); per 1 ms tick: boards and motion core %.1f µs "
                         + "(%llu ticks); shares of the wall time: render %.0f %%, classify %.0f %%, boards and core %.0f %%",
                         Double(p.renderNanos) / frames / 1e6, Double(p.classifyNanos) / frames / 1e6, p.frames,
                         coreNanos / ticks / 1e3, p.ticks,
                         100 * Double(p.renderNanos) / (wallSeconds * 1e9), 100 * Double(p.classifyNanos) / (wallSeconds * 1e9),
                         100 * coreNanos / (wallSeconds * 1e9)))
            print("  command: \(CommandLine.arguments.joined(separator: " "))")
        }
        if let out {
            struct Timing: Encodable {
                var wallSeconds: Double
                var cpuSeconds: Double
                var jobs: Int
                var simulatedSeconds: Double
                var simulatedPerWallSecondPerJob: Double
                var simulatedPerCPUSecond: Double
            }
            do {
                try Self.json(aggregate).write(to: URL(fileURLWithPath: "\(out)/aggregate.json"))
                try Self.json(Timing(wallSeconds: wallSeconds, cpuSeconds: cpuSeconds, jobs: jobs,
                                     simulatedSeconds: aggregate.simulatedSeconds, simulatedPerWallSecondPerJob: speed,
                                     simulatedPerCPUSecond: cpuSpeed))
                    .write(to: URL(fileURLWithPath: "\(out)/timing.json"))
            } catch {
                written.note("\(out): \(error)")
            }
            print("  wrote \(out)/aggregate.json and one summary and patient file per scan in \(out)/scans")
        }
        if let failure = written.first {
            print("sim eval: cannot write \(failure)")
            throw ExitCode(.ioError)
        }
        if aggregate.failedScans > 0 {
            print("sim eval: \(aggregate.failedScans) scan(s) could not run (see their summaries)")
            throw ExitCode(.software)
        }
        var unmet: [String] = []
        if let requireSuccess {
            for view in aggregate.perView where view.successRate < requireSuccess {
                unmet.append(String(format: "%@ success %.1f %% < %.1f %%", view.view, view.successRate * 100, requireSuccess * 100))
            }
        }
        if let requireFalseAtMost {
            let falseOnes = aggregate.perView.reduce(0) { $0 + $1.falseAcquisitions }
            if falseOnes > requireFalseAtMost { unmet.append("\(falseOnes) false acquisitions > \(requireFalseAtMost)") }
        }
        if !unmet.isEmpty {
            print("sim eval: requirement not met: " + unmet.joined(separator: "; "))
            throw ExitCode(.scanIncomplete)
        }
    }

    /// User and system CPU time of this process so far, s.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    static func json(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(value)
        data.append(0x0A)
        return data
    }
}

/// View lists as the scan protocol takes them, checked against what the prior and the model know.
enum ScanProtocolNames {
    struct Unknown: Error, CustomStringConvertible {
        var description: String
    }

    static func parse(_ text: String, known: Set<StandardView>) throws -> [StandardView] {
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var views: [StandardView] = []
        for name in names {
            guard let view = StandardView(name: name) else { throw Unknown(description: "\(name) is not a standard view") }
            views.append(view)
        }
        return try check(views, known: known)
    }

    static func check(_ views: [StandardView], known: Set<StandardView>) throws -> [StandardView] {
        guard !views.isEmpty else { throw Unknown(description: "no views") }
        for view in views where !known.contains(view) {
            throw Unknown(description: "\(view) is not both in the model's labels and the scan prior ("
                + known.map(\.rawValue).sorted().joined(separator: ", ") + ")")
        }
        return views
    }
}

/// The first file that could not be written, from whichever worker thread met it.
private final class WriteFailures: @unchecked Sendable {
    // @unchecked: `failure` is touched only with `lock` held.
    private let lock = NSLock()
    private var failure: String?
    func note(_ text: String) { lock.withLock { if failure == nil { failure = text } } }
    var first: String? { lock.withLock { failure } }
}
