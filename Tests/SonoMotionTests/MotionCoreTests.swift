import Foundation
import SonoGeometry
@testable import SonoMotion
import SonoProtocol
import Synchronization
import SonoTestSupport
import Testing

/// Collects what the core writes to the arm.
final class RecordingOutput: ArmCommandOutput {
    let messages = Mutex<[Message]>([])
    /// False: the link refuses every write (its buffer full, or the board gone).
    let accepting = Atomic<Bool>(true)
    func send(_ message: Message) -> Bool {
        guard accepting.load(ordering: .relaxed) else { return false }
        messages.withLock { $0.append(message) }
        return true
    }
    func take() -> [Message] {
        messages.withLock { messages in
            let taken = messages
            messages.removeAll()
            return taken
        }
    }
}

/// A kinematic stand-in for the arm and the chest, stepped in lockstep with the core: joints
/// follow the last joint command within one cycle, the board acknowledges stops and reports
/// `stopping` for a few cycles, and the sensor reads a spring `stiffness` N/mm pressed along
/// the probe's starting axis beyond `gapMM`.
struct Bench {
    static let armFile = Repository.path("hardware/arm.toml")

    var core: MotionCore
    let output = RecordingOutput()
    var events: [MotionEvent] = []
    var now: UInt64 = 1_000_000
    var q: JointArray<Double>
    var previousQ: JointArray<Double>
    var stoppingCycles = 0
    var drives = false
    let surfaceOrigin: Vector3
    let surfaceNormal: Vector3
    var gapMM = 20.0
    var stiffness = 1.5
    var extraForce = 0.0
    var ticket: UInt64 = 0
    var jointCommandsSent = 0
    /// Perturbations for property tests: joint states withheld, a non-finite force, e-stop.
    var deliverJoints = true
    var forceIsNaN = false
    var estop = false
    /// Everything the core wrote on the last step.
    var lastMessages: [Message] = []
    /// The bench renews the contact lease every 50 ms, as the scan planner does (false: a
    /// silent supervisor).
    var renewsLease = true
    /// The board answers CLEAR_FAULTS with NACK fault_active (its own latch persists).
    var boardLatched = false

    init(configure: (inout MotionControllerConfiguration) -> Void = { _ in }) throws {
        let robot = try RobotDescription.load(path: Self.armFile)
        var configuration = MotionControllerConfiguration()
        configure(&configuration)
        core = MotionCore(arm: try ArmModel(robot), configuration: configuration)
        q = JointArray(robot.home, filler: 0)
        previousQ = q
        let start = robot.probePose(robot.home)
        surfaceOrigin = start.position
        surfaceNormal = start.rotation.z
        core.ingest(.link(.arm, alive: true)) { events.append($0) }
        core.ingest(.link(.forceTorque, alive: true)) { events.append($0) }
    }

    var indentationMM: Double { (core.arm.probePose(q).position - surfaceOrigin).dot(surfaceNormal) - gapMM }
    var forceN: Double { max(0, indentationMM) * stiffness + extraForce }

    /// One millisecond: the boards report, the core runs, the arm follows.
    mutating func step() {
        now += 1_000
        var status: ArmStatus = [.homed]
        if drives { status.insert(.drivesEnabled) }
        if stoppingCycles > 0 { status.insert(.stopping); stoppingCycles -= 1 }
        if estop { status.insert(.estopEngaged) }
        var readings = JointArray(count: q.count, filler: JointReading.zero)
        for index in 0..<q.count {
            readings[index] = JointReading(position: Float(q[index]), velocity: Float((q[index] - previousQ[index]) * 1_000),
                                           current: 0, flags: [])
        }
        let sample = ForceTorqueSample(fx: 0, fy: 0, fz: forceIsNaN ? .nan : Float(forceN), tx: 0, ty: 0, tz: 0)
        if deliverJoints {
            core.ingest(.joints(JointState(status: status, joints: readings), receivedMicros: now - 300)) { events.append($0) }
        }
        core.ingest(.force(sample, boardMicros: now - 400, receivedMicros: now - 200)) { events.append($0) }
        if renewsLease && now % 50_000 == 0 {
            core.handle(.renewContactLease, ticket: 1 << 40 | now, now: now, output: output) { _ in }
        }
        core.cycle(now: now, output: output) { events.append($0) }
        previousQ = q
        lastMessages = output.take()
        for message in lastMessages {
            switch message {
            case .jointCommand(let command) where drives && stoppingCycles == 0:
                jointCommandsSent += 1
                for index in 0..<q.count { q[index] = Double(command.joints[index].position) }
            case .stop(let category):
                stoppingCycles = 5
                if category != 2 { drives = false }
                core.ingest(.ack(ackedType: MessageType.stop.rawValue, board: .arm)) { events.append($0) }
            case .setDrives(let enable):
                drives = enable && !estop
                if enable && estop {
                    core.ingest(.nack(ackedType: MessageType.setDrives.rawValue, reason: .estopEngaged, board: .arm)) { events.append($0) }
                } else {
                    core.ingest(.ack(ackedType: MessageType.setDrives.rawValue, board: .arm)) { events.append($0) }
                }
            case .clearFaults:
                if boardLatched {
                    core.ingest(.nack(ackedType: MessageType.clearFaults.rawValue, reason: .faultActive, board: .arm)) { events.append($0) }
                } else {
                    core.ingest(.ack(ackedType: MessageType.clearFaults.rawValue, board: .arm)) { events.append($0) }
                }
            default: break
            }
        }
    }

