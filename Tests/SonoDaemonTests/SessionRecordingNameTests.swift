import Foundation
@testable import SonoDaemon
import Testing

/// Two daemon runs in the same second (a restart by systemd, a quick test) each get their own
/// recording: the second is `-2`, never an error and never an overwrite.
@Suite struct SessionRecordingNameTests {
    @Test func runsInTheSameSecondGetTheirOwnFiles() throws {
        let directory = "/tmp/sono-test-names-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var paths: [String] = []
        for _ in 0..<3 {
            let recording = try SessionRecording(directory: directory, mode: "simulation", labels: ["PLAX"], attachments: [],
                                                 metadata: ["version": "test"])
            paths.append(recording.path)
            _ = try recording.finish(tapeOverflows: 0)
        }
        #expect(Set(paths).count == 3, "\(paths)")
        // Unless the second changed between them, the later ones are numbered.
        let names = paths.map { ($0 as NSString).lastPathComponent }
        #expect(names.allSatisfy { $0.hasPrefix("sono-") && $0.hasSuffix(".mcap") })
        #expect(names.contains { $0.hasSuffix("-simulation-2.mcap") } || Set(names.map { $0.prefix(22) }).count > 1, "\(names)")
    }
}
