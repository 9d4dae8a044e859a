import Foundation
import SonoGeometry
@testable import SonoMotion
import SonoProtocol
import SonoTestSupport
import Testing

/// A healthy scanner at time `now`: fresh data, light contact, inside every limit.
func healthy(now: UInt64 = 10_000_000) -> SafetyInputs {
    SafetyInputs(nowMicros: now, force: Vector3(0.2, -0.1, 6), forceMicros: now - 500,
                 jointPositions: JointArray([0.2, -1.9, 1.7, -1.4, -1.57, 0.2], filler: 0),
                 jointVelocities: JointArray(Array(repeating: 0.01, count: 6), filler: 0), jointMicros: now - 700,
                 tipPosition: Vector3(40, -10, 0), tipSpeedMMs: 5)
}

func machine(_ configure: (inout SafetyLimits) -> Void = { _ in }) -> SafetyStateMachine {
    var limits = SafetyLimits()
    configure(&limits)
    let joints = (0..<6).map { _ in JointSafetyLimits(lower: -3, upper: 3, maxVelocity: 1) }
    return SafetyStateMachine(limits: limits, joints: joints)
}

/// A machine brought to `scanning` on healthy inputs.
func scanning(_ configure: (inout SafetyLimits) -> Void = { _ in }) throws -> SafetyStateMachine {
    var m = machine(configure)
    var held = healthy()
    held.deadManHeld = true  // operator-enabled motion is held by the operator where required
    _ = try m.handle(.enable, held)
    _ = try m.handle(.enableMotion, held)
    _ = try m.handle(.startScan, held)
    #expect(m.state == .scanning)
    return m
}

@Suite struct InterlockTests {
    /// One breach per interlock: the stop it must cause on the same cycle, and the state after.
    static var breaches: [(String, (inout SafetyInputs) -> Void, SafetyCause, StopKind, SafetyState)] { [
        ("force over the hard cap", { $0.force = Vector3(0, 0, 21) }, .forceHardCap, .category2, .fault),
        ("force rising too fast", { $0.force = Vector3(0, 0, 11) }, .forceRate, .category2, .protectiveStop),
        ("tip too fast", { $0.tipSpeedMMs = 150 }, .tipSpeed, .category1, .fault),
        ("joint too fast", { $0.jointVelocities[2] = -1.2 }, .jointSpeed, .category1, .fault),
        ("tip outside the workspace", { $0.tipPosition = Vector3(300, 0, 0) }, .workspace, .category2, .protectiveStop),
        ("joint past its limit", { $0.jointPositions[1] = -3.1 }, .jointLimit, .category1, .fault),
        ("stale force sample", { $0.forceMicros = $0.nowMicros - 6_000 }, .staleForce, .category1, .fault),
        ("stale joint state", { $0.jointMicros = $0.nowMicros - 6_000 }, .staleJointState, .category1, .fault),
        ("board lost", { $0.boardsAlive = false }, .boardLost, .category1, .fault),
        ("board fault", { $0.boardFault = true }, .boardFault, .category1, .fault),
        ("e-stop pressed", { $0.estopEngaged = true }, .emergencyStop, .category0, .emergencyStop),
        ("NaN force", { $0.force = Vector3(.nan, 0, 6) }, .nonFiniteInput, .category1, .fault),
        ("infinite joint velocity", { $0.jointVelocities[0] = .infinity }, .nonFiniteInput, .category1, .fault),
        ("saturated sensor", { $0.forceTrusted = false }, .sensorUntrusted, .category1, .fault),
    ] }

    @Test(arguments: 0..<breaches.count)
    func eachInterlockStopsOnTheCycleItTrips(_ index: Int) throws {
        let (name, breach, cause, stop, after) = Self.breaches[index]
        var m = try scanning()
        // A healthy cycle one rate window earlier gives the force-rate check its reference.
        #expect(m.step(healthy(now: 10_000_000 - 10_000)).stop == nil)
        var inputs = healthy()
        breach(&inputs)
        let output = m.step(inputs)
        #expect(output.stop == stop, "\(name)")
        #expect(output.breach?.cause == cause, "\(name)")
        #expect(!output.motionAllowed, "\(name)")
        #expect(m.state == after, "\(name)")
        #expect(cause.reaction != .protectiveStop(.category2) || after == .protectiveStop)
    }