    mutating func run(millis: Int) { for _ in 0..<millis { step() } }

    @discardableResult
    mutating func perform(_ command: MotionCommand) -> Result<SafetyState, MotionRefusal>? {
        ticket += 1
        let expected = ticket
        core.handle(command, ticket: ticket, now: now, output: output) { events.append($0) }
        for _ in 0..<100 {
            if let reply = events.lazy.compactMap({ event -> Result<SafetyState, MotionRefusal>? in
                if case .reply(expected, let result) = event { result } else { nil }
            }).first { return reply }
            step()
        }
        return nil
    }

    /// Performs a command that must be accepted.
    mutating func accept(_ command: MotionCommand) throws {
        let reply = perform(command)
        _ = try #require(reply).get()
    }

    mutating func enableMotion() throws {
        run(millis: 5)
        _ = try #require(perform(.safety(.enable))).get()
        _ = try #require(perform(.safety(.enableMotion))).get()
    }

    var stops: [StopRecord] { events.compactMap { if case .stop(let record) = $0 { record } else { nil } } }

    /// The probe's travel along its starting axis since `origin`, mm (positive: into the chest).
    func depth(from origin: Vector3) -> Double { (core.arm.probePose(q).position - origin).dot(surfaceNormal) }

    func sawEvent(_ matches: (MotionEvent) -> Bool) -> Bool { events.contains(where: matches) }
}

@Suite struct MotionCoreTests {
    @Test func nothingMovesUntilEnabledAndMovesAreRefusedWithTheReason() throws {
        var bench = try Bench()
        bench.run(millis: 20)
        let target = bench.core.arm.probePose(bench.q)
        let refused = bench.perform(.move(to: target, limits: nil))
        #expect(refused == .failure(.target(.motionNotAllowed(.disabled))))
        #expect(bench.jointCommandsSent == 0)
        try bench.enableMotion()
        bench.run(millis: 20)
        let drives = bench.drives
        #expect(drives, "enable switches the drives on")
        #expect(bench.jointCommandsSent > 0)
    }

    /// A link that refuses writes is reported once per run of refusals, not at 1 kHz; every
    /// refused write is counted.
    @Test func refusedWritesAreCountedAndReportedOncePerRun() throws {
        var bench = try Bench()
        try bench.enableMotion()
        bench.run(millis: 20)
        func reports() -> Int { bench.events.filter { if case .sendFailed = $0 { true } else { false } }.count }
        #expect(reports() == 0)
        bench.output.accepting.store(false, ordering: .relaxed)
        bench.run(millis: 50)
        #expect(reports() == 1)
        #expect(bench.events.contains(.sendFailed(.jointCommand)))
        #expect(bench.core.sendFailures >= 50)
        bench.output.accepting.store(true, ordering: .relaxed)
        bench.run(millis: 10)
        bench.output.accepting.store(false, ordering: .relaxed)
        bench.run(millis: 10)
        #expect(reports() == 2)
    }

    @Test func movesTheProbeAlongAJerkLimitedTrajectoryToTheTarget() throws {
        var bench = try Bench()
        try bench.enableMotion()
        let start = bench.core.arm.probePose(bench.q)
        var target = start
        target.position += Vector3(15, -10, 5)
        target.rotation = start.rotation * Rotation(axis: .unitX, angle: 0.1)
        let reply = bench.perform(.move(to: target, limits: nil))

        _ = try #require(reply).get()
        bench.run(millis: 3_000)
        let reached = bench.core.arm.probePose(bench.q)
        #expect((reached.position - target.position).length < 0.1)
        #expect(reached.rotation.angle(to: target.rotation) < 1e-3)
        #expect(bench.events.contains { if case .moveFinished = $0 { true } else { false } })
        #expect(bench.stops.isEmpty)
    }

    @Test func holdsTheContactForceWithAdmittanceControl() throws {
        var bench = try Bench()
        try bench.enableMotion()
        let reply = bench.perform(.contact(forceN: 8))

        _ = try #require(reply).get()
        bench.run(millis: 6_000)  // 20 mm of air at ≤ 12 mm/s, then settle
        #expect(abs(bench.forceN - 8) < 0.2, "force \(bench.forceN) N")
        // The chest rises 3 mm over a second (breathing): the controller gives way, then settles.
        for _ in 0..<1_000 {
            bench.gapMM -= 0.003
            bench.step()
        }
        bench.run(millis: 2_000)
        #expect(abs(bench.forceN - 8) < 0.2, "force \(bench.forceN) N after the chest rose")
        #expect(bench.stops.isEmpty)
    }

