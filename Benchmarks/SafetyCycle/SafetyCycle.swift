// One control cycle of the interlocks, as the 1 kHz loop runs it: must not allocate.
// Run: make bench-codec (all package benchmarks) or
//      swift package --allow-writing-to-package-directory benchmark --target SafetyCycle
import Benchmark
import Foundation
import SonoGeometry
import SonoMotion
import SonoProtocol

let benchmarks: @Sendable () -> Void = {
    defer { motionBenchmarks() }
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

/// Discards what the controller sends, after encoding it as the real sender would.
final class EncodingOutput: ArmCommandOutput, @unchecked Sendable {
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: ProtocolConstants.maxEncodedFrame, alignment: 8)
    var seq: UInt16 = 0
    func send(_ message: Message) -> Bool {
        seq &+= 1
        return (try? FrameCodec.encode(Frame(seq: seq, timestampMicros: 0, message: message), into: scratch)) != nil
    }
}

let motionBenchmarks: @Sendable () -> Void = {
    // The whole body of the 1 kHz loop as MotionController runs it: board inputs through the
    // SPSC queues, the interlocks, the trajectory, the admittance controller, differential IK,
    // the JOINT_COMMAND encoded, events through the event queue, status through the triple
    // buffer. A scanning cycle in contact, moving over the skin.
    Benchmark("motion controller cycle (scanning, contact force, IK, queues)") { benchmark in
        let armFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("hardware/arm.toml").path
        let robot = try RobotDescription.load(path: armFile)
        var core = MotionCore(arm: try ArmModel(robot), configuration: MotionControllerConfiguration())
        let output = EncodingOutput()
        let inputs = SPSCQueue<BoardInput>(capacity: 64)
        let events = SPSCQueue<MotionEvent>(capacity: 64)
        let status = TripleBuffer(core.status)
        var readings = JointArray(count: 6, filler: JointReading.zero)
        for index in 0..<6 {
            readings[index] = JointReading(position: Float(robot.home[index]), velocity: 0, current: 0, flags: [])
        }
        var now: UInt64 = 1_000_000
        func feed(force: Float) {
            inputs.push(.joints(JointState(status: [.homed, .drivesEnabled], joints: readings), receivedMicros: now))
            inputs.push(.force(ForceTorqueSample(fx: 0.1, fy: 0, fz: force, tx: 0, ty: 0, tz: 0),
                               boardMicros: now, receivedMicros: now))
            while let input = inputs.pop() { core.ingest(input) { events.push($0) } }
        }
        core.ingest(.link(.arm, alive: true)) { _ in }
        core.ingest(.link(.forceTorque, alive: true)) { _ in }
        feed(force: 6)
        for command in [MotionCommand.safety(.enable), .safety(.enableMotion), .contact(forceN: 8)] {
            core.handle(command, ticket: 0, now: now, output: output) { _ in }
        }
        var target = robot.probePose(robot.home)
        target.position += target.rotation.x * 40
        core.handle(.move(to: target, limits: nil), ticket: 0, now: now, output: output) { _ in }
        while events.pop() != nil {}
        var sent = 0
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            now += 1_000
            feed(force: 6 + Float(index % 7) * 0.05)
            core.cycle(now: now, output: output) { events.push($0) }
            status.write(core.status)
            while events.pop() != nil {}
            sent = Int(output.seq)
        }
        benchmark.stopMeasurement()
        precondition(core.safety.state == .operatorEnabled, "the benchmark's cycle tripped an interlock: \(core.status)")
        blackHole(sent)
    }
}
