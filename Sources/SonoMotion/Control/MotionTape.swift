public import SonoProtocol
import SonoGeometry

/// Everything that goes into `MotionCore` and what it sends to the arm, in the order the control
/// loop saw it: the inputs drained before a cycle, the cycle's clock, the commands it handled, the
/// messages it sent. A recording keeps the tape so that the controller can be run again on the
/// same inputs (`MotionTapeReplayer`) and must make the same decisions, message for message.
public enum TapeEntry: Sendable, Equatable {
    case input(BoardInput)
    /// Cycle `index` takes its time: inputs before it belong to it, commands after it are handled in it.
    case tick(index: UInt64, micros: UInt64)
    case command(ticket: UInt64, MotionCommand)
    /// A message the core sent to the arm, and whether the link took it whole.
    case sent(Message, delivered: Bool)
}

/// Errors decoding a tape entry from a recording.
public enum TapeDecodeError: Error, Sendable, Equatable, CustomStringConvertible {
    case truncated(kind: UInt8, needed: Int, available: Int)
    case unknownKind(UInt8)
    case invalidValue(String)
    case badFrame(String)

    public var description: String {
        switch self {
        case .truncated(let kind, let needed, let available):
            "motion tape entry (kind \(kind)) truncated: \(needed) bytes needed, \(available) present"
        case .unknownKind(let kind): "motion tape entry of unknown kind \(kind)"
        case .invalidValue(let what): "motion tape entry with an invalid \(what)"
        case .badFrame(let reason): "motion tape: a sent message does not decode: \(reason)"
        }
    }
}

/// The tape's binary form (little-endian; one entry per recorded message), documented in
/// docs/RECORDING.md, "/motion/tape". Exact: floats and doubles keep their bits, so a replay sees
/// the very values the loop saw. Messages to the arm are kept as their protocol frames.
public enum MotionTapeCodec {
    public static let encoding = "sono.motion-tape.v1"

    public static func encode(_ entry: TapeEntry, into bytes: inout [UInt8]) {
        var out = TapeWriter(bytes: bytes)
        defer { bytes = out.bytes }
        switch entry {
        case .input(let input):
            switch input {
            case .force(let sample, let boardMicros, let receivedMicros):
                out.u8(1); out.u64(boardMicros); out.u64(receivedMicros)
                for value in [sample.fx, sample.fy, sample.fz, sample.tx, sample.ty, sample.tz] { out.f32(value) }
                out.u16(sample.status.rawValue)
            case .joints(let state, let receivedMicros):
                out.u8(2); out.u64(receivedMicros); out.u16(state.status.rawValue); out.u8(UInt8(state.joints.count))
                for joint in state.joints {
                    out.f32(joint.position); out.f32(joint.velocity); out.f32(joint.current); out.u8(joint.flags.rawValue)
                }
            case .estop(let engaged):
                out.u8(3); out.u8(engaged ? 1 : 0)
            case .fault(let report, let board):
                out.u8(4); out.u8(board.rawValue); out.u16(report.code.rawValue); out.u8(report.axis)
                out.u8(report.severity); out.f32(report.value); out.f32(report.limit)
            case .ack(let type, let board):
                out.u8(5); out.u8(board.rawValue); out.u8(type)
            case .nack(let type, let reason, let board):
                out.u8(6); out.u8(board.rawValue); out.u8(type); out.u16(reason.rawValue)
            case .link(let board, let alive):
                out.u8(7); out.u8(board.rawValue); out.u8(alive ? 1 : 0)
            }
        case .tick(let index, let micros):
            out.u8(10); out.u64(index); out.u64(micros)
        case .command(let ticket, let command):
            out.u8(20); out.u64(ticket)
            switch command {
            case .safety(let safety):
                out.u8(1); out.u8(UInt8(SafetyCommand.allCases.firstIndex(of: safety) ?? 0))
            case .move(let pose, let limits):
                out.u8(2); out.pose(pose)
                if let limits {
                    out.u8(1)
                    for value in [limits.speedMMs, limits.accelerationMMs2, limits.jerkMMs3, limits.angularSpeed,
                                  limits.angularAcceleration, limits.angularJerk] { out.f64(value) }
                } else {
                    out.u8(0)
                }
            case .contact(let force):
                out.u8(3); out.u8(force == nil ? 0 : 1); out.f64(force ?? 0)
            case .hold:
                out.u8(4)
            case .deadMan(let held):
                out.u8(5); out.u8(held ? 1 : 0)
            case .renewContactLease:
                out.u8(6)
            case .release:
                out.u8(7)
            }
        case .sent(let message, let delivered):
            out.u8(30); out.u8(delivered ? 1 : 0)
            let frame = (try? FrameCodec.encode(Frame(seq: 0, timestampMicros: 0, message: message))) ?? []
            out.u16(UInt16(frame.count)); out.bytes += frame
        }
    }

