/// The message catalog of PROTOCOL.md §3, as values. Every type here is fixed-size, so decoding
/// a frame never allocates.

public enum ProtocolConstants {
    public static let version: UInt8 = 1
    public static let headerSize = 14
    public static let crcSize = 4
    public static let maxPayload = 240
    /// Header + largest payload + CRC.
    public static let maxDecodedFrame = headerSize + maxPayload + crcSize
    /// COBS of the largest frame plus its 0x00 delimiter.
    public static let maxEncodedFrame = COBS.maxEncodedCount(maxDecodedFrame) + 1
    public static let maxJoints = 8
}

public enum MessageType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case hello = 0x01
    case heartbeat = 0x02
    case getInfo = 0x03
    case forceTorqueSample = 0x10
    case jointState = 0x11
    case estopState = 0x12
    case faultReport = 0x13
    case ack = 0x20
    case nack = 0x21
    case jointCommand = 0x30
    case setDrives = 0x31
    case stop = 0x32
    case clearFaults = 0x33
    case tare = 0x34

    /// The name PROTOCOL.md and the golden vectors use.
    public var description: String {
        switch self {
        case .hello: "HELLO"
        case .heartbeat: "HEARTBEAT"
        case .getInfo: "GET_INFO"
        case .forceTorqueSample: "FT_SAMPLE"
        case .jointState: "JOINT_STATE"
        case .estopState: "ESTOP_STATE"
        case .faultReport: "FAULT_REPORT"
        case .ack: "ACK"
        case .nack: "NACK"
        case .jointCommand: "JOINT_COMMAND"
        case .setDrives: "SET_DRIVES"
        case .stop: "STOP"
        case .clearFaults: "CLEAR_FAULTS"
        case .tare: "TARE"
        }
    }
}

public enum BoardKind: UInt8, Sendable, CustomStringConvertible {
    case forceTorque = 1
    case arm = 2

    public var description: String { self == .forceTorque ? "force/torque sensor" : "arm actuator" }
}

/// A board's serial number: 16 ASCII bytes, 0x00-padded, stored inline.
public struct SerialNumber: Sendable, Equatable, CustomStringConvertible {
    public static let size = 16
    public var bytes: InlineArray<16, UInt8>

    public init(_ text: String) {
        bytes = InlineArray(repeating: 0)
        for (index, byte) in text.utf8.prefix(Self.size).enumerated() { bytes[index] = byte }
    }

    init(bytes: InlineArray<16, UInt8>) { self.bytes = bytes }

    public var description: String {
        var characters: [UInt8] = []
        for index in bytes.indices where bytes[index] != 0 { characters.append(bytes[index]) }
        return String(decoding: characters, as: UTF8.self)
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.bytes.indices.allSatisfy { lhs.bytes[$0] == rhs.bytes[$0] }
    }
}

public struct Capabilities: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let forceTorque6Axis = Capabilities(rawValue: 1 << 0)
    public static let tare = Capabilities(rawValue: 1 << 1)
    public static let jointPositionControl = Capabilities(rawValue: 1 << 2)
    public static let currentLimit = Capabilities(rawValue: 1 << 3)
    public static let estopInput = Capabilities(rawValue: 1 << 4)
    public static let brakes = Capabilities(rawValue: 1 << 5)
    public static let hostWatchdog = Capabilities(rawValue: 1 << 6)
    /// The arm board stops when the host's `JOINT_COMMAND` stream stops (PROTOCOL.md §4.3).
    public static let commandWatchdog = Capabilities(rawValue: 1 << 7)

    /// PROTOCOL.md §3.1's names of the bits set, in bit order.
    public var names: [String] {
        let all = ["force_torque_6axis", "tare", "joint_position_control", "current_limit", "estop_input", "brakes",
                   "host_watchdog", "command_watchdog"]
        return all.indices.filter { rawValue & (1 << UInt32($0)) != 0 }.map { all[$0] }
    }
}

