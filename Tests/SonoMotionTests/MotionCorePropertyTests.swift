import PropertyBased
import SonoGeometry
@testable import SonoMotion
import SonoProtocol
import Testing

/// The controller-level invariants over random sequences of commands and faults, with the
/// kinematic bench standing in for arm and chest: what actually goes out to the arm.
@Suite struct MotionCorePropertyTests {
    struct Step: Sendable, CustomStringConvertible {
        var command: Int
        var fault: Int
        var extraForce: Double
        var description: String { "command \(command) fault \(fault) +\(extraForce) N" }
    }

    static var step: Generator<Step, some SendableMetatype & Sequence> {
        zip(Gen.int(in: 0...32), Gen.int(in: 0...12), Gen.double(in: 0...30)).map { (drawn: (Int, Int, Double)) in
            Step(command: drawn.0, fault: drawn.1, extraForce: drawn.2)
        }
    }

    static func command(_ index: Int, bench: Bench) -> MotionCommand? {
        let commands = SafetyCommand.allCases
        if index < commands.count { return .safety(commands[index]) }
        var pose = bench.core.arm.probePose(bench.q)
        switch index - commands.count {
        case 0: pose.position += pose.rotation.z * 8; return .move(to: pose, limits: nil)
        case 1: pose.position += pose.rotation.x * 5; return .move(to: pose, limits: nil)
        case 2: return .contact(forceN: 8)
        case 3: return .contact(forceN: nil)
        case 4: return .hold
        case 5: return .renewContactLease
        case 6: return .release
        default: return nil
        }
    }

    static func run(_ steps: [Step]) throws {
        var bench = try Bench()
        bench.run(millis: 5)
        for step in steps {
            if let command = command(step.command, bench: bench) {
                bench.ticket += 1
                let ticket = bench.ticket
                bench.core.handle(command, ticket: ticket, now: bench.now, output: bench.output) { bench.events.append($0) }
                if command == .safety(.disable) {
                    // 3. Drives-off is accepted in every state.
                    let answered = bench.events.contains { if case .reply(ticket, .success) = $0 { true } else { false } }
                    #expect(answered, "disable refused in \(bench.core.safety.state)")
                }
            }
            if step.fault == 6 { bench.renewsLease = false }  // the supervisor falls silent
            if step.fault == 7 { bench.renewsLease = true }
            bench.deliverJoints = step.fault != 1
            bench.forceIsNaN = step.fault == 2
            bench.estop = step.fault == 3
            if step.fault == 4 { bench.core.ingest(.link(.forceTorque, alive: false)) { bench.events.append($0) } }
            if step.fault == 5 { bench.core.ingest(.link(.forceTorque, alive: true)) { bench.events.append($0) } }
            bench.extraForce = step.fault >= 10 ? step.extraForce : 0
            let stateBefore = bench.core.safety.state
            let forceBefore = bench.forceN
            // A few cycles per step: stale data needs time to go stale.
            for _ in 0..<8 {
                bench.step()
                let state = bench.core.safety.state
                let retracting = state == .fault && bench.core.safety.latched?.cause == .forceHardCap
                let status = bench.core.status
                for message in bench.lastMessages {
                    if case .jointCommand = message {
                        // 1. No motion command while an interlock holds the arm (the over-force
                        // retraction and the operator's release are the motions a stop permits).
                        #expect(state.allowsMotion || retracting || status.releasing, "JOINT_COMMAND sent in \(state)")
                    }
                }
                // 4. No contact force is held without a live lease.
                if status.contactTargetN != nil {
                    #expect(status.leaseRemainingMicros > 0, "holding \(status.contactTargetN ?? 0) N with the lease expired")
                }
            }
            // 2. Force over the cap while the arm could move: a STOP went out.
            if forceBefore > 20.5, !bench.forceIsNaN, stateBefore.allowsMotion {
                #expect(bench.stops.contains { $0.breach?.cause == .forceHardCap || $0.breach == nil }
                            || !bench.core.safety.state.allowsMotion, "no stop at \(forceBefore) N")
            }
        }
    }

    @Test func noMotionCommandWhileAnInterlockIsOpen() async {
        await propertyCheck(count: 200, input: Self.step.array(of: 1...40)) { steps in
            try Self.run(steps)
        }
    }
}