    public static func decode(_ bytes: [UInt8]) throws(TapeDecodeError) -> TapeEntry {
        var reader = TapeReader(bytes: bytes)
        let kind = try reader.u8()
        reader.kind = kind
        switch kind {
        case 1:
            let boardMicros = try reader.u64(), receivedMicros = try reader.u64()
            let fx = try reader.f32(), fy = try reader.f32(), fz = try reader.f32()
            let tx = try reader.f32(), ty = try reader.f32(), tz = try reader.f32()
            let status = ForceTorqueStatus(rawValue: try reader.u16())
            return .input(.force(ForceTorqueSample(fx: fx, fy: fy, fz: fz, tx: tx, ty: ty, tz: tz, status: status),
                                 boardMicros: boardMicros, receivedMicros: receivedMicros))
        case 2:
            let receivedMicros = try reader.u64()
            let status = ArmStatus(rawValue: try reader.u16())
            let count = Int(try reader.u8())
            guard count <= ProtocolConstants.maxJoints else { throw .invalidValue("joint count \(count)") }
            var joints = JointArray<JointReading>(count: count, filler: .zero)
            for index in 0..<count {
                joints[index] = JointReading(position: try reader.f32(), velocity: try reader.f32(), current: try reader.f32(),
                                             flags: JointFlags(rawValue: try reader.u8()))
            }
            return .input(.joints(JointState(status: status, joints: joints), receivedMicros: receivedMicros))
        case 3:
            return .input(.estop(engaged: try reader.u8() != 0))
        case 4:
            let board = try reader.board()
            let report = FaultReport(code: FaultCode(rawValue: try reader.u16()), axis: try reader.u8(),
                                     severity: try reader.u8(), value: try reader.f32(), limit: try reader.f32())
            return .input(.fault(report, board: board))
        case 5:
            let board = try reader.board()
            return .input(.ack(ackedType: try reader.u8(), board: board))
        case 6:
            let board = try reader.board()
            let type = try reader.u8()
            return .input(.nack(ackedType: type, reason: NackReason(rawValue: try reader.u16()), board: board))
        case 7:
            let board = try reader.board()
            return .input(.link(board, alive: try reader.u8() != 0))
        case 10:
            return .tick(index: try reader.u64(), micros: try reader.u64())
        case 20:
            let ticket = try reader.u64()
            let command: MotionCommand
            switch try reader.u8() {
            case 1:
                let index = Int(try reader.u8())
                guard index < SafetyCommand.allCases.count else { throw .invalidValue("safety command \(index)") }
                command = .safety(SafetyCommand.allCases[index])
            case 2:
                let pose = try reader.pose()
                if try reader.u8() != 0 {
                    // A recording is input: a damaged or forged tape must not hand the trajectory a
                    // NaN or zero limit.
                    let limits = MotionLimits(
                        speedMMs: try reader.f64(), accelerationMMs2: try reader.f64(), jerkMMs3: try reader.f64(),
                        angularSpeed: try reader.f64(), angularAcceleration: try reader.f64(), angularJerk: try reader.f64())
                    do throws(MotionLimitsError) {
                        command = .move(to: pose, limits: try limits.validated())
                    } catch {
                        throw .invalidValue("move: \(error)")
                    }
                } else {
                    command = .move(to: pose, limits: nil)
                }
            case 3:
                let has = try reader.u8() != 0
                let force = try reader.f64()
                command = .contact(forceN: has ? force : nil)
            case 4: command = .hold
            case 5: command = .deadMan(held: try reader.u8() != 0)
            case 6: command = .renewContactLease
            case 7: command = .release
            case let other: throw .invalidValue("command kind \(other)")
            }
            return .command(ticket: ticket, command)
        case 30:
            let delivered = try reader.u8() != 0
            let count = Int(try reader.u16())
            let frame = try reader.take(count)
            // The tape keeps the frame as it was written to the wire, delimiter included: without
            // it the entry is not what `encode` writes (so not one a recording can hold).
            guard frame.last == 0 else { throw .badFrame("the frame does not end with its 0x00 delimiter") }
            do {
                return .sent(try FrameCodec.decode(wire: frame).message, delivered: delivered)
            } catch {
                throw .badFrame("\(error)")
            }
        default:
            throw .unknownKind(kind)
        }
    }
}

private struct TapeWriter {
    var bytes: [UInt8]
    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { LittleEndian.append(value, to: &bytes) }
    mutating func u64(_ value: UInt64) { LittleEndian.append(value, to: &bytes) }
    mutating func f32(_ value: Float) { LittleEndian.append(value.bitPattern, to: &bytes) }
    mutating func f64(_ value: Double) { LittleEndian.append(value.bitPattern, to: &bytes) }
    mutating func pose(_ pose: Pose) {
        for vector in [pose.position, pose.rotation.x, pose.rotation.y, pose.rotation.z] {
            f64(vector.x); f64(vector.y); f64(vector.z)
        }
    }
}