/// `HELLO`: who a board is (§3.1).
public struct DeviceInfo: Sendable, Equatable {
    public var kind: BoardKind
    public var protocolVersion: UInt8
    public var firmwareMajor: UInt8
    public var firmwareMinor: UInt8
    public var firmwarePatch: UInt8
    public var serial: SerialNumber
    public var capabilities: Capabilities
    public var jointCount: UInt8
    public var sampleRateHz: UInt16
    public var heartbeatPeriodMs: UInt16

    public init(kind: BoardKind, protocolVersion: UInt8 = ProtocolConstants.version,
                firmwareMajor: UInt8, firmwareMinor: UInt8, firmwarePatch: UInt8,
                serial: SerialNumber, capabilities: Capabilities, jointCount: UInt8,
                sampleRateHz: UInt16, heartbeatPeriodMs: UInt16) {
        self.kind = kind
        self.protocolVersion = protocolVersion
        self.firmwareMajor = firmwareMajor
        self.firmwareMinor = firmwareMinor
        self.firmwarePatch = firmwarePatch
        self.serial = serial
        self.capabilities = capabilities
        self.jointCount = jointCount
        self.sampleRateHz = sampleRateHz
        self.heartbeatPeriodMs = heartbeatPeriodMs
    }

    public var firmwareVersion: String { "\(firmwareMajor).\(firmwareMinor).\(firmwarePatch)" }
}

/// Sender state carried by `HEARTBEAT` (§3.2). Unknown values are kept raw: a newer board may
/// report a state this host does not name, which is no reason to drop its heartbeat.
public struct BoardState: RawRepresentable, Sendable, Equatable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let booting = BoardState(rawValue: 0)
    public static let ready = BoardState(rawValue: 1)
    public static let active = BoardState(rawValue: 2)
    public static let stopped = BoardState(rawValue: 3)
    public static let emergencyStop = BoardState(rawValue: 4)
    public static let fault = BoardState(rawValue: 5)

    public var description: String {
        switch rawValue {
        case 0: "booting"
        case 1: "ready"
        case 2: "active"
        case 3: "stopped"
        case 4: "emergency-stop"
        case 5: "fault"
        default: "state-\(rawValue)"
        }
    }
}

public struct Heartbeat: Sendable, Equatable {
    public var state: BoardState
    public var reserved: UInt8
    public var rxCRCErrors: UInt16
    public var rxSequenceGaps: UInt16

    public init(state: BoardState, reserved: UInt8 = 0, rxCRCErrors: UInt16 = 0, rxSequenceGaps: UInt16 = 0) {
        self.state = state
        self.reserved = reserved
        self.rxCRCErrors = rxCRCErrors
        self.rxSequenceGaps = rxSequenceGaps
    }
}

public struct ForceTorqueStatus: OptionSet, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let saturated = ForceTorqueStatus(rawValue: 1 << 0)
    public static let overTemperature = ForceTorqueStatus(rawValue: 1 << 1)
    public static let calibrationInvalid = ForceTorqueStatus(rawValue: 1 << 2)
    public static let tareInProgress = ForceTorqueStatus(rawValue: 1 << 3)
}

/// `FT_SAMPLE` (§3.4): forces in N, torques in N·m, in the sensor frame; +z presses into the body.
public struct ForceTorqueSample: Sendable, Equatable {
    public var fx, fy, fz: Float
    public var tx, ty, tz: Float
    public var status: ForceTorqueStatus

    public init(fx: Float, fy: Float, fz: Float, tx: Float, ty: Float, tz: Float,
                status: ForceTorqueStatus = []) {
        self.fx = fx; self.fy = fy; self.fz = fz
        self.tx = tx; self.ty = ty; self.tz = tz
        self.status = status
    }
}

public struct ArmStatus: OptionSet, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let drivesEnabled = ArmStatus(rawValue: 1 << 0)
    public static let estopEngaged = ArmStatus(rawValue: 1 << 1)
    public static let fault = ArmStatus(rawValue: 1 << 2)
    public static let moving = ArmStatus(rawValue: 1 << 3)
    public static let stopping = ArmStatus(rawValue: 1 << 4)
    public static let homed = ArmStatus(rawValue: 1 << 5)
}

