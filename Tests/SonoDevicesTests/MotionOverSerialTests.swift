import Foundation
import SonoDevices
import SonoGeometry
import SonoMotion
import SonoProtocol
import SonoSim
import SonoTestbed
import SonoTestSupport
import Testing

/// The motion controller end to end against the virtual patient over the serial link: the
/// simulated arm and force boards on emulated USB devices, the real drivers, the 1 kHz loop.
/// Run under `umockdev-wrapper` like `EmulatedSerialLinkTests`.
@Suite(.serialized, .enabled(if: EmulatedSerialBench.isPreloaded || requireUMockdev,
                             "needs umockdev-wrapper (make test runs it)"))
struct MotionOverSerialTests {
    static let root = Repository.root

    /// The emulated link's latency tail (umockdev relays every byte through a thread; p99.9
    /// ≈ 6 ms on a 2-vCPU VM) would trip the 5 ms stale-data deadlines on an idle hiccup;
    /// these tests are about force and unplugging, so the deadlines get headroom.
    static func configuration(_ adjust: (inout MotionControllerConfiguration) -> Void = { _ in })
        -> MotionControllerConfiguration {
        var configuration = MotionControllerConfiguration()
        configuration.limits.forceDeadlineMicros = 40_000
        configuration.limits.jointStateDeadlineMicros = 40_000
        adjust(&configuration)
        return configuration
    }

    static func rig(_ suffix: String, _ configuration: MotionControllerConfiguration) throws -> VirtualScannerRig {
        try VirtualScannerRig(robotPath: root.appendingPathComponent("hardware/arm.toml").path,
                              patientPath: root.appendingPathComponent("hardware/patients/default.toml").path,
                              configuration: configuration, serialSuffix: suffix)
    }

    @Test func holdsTheContactForceOnThePatient() throws {
        let rig = try Self.rig("E2E-HOLD", Self.configuration())
        defer { rig.stop() }
        try rig.start()
        try rig.makeContact(at: .plax, forceN: 8)
        // makeContact returns once the force has been within 1 N for 200 ms; let the approach's
        // transient die out (admittance time constant ≈ 0.5 s) before judging the hold.
        Thread.sleep(forTimeInterval: 0.5)
        // Over a whole breathing cycle (the chest moves under the probe), the force stays near
        // the target. An admittance with damping D follows a surface moving at v with a force
        // error of about D·v, so the bound is D times the chest's peak speed (2π·f·A), plus
        // sensor noise: judging a shorter window would pass or fail with the breathing phase.
        let chest = rig.world.parameters.chest
        let period = 60 / chest.breathingRateBPM
        let peakSpeed = 2 * Double.pi / period * chest.breathingAmplitudeMM
        let bound = MotionControllerConfiguration().contact.dampingNsPerMM * peakSpeed + 0.5
        var worst = 0.0
        var total = 0.0
        let samples = Int((period + 0.5) * 100)
        for _ in 0..<samples {
            Thread.sleep(forTimeInterval: 0.01)
            let deviation = abs(rig.controller.status.force.z - 8)
            worst = max(worst, deviation)
            total += deviation
        }
        #expect(worst < bound, "largest deviation from 8 N: \(worst) N (bound \(bound) N)")
        #expect(total / Double(samples) < 1.0, "mean deviation from 8 N: \(total / Double(samples)) N")
        #expect(rig.stops.isEmpty)
        #expect(rig.truth.contact.normalForceN > 5, "the simulator agrees the probe is in contact")
    }

