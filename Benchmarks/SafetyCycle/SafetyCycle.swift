// One control cycle of the interlocks, as the 1 kHz loop runs it: must not allocate.
// Run: make bench-codec (all package benchmarks) or
//      swift package --allow-writing-to-package-directory benchmark --target SafetyCycle
import Benchmark
import SonoGeometry
import SonoMotion
import SonoProtocol

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 1_000_000
    )

    Benchmark("interlock step (healthy scanning cycle)") { benchmark in
        let joints = (0..<6).map { _ in JointSafetyLimits(lower: -3, upper: 3, maxVelocity: 1) }
        var machine = SafetyStateMachine(limits: SafetyLimits(), joints: joints)
        var inputs = SafetyInputs(nowMicros: 1_000_000, force: Vector3(0, 0, 6), forceMicros: 1_000_000,
                                  jointPositions: JointArray(Array(repeating: 0.1, count: 6), filler: 0),
                                  jointVelocities: JointArray(Array(repeating: 0.05, count: 6), filler: 0),
                                  jointMicros: 1_000_000, tipPosition: Vector3(40, 0, 0), tipSpeedMMs: 10)
        _ = try? machine.handle(.enable, inputs)
        _ = try? machine.handle(.startScan, inputs)
        var allowed = 0
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            let now = 1_000_000 + UInt64(index) * 1_000
            inputs.nowMicros = now
            inputs.forceMicros = now
            inputs.jointMicros = now
            inputs.force.z = 6 + Double(index % 7) * 0.01
            if machine.step(inputs).motionAllowed { allowed += 1 }
        }
        benchmark.stopMeasurement()
        precondition(allowed == benchmark.scaledIterations.count, "a healthy cycle tripped an interlock")
    }
}
