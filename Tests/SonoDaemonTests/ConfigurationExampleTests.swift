import Foundation
@testable import SonoDaemon
import SonoTestSupport
import Testing

/// The example sono.toml is what an installer copies for a site to edit: every key it documents
/// must load, with the values it shows.
@Suite struct ConfigurationExampleTests {
    @Test func theShippedExampleLoadsWithEveryKeyItDocuments() throws {
        let path = Repository.path("systemd/sono.toml.example")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        // Uncomment the optional keys too: they are documented, so they must be known.
        let everyKey = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> Substring in
            let trimmed = line.drop { $0 == " " }
            guard trimmed.hasPrefix("# "), let equals = trimmed.firstIndex(of: "="),
                  trimmed[trimmed.index(trimmed.startIndex, offsetBy: 2)..<equals]
                      .allSatisfy({ $0.isLetter || $0 == "_" || $0 == " " }),
                  trimmed.dropFirst(2).first?.isLetter == true else { return line }
            return trimmed.dropFirst(2)
        }.joined(separator: "\n")
        let shown = try DaemonConfiguration.parse(text, path: path)
        #expect(shown.planner.acquireQuality == 0.7 && shown.planner.targetQuality == 0.85)
        #expect(throws: Never.self) { try DaemonConfiguration.parse(everyKey, path: path) }
    }

    @Test func qualityThresholdsAreReadAndChecked() throws {
        let set = try DaemonConfiguration.parse("[planner]\nacquire_quality = 0.8\ntarget_quality = 0.9\n", path: "s.toml")
        #expect(set.planner.acquireQuality == 0.8 && set.planner.targetQuality == 0.9)
        do {
            _ = try DaemonConfiguration.parse("[planner]\nacquire_quality = 0.9\ntarget_quality = 0.8\n", path: "s.toml")
            Issue.record("target below acquire accepted")
        } catch {
            #expect(error.description.contains("planner.target_quality"), "\(error)")
        }
    }
}