    @Test func pressingPastTheHardCapStopsWithinOnePeriodAndBacksOff() throws {
        // The soft limit (12 N) would keep the controller itself from ever pressing this hard:
        // lift it above the cap so that the hard cap is what acts.
        let rig = try Self.rig("E2E-CAP", Self.configuration { $0.limits.forceSoftLimitN = 30 })
        defer { rig.stop() }
        try rig.start()
        try rig.makeContact(at: .plax, forceN: 8)
        try rig.controller.perform(.contact(forceN: nil))
        let pressed = rig.controller.status.probe
        var deeper = pressed
        deeper.position += pressed.rotation.z * 25
        try rig.controller.perform(.move(to: deeper, limits: MotionLimits(speedMMs: 15)))
        #expect(rig.wait(seconds: 10) { !rig.stops.isEmpty }, "no stop while pressing 25 mm deeper")
        let stop = try #require(rig.stops.first)
        #expect(stop.breach?.cause == .forceHardCap)
        #expect(stop.kind == .category2)
        #expect(stop.cycle == stop.forceSampleCycle, "stop on the cycle the breaching sample arrived for")
        let written = try #require(stop.writtenMicros)
        print("over-force: \(stop.breach?.value ?? 0) N; sample → stop written \(written - stop.forceReceivedMicros) µs "
              + "(board stamp → written \(written - stop.forceBoardMicros) µs)")

        // It backs off: the retraction runs and leaves the probe ≥ 8 mm out along its axis.
        #expect(rig.wait(seconds: 5) {
            rig.events.contains { if case .retractFinished = $0 { true } else { false } }
        }, "retraction did not finish: \(rig.events.suffix(5))")
        Thread.sleep(forTimeInterval: 0.2)
        let status = rig.controller.status
        let stoppedAt = (deeper.position - pressed.position).length  // upper bound of the press
        #expect(status.state == .fault)
        #expect(status.force.length < 12, "force after backing off \(status.force.length) N")
        #expect(status.tipSpeedMMs < 1)
        let backedOff = (status.probe.position - pressed.position).dot(pressed.rotation.z)
        #expect(backedOff < stoppedAt - 8, "probe \(backedOff) mm past the contact pose after backing off")
        // The latched fault clears only by reset, and then the arm is disabled.
        #expect(try rig.controller.perform(.safety(.reset)) == .disabled)
    }

    @Test func unpluggingTheForceBoardMidScanStopsTheArm() throws {
        let rig = try Self.rig("E2E-UNPLUG", Self.configuration())
        defer { rig.stop() }
        try rig.start()
        try rig.makeContact(at: .plax, forceN: 6)
        try rig.controller.perform(.safety(.startScan))
        var sweep = rig.controller.status.probe
        sweep.position += sweep.rotation.x * 20
        try rig.controller.perform(.move(to: sweep, limits: MotionLimits(speedMMs: 10)))
        Thread.sleep(forTimeInterval: 0.5)
        #expect(rig.controller.status.moving)
        rig.unplugForceSensor()
        // Watch the status, as the scan planner does, not the events: once the status shows the
        // stop, waiting for event delivery must hand over the stop's event too (the scan summary
        // names the stop that ended the scan from it).
        let deadline = Date().addingTimeInterval(1)
        while rig.controller.status.state == .scanning, Date() < deadline {}
        #expect(rig.controller.status.state != .scanning, "no stop after the force board was unplugged")
        #expect(rig.controller.waitForEventDelivery())
        let stop = try #require(rig.stops.first, "the status shows a stop whose event was not delivered")
        #expect(stop.kind == .category1)
        #expect([SafetyCause.boardLost, .staleForce].contains(stop.breach?.cause), "\(String(describing: stop.breach))")
        // A category 1 stop ends with the drives off and the arm still.
        #expect(rig.wait(seconds: 2) { !rig.controller.status.armStatus.contains(.drivesEnabled) })
        let sent = rig.boards.armSender.sent
        let pose = rig.controller.status.probe.position
        Thread.sleep(forTimeInterval: 0.3)
        #expect(rig.boards.armSender.sent == sent, "nothing commanded after the stop")
        #expect((rig.controller.status.probe.position - pose).length < 0.01)
        #expect(rig.controller.status.state == .fault)
        #expect(throws: MotionRefusal.self) { try rig.controller.perform(.safety(.reset)) }
    }
}
