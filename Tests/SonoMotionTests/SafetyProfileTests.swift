import Foundation
import SonoGeometry
@testable import SonoMotion
import SonoProtocol
import SonoTestSupport
import Testing

/// Issue 16, finding 9: the safety profiles (hardware and simulation), the planning margin's
/// key, and motion limits checked wherever they come from input.
@Suite struct SafetyProfileTests {
    static let hardware = Repository.path("hardware/safety.toml")
    static let simulation = Repository.path("hardware/safety-simulation.toml")

    @Test func theHardwareProfileNamesItselfAndKeepsTheDefaults() throws {
        var limits = try SafetyLimits.load(path: Self.hardware)
        #expect(limits.profile == SafetyProfile(name: "hardware", path: Self.hardware, simulation: false))
        #expect(limits.forceDeadlineMicros == 5_000 && limits.jointStateDeadlineMicros == 5_000)
        // Loading it for the simulation changes nothing: it is not the simulation profile.
        #expect(try SafetyLimits.load(path: Self.hardware, simulation: true) == limits)
        limits.profile = .builtIn
        #expect(limits == SafetyLimits())
    }

    @Test func theSimulationProfileLoadsOnlyInSimulationWithItsWiderDeadlines() throws {
        #expect(throws: SafetyConfigurationError.simulationProfileRefused(source: Self.simulation)) {
            try SafetyLimits.load(path: Self.simulation)
        }
        let limits = try SafetyLimits.load(path: Self.simulation, simulation: true)
        #expect(limits.profile == SafetyProfile(name: "simulation", path: Self.simulation, simulation: true))
        #expect(limits.forceDeadlineMicros == 40_000 && limits.jointStateDeadlineMicros == 40_000)
        // Every other limit is the hardware's.
        var others = limits
        others.forceDeadlineMicros = 5_000
        others.jointStateDeadlineMicros = 5_000
        others.profile = .builtIn
        #expect(others == SafetyLimits())
        let error = SafetyConfigurationError.simulationProfileRefused(source: "s.toml").description
        #expect(error.contains("simulation safety profile") && error.contains("[files] safety"), "\(error)")
    }

    @Test func onlyTheSimulationProfileMayWidenTheDeadlinesAndOnlyThose() throws {
        let wide = "[watchdog]\nforce_deadline_us = 40000\n"
        // Without the profile key: a hardware file, which may only tighten.
        #expect(throws: SafetyConfigurationError.looserThanDefault(source: "x", key: "watchdog.force_deadline_us",
                                                                   value: 40_000, limit: 5_000)) {
            try SafetyLimits.parse(toml: wide, source: "x", simulation: true)
        }
        let simulationProfile = "[profile]\nsimulation = true\n"
        #expect(try SafetyLimits.parse(toml: simulationProfile + wide, source: "x", simulation: true).forceDeadlineMicros == 40_000)
        #expect(throws: SafetyConfigurationError.looserThanDefault(source: "x", key: "watchdog.joint_state_deadline_us",
                                                                   value: 150_000, limit: 100_000)) {
            try SafetyLimits.parse(toml: simulationProfile + "[watchdog]\njoint_state_deadline_us = 150000\n", source: "x",
                                   simulation: true)
        }
        #expect(throws: SafetyConfigurationError.looserThanDefault(source: "x", key: "speed.tip_mm_s", value: 150, limit: 100)) {
            try SafetyLimits.parse(toml: simulationProfile + "[speed]\ntip_mm_s = 150\n", source: "x", simulation: true)
        }
        #expect(throws: SafetyConfigurationError.looserThanDefault(source: "x", key: "force.rate_window_us",
                                                                   value: 50_000, limit: 10_000)) {
            try SafetyLimits.parse(toml: simulationProfile + "[force]\nrate_window_us = 50000\n", source: "x", simulation: true)
        }
        // The contact lease is a watchdog too, but no latency allowance: not widened.
        #expect(throws: SafetyConfigurationError.looserThanDefault(source: "x", key: "watchdog.contact_lease_ms",
                                                                   value: 1_000, limit: 300)) {
            try SafetyLimits.parse(toml: simulationProfile + "[watchdog]\ncontact_lease_ms = 1000\n", source: "x", simulation: true)
        }
        // Nor the frame age limit (issue 16, finding 2); a tighter one is taken.
        #expect(throws: SafetyConfigurationError.looserThanDefault(source: "x", key: "watchdog.frame_age_ms",
                                                                   value: 500, limit: 200)) {
            try SafetyLimits.parse(toml: simulationProfile + "[watchdog]\nframe_age_ms = 500\n", source: "x", simulation: true)
        }
        #expect(try SafetyLimits.parse(toml: "[watchdog]\nframe_age_ms = 120\n", source: "x").frameAgeMicros == 120_000)
        #expect(throws: SafetyConfigurationError.unknownKey(source: "x", key: "profile.kind")) {
            try SafetyLimits.parse(toml: "[profile]\nkind = \"x\"\n", source: "x")
        }
    }

    @Test func thePlanningMarginIsAFractionASiteMayOnlyLower() throws {
        #expect(try SafetyLimits.load(path: Self.hardware).planningMargin == 0.8)
        #expect(try SafetyLimits.parse(toml: "[planning]\nmargin = 0.6\n", source: "x").planningMargin == 0.6)
        #expect(throws: SafetyConfigurationError.looserThanDefault(source: "x", key: "planning.margin", value: 0.9, limit: 0.8)) {
            try SafetyLimits.parse(toml: "[planning]\nmargin = 0.9\n", source: "x")
        }
        for bad in ["0", "1", "-0.2", "1.5"] {
            #expect(throws: SafetyConfigurationError.self, "margin = \(bad)") {
                try SafetyLimits.parse(toml: "[planning]\nmargin = \(bad)\n", source: "x")
            }
            do {
                _ = try SafetyLimits.parse(toml: "[planning]\nmargin = \(bad)\n", source: "x")
            } catch {
                #expect(error.description.contains("planning.margin"), "\(error)")
            }
        }
        #expect(throws: SafetyConfigurationError.wrongType(source: "x", key: "planning.margin", expected: "a finite number")) {
            try SafetyLimits.parse(toml: "[planning]\nmargin = nan\n", source: "x")
        }
    }

    // MARK: MotionLimits

    static func fields() -> [(String, WritableKeyPath<MotionLimits, Double>)] { [
        ("speed_mm_s", \.speedMMs), ("acceleration_mm_s2", \.accelerationMMs2), ("jerk_mm_s3", \.jerkMMs3),
        ("angular_speed_rad_s", \.angularSpeed), ("angular_acceleration_rad_s2", \.angularAcceleration),
        ("angular_jerk_rad_s3", \.angularJerk),
    ] }

    @Test(arguments: [Double.nan, .infinity, -.infinity, 0, -1, -.leastNonzeroMagnitude])
    func aMotionLimitThatIsNotFinitePositiveIsRefusedNamingTheField(_ bad: Double) throws {
        #expect(try MotionLimits().validated() == MotionLimits())
        for (name, path) in Self.fields() {
            var limits = MotionLimits()
            limits[keyPath: path] = bad
            do {
                _ = try limits.validated()
                Issue.record("\(name) = \(bad) accepted")
            } catch {
                #expect(error.field == name)
                #expect(error.description.contains(name) && error.description.contains("finite number above 0"), "\(error)")
            }
        }
    }

    @Test func aRecordedMoveWithABadLimitIsRefusedWhenTheTapeIsRead() throws {
        let pose = Pose(rotation: .identity, position: Vector3(1, 2, 3))
        var bad = MotionLimits()
        bad.jerkMMs3 = .nan
        func encoded(_ entry: TapeEntry) -> [UInt8] {
            var bytes: [UInt8] = []
            MotionTapeCodec.encode(entry, into: &bytes)
            return bytes
        }
        let good = TapeEntry.command(ticket: 1, .move(to: pose, limits: MotionLimits()))
        #expect(try MotionTapeCodec.decode(encoded(good)) == good)
        let entry = TapeEntry.command(ticket: 1, .move(to: pose, limits: bad))
        #expect(throws: TapeDecodeError.invalidValue("move: motion limit jerk_mm_s3 is NaN; it must be a finite number above 0")) {
            try MotionTapeCodec.decode(encoded(entry))
        }
    }

    /// Finding 9: the arm board is given the interlock's joint speed (rated × joint_fraction)
    /// as each JOINT_COMMAND's max_velocity, not arm.toml's rating.
    @Test func jointCommandsCarryTheSafetyLimitedVelocity() throws {
        var bench = try Bench { $0.limits.jointSpeedFraction = 0.5 }
        try bench.enableMotion()
        var target = bench.core.arm.probePose(bench.q)
        target.position += Vector3(5, 0, 0)
        let reply = bench.perform(.move(to: target, limits: nil))
        _ = try #require(reply).get()
        var commands: [JointCommand] = []
        for _ in 0..<50 {
            bench.step()
            for message in bench.lastMessages { if case .jointCommand(let command) = message { commands.append(command) } }
        }
        #expect(!commands.isEmpty)
        for command in commands {
            for index in 0..<bench.core.arm.jointCount {
                let expected = Float(bench.core.arm.maxVelocity[index] * 0.5)
                #expect(abs(command.joints[index].maxVelocity - expected) < 1e-6,
                        "joint \(index): \(command.joints[index].maxVelocity) rad/s sent, \(expected) allowed")
            }
        }
    }

    /// The controller itself refuses a move with such limits (every command path reaches it:
    /// the planner, the tape, in-process callers), naming the field; nothing moves.
    @Test func theControllerRefusesAMoveWithABadLimit() throws {
        var bench = try Bench()
        try bench.enableMotion()
        var target = bench.core.arm.probePose(bench.q)
        target.position += Vector3(5, 0, 0)
        var negative = MotionLimits()
        negative.speedMMs = -1
        let refused = bench.perform(.move(to: target, limits: negative))
        #expect(refused == .failure(.invalidLimits(MotionLimitsError(field: "speed_mm_s", value: -1))))
        var nan = MotionLimits()
        nan.angularJerk = .nan
        let refusedNaN = bench.perform(.move(to: target, limits: nan))
        guard case .failure(.invalidLimits(let error)) = refusedNaN else {
            Issue.record("a NaN limit was not refused: \(String(describing: refusedNaN))")
            return
        }
        #expect(error.field == "angular_jerk_rad_s3")
        #expect(!bench.events.contains { if case .moveStarted = $0 { true } else { false } })
    }
}
