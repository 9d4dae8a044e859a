import SonoProtocol
import SonoSim
import Testing

/// The simulated boards' firmware behaviour, stepped in simulated time without I/O.
@Suite struct ArmFirmwareTests {
    /// Steps the board at 1 kHz, collecting what it emits.
    final class Harness {
        let arm: ArmFirmware
        var micros: UInt64 = 1_000_000
        var seq: UInt16 = 0
        var emitted: [Message] = []
        /// The last joint command sent: `run` streams it every millisecond while `keepAlive`,
        /// as the host's control loop does (the board's command watchdog expects a stream).
        var streamed: Message?

        init(_ configuration: ArmBoardConfiguration = .init()) { arm = ArmFirmware(configuration: configuration) }

        @discardableResult
        func send(_ message: Message) -> [Message] {
            var replies: [Message] = []
            seq &+= 1
            arm.receive(message, seq: seq, at: micros, reply: { replies.append($0) })
            if case .jointCommand = message { streamed = message }
            return replies
        }

        func run(millis: Int, keepAlive: Bool = true) {
            for _ in 0..<millis {
                micros += 1_000
                if keepAlive && micros % 50_000 == 0 { send(.heartbeat(Heartbeat(state: .ready))) }
                if keepAlive, let streamed { arm.receive(streamed, seq: 0, at: micros, reply: { _ in }) }
                arm.tick(at: micros) { emitted.append($0) }
            }
        }

        var lastState: JointState? {
            for message in emitted.reversed() { if case .jointState(let state) = message { return state } }
            return nil
        }
    }

    static func command(_ positions: [Float], velocity: Float = 1, current: Float = 6) -> Message {
        .jointCommand(JointCommand(joints: JointArray(positions.map {
            JointTarget(position: $0, maxVelocity: velocity, maxCurrent: current)
        }, filler: .zero)))
    }

    @Test func followsTargetsWithinItsVelocityLimit() {
        let board = Harness()
        #expect(board.send(.setDrives(enable: true)) == [.ack(Acknowledgement(ackedSeq: 1, ackedType: 0x31))])
        #expect(board.send(Self.command([0.5, 0, 0, 0, 0, -0.5], velocity: 0.5)).isEmpty)
        board.run(millis: 500)
        let midway = board.arm.positions[0]
        #expect(midway > 0.15 && midway < 0.26, "0.5 rad/s limit: \(midway) rad after 0.5 s")
        #expect(board.arm.velocities.allSatisfy { abs($0) <= 0.5 + 1e-5 })
        board.run(millis: 1_500)
        #expect(abs(board.arm.positions[0] - 0.5) < 1e-3 && abs(board.arm.positions[5] + 0.5) < 1e-3)
        #expect(board.lastState?.status.contains(.drivesEnabled) == true)
    }

    @Test func refusesCommandsItMustNotFollow() {
        let board = Harness()
        #expect(board.send(Self.command([0, 0, 0, 0, 0, 0])) == [refusal(1, .jointCommand, .wrongState)])
        board.send(.setDrives(enable: true))
        #expect(board.send(Self.command([9, 0, 0, 0, 0, 0])) == [refusal(3, .jointCommand, .outOfRange)])
        #expect(board.send(Self.command([.nan, 0, 0, 0, 0, 0])) == [refusal(4, .jointCommand, .outOfRange)])
        #expect(board.send(Self.command([0, 0, 0])) == [refusal(5, .jointCommand, .invalidPayload)])
        #expect(board.send(.stop(category: 7)) == [refusal(6, .stop, .outOfRange)])
        #expect(board.arm.stopping == .controlledThenPowerOff, "an invalid stop request still stops")
    }

    @Test func category1StopsThenRemovesPowerAndCategory2Holds() {
        for (category, drivesAfter) in [(StopCategory.controlledThenPowerOff, false), (.controlledHold, true)] {
            let board = Harness()
            board.send(.setDrives(enable: true))
            board.send(Self.command([2, 0, 0, 0, 0, 0], velocity: 1.5))
            board.run(millis: 400)
            let moving = board.arm.velocities[0]
            #expect(moving > 1)
            board.send(.stop(category: category.rawValue))
            board.run(millis: 300)  // 1.5 rad/s at 8 rad/s² stops in under 0.19 s
            #expect(board.arm.velocities.allSatisfy { $0 == 0 })
            #expect(board.arm.drivesEnabled == drivesAfter, "\(category)")
            let stoppedAt = board.arm.positions[0]
            board.run(millis: 200)
            #expect(board.arm.positions[0] == stoppedAt, "\(category) holds still")
        }
    }

