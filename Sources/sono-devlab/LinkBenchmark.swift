import ArgumentParser
import Foundation
import Histogram
import SonoDevices
import SonoProtocol
import SonoSim
import SonoTestbed
import Synchronization

/// `sono-devlab bench-link`: latency from a simulated board taking a force sample (its frame
/// timestamp, CLOCK_MONOTONIC) to the host's frame callback, through the real path: board
/// firmware → PTY master → umockdev-emulated /dev/ttyACM* → libserialport → decoder → callback.
struct LinkBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-link",
        abstract: "Measure board-to-host sample latency through the emulated serial device.")

    @Option(help: "Samples to measure (1 kHz, so this many milliseconds).")
    var samples = 20_000

    @Option(help: "Samples to skip while the link warms up.")
    var warmup = 500

    func run() throws {
        let bench = try requireBench()
        let board = try BenchBoard(
            firmware: ForceSensorFirmware(serial: "FT-BENCH-1", source: SettableWrench()),
            device: .forceSensor(serial: "FT-BENCH-1"), bench: bench)
        defer { board.unplug() }

        let recorder = LatencyRecorder(warmup: warmup, samples: samples)
        let link = BoardLink(BoardLinkConfiguration(name: "force sensor", port: .path(board.devnode)),
                             onFrame: recorder.record)
        link.start()
        defer { link.stop() }
        guard link.waitUntilConnected(timeoutMillis: 3_000) != nil else {
            throw ValidationError("board did not connect: \(link.state)")
        }
        recorder.done.wait()
        let histogram = recorder.histogram
        let statistics = link.statistics
        print("""
            link latency, board sample → host callback (umockdev PTY, libserialport, 1 kHz FT_SAMPLE)
              command:  umockdev-wrapper .build/release/sono-devlab bench-link --samples \(samples)
              samples:  \(histogram.totalCount) (after \(warmup) warm-up), lost \(statistics.lostFrames), dropped \(statistics.receive.droppedFrames)
              p50:      \(histogram.valueAtPercentile(50)) µs
              p90:      \(histogram.valueAtPercentile(90)) µs
              p99:      \(histogram.valueAtPercentile(99)) µs
              p99.9:    \(histogram.valueAtPercentile(99.9)) µs
              max:      \(histogram.max) µs
              board overruns (late ticks caught up): \(board.runner.statistics.overruns)
            """)
    }
}

final class LatencyRecorder: @unchecked Sendable {
    // @unchecked: `record` runs on the link's reader thread only; `histogram` is read after `done`.
    private(set) var histogram = Histogram<UInt64>(highestTrackableValue: 10_000_000, numberOfSignificantValueDigits: .three)
    let done = DispatchSemaphore(value: 0)
    private let warmup: Int
    private let samples: Int
    private var seen = 0

    init(warmup: Int, samples: Int) {
        self.warmup = warmup
        self.samples = samples
    }

    func record(_ frame: Frame, _ receivedAt: UInt64) {
        guard case .forceTorqueSample = frame.message else { return }
        seen += 1
        guard seen > warmup, seen <= warmup + samples else { return }
        histogram.record(receivedAt &- frame.timestampMicros)
        if seen == warmup + samples { done.signal() }
    }
}
