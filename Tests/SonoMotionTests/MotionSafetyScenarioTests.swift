import SonoGeometry
@testable import SonoMotion
import SonoProtocol
import Testing

/// Narrated scenarios of the safe exits from contact (issue 16): each steps the bench's time
/// explicitly, one millisecond per step, and says what a person at the bedside would see.
@Suite struct MotionSafetyScenarioTests {
    /// Enables motion, starts a scan and brings the probe onto the chest at 8 N.
    private func scanningInContact() throws -> Bench {
        var bench = try Bench()
        try bench.enableMotion()
        try bench.accept(.safety(.startScan))
        try bench.accept(.contact(forceN: 8))
        bench.run(millis: 5_000)
        #expect(abs(bench.forceN - 8) < 0.5, "in contact at \(bench.forceN) N")
        return bench
    }

    private static func liftOffStarted(_ reason: LiftOffReason) -> (MotionEvent) -> Bool {
        { if case .liftOffStarted(reason, _) = $0 { true } else { false } }
    }

    @Test func aScanStoppedInContactLiftsTheProbeOffInsteadOfPressingOn() throws {
        var bench = try scanningInContact()
        let pressedAt = bench.core.arm.probePose(bench.q).position
        // The planner gave up (cancelled, timed out, threw) without lifting; the runtime ends the scan.
        do {
            let answer = bench.perform(.safety(.stopScan))
            #expect(answer == .success(.operatorEnabled))
        }
        #expect(bench.sawEvent(Self.liftOffStarted(.scanEnded)))
        #expect(bench.core.status.contactTargetN == nil, "force control ends with the scan")
        bench.run(millis: 3_000)
        #expect(bench.sawEvent { if case .liftOffFinished = $0 { true } else { false } })
        #expect(bench.forceN == 0, "the probe is off the chest")
        #expect(bench.depth(from: pressedAt) < -SafetyLimits().liftOffMM + 0.5, "backed off along its axis")
        // The patient breathes up 3 mm: the probe holds its clearance, it does not follow.
        bench.gapMM -= 3
        bench.run(millis: 500)
        #expect(bench.forceN == 0)
        #expect(bench.stops.isEmpty, "a lift-off, not a stop")
    }

    @Test func aSilentSupervisorLetsTheLeaseExpireWhichEndsTheScanAndLiftsOff() throws {
        var bench = try scanningInContact()
        // The planner's thread hangs: nobody renews the lease from here on.
        bench.renewsLease = false
        let silentFrom = bench.now
        var liftedAt: UInt64?
        for _ in 0..<600 where liftedAt == nil {
            bench.step()
            if bench.sawEvent(Self.liftOffStarted(.leaseExpired)) { liftedAt = bench.now }
        }
        let lifted = try #require(liftedAt, "the lease expired without a lift-off")
        let lease = SafetyLimits().contactLeaseMicros
        #expect(lifted - silentFrom <= lease + 50_000 + 2_000, "lift-off within a lease of the last renewal")
        #expect(bench.core.safety.state == .operatorEnabled, "the expiry ends the scan")
        #expect(bench.core.status.lastLiftOff == .leaseExpired)
        bench.run(millis: 3_000)
        #expect(bench.forceN == 0)
        #expect(bench.stops.isEmpty)
        // A planner that wakes up late cannot take contact again while lifting: it must re-enter the scan.
        #expect(bench.core.status.liftingOff == false)
    }

    @Test func pressingInPositionControlWithoutALeaseLiftsOff() throws {
        var bench = try Bench()
        bench.renewsLease = false
        try bench.enableMotion()
        var target = bench.core.arm.probePose(bench.q)
        target.position += target.rotation.z * 24  // 4 mm into a 1.5 N/mm chest: 6 N, no contact control
        try bench.accept(.move(to: target, limits: nil))
        bench.run(millis: 4_000)
        #expect(bench.sawEvent(Self.liftOffStarted(.leaseExpired)), "nobody holds the contact")
        #expect(bench.forceN == 0)
    }