private struct TapeReader {
    let bytes: [UInt8]
    var offset = 0
    var kind: UInt8 = 0

    mutating func take(_ count: Int) throws(TapeDecodeError) -> [UInt8] {
        guard bytes.count - offset >= count else {
            throw .truncated(kind: kind, needed: offset + count, available: bytes.count)
        }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    mutating func little<T: FixedWidthInteger>(_: T.Type) throws(TapeDecodeError) -> T {
        let size = MemoryLayout<T>.size
        guard let value = LittleEndian.loadIfPresent(T.self, from: bytes, at: offset) else {
            throw .truncated(kind: kind, needed: offset + size, available: bytes.count)
        }
        offset += size
        return value
    }

    mutating func u8() throws(TapeDecodeError) -> UInt8 { try little(UInt8.self) }
    mutating func u16() throws(TapeDecodeError) -> UInt16 { try little(UInt16.self) }
    mutating func u64() throws(TapeDecodeError) -> UInt64 { try little(UInt64.self) }
    mutating func f32() throws(TapeDecodeError) -> Float { Float(bitPattern: try little(UInt32.self)) }
    mutating func f64() throws(TapeDecodeError) -> Double { Double(bitPattern: try little(UInt64.self)) }
    mutating func board() throws(TapeDecodeError) -> BoardKind {
        let raw = try u8()
        guard let board = BoardKind(rawValue: raw) else { throw .invalidValue("board \(raw)") }
        return board
    }
    mutating func vector() throws(TapeDecodeError) -> Vector3 { Vector3(try f64(), try f64(), try f64()) }
    mutating func pose() throws(TapeDecodeError) -> Pose {
        let position = try vector()
        return Pose(rotation: Rotation(x: try vector(), y: try vector(), z: try vector()), position: position)
    }
}

/// Runs a `MotionCore` on a recorded tape: the same inputs, clock and commands in the same order
/// as the control loop had them, with the messages the core sends and the events it emits
/// collected for comparison with the recording's. No threads, no I/O, no clock of its own.
public struct MotionTapeReplayer {
    public private(set) var core: MotionCore
    /// What the replayed core sent to the arm and emitted, in order.
    public private(set) var sent: [Message] = []
    public private(set) var events: [MotionEvent] = []
    private var pendingTick: (index: UInt64, micros: UInt64)?
    private let output = CollectingOutput()

    public init(arm: ArmModel, configuration: MotionControllerConfiguration) {
        core = MotionCore(arm: arm, configuration: configuration)
    }

    /// Feeds one tape entry. Recorded `.sent` entries are outputs, not inputs: the caller
    /// compares them with `sent`.
    public mutating func feed(_ entry: TapeEntry) {
        switch entry {
        case .input(let input):
            finishCycle()
            var emitted: [MotionEvent] = []
            core.ingest(input) { emitted.append($0) }
            events += emitted
        case .tick(let index, let micros):
            finishCycle()
            pendingTick = (index, micros)
        case .command(let ticket, let command):
            var emitted: [MotionEvent] = []
            core.handle(command, ticket: ticket, now: pendingTick?.micros ?? 0, output: output) { emitted.append($0) }
            events += emitted
            sent += output.take()
        case .sent(_, let delivered):
            // Outputs, not inputs; but whether the link took a message changes what the core does
            // next (a STOP is resent), so the replayed link answers as the recorded one did.
            output.recordedDeliveries.append(delivered)
        }
    }

    /// Runs the last cycle fed (call once at the end of the tape).
    public mutating func finish() { finishCycle() }

    private mutating func finishCycle() {
        guard let tick = pendingTick else { return }
        pendingTick = nil
        var emitted: [MotionEvent] = []
        core.cycle(now: tick.micros, output: output) { emitted.append($0) }
        events += emitted
        sent += output.take()
    }
}

/// Collects what the replayed core sends (the replay's stand-in for the arm's serial link).
private final class CollectingOutput: ArmCommandOutput, @unchecked Sendable {
    // @unchecked: the replay drives the core and this output on one thread; nothing else holds it.
    private var messages: [Message] = []
    var recordedDeliveries: [Bool] = []
    private var nextDelivery = 0
    func send(_ message: Message) -> Bool {
        messages.append(message)
        defer { nextDelivery += 1 }
        return nextDelivery < recordedDeliveries.count ? recordedDeliveries[nextDelivery] : true
    }
    func take() -> [Message] {
        defer { messages.removeAll(keepingCapacity: true) }
        return messages
    }
}
