import SonoCore
import SonoGeometry
import SonoProtocol
@testable import SonoSim
import SonoTestbed
import Testing

/// The closed loop in simulated time: arm firmware → kinematics → contact → force sensor.
@Suite struct SimulatedScannerTests {
    func makeScanner(seed: UInt64 = 1) -> SimulatedScanner {
        var parameters = PatientParameters()
        parameters.seed = seed
        parameters.chest.breathingAmplitudeMM = 0
        let patient = VirtualPatient(parameters)
        let plax = StandardViewGeometry(patient: patient).canonical[.plax] ?? .identity
        var configuration = ArmBoardConfiguration(jointCount: 6)
        configuration.maxVelocity = Array(repeating: 0.5, count: 6)
        return SimulatedScanner(patient: patient, kinematics: PlungerKinematics(start: plax), arm: configuration)
    }

    /// Runs a press to `depthRad`, returning the FT samples the sensor board emitted.
    func press(_ scanner: SimulatedScanner, to depthRad: Float, millis: UInt64) -> [ForceTorqueSample] {
        var seq: UInt16 = 0
        func send(_ message: Message) {
            seq += 1
            _ = scanner.sendToArm(message, seq: seq)
        }
        send(.setDrives(enable: true))
        var samples: [ForceTorqueSample] = []
        let targets = JointArray((0..<6).map { JointTarget(position: $0 == 0 ? depthRad : 0, maxVelocity: 0.5, maxCurrent: 6) },
                                 filler: .zero)
        for _ in 0..<millis {
            send(.jointCommand(JointCommand(joints: targets)))
            scanner.step(to: scanner.micros + 1_000, force: { message in
                if case .forceTorqueSample(let sample) = message { samples.append(sample) }
            })
        }
        return samples
    }

    @Test func pressingTheProbeIntoTheChestRaisesTheMeasuredForce() {
        let scanner = makeScanner()
        let samples = press(scanner, to: 1.0, millis: 3_000)
        #expect(samples.count == 3_000)
        // 10 mm of travel in the air, then 10 mm into tissue at 0.8 N/mm, stiffening.
        let final = scanner.state.current.contact
        #expect(abs(final.indentationMM - 10) < 0.5, "indentation \(final.indentationMM) mm")
        #expect(final.normalForceN > 12 && final.normalForceN < 20, "force \(final.normalForceN) N")
        #expect(abs(Double(samples.last?.fz ?? 0) - final.sensorForce.z) < 2, "sensor reads the contact force (plus bias, noise)")
        let early = samples.prefix(500).map { Double($0.fz) }
        #expect(early.allSatisfy { abs($0) < 2 }, "no force before the probe reaches the skin")
        // Once the probe stops, only the damping share of the force (c·v ≈ 0.4 N) goes away.
        let smoothed = stride(from: 0, to: samples.count - 50, by: 50).map { start in
            samples[start..<start + 50].reduce(0) { $0 + Double($1.fz) } / 50
        }
        #expect((smoothed.last ?? 0) > (smoothed.max() ?? 0) - 1)
    }

    @Test func sameSeedAndCommandsGiveBitIdenticalSamples() {
        let first = press(makeScanner(seed: 5), to: 0.9, millis: 1_500)
        let second = press(makeScanner(seed: 5), to: 0.9, millis: 1_500)
        #expect(first == second)
        #expect(first != press(makeScanner(seed: 6), to: 0.9, millis: 1_500))
    }

    @Test func theArmNeverExceedsItsLimits() {
        let scanner = makeScanner()
        var seq: UInt16 = 0
        _ = scanner.sendToArm(.setDrives(enable: true), seq: 0)
        var rng = SplitMix64(seed: 11)
        var previous = scanner.arm.positions
        for step in 0..<4_000 {
            if step % 100 == 0 {
                seq += 1
                let targets = JointArray((0..<6).map { _ in
                    JointTarget(position: Float(rng.unit() * 6 - 3), maxVelocity: Float(0.1 + rng.unit() * 3), maxCurrent: 6)
                }, filler: .zero)
                _ = scanner.sendToArm(.jointCommand(JointCommand(joints: targets)), seq: seq)
            }
            scanner.step(to: scanner.micros + 1_000)
            let configuration = scanner.arm.configuration
            for joint in 0..<6 {
                let position = scanner.arm.positions[joint]
                #expect(position >= configuration.lowerLimits[joint] && position <= configuration.upperLimits[joint])
                #expect(abs(scanner.arm.velocities[joint]) <= configuration.maxVelocity[joint] + 1e-4)
                #expect(abs(position - previous[joint]) <= configuration.maxVelocity[joint] * 0.001 + 1e-5)
            }
            previous = scanner.arm.positions
        }
    }

    @Test func theSimulatedProbeDeliversFramesAtItsFrameRate() throws {
        let scanner = makeScanner()
        _ = press(scanner, to: 0.9, millis: 1_200)
        let clock = SimulatedClock(micros: scanner.micros)
        let probe = SimulatedProbe(patient: scanner.patient, settings: ImagingSettings(framesPerSecond: 50),
                                   state: scanner.state, clock: { clock.now }, sleep: { clock.advance($0) })
        var pixels = [UInt8](repeating: 0, count: probe.format.pixelCount)
        var infos: [ProbeFrameInfoLite] = []
        for _ in 0..<5 {
            let info = try pixels.withUnsafeMutableBufferPointer { buffer in
                try probe.nextFrame(into: buffer, timeoutMicros: 1_000_000)
            }
            let frame = try #require(info)
            infos.append(ProbeFrameInfoLite(number: frame.frameNumber, micros: frame.timestampMicros))
        }
        #expect(infos.map(\.number) == [0, 1, 2, 3, 4])
        #expect(zip(infos, infos.dropFirst()).allSatisfy { $1.micros - $0.micros == 20_000 })
        #expect(pixels.reduce(0) { $0 + Int($1) } > 0)
    }

    @Test func aLateReaderGetsTheNewestFrameNotABacklog() throws {
        let scanner = makeScanner()
        let clock = SimulatedClock(micros: scanner.micros)
        let probe = SimulatedProbe(patient: scanner.patient, settings: ImagingSettings(framesPerSecond: 50),
                                   state: scanner.state, clock: { clock.now }, sleep: { clock.advance($0) })
        var pixels = [UInt8](repeating: 0, count: probe.format.pixelCount)
        func next() throws -> ProbeFrameInfoLite {
            let info = try #require(try pixels.withUnsafeMutableBufferPointer { buffer in
                try probe.nextFrame(into: buffer, timeoutMicros: 1_000_000)
            })
            return ProbeFrameInfoLite(number: info.frameNumber, micros: info.timestampMicros)
        }
        let first = try next()
        // The reader is busy for 130 ms (six and a half frame periods at 50 /s).
        clock.advance(130_000)
        let late = try next()
        #expect(late.number == first.number + 6, "frames 1–5 were never read: skipped, not queued")
        #expect(late.micros <= clock.now && clock.now - late.micros < 20_000, "stamped within one period of now")
        // Back on time, the stream goes on from there, one frame per period.
        let following = try next()
        #expect(following.number == late.number + 1)
        #expect(following.micros - late.micros == 20_000)
    }

    struct ProbeFrameInfoLite { let number: UInt64; let micros: UInt64 }
}

/// A clock the test advances by hand.
final class SimulatedClock: @unchecked Sendable {
    // @unchecked: the test advances it and the scanner reads it on the test's one thread.
    private(set) var now: UInt64
    init(micros: UInt64) { now = micros }
    func advance(_ micros: UInt64) { now += micros }
}