    @Test func forceRateIsMeasuredOverItsWindowNotBetweenTwoSamples() throws {
        var m = try scanning()
        var now: UInt64 = 10_000_000
        // Touching the skin: a 0.6 N step in one sample, then steady. Over 10 ms that is
        // 60 N/s, not the 600 N/s two consecutive samples would suggest.
        for index in 0..<30 {
            now += 1_000
            var inputs = healthy(now: now)
            inputs.forceMicros = now - 300
            inputs.force = Vector3(0, 0, index < 15 ? 6 : 6.6)
            #expect(m.step(inputs).stop == nil, "sample \(index)")
        }
        // A blow: 6 N more within 5 ms is 600 N/s over the window, and stops.
        var stopped: StopKind?
        for index in 0..<10 where stopped == nil {
            now += 1_000
            var inputs = healthy(now: now)
            inputs.forceMicros = now - 300
            inputs.force = Vector3(0, 0, 6.6 + 1.2 * Double(min(index + 1, 5)))
            stopped = m.step(inputs).stop
        }
        #expect(stopped == .category2)
        #expect(m.latched?.cause == .forceRate)
    }

    @Test func overForceAsksTheControllerToBackOff() throws {
        var m = try scanning()
        var inputs = healthy()
        inputs.force = Vector3(3, 0, 22)
        let output = m.step(inputs)
        #expect(output.backOff && output.stop == .category2)
    }

    @Test func theSoftLimitLimitsWithoutStopping() throws {
        var m = try scanning()
        var before = healthy(now: 9_999_000)
        before.force = Vector3(0, 0, 12.9)
        _ = m.step(before)
        var inputs = healthy(now: 10_000_000)
        inputs.force = Vector3(0, 0, 13)
        let output = m.step(inputs)
        #expect(output.forceLimited && output.stop == nil && output.motionAllowed)
    }

    @Test func theDeadManStopsWhenRequiredAndReleased() throws {
        var m = try scanning { $0.requireDeadMan = true }
        var inputs = healthy()
        inputs.deadManHeld = false
        #expect(m.step(inputs).breach?.cause == .deadManReleased)
        #expect(m.state == .protectiveStop)
        inputs.deadManHeld = true
        _ = try m.handle(.resume, inputs)
        #expect(m.state == .ready)
    }