public struct JointFlags: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let atLowerLimit = JointFlags(rawValue: 1 << 0)
    public static let atUpperLimit = JointFlags(rawValue: 1 << 1)
    public static let overCurrent = JointFlags(rawValue: 1 << 2)
    public static let followingError = JointFlags(rawValue: 1 << 3)
    public static let brakeEngaged = JointFlags(rawValue: 1 << 4)
}

/// One joint of `JOINT_STATE`: rad, rad/s, A.
public struct JointReading: Sendable, Equatable {
    public var position: Float
    public var velocity: Float
    public var current: Float
    public var flags: JointFlags

    public init(position: Float, velocity: Float, current: Float, flags: JointFlags = []) {
        self.position = position
        self.velocity = velocity
        self.current = current
        self.flags = flags
    }

    public static let zero = JointReading(position: 0, velocity: 0, current: 0)
}

/// One joint of `JOINT_COMMAND`: target rad, limits rad/s and A.
public struct JointTarget: Sendable, Equatable {
    public var position: Float
    public var maxVelocity: Float
    public var maxCurrent: Float

    public init(position: Float, maxVelocity: Float, maxCurrent: Float) {
        self.position = position
        self.maxVelocity = maxVelocity
        self.maxCurrent = maxCurrent
    }

    public static let zero = JointTarget(position: 0, maxVelocity: 0, maxCurrent: 0)
}

/// Up to `ProtocolConstants.maxJoints` values stored inline: joint messages never allocate.
public struct JointArray<Element: Sendable & Equatable>: Sendable, Equatable, RandomAccessCollection {
    private var storage: InlineArray<8, Element>
    public private(set) var count: Int

    /// An array of `count` copies of `filler`; `count` is clamped to 0…8 by precondition.
    public init(count: Int, filler: Element) {
        precondition((0...ProtocolConstants.maxJoints).contains(count), "joint count \(count) outside 0…8")
        storage = InlineArray(repeating: filler)
        self.count = count
    }

    public init(_ elements: some Collection<Element>, filler: Element) {
        self.init(count: elements.count, filler: filler)
        for (index, element) in elements.enumerated() { storage[index] = element }
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public subscript(index: Int) -> Element {
        get {
            precondition(index >= 0 && index < count, "joint index \(index) out of 0..<\(count)")
            return storage[index]
        }
        set {
            precondition(index >= 0 && index < count, "joint index \(index) out of 0..<\(count)")
            storage[index] = newValue
        }
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.count == rhs.count && (0..<lhs.count).allSatisfy { lhs.storage[$0] == rhs.storage[$0] }
    }
}

public struct JointState: Sendable, Equatable {
    public var status: ArmStatus
    public var joints: JointArray<JointReading>

    public init(status: ArmStatus, joints: JointArray<JointReading>) {
        self.status = status
        self.joints = joints
    }
}

public struct JointCommand: Sendable, Equatable {
    public var joints: JointArray<JointTarget>
    public init(joints: JointArray<JointTarget>) { self.joints = joints }
}

public enum EStopSource: UInt8, Sendable {
    case none = 0, pendantButton = 1, boardInternal = 2, hostRequest = 3, externalInput = 4
}

public struct EStopState: Sendable, Equatable {
    public var engaged: Bool
    /// Raw so that a source added by newer firmware still reports the engaged state.
    public var source: UInt8

    public init(engaged: Bool, source: UInt8) {
        self.engaged = engaged
        self.source = source
    }
}

public struct FaultCode: RawRepresentable, Sendable, Equatable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let overCurrent = FaultCode(rawValue: 1)
    public static let followingError = FaultCode(rawValue: 2)
    public static let jointLimit = FaultCode(rawValue: 3)
    public static let overTemperature = FaultCode(rawValue: 4)
    public static let hostTimeout = FaultCode(rawValue: 5)
    public static let sensorSaturated = FaultCode(rawValue: 6)
    public static let supplyVoltage = FaultCode(rawValue: 7)
    public static let encoder = FaultCode(rawValue: 8)
    public static let `internal` = FaultCode(rawValue: 9)
    public static let commandTimeout = FaultCode(rawValue: 10)