    @Test func refusesAContactForceOutsideItsRange() throws {
        var bench = try Bench()
        try bench.enableMotion()
        #expect(bench.perform(.contact(forceN: 15)) == .failure(.forceOutOfRange(15, allowed: 2...10)))
        #expect(bench.perform(.contact(forceN: .nan)).map { (try? $0.get()) == nil } == true)
    }

    @Test func positionControlDoesNotPressPastTheSoftLimit() throws {
        var bench = try Bench()
        try bench.enableMotion()
        var target = bench.core.arm.probePose(bench.q)
        target.position += target.rotation.z * 35  // 15 mm into a 1.5 N/mm chest = 22 N if obeyed
        let reply = bench.perform(.move(to: target, limits: nil))

        _ = try #require(reply).get()
        var peak = 0.0
        for _ in 0..<4_000 {
            bench.step()
            peak = max(peak, bench.forceN)
        }
        #expect(peak < SafetyLimits().forceSoftLimitN + 1, "peak \(peak) N")
        #expect(bench.stops.isEmpty)
    }

    @Test func forceOverTheCapStopsOnTheSameCycleThenRetracts() throws {
        var bench = try Bench()
        try bench.enableMotion()
        let reply = bench.perform(.contact(forceN: 8))

        _ = try #require(reply).get()
        bench.run(millis: 5_000)
        let cycleBefore = bench.core.cycle
        let pressedAt = bench.core.arm.probePose(bench.q).position
        bench.extraForce = 14  // something pushes the probe: 8 + 14 N > 20 N
        bench.step()
        let stop = try #require(bench.stops.first)
        #expect(stop.cycle == cycleBefore + 1, "stop on the cycle that saw the sample")
        #expect(stop.kind == .category2)
        #expect(stop.breach?.cause == .forceHardCap)
        #expect(bench.core.safety.state == .fault)
        bench.run(millis: 2_500)
        let retracted = bench.core.arm.probePose(bench.q).position
        #expect(abs((pressedAt - retracted).dot(bench.surfaceNormal) - 10) < 0.5, "retracted along the axis")
        #expect(bench.events.contains { if case .retractFinished = $0 { true } else { false } })
        // The fault latches: reset is refused while the force is over the cap, then accepted.
        bench.extraForce = 21
        bench.run(millis: 10)
        let refused = bench.perform(.safety(.reset))
        #expect(refused.map { (try? $0.get()) == nil } == true, "reset with the force still over the cap")
        bench.extraForce = 0
        bench.run(millis: 50)  // past the force-rate window of the drop
        #expect(bench.perform(.safety(.reset)) == .success(.disabled))
        bench.run(millis: 2)
        let drives = bench.drives
        #expect(!drives, "disabled switches the drives off")
    }

    @Test func aBreachDuringTheRetractionStopsIt() throws {
        var bench = try Bench()
        try bench.enableMotion()
        bench.extraForce = 25
        bench.run(millis: 30)
        bench.core.ingest(.link(.forceTorque, alive: false)) { bench.events.append($0) }
        bench.run(millis: 5)
        #expect(bench.events.contains { if case .retractAborted(.breach(let b)) = $0 { b.cause == .boardLost } else { false } })
        #expect(bench.stops.last?.kind == .category1)
    }

    @Test func unreachableTargetsAbortTheMoveAndHold() throws {
        var bench = try Bench()
        try bench.enableMotion()
        var target = bench.core.arm.probePose(bench.q)
        target.position.z += 500
        #expect(bench.perform(.move(to: target, limits: nil)) == .failure(.target(.outsideWorkspace(target.position))))
        let before = bench.jointCommandsSent
        bench.run(millis: 10)
        #expect(bench.jointCommandsSent > before, "holding keeps streaming the held target")
    }
}

/// The age of the inputs the interlocks judge, as status reports it for the stale-data margin.
@Suite struct InputAgeTests {
    @Test func statusReportsHowOldTheJudgedInputsAreAndNothingBeforeTheFirst() throws {
        var bench = try Bench()
        #expect(bench.core.status.forceAgeMicros == 0 && bench.core.status.jointAgeMicros == 0,
                "no input has arrived: no age, not the age of time zero")
        bench.run(millis: 5)
        // The bench's force arrives 200 µs before the cycle, its joint state 300 µs.
        #expect(bench.core.status.forceAgeMicros == 200)
        #expect(bench.core.status.jointAgeMicros == 300)
        bench.deliverJoints = false
        bench.run(millis: 12)
        #expect(bench.core.status.jointAgeMicros == 12_300, "the last joint state ages by every cycle without one")
        #expect(bench.core.status.forceAgeMicros == 200)
    }
}