    @Test func aLatchedFaultClearsOnlyByResetAndOnlyWhenItsCauseIsGone() throws {
        var m = try scanning()
        var inputs = healthy()
        inputs.boardsAlive = false
        _ = m.step(inputs)
        #expect(m.state == .fault && m.latched?.cause == .boardLost)
        // Healthy cycles alone change nothing.
        for cycle in 1...100 { _ = m.step(healthy(now: 10_000_000 + UInt64(cycle) * 1_000)) }
        #expect(m.state == .fault)
        // Reset with the cause present is refused, with the reason.
        #expect(throws: SafetyStateMachine.Refusal.causePresent(SafetyBreach(cause: .boardLost, value: 1, limit: 0))) {
            try m.handle(.reset, inputs)
        }
        #expect(throws: SafetyStateMachine.Refusal.notAllowed(.enable, in: .fault)) { try m.handle(.enable, healthy()) }
        _ = try m.handle(.reset, healthy())
        #expect(m.state == .disabled && m.latched == nil)
    }

    @Test func emergencyStopOverridesEverythingAndNeedsReleaseThenReset() throws {
        var m = try scanning()
        var inputs = healthy()
        inputs.tipSpeedMMs = 500
        _ = m.step(inputs)
        #expect(m.state == .fault)
        inputs.estopEngaged = true
        #expect(m.step(inputs).stop == .category0)
        #expect(m.state == .emergencyStop)
        #expect(throws: SafetyStateMachine.Refusal.self) { try m.handle(.reset, inputs) }
        _ = try m.handle(.reset, healthy())
        #expect(m.state == .disabled)
    }

    @Test func motionCommandsAreAcceptedOnlyInStatesThatAllowThem() throws {
        var m = machine()
        #expect(throws: SafetyStateMachine.Refusal.notAllowed(.startScan, in: .disabled)) { try m.handle(.startScan, healthy()) }
        var stale = healthy()
        stale.forceMicros = 0
        #expect { try m.handle(.enable, stale) } throws: { "\($0)".contains("stale_force still present") }
        _ = try m.handle(.enable, healthy())
        let target = JointArray([0.1, -1.8, 1.6, -1.4, -1.5, 0.1], filler: 0.0)
        #expect(throws: SafetyStateMachine.TargetRejection.motionNotAllowed(.ready)) {
            try m.validate(target: target, tip: Vector3(0, 0, 10))
        }
        _ = try m.handle(.enableMotion, healthy())
        try m.validate(target: target, tip: Vector3(0, 0, 10))
        var outside = target
        outside[3] = 3.5
        #expect(throws: SafetyStateMachine.TargetRejection.outsideJointLimits(joint: 3, value: 3.5, lower: -3, upper: 3)) {
            try m.validate(target: outside, tip: Vector3(0, 0, 10))
        }
        var nan = target
        nan[0] = .nan
        #expect(throws: SafetyStateMachine.TargetRejection.nonFinite(joint: 0)) { try m.validate(target: nan, tip: .zero) }
        #expect(throws: SafetyStateMachine.TargetRejection.outsideWorkspace(Vector3(0, 0, 400))) {
            try m.validate(target: target, tip: Vector3(0, 0, 400))
        }
        // Stops are always accepted.
        #expect(try m.handle(.protectiveStop, healthy())?.stop == .category2)
        #expect(try m.handle(.emergencyStop, healthy())?.stop == .category0)
    }

    @Test func everyCauseHasADocumentedReaction() {
        for cause in SafetyCause.allCases {
            switch cause.reaction {
            case .fault(let kind), .protectiveStop(let kind): #expect(kind != .category0 || cause == .emergencyStop)
            case .emergencyStop: #expect(cause == .emergencyStop)
            }
        }
    }
}

@Suite struct SafetyConfigurationTests {
    static let file = Repository.path("hardware/safety.toml")

    @Test func theShippedFileHoldsTheDefaults() throws {
        var shipped = try SafetyLimits.load(path: Self.file)
        shipped.profile = .builtIn  // which file they came from (SafetyProfileTests)
        #expect(shipped == SafetyLimits())
    }

    @Test func aSiteMayTightenButNotLoosen() throws {
        let tighter = try SafetyLimits.parse(toml: "[force]\nhard_cap_n = 15\n[speed]\ntip_mm_s = 50", source: "x")
        #expect(tighter.forceHardCapN == 15 && tighter.tipSpeedLimitMMs == 50)
        #expect(throws: SafetyConfigurationError.looserThanDefault(source: "x", key: "force.hard_cap_n", value: 30, limit: 20)) {
            try SafetyLimits.parse(toml: "[force]\nhard_cap_n = 30", source: "x")
        }
        #expect(throws: SafetyConfigurationError.looserThanDefault(source: "x", key: "workspace.max_mm", value: 500, limit: 250)) {
            try SafetyLimits.parse(toml: "[workspace]\nmax_mm = [100.0, 100.0, 500.0]", source: "x")
        }
        #expect(throws: SafetyConfigurationError.unknownKey(source: "x", key: "force.hard_cap")) {
            try SafetyLimits.parse(toml: "[force]\nhard_cap = 10", source: "x")
        }
        #expect(throws: SafetyConfigurationError.wrongType(source: "x", key: "watchdog.force_deadline_us", expected: "a finite number")) {
            try SafetyLimits.parse(toml: "[watchdog]\nforce_deadline_us = \"soon\"", source: "x")
        }
    }
}
