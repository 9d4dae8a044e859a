import Foundation
import SonoProtocol
import SonoTestSupport
import Testing

/// The Swift codec against firmware-protocol/vectors, the files the C codec and the
/// independent Python check agree on.
@Suite struct GoldenVectorTests {
    static let vectorsDirectory = Repository.url("firmware-protocol/vectors")

    struct VectorFile: Decodable { let frames: [FrameVector] }
    struct FrameVector: Decodable, CustomTestStringConvertible {
        let name: String
        let type: String
        let seq: UInt16
        let timestamp_us: UInt64
        let fields: JSONValue
        let frame: String
        var testDescription: String { name }
    }
    struct InvalidFile: Decodable { let cases: [InvalidCase] }
    struct InvalidCase: Decodable, CustomTestStringConvertible {
        let name: String
        let stream: String
        let expect: [Outcome]
        var testDescription: String { name }
    }
    struct Outcome: Decodable, Equatable, CustomStringConvertible {
        var frame: String?
        var seq: UInt16?
        var error: String?
        var description: String { error.map { "error \($0)" } ?? "frame \(frame ?? "?") seq \(seq.map(String.init) ?? "?")" }
    }

    static func load<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: vectorsDirectory.appendingPathComponent(name)))
    }

    static let frames: [FrameVector] = (try? load("frames.json", as: VectorFile.self).frames) ?? []
    static let invalid: [InvalidCase] = (try? load("invalid.json", as: InvalidFile.self).cases) ?? []

    @Test func vectorFilesArePresentAndCoverEveryMessageType() throws {
        let frames = try Self.load("frames.json", as: VectorFile.self).frames
        let covered = Set(frames.map(\.type))
        for type in MessageType.allCases {
            #expect(covered.contains(type.description), "no golden vector for \(type)")
        }
        #expect(try Self.load("invalid.json", as: InvalidFile.self).cases.count >= 10)
    }

    @Test(arguments: frames)
    func encodesFieldsToTheGoldenBytes(_ vector: FrameVector) throws {
        let frame = Frame(seq: vector.seq, timestampMicros: vector.timestamp_us,
                          message: try message(type: vector.type, fields: vector.fields))
        #expect(hexString(try FrameCodec.encode(frame)) == vector.frame)
    }

    @Test(arguments: frames)
    func decodesTheGoldenBytesToTheFields(_ vector: FrameVector) throws {
        let expected = Frame(seq: vector.seq, timestampMicros: vector.timestamp_us,
                             message: try message(type: vector.type, fields: vector.fields))
        #expect(try FrameCodec.decode(wire: bytes(hex: vector.frame)) == expected)
    }

    @Test(arguments: invalid)
    func streamDecoderReportsTheExpectedOutcomes(_ vector: InvalidCase) throws {
        var decoder = StreamDecoder()
        var outcomes: [Outcome] = []
        try bytes(hex: vector.stream).withUnsafeBytes { stream in
            decoder.feed(stream) { result in
                switch result {
                case .success(let frame): outcomes.append(Outcome(frame: frame.message.type.description, seq: frame.seq))
                case .failure(let error): outcomes.append(Outcome(error: error.kind))
                }
            }
        }
        #expect(outcomes == vector.expect)
    }

    @Test(arguments: invalid)
    func byteAtATimeFeedingGivesTheSameOutcomes(_ vector: InvalidCase) throws {
        var whole = StreamDecoder(), split = StreamDecoder()
        var a: [String] = [], b: [String] = []
        let stream = try bytes(hex: vector.stream)
        stream.withUnsafeBytes { whole.feed($0) { a.append("\($0)") } }
        for byte in stream { [byte].withUnsafeBytes { split.feed($0) { b.append("\($0)") } } }
        #expect(a == b)
        #expect(whole.statistics == split.statistics)
    }
}

// MARK: - JSON fields → messages

enum JSONValue: Decodable {
    case number(Double), string(String), bool(Bool), array([JSONValue]), object([String: JSONValue]), null

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    subscript(key: String) -> JSONValue {
        get throws {
            guard case .object(let object) = self, let value = object[key] else { throw VectorError.missing(key) }
            return value
        }
    }