    @Test func drivesOffIsAcceptedInAFaultAndInAnEmergencyStop() throws {
        var bench = try scanningInContact()
        bench.extraForce = 14
        bench.step()
        #expect(bench.core.safety.state == .fault)
        bench.run(millis: 5)
        // Mid-retraction, the operator turns the drives off: accepted, the fault stays latched.
        do {
            let answer = bench.perform(.safety(.disable))
            #expect(answer == .success(.fault))
        }
        bench.run(millis: 2)
        #expect(!bench.drives, "drives off")
        #expect(bench.core.status.retracting == false, "the retraction ends with the drives")
        #expect(bench.core.safety.latched?.cause == .forceHardCap, "only reset clears the latch")

        var stopped = try Bench()
        try stopped.enableMotion()
        do {
            let answer = stopped.perform(.safety(.emergencyStop))
            #expect(answer == .success(.emergencyStop))
        }
        do {
            let answer = stopped.perform(.safety(.disable))
            #expect(answer == .success(.emergencyStop))
        }
        #expect(stopped.lastMessages.contains(.setDrives(enable: false)) || !stopped.drives)
    }

    @Test func noiseAroundTheCapIsOneOverForceNotATrainOfStops() throws {
        var bench = try scanningInContact()
        bench.extraForce = 12.1  // 8 + 12.1 N: just over the 20 N cap
        bench.step()
        #expect(bench.stops.count == 1)
        // The sensor's noise takes the reading back and forth across the cap during the stop.
        for step in 0..<40 {
            bench.extraForce = step % 2 == 0 ? 11.9 : 12.1
            bench.step()
        }
        #expect(bench.stops.count == 1, "one over-force, one stop: \(bench.stops.count)")
    }

    @Test func aSecondOverForceInTheFaultGetsItsReactionAgain() throws {
        var bench = try scanningInContact()
        bench.extraForce = 14
        bench.step()
        bench.extraForce = 0  // the push passes; the retraction takes the probe off the chest
        bench.run(millis: 3_000)
        #expect(bench.sawEvent { if case .retractFinished = $0 { true } else { false } })
        let stopsBefore = bench.stops.count
        // The patient sits up into the probe while it holds in the fault.
        bench.extraForce = 25
        bench.step()
        #expect(bench.stops.count == stopsBefore + 1, "the second breach is stopped")
        #expect(bench.stops.last?.kind == .category2)
        let retractions = bench.events.filter { if case .retractStarted = $0 { true } else { false } }.count
        #expect(retractions == 2, "and backed off again")
    }

    @Test func releaseAfterAnEmergencyStopInContactRetractsAndPowersOff() throws {
        var bench = try scanningInContact()
        let pressedAt = bench.core.arm.probePose(bench.q).position
        bench.estop = true  // the pendant button: category 0, drives off, the probe stays clamped
        bench.run(millis: 10)
        #expect(bench.core.safety.state == .emergencyStop)
        #expect(!bench.drives)
        #expect(bench.forceN > 6, "the probe still presses at \(bench.forceN) N")
        // With the button still in, a release cannot power the drives.
        do {
            let answer = bench.perform(.release)
            #expect(answer == .failure(.release(.estopEngaged)))
        }
        bench.estop = false
        bench.run(millis: 5)
        do {
            let answer = bench.perform(.release)
            #expect(answer == .success(.emergencyStop))
        }
        // Speed over 100 ms windows (a 1 ms difference of joint readings is mostly quantisation).
        var fastest = 0.0
        var windowStart = bench.core.arm.probePose(bench.q).position
        for step in 1...8_000 {
            bench.step()
            if step % 100 == 0 {
                let here = bench.core.arm.probePose(bench.q).position
                fastest = max(fastest, (here - windowStart).length * 10)
                windowStart = here
            }
            if bench.sawEvent({ if case .releaseFinished = $0 { true } else { false } }) { break }
        }
        #expect(bench.sawEvent { if case .releaseFinished = $0 { true } else { false } })
        #expect(bench.depth(from: pressedAt) < -SafetyLimits().releaseDistanceMM + 0.5)
        #expect(fastest <= SafetyLimits().releaseSpeedMMs * 1.05, "released at \(fastest) mm/s")
        bench.run(millis: 10)
        #expect(!bench.drives, "drives off again after the release")
        #expect(bench.forceN == 0)
        #expect(bench.core.safety.state == .emergencyStop, "still latched until reset")
    }

    @Test func motionAfterACategory2StopWithoutResumeIsACategory1Fault() throws {
        var bench = try Bench()
        try bench.enableMotion()
        do {
            let answer = bench.perform(.safety(.protectiveStop))
            #expect(answer == .success(.protectiveStop))
        }
        bench.run(millis: 600)  // the arm has had its settling time
        // Something drives joint 0 with no command from the host (a firmware bug, a collision).
        for _ in 0..<100 {
            bench.q[0] += 0.000_05  // 0.05 rad/s: inside every speed limit, but not standing still
            bench.step()
        }
        #expect(bench.core.safety.state == .fault)
        #expect(bench.core.safety.latched?.cause == .standstillLost)
        #expect(bench.stops.last?.kind == .category1)
    }

