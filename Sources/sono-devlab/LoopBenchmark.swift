import ArgumentParser
import Foundation
import SonoGeometry
import SonoMotion
import SonoProtocol

/// `sono-devlab bench-loop`: the 1 kHz control loop's period, jitter and overruns, with the
/// interlocks evaluated on every cycle as the motion controller will.
struct LoopBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-loop", abstract: "Measure the control loop's period and jitter (default 60 s at 1 kHz).")

    @Option(help: "Seconds to run.")
    var seconds: Double = 60

    @Option(help: "Loop rate, Hz.")
    var rate: Double = 1_000

    func run() throws {
        let joints = (0..<6).map { _ in JointSafetyLimits(lower: -3, upper: 3, maxVelocity: 1) }
        let interlocks = InterlockCell(SafetyStateMachine(limits: SafetyLimits(), joints: joints))
        let loop = ControlLoop(rateHz: rate) { cycle, deadline in
            interlocks.step(cycle: cycle, nowMicros: deadline / 1_000)
        }
        let report = loop.start()
        print("control loop: \(Int(rate)) Hz for \(Int(seconds)) s; \(report)")
        print("  command: .build/release/sono-devlab bench-loop --seconds \(Int(seconds))")
        Thread.sleep(forTimeInterval: seconds)
        loop.stop()
        let stats = loop.statistics
        print("""
              cycles:   \(stats.cycles) (\(stats.overruns) overruns)
              period:   p50 \(stats.periodP50) µs, p99 \(stats.periodP99) µs, p99.9 \(stats.periodP999) µs, max \(stats.periodMax) µs
              lateness: p99 \(stats.jitterP99) µs, max \(stats.jitterMax) µs (cycle start after its deadline)
            """)
    }
}

/// The interlocks owned by the loop thread alone (hence @unchecked): fed synthetic healthy
/// inputs each cycle, as cheap as the real ones.
final class InterlockCell: @unchecked Sendable {
    private var machine: SafetyStateMachine
    private var inputs: SafetyInputs

    init(_ machine: SafetyStateMachine) {
        self.machine = machine
        inputs = SafetyInputs(nowMicros: 0, force: Vector3(0, 0, 6), forceMicros: 0,
                              jointPositions: JointArray(Array(repeating: 0.1, count: 6), filler: 0),
                              jointVelocities: JointArray(Array(repeating: 0, count: 6), filler: 0), jointMicros: 0,
                              tipPosition: Vector3(40, 0, 0), tipSpeedMMs: 0)
    }

    func step(cycle: UInt64, nowMicros: UInt64) {
        inputs.nowMicros = nowMicros
        inputs.forceMicros = nowMicros
        inputs.jointMicros = nowMicros
        inputs.force.z = 6 + Double(cycle % 10) * 0.01
        _ = machine.step(inputs)
    }
}