    var double: Double { get throws { guard case .number(let v) = self else { throw VectorError.type("number") }; return v } }
    var float: Float { get throws { try Float(double) } }
    func int<T: FixedWidthInteger>(_: T.Type = T.self) throws -> T {
        let value = try double
        guard let exact = T(exactly: value) else { throw VectorError.type("\(T.self) for \(value)") }
        return exact
    }
    var string: String { get throws { guard case .string(let v) = self else { throw VectorError.type("string") }; return v } }
    var array: [JSONValue] { get throws { guard case .array(let v) = self else { throw VectorError.type("array") }; return v } }
}

enum VectorError: Error { case missing(String), type(String), unknownMessage(String), hex(String) }

func message(type: String, fields f: JSONValue) throws -> Message {
    switch type {
    case "HELLO":
        guard let kind = BoardKind(rawValue: try f["kind"].int()) else { throw VectorError.type("kind") }
        return .hello(DeviceInfo(kind: kind, protocolVersion: try f["protocol_version"].int(),
                                 firmwareMajor: try f["fw_major"].int(), firmwareMinor: try f["fw_minor"].int(),
                                 firmwarePatch: try f["fw_patch"].int(), serial: SerialNumber(try f["serial"].string),
                                 capabilities: Capabilities(rawValue: try f["capabilities"].int()),
                                 jointCount: try f["joint_count"].int(), sampleRateHz: try f["sample_rate_hz"].int(),
                                 heartbeatPeriodMs: try f["heartbeat_period_ms"].int()))
    case "HEARTBEAT":
        return .heartbeat(Heartbeat(state: BoardState(rawValue: try f["state"].int()), reserved: try f["reserved"].int(),
                                    rxCRCErrors: try f["rx_crc_errors"].int(), rxSequenceGaps: try f["rx_seq_gaps"].int()))
    case "GET_INFO": return .getInfo
    case "CLEAR_FAULTS": return .clearFaults
    case "TARE": return .tare
    case "FT_SAMPLE":
        return .forceTorqueSample(ForceTorqueSample(
            fx: try f["fx"].float, fy: try f["fy"].float, fz: try f["fz"].float,
            tx: try f["tx"].float, ty: try f["ty"].float, tz: try f["tz"].float,
            status: ForceTorqueStatus(rawValue: try f["status"].int())))
    case "JOINT_STATE":
        let joints = try f["joints"].array.map { joint in
            JointReading(position: try joint["position"].float, velocity: try joint["velocity"].float,
                         current: try joint["current"].float, flags: JointFlags(rawValue: try joint["flags"].int()))
        }
        return .jointState(JointState(status: ArmStatus(rawValue: try f["status"].int()),
                                      joints: JointArray(joints, filler: .zero)))
    case "ESTOP_STATE":
        return .estopState(EStopState(engaged: try f["engaged"].int(UInt8.self) == 1, source: try f["source"].int()))
    case "FAULT_REPORT":
        return .faultReport(FaultReport(code: FaultCode(rawValue: try f["code"].int()), axis: try f["axis"].int(),
                                        severity: try f["severity"].int(), value: try f["value"].float,
                                        limit: try f["limit"].float))
    case "ACK":
        return .ack(Acknowledgement(ackedSeq: try f["acked_seq"].int(), ackedType: try f["acked_type"].int()))
    case "NACK":
        return .nack(Acknowledgement(ackedSeq: try f["acked_seq"].int(), ackedType: try f["acked_type"].int()),
                     reason: NackReason(rawValue: try f["error"].int()))
    case "JOINT_COMMAND":
        let joints = try f["joints"].array.map { joint in
            JointTarget(position: try joint["position"].float, maxVelocity: try joint["max_velocity"].float,
                        maxCurrent: try joint["max_current"].float)
        }
        return .jointCommand(JointCommand(joints: JointArray(joints, filler: .zero)))
    case "SET_DRIVES": return .setDrives(enable: try f["enable"].int(UInt8.self) == 1)
    case "STOP": return .stop(category: try f["category"].int())
    default: throw VectorError.unknownMessage(type)
    }
}

func bytes(hex: String) throws -> [UInt8] {
    let digits = Array(hex.utf8)
    guard digits.count % 2 == 0 else { throw VectorError.hex(hex) }
    return try stride(from: 0, to: digits.count, by: 2).map { index in
        guard let byte = UInt8(String(decoding: digits[index...index + 1], as: UTF8.self), radix: 16) else {
            throw VectorError.hex(hex)
        }
        return byte
    }
}

func hexString(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}
