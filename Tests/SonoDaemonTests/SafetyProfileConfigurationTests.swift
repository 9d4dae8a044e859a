import Foundation
@testable import SonoDaemon
import SonoGeometry
import SonoMotion
import SonoPlanner
import SonoTestSupport
import Testing

/// Issue 16, finding 9, in the daemon: sono.toml may only tighten the active safety profile,
/// the simulation's profile is its own file, and the planner's speeds are checked as motion
/// limits. (DaemonProcessTests starts sonod and sonod-sim on such files: exit 78.)
@Suite struct SafetyProfileConfigurationTests {
    static func arm() throws -> ArmModel { try ArmModel(RobotDescription.load(path: Repository.path("hardware/arm.toml"))) }
    static func hardware() throws -> SafetyLimits { try SafetyLimits.load(path: Repository.path("hardware/safety.toml")) }
    static func simulation() throws -> SafetyLimits {
        try SafetyLimits.load(path: Repository.path("hardware/safety-simulation.toml"), simulation: true)
    }

    @Test func theSimulationReadsItsOwnProfileBesideTheHardwareOne() throws {
        let defaults = DaemonConfiguration.simulation(root: Repository.root.path)
        #expect(defaults.safetyProfilePath(simulated: false) == Repository.path("hardware/safety.toml"))
        #expect(defaults.safetyProfilePath(simulated: true) == Repository.path("hardware/safety-simulation.toml"))
        let site = try DaemonConfiguration.parse("[files]\nsafety = \"/etc/sono/safety.toml\"\n", path: "s.toml")
        #expect(site.safetyProfilePath(simulated: true) == "/etc/sono/safety-simulation.toml")
        #expect(site.safetyProfilePath(simulated: false) == "/etc/sono/safety.toml")
        let named = try DaemonConfiguration.parse("[files]\nsimulation_safety = \"/tmp/sim.toml\"\n", path: "s.toml")
        #expect(named.safetyProfilePath(simulated: true) == "/tmp/sim.toml")
    }

    @Test func theDeadlinesComeFromTheProfileNotFromCode() throws {
        let arm = try Self.arm()
        let onHardware = try Scanner.motionConfiguration(limits: try Self.hardware(), staleDeadlineMillis: nil, arm: arm)
        #expect(onHardware.limits.forceDeadlineMicros == 5_000 && onHardware.limits.jointStateDeadlineMicros == 5_000)
        let simulated = try Scanner.motionConfiguration(limits: try Self.simulation(), staleDeadlineMillis: nil, arm: arm)
        #expect(simulated.limits.forceDeadlineMicros == 40_000 && simulated.limits.jointStateDeadlineMicros == 40_000)
        #expect(simulated.limits.profile.simulation && !onHardware.limits.profile.simulation)
    }

    @Test func staleDeadlineMayTightenTheProfileButNotLoosenIt() throws {
        let arm = try Self.arm()
        let tighter = try Scanner.motionConfiguration(limits: try Self.hardware(), staleDeadlineMillis: 3, arm: arm)
        #expect(tighter.limits.forceDeadlineMicros == 3_000 && tighter.limits.jointStateDeadlineMicros == 3_000)
        #expect(try Scanner.motionConfiguration(limits: try Self.simulation(), staleDeadlineMillis: 40, arm: arm)
            .limits.forceDeadlineMicros == 40_000)
        for (limits, millis) in [(try Self.hardware(), 6), (try Self.hardware(), 40), (try Self.simulation(), 41)] {
            do {
                _ = try Scanner.motionConfiguration(limits: limits, staleDeadlineMillis: millis, arm: arm)
                Issue.record("stale_deadline_ms = \(millis) accepted over profile \(limits.profile.name)")
            } catch {
                let text = error.description
                #expect(text.contains("realtime.stale_deadline_ms = \(millis)") && text.contains("looser than the safety profile")
                            && text.contains(limits.profile.name), "\(text)")
            }
        }
    }

    @Test func thePlannersSpeedsAreCheckedAsMotionLimits() throws {
        #expect(throws: Never.self) { try PlannerSettings().validatedMotionLimits() }
        for (name, bad) in [("planner.travel_speed_mm_s", Double.nan), ("planner.slide_speed_mm_s", 0), ("planner.turn_speed_rad_s", -1)] {
            var settings = PlannerSettings()
            switch name {
            case "planner.travel_speed_mm_s": settings.travelSpeedMMs = bad
            case "planner.slide_speed_mm_s": settings.slideSpeedMMs = bad
            default: settings.turnSpeedRadS = bad
            }
            do {
                _ = try settings.validatedMotionLimits()
                Issue.record("\(name) = \(bad) accepted")
            } catch {
                #expect(error.field == name && error.description.contains(name), "\(error)")
            }
            // A recording's planner settings are input too: replay reports them, runs nothing.
            #expect(SessionReplay.invalidMotion(settings)?.field == name)
        }
    }
}