    @Test func category0CutsPowerAtOnce() {
        let board = Harness()
        board.send(.setDrives(enable: true))
        board.send(Self.command([2, 0, 0, 0, 0, 0], velocity: 1.5))
        board.run(millis: 300)
        board.send(.stop(category: 0))
        #expect(!board.arm.drivesEnabled && board.arm.velocities.allSatisfy { $0 == 0 })
    }

    @Test func emergencyStopStopsAndRefusesToReEnable() {
        let board = Harness()
        board.send(.setDrives(enable: true))
        board.send(Self.command([1, 0, 0, 0, 0, 0]))
        board.run(millis: 200)
        board.arm.setEmergencyStop(true)
        board.run(millis: 300)
        #expect(board.emitted.contains(.estopState(EStopState(engaged: true, source: 1))))
        #expect(!board.arm.drivesEnabled && board.arm.velocities.allSatisfy { $0 == 0 })
        #expect(board.lastState?.status.contains(.estopEngaged) == true)
        #expect(board.send(.setDrives(enable: true)) == [refusal(board.seq, .setDrives, .estopEngaged)])
        board.arm.setEmergencyStop(false)
        #expect(board.send(.setDrives(enable: true)) == [.ack(Acknowledgement(ackedSeq: board.seq, ackedType: 0x31))])
    }

    @Test func theCommandWatchdogStopsWhenTheControlStreamStops() {
        let board = Harness()
        board.send(.setDrives(enable: true))
        board.run(millis: 100, keepAlive: true)
        #expect(board.arm.latchedFault == nil, "drives on but not tracking: no stream expected")
        board.send(Self.command([0.2, 0, 0, 0, 0, 0]))
        board.run(millis: 100)
        #expect(board.arm.latchedFault == nil, "a 1 kHz stream keeps it tracking")
        // The host's control loop stalls; its link thread still sends heartbeats.
        board.streamed = nil
        var stoppedAfter: Int?
        for millis in 1...100 where stoppedAfter == nil {
            board.run(millis: 1)
            if board.arm.latchedFault?.code == .commandTimeout { stoppedAfter = millis }
        }
        #expect(stoppedAfter.map { $0 <= 21 } == true, "stopped after \(stoppedAfter ?? -1) ms of silence")
        #expect(board.arm.stopping == .controlledThenPowerOff || !board.arm.drivesEnabled, "a category 1 stop")
    }

    @Test func afterACategory2StopCommandsWaitForTheResume() {
        let board = Harness()
        board.send(.setDrives(enable: true))
        board.send(Self.command([0.5, 0, 0, 0, 0, 0], velocity: 1))
        board.run(millis: 100)
        board.send(.stop(category: 2))
        board.streamed = nil
        board.run(millis: 500)
        #expect(board.arm.drivesEnabled && board.arm.stopping == nil, "at rest, holding, drives on")
        let held = board.arm.positions[0]
        #expect(board.send(Self.command([1, 0, 0, 0, 0, 0])) == [refusal(board.seq, .jointCommand, .wrongState)])
        board.streamed = nil
        board.run(millis: 100)
        #expect(board.arm.positions[0] == held, "no motion without resume")
        #expect(board.send(.setDrives(enable: true)) == [.ack(Acknowledgement(ackedSeq: board.seq, ackedType: 0x31))])
        #expect(board.send(Self.command([1, 0, 0, 0, 0, 0])).isEmpty, "resumed")
    }

    @Test func hostSilenceLatchesAFaultUntilCleared() {
        let board = Harness()
        board.send(.setDrives(enable: true))
        board.run(millis: 400, keepAlive: false)
        #expect(board.arm.latchedFault?.code == .hostTimeout)
        #expect(!board.arm.drivesEnabled)
        #expect(board.emitted.contains { if case .faultReport(let f) = $0 { f.code == .hostTimeout } else { false } })
        #expect(board.send(.setDrives(enable: true)) == [refusal(2, .setDrives, .faultActive)])
        #expect(board.send(.clearFaults) == [.ack(Acknowledgement(ackedSeq: 3, ackedType: 0x33))])
        #expect(board.send(.setDrives(enable: true)) == [.ack(Acknowledgement(ackedSeq: 4, ackedType: 0x31))])
    }

    @Test func anExcessiveCurrentLimitTripsOverCurrent() {
        let board = Harness()
        board.send(.setDrives(enable: true))
        board.send(Self.command([1, 0, 0, 0, 0, 0], velocity: 1.5, current: 0.5))
        board.run(millis: 100)
        #expect(board.arm.latchedFault?.code == .overCurrent && board.arm.latchedFault?.axis == 0)
        #expect(!board.arm.drivesEnabled)
    }

    func refusal(_ seq: UInt16, _ type: MessageType, _ reason: NackReason) -> Message {
        .nack(Acknowledgement(ackedSeq: seq, ackedType: type.rawValue), reason: reason)
    }
}