    public var description: String {
        let names = ["over_current", "following_error", "joint_limit", "over_temperature", "host_timeout",
                     "sensor_saturated", "supply_voltage", "encoder", "internal", "command_timeout"]
        return (1...names.count).contains(Int(rawValue)) ? names[Int(rawValue) - 1] : "fault_\(rawValue)"
    }
}

public struct FaultReport: Sendable, Equatable {
    public static let noAxis: UInt8 = 0xFF
    public var code: FaultCode
    public var axis: UInt8
    /// 1 warning, 2 latched fault.
    public var severity: UInt8
    public var value: Float
    public var limit: Float

    public init(code: FaultCode, axis: UInt8, severity: UInt8, value: Float, limit: Float) {
        self.code = code
        self.axis = axis
        self.severity = severity
        self.value = value
        self.limit = limit
    }
}

public struct NackReason: RawRepresentable, Sendable, Equatable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let unknownType = NackReason(rawValue: 1)
    public static let invalidPayload = NackReason(rawValue: 2)
    public static let outOfRange = NackReason(rawValue: 3)
    public static let wrongState = NackReason(rawValue: 4)
    public static let estopEngaged = NackReason(rawValue: 5)
    public static let faultActive = NackReason(rawValue: 6)
    public static let unsupportedVersion = NackReason(rawValue: 7)
    public static let busy = NackReason(rawValue: 8)

    public var description: String {
        let names = ["unknown_type", "invalid_payload", "out_of_range", "wrong_state", "estop_engaged",
                     "fault_active", "unsupported_version", "busy"]
        return (1...names.count).contains(Int(rawValue)) ? names[Int(rawValue) - 1] : "error_\(rawValue)"
    }
}

public struct Acknowledgement: Sendable, Equatable {
    public var ackedSeq: UInt16
    /// Raw: a board may answer a type this host does not know.
    public var ackedType: UInt8

    public init(ackedSeq: UInt16, ackedType: UInt8) {
        self.ackedSeq = ackedSeq
        self.ackedType = ackedType
    }
}

/// IEC 60204-1 stop category. Kept raw on the wire: a board must stop even on a value it does
/// not know (§3.12), so the codec decodes any byte and the application validates it.
public enum StopCategory: UInt8, Sendable, CustomStringConvertible {
    /// Remove drive power at once, engage brakes.
    case uncontrolled = 0
    /// Controlled stop at maximum deceleration, then remove power.
    case controlledThenPowerOff = 1
    /// Controlled stop, power stays on, hold position.
    case controlledHold = 2

    public var description: String { "category \(rawValue)" }
}

public enum Message: Sendable, Equatable {
    case hello(DeviceInfo)
    case heartbeat(Heartbeat)
    case getInfo
    case forceTorqueSample(ForceTorqueSample)
    case jointState(JointState)
    case estopState(EStopState)
    case faultReport(FaultReport)
    case ack(Acknowledgement)
    case nack(Acknowledgement, reason: NackReason)
    case jointCommand(JointCommand)
    case setDrives(enable: Bool)
    /// The raw category byte; `StopCategory(rawValue:)` validates it.
    case stop(category: UInt8)
    case clearFaults
    case tare

    public var type: MessageType {
        switch self {
        case .hello: .hello
        case .heartbeat: .heartbeat
        case .getInfo: .getInfo
        case .forceTorqueSample: .forceTorqueSample
        case .jointState: .jointState
        case .estopState: .estopState
        case .faultReport: .faultReport
        case .ack: .ack
        case .nack: .nack
        case .jointCommand: .jointCommand
        case .setDrives: .setDrives
        case .stop: .stop
        case .clearFaults: .clearFaults
        case .tare: .tare
        }
    }
}

/// A decoded frame: header fields plus the message.
public struct Frame: Sendable, Equatable {
    public var seq: UInt16
    public var timestampMicros: UInt64
    public var message: Message

    public init(seq: UInt16, timestampMicros: UInt64, message: Message) {
        self.seq = seq
        self.timestampMicros = timestampMicros
        self.message = message
    }
}
