import Foundation
import SonoGeometry
import SonoMotion
import SonoProtocol
import SonoTestSupport
import Testing

@Suite struct MotionTapeTests {
    /// Every kind of entry survives the tape's binary form bit for bit (a replay must see the
    /// very floats the loop saw), and a cut entry is an error naming what was short.
    @Test func everyEntryRoundTripsExactlyAndTruncationIsAnError() throws {
        var joints = JointArray(count: 6, filler: JointReading.zero)
        for index in 0..<6 { joints[index] = JointReading(position: Float(index) * 0.1 + 1e-7, velocity: -0.3, current: 1.25, flags: [.brakeEngaged]) }
        var targets = JointArray(count: 6, filler: JointTarget.zero)
        targets[2] = JointTarget(position: 0.123456789, maxVelocity: 0.5, maxCurrent: 2)
        let pose = Pose(rotation: Rotation(axis: Vector3(0.3, 0.4, 0.866).normalized, angle: 0.7), position: Vector3(12.5, -3.25, 400.1))
        let entries: [TapeEntry] = [
            .input(.force(ForceTorqueSample(fx: 0.1, fy: -2.5, fz: 8.000001, tx: 0, ty: 0.01, tz: .leastNonzeroMagnitude,
                                            status: [.saturated]), boardMicros: 123, receivedMicros: 456)),
            .input(.joints(JointState(status: [.drivesEnabled, .homed], joints: joints), receivedMicros: 789)),
            .input(.estop(engaged: true)),
            .input(.fault(FaultReport(code: .followingError, axis: 3, severity: 2, value: 1.5, limit: 1), board: .arm)),
            .input(.ack(ackedType: MessageType.stop.rawValue, board: .arm)),
            .input(.nack(ackedType: 9, reason: .wrongState, board: .forceTorque)),
            .input(.link(.forceTorque, alive: false)),
            .tick(index: 42, micros: 1_000_000_123),
            .command(ticket: 7, .move(to: pose, limits: MotionLimits(speedMMs: 20, angularSpeed: 0.5))),
            .command(ticket: 8, .move(to: pose, limits: nil)),
            .command(ticket: 9, .contact(forceN: 8.25)),
            .command(ticket: 10, .contact(forceN: nil)),
            .command(ticket: 11, .safety(.emergencyStop)),
            .command(ticket: 12, .hold),
            .command(ticket: 13, .deadMan(held: true)),
            .sent(.jointCommand(JointCommand(joints: targets)), delivered: true),
            .sent(.stop(category: 2), delivered: false),
        ]
        for entry in entries {
            var bytes: [UInt8] = []
            MotionTapeCodec.encode(entry, into: &bytes)
            #expect(try MotionTapeCodec.decode(bytes) == entry)
            if bytes.count > 1 {
                #expect(throws: TapeDecodeError.self) { try MotionTapeCodec.decode(Array(bytes.dropLast())) }
            }
        }
        #expect(throws: TapeDecodeError.unknownKind(99)) { try MotionTapeCodec.decode([99]) }
    }

    /// A sent message's frame is kept as written to the wire, its 0x00 delimiter included. The
    /// motion-tape fuzz target's input had a frame without it, whose length said so: it decoded,
    /// and re-encoded one byte longer than it was read.
    @Test func aSentFrameWithoutItsDelimiterIsRefused() throws {
        var bytes: [UInt8] = []
        MotionTapeCodec.encode(.sent(.stop(category: 1), delivered: true), into: &bytes)
        #expect(bytes.last == 0)
        var cut = Array(bytes.dropLast())
        cut[2] -= 1  // the frame's length (u16, little-endian, after kind and delivered)
        #expect(throws: TapeDecodeError.badFrame("the frame does not end with its 0x00 delimiter")) { try MotionTapeCodec.decode(cut) }
        let fuzzed = [UInt8](try Data(contentsOf: Repository.url("Fuzz/regressions/motion-tape/sent-frame-without-delimiter")))
        #expect(throws: TapeDecodeError.badFrame("the frame does not end with its 0x00 delimiter")) { try MotionTapeCodec.decode(fuzzed) }
    }
}
