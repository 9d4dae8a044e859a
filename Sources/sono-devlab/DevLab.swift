import ArgumentParser
import SonoTestbed

/// The device lab: Sono's real serial drivers against simulated firmware boards on
/// umockdev-emulated USB devices. Run under `umockdev-wrapper` (the Makefile does).
@main
struct DevLab: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sono-devlab",
        abstract: "Run Sono's real serial drivers against simulated boards on emulated USB devices.",
        discussion: "Needs umockdev's preload: `umockdev-wrapper sono-devlab …` (make demo, make bench-link).",
        subcommands: [LinkDemo.self, PatientDemo.self, LinkBenchmark.self, LoopBenchmark.self, StopBenchmark.self,
                      USBBenchmark.self, USBCapture.self, FaultInjection.self]
    )
}

func requireBench() throws -> EmulatedSerialBench {
    do { return try EmulatedSerialBench.shared() } catch { throw ValidationError("\(error)") }
}
