import PropertyBased
import SonoGeometry
@testable import SonoMotion
import SonoProtocol
import Testing

/// Invariants of the interlocks over random sequences of samples, faults and commands.
@Suite struct SafetyPropertyTests {
    /// One random cycle: maybe a command, and inputs perturbed by at most one fault.
    struct Cycle: Sendable, CustomStringConvertible {
        var command: SafetyCommand?
        var fault: Int
        var force: Double
        var description: String { "\(command?.rawValue ?? "-") fault \(fault) force \(force)" }
    }

    static var cycle: Generator<Cycle, some SendableMetatype & Sequence> {
        zip(Gen.int(in: 0...20), Gen.int(in: 0...14), Gen.double(in: 0...30)).map { (drawn: (Int, Int, Double)) in
            let (commandIndex, fault, force) = drawn
            return Cycle(command: commandIndex < SafetyCommand.allCases.count ? SafetyCommand.allCases[commandIndex] : nil,
                         fault: fault, force: force)
        }
    }

    /// Inputs for cycle `index` with fault `fault` (0 = none) and axial force `force`.
    static func inputs(_ index: Int, _ cycle: Cycle) -> SafetyInputs {
        let now = 10_000_000 + UInt64(index) * 1_000
        var inputs = healthy(now: now)
        inputs.force = Vector3(0, 0, cycle.force)
        switch cycle.fault {
        case 1: inputs.estopEngaged = true
        case 2: inputs.boardsAlive = false
        case 3: inputs.forceMicros = now - 50_000
        case 4: inputs.jointMicros = now - 50_000
        case 5: inputs.tipSpeedMMs = 400
        case 6: inputs.jointVelocities[4] = 5
        case 7: inputs.tipPosition = Vector3(0, 0, 900)
        case 8: inputs.force = Vector3(.nan, 0, 0)
        case 9: inputs.forceTrusted = false
        case 10: inputs.boardFault = true
        case 11: inputs.jointPositions[0] = 4
        default: break
        }
        return inputs
    }

    /// Runs a sequence, checking the invariants on every cycle.
    static func run(_ cycles: [Cycle]) {
        var m = machine()
        var forceOK = true
        for (index, cycle) in cycles.enumerated() {
            let inputs = inputs(index, cycle)
            let stateBefore = m.state
            let latchedBefore = m.latched
            var commandStop: StopKind?
            if let command = cycle.command, let result = try? m.handle(command, inputs) { commandStop = result.stop }
            let commandedReset = cycle.command == .reset
            let output = m.step(inputs)
            let breach = m.worstBreach(inputs)

            // 1. No motion is allowed on a cycle where any interlock is open.
            if breach != nil { #expect(!output.motionAllowed, "motion allowed with \(breach?.cause.rawValue ?? "") open") }
            // 2. Force above the hard cap while the arm may move or holds yields a stop on that
            // cycle (from the interlocks, or from a stop command given in the same cycle).
            if inputs.force.length > 20, forceOK, [.ready, .operatorEnabled, .scanning].contains(stateBefore),
               breach?.cause == .forceHardCap {
                #expect(output.stop != nil || commandStop != nil, "no stop for \(inputs.force.length) N")
            }
            // 3. A latched fault or e-stop never clears without an explicit reset.
            if [.fault, .emergencyStop].contains(stateBefore) && !commandedReset {
                #expect([.fault, .emergencyStop].contains(m.state), "\(stateBefore) cleared without reset")
                #expect(m.latched != nil || latchedBefore == nil)
            }
            // 4. Motion is only ever allowed in the motion states.
            #expect(!output.motionAllowed || m.state.allowsMotion)
            forceOK = inputs.force.isFinite
        }
    }

    @Test func invariantsHoldOverRandomSequences() async {
        // The sequence the property test found when this invariant ignored stops given by command.
        Self.run([Cycle(command: .enable, fault: 0, force: 0), Cycle(command: .emergencyStop, fault: 0, force: 20.000000000000004)])
        await propertyCheck(count: 300, input: Self.cycle.array(of: 1...60)) { cycles in
            Self.run(cycles)
        }
    }

    @Test func forceAboveTheCapAlwaysStopsWithinOneCycle() async {
        await propertyCheck(count: 500, input: Gen.double(in: 20.001...200), Gen.int(in: 0...3)) { force, startState in
            var m = machine()
            let start = healthy()
            _ = try? m.handle(.enable, start)
            if startState >= 1 { _ = try? m.handle(.enableMotion, start) }
            if startState >= 2 { _ = try? m.handle(.startScan, start) }
            _ = m.step(start)
            var inputs = healthy(now: start.nowMicros + 1_000)
            inputs.force = Vector3(0, 0, force)
            let output = m.step(inputs)
            #expect(output.stop != nil && !output.motionAllowed, "\(force) N from state \(startState)")
        }
    }
}