@Suite struct ForceSensorFirmwareTests {
    @Test func tareZeroesTheReadingOverAHundredSamples() {
        let wrench = SettableWrench(ForceTorqueSample(fx: 1, fy: 2, fz: 3, tx: 0.1, ty: 0.2, tz: 0.3))
        let sensor = ForceSensorFirmware(source: wrench)
        var replies: [Message] = []
        sensor.receive(.tare, seq: 9, at: 0, reply: { replies.append($0) })
        #expect(replies == [.ack(Acknowledgement(ackedSeq: 9, ackedType: MessageType.tare.rawValue))])
        var samples: [ForceTorqueSample] = []
        for tick in 1...150 {
            sensor.tick(at: UInt64(tick) * 1_000) { if case .forceTorqueSample(let s) = $0 { samples.append(s) } }
        }
        #expect(samples[0].status.contains(.tareInProgress))
        #expect(!samples[149].status.contains(.tareInProgress))
        #expect(abs(samples[149].fz) < 1e-5 && abs(samples[149].tz) < 1e-5)
        wrench.set(ForceTorqueSample(fx: 1, fy: 2, fz: 10, tx: 0.1, ty: 0.2, tz: 0.3))
        sensor.tick(at: 200_000) { if case .forceTorqueSample(let s) = $0 { samples.append(s) } }
        #expect(abs((samples.last?.fz ?? 0) - 7) < 1e-5)
    }

    @Test func flagsSaturationBeyondItsRange() {
        let sensor = ForceSensorFirmware(forceRange: 50, source: SettableWrench(
            ForceTorqueSample(fx: 0, fy: 0, fz: 80, tx: 0, ty: 0, tz: 0)))
        var status: ForceTorqueStatus = []
        sensor.tick(at: 1_000) { if case .forceTorqueSample(let s) = $0 { status = s.status } }
        #expect(status.contains(.saturated))
    }

    @Test func saturationLatchesAFaultThatClearsOnlyOnceTheWrenchIsBackInRange() {
        let wrench = SettableWrench(ForceTorqueSample(fx: 0, fy: 0, fz: 10, tx: 0, ty: 0, tz: 0))
        let sensor = ForceSensorFirmware(forceRange: 50, source: wrench)
        var emitted: [Message] = []
        func tick(_ millis: UInt64) { sensor.tick(at: millis * 1_000) { emitted.append($0) } }
        func clear(_ seq: UInt16) -> Message? {
            var replies: [Message] = []
            sensor.receive(.clearFaults, seq: seq, at: 0, reply: { replies.append($0) })
            return replies.first
        }
        tick(1)
        #expect(sensor.boardState == .active && sensor.latchedFault == nil)
        #expect(clear(1) == .ack(Acknowledgement(ackedSeq: 1, ackedType: MessageType.clearFaults.rawValue)),
                "nothing latched: CLEAR_FAULTS succeeds")

        // Beyond the range on z: one FAULT_REPORT, however long it lasts.
        wrench.set(ForceTorqueSample(fx: 0, fy: 0, fz: -80, tx: 0, ty: 0, tz: 0))
        emitted.removeAll()
        tick(2)
        tick(3)
        let reports = emitted.compactMap { if case .faultReport(let report) = $0 { report } else { nil } }
        #expect(reports == [FaultReport(code: .sensorSaturated, axis: 2, severity: 2, value: -80, limit: 50)])
        #expect(sensor.boardState == .fault)
        #expect(clear(2) == .nack(Acknowledgement(ackedSeq: 2, ackedType: MessageType.clearFaults.rawValue), reason: .faultActive),
                "the cause is still there: the latch stays")

        // Back in range, the fault stays latched until the host clears it.
        wrench.set(ForceTorqueSample(fx: 0, fy: 0, fz: 10, tx: 0, ty: 0, tz: 0))
        tick(4)
        #expect(sensor.boardState == .fault && sensor.latchedFault != nil)
        #expect(clear(3) == .ack(Acknowledgement(ackedSeq: 3, ackedType: MessageType.clearFaults.rawValue)))
        #expect(sensor.boardState == .active && sensor.latchedFault == nil)
    }

    @Test func answersGetInfoWithHello() {
        let sensor = ForceSensorFirmware(serial: "FT-0042", source: SettableWrench())
        var replies: [Message] = []
        sensor.receive(.getInfo, seq: 1, at: 0, reply: { replies.append($0) })
        guard case .hello(let info)? = replies.first else {
            Issue.record("no HELLO")
            return
        }
        #expect(info.kind == .forceTorque && info.serial.description == "FT-0042" && info.sampleRateHz == 1_000)
    }
}
