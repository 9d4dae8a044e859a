import Foundation
import Logging
import ServiceLifecycle
@testable import SonoDaemon
import Synchronization
import Testing

/// The daemon's start-in-order, stop-in-reverse contract, as narrated scenarios over stages
/// that write what happens to them into one journal.
@Suite struct OrderedStagesTests {
    final class Journal: Sendable {
        private let entries = Mutex<[String]>([])
        func note(_ entry: String) { entries.withLock { $0.append(entry) } }
        var all: [String] { entries.withLock { $0 } }
    }

    struct Stage: DaemonStage {
        let name: String
        let journal: Journal
        var failsToStart = false
        var startMillis = 0
        /// Still starting when the shutdown reaches it: its start ends only once the group has
        /// asked it (and so, in reverse order, every later stage) to shut down.
        var startsUntilShutdown = false
        /// The last stage may end the run: it returns from `run` at once.
        var endsTheRun = false

        func start() async throws(StartupError) {
            journal.note("start \(name)")
            if startMillis > 0 { try? await Task.sleep(for: .milliseconds(startMillis)) }
            if startsUntilShutdown {
                for _ in 0..<1_000 where !Task.isShuttingDownGracefully {
                    try? await Task.sleep(for: .milliseconds(10))
                }
            }
            if failsToStart {
                journal.note("\(name) failed")
                throw .devices("\(name) is not there")
            }
            journal.note("\(name) up")
        }

        func run() async {
            if endsTheRun { return }
            try? await gracefulShutdown()
        }

        func stop() async { journal.note("stop \(name)") }
    }

    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    func group(_ stages: [Stage]) -> ServiceGroup {
        ServiceGroup(configuration: ServiceGroupConfiguration(
            services: OrderedStages.services(stages, logger: Self.logger), logger: Self.logger))
    }

    /// Waits (bounded) until the journal has `entry`.
    func waitFor(_ entry: String, in journal: Journal) async -> Bool {
        for _ in 0..<500 {
            if journal.all.contains(entry) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    @Test func startsInOrderAndStopsInReverse() async throws {
        let journal = Journal()
        var stages = ["recording", "boards", "motion", "control server"].map { Stage(name: $0, journal: journal) }
        stages[1].startMillis = 100  // the links take a while: motion must wait for them
        let group = group(stages)
        async let run: Void = group.run()
        // Every stage is up, each after the one before it.
        #expect(await waitFor("control server up", in: journal))
        #expect(journal.all == ["start recording", "recording up", "start boards", "boards up",
                                "start motion", "motion up", "start control server", "control server up"])
        // SIGTERM's path: a graceful shutdown of the group.
        await group.triggerGracefulShutdown()
        try await run
        #expect(Array(journal.all.suffix(4)) == ["stop control server", "stop motion", "stop boards", "stop recording"])
    }

    @Test func aStageThatCannotStartStopsTheOnesBeforeItAndStartsNoneAfter() async throws {
        let journal = Journal()
        var motion = Stage(name: "motion", journal: journal)
        motion.failsToStart = true
        let group = group([Stage(name: "recording", journal: journal), Stage(name: "boards", journal: journal), motion,
                           Stage(name: "control server", journal: journal)])
        await #expect(throws: StartupError.self) { try await group.run() }
        #expect(journal.all == ["start recording", "recording up", "start boards", "boards up",
                                "start motion", "motion failed", "stop boards", "stop recording"])
    }

    @Test func aShutdownDuringStartupLetsTheStartingStageFinishThenStopsInReverse() async throws {
        let journal = Journal()
        var boards = Stage(name: "boards", journal: journal)
        boards.startsUntilShutdown = true  // a board link waiting for its board
        let group = group([Stage(name: "recording", journal: journal), boards, Stage(name: "motion", journal: journal)])
        async let run: Void = group.run()
        #expect(await waitFor("start boards", in: journal))
        await group.triggerGracefulShutdown()
        try await run
        // Motion never starts; boards finishes starting (a start is not torn in half) and stops.
        #expect(journal.all == ["start recording", "recording up", "start boards", "boards up",
                                "stop boards", "stop recording"])
    }

    @Test func theLastStageEndingItsRunShutsTheGroupDownInReverse() async throws {
        let journal = Journal()
        var scan = Stage(name: "command-line scan", journal: journal)
        scan.endsTheRun = true  // --exit-when-done: the scan is over
        let group = group([Stage(name: "recording", journal: journal), Stage(name: "motion", journal: journal), scan])
        try await group.run()
        #expect(Array(journal.all.suffix(3)) == ["stop command-line scan", "stop motion", "stop recording"])
    }
}