    @Test func resetChecksTheHostsCausesBeforeClearingTheBoard() throws {
        var bench = try scanningInContact()
        bench.extraForce = 14
        bench.run(millis: 3_000)
        bench.extraForce = 21  // still over the cap
        bench.run(millis: 5)
        _ = bench.output.take()
        let refused = bench.perform(.safety(.reset))
        #expect(refused.map { (try? $0.get()) == nil } == true)
        #expect(!bench.events.contains { if case .boardRefused = $0 { true } else { false } })
        bench.extraForce = 0
        bench.boardLatched = true
        bench.run(millis: 50)  // past the force-rate window of the drop
        let boardSays = bench.perform(.safety(.reset))
        #expect(boardSays == .failure(.safety(.causePresent(SafetyBreach(cause: .boardFault, value: 1, limit: 0)))),
                "the board's own latch refuses it")
        bench.boardLatched = false
        do {
            let answer = bench.perform(.safety(.reset))
            #expect(answer == .success(.disabled))
        }
    }

    @Test func aScanStartsOnlyFromOperatorEnabled() throws {
        var bench = try Bench()
        bench.run(millis: 5)
        try bench.accept(.safety(.enable))
        do {
            let answer = bench.perform(.safety(.startScan))
            #expect(answer == .failure(.safety(.notAllowed(.startScan, in: .ready))))
        }
    }

    @Test func contactIsRefusedWhileTheProbeLiftsOff() throws {
        var bench = try scanningInContact()
        do {
            let answer = bench.perform(.safety(.stopScan))
            #expect(answer == .success(.operatorEnabled))
        }
        do {
            let answer = bench.perform(.contact(forceN: 8))
            #expect(answer == .failure(.liftingOff))
        }
        var target = bench.core.arm.probePose(bench.q)
        target.position.x += 5
        do {
            let answer = bench.perform(.move(to: target, limits: nil))
            #expect(answer == .failure(.liftingOff))
        }
    }
}

/// Finding 11: FAULT_REPORT severity decides, and the force board's latched faults count.
@Suite struct BoardFaultReportTests {
    private static func report(_ code: FaultCode, severity: UInt8) -> FaultReport {
        FaultReport(code: code, axis: 0xFF, severity: severity, value: 1, limit: 0)
    }

    @Test func aWarningIsReportedButStopsNothing() throws {
        var bench = try Bench()
        try bench.enableMotion()
        bench.run(millis: 20)
        bench.core.ingest(.fault(Self.report(.overTemperature, severity: 1), board: .arm)) { bench.events.append($0) }
        bench.core.ingest(.fault(Self.report(.overTemperature, severity: 1), board: .forceTorque)) { bench.events.append($0) }
        bench.run(millis: 20)
        #expect(bench.core.safety.state == .operatorEnabled, "a warning latches nothing")
        #expect(bench.stops.isEmpty)
        #expect(bench.events.filter { if case .boardFault = $0 { true } else { false } }.count == 2, "both are reported")
    }

    @Test func aLatchedForceBoardFaultStopsTheArmAndHoldsTheResetUntilTheBoardClearsIt() throws {
        var bench = try Bench()
        try bench.enableMotion()
        bench.run(millis: 20)
        // The force board latches a fault: the host must not go on trusting its samples.
        bench.core.ingest(.fault(Self.report(.sensorSaturated, severity: 2), board: .forceTorque)) { bench.events.append($0) }
        bench.run(millis: 10)
        #expect(bench.core.safety.state == .fault)
        #expect(bench.core.safety.latched?.cause == .boardFault)
        #expect(bench.stops.last?.kind == .category1)
        #expect(bench.core.status.forceBoardFault)
        // A reset while the force board's latch stands is refused, and the arm is not asked to clear.
        _ = bench.output.take()
        let refused = bench.perform(.safety(.reset))
        #expect(refused == .failure(.safety(.causePresent(SafetyBreach(cause: .boardFault, value: 1, limit: 0)))))
        // The force board acknowledges its CLEAR_FAULTS (sent by the daemon on its link): now the reset goes through.
        bench.core.ingest(.ack(ackedType: MessageType.clearFaults.rawValue, board: .forceTorque)) { bench.events.append($0) }
        #expect(!bench.core.status.forceBoardFault)
        #expect(bench.perform(.safety(.reset)) == .success(.disabled))
    }
}
