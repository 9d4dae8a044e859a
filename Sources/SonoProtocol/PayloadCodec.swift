/// Payload layouts of PROTOCOL.md §3: sizes, encoding and decoding of each message.
enum PayloadCodec {
    static let helloSize = 30
    static let heartbeatSize = 6
    static let forceTorqueSize = 26
    static let jointReadingSize = 13
    static let jointTargetSize = 12
    static let estopSize = 2
    static let faultSize = 12
    static let ackSize = 3
    static let nackSize = 5

    static func payloadSize(of message: Message) -> Int {
        switch message {
        case .hello: helloSize
        case .heartbeat: heartbeatSize
        case .getInfo, .clearFaults, .tare: 0
        case .forceTorqueSample: forceTorqueSize
        case .jointState(let state): 3 + jointReadingSize * state.joints.count
        case .estopState: estopSize
        case .faultReport: faultSize
        case .ack: ackSize
        case .nack: nackSize
        case .jointCommand(let command): 1 + jointTargetSize * command.joints.count
        case .setDrives, .stop: 1
        }
    }

    static func validate(_ message: Message) throws(EncodeError) {
        switch message {
        case .jointState(let state) where !(1...ProtocolConstants.maxJoints).contains(state.joints.count):
            throw .jointCount(state.joints.count)
        case .jointCommand(let command) where !(1...ProtocolConstants.maxJoints).contains(command.joints.count):
            throw .jointCount(command.joints.count)
        default:
            return
        }
    }

    /// Writes the payload at `writer.offset`; the caller has checked the size.
    static func encode(_ message: Message, into writer: inout ByteWriter) {
        switch message {
        case .hello(let info):
            writer.u8(info.kind.rawValue)
            writer.u8(info.protocolVersion)
            writer.u8(info.firmwareMajor)
            writer.u8(info.firmwareMinor)
            writer.u8(info.firmwarePatch)
            for index in info.serial.bytes.indices { writer.u8(info.serial.bytes[index]) }
            writer.u32(info.capabilities.rawValue)
            writer.u8(info.jointCount)
            writer.u16(info.sampleRateHz)
            writer.u16(info.heartbeatPeriodMs)
        case .heartbeat(let heartbeat):
            writer.u8(heartbeat.state.rawValue)
            writer.u8(heartbeat.reserved)
            writer.u16(heartbeat.rxCRCErrors)
            writer.u16(heartbeat.rxSequenceGaps)
        case .getInfo, .clearFaults, .tare:
            break
        case .forceTorqueSample(let sample):
            writer.f32(sample.fx); writer.f32(sample.fy); writer.f32(sample.fz)
            writer.f32(sample.tx); writer.f32(sample.ty); writer.f32(sample.tz)
            writer.u16(sample.status.rawValue)
        case .jointState(let state):
            writer.u8(UInt8(state.joints.count))
            writer.u16(state.status.rawValue)
            for joint in state.joints {
                writer.f32(joint.position)
                writer.f32(joint.velocity)
                writer.f32(joint.current)
                writer.u8(joint.flags.rawValue)
            }
        case .estopState(let estop):
            writer.u8(estop.engaged ? 1 : 0)
            writer.u8(estop.source)
        case .faultReport(let fault):
            writer.u16(fault.code.rawValue)
            writer.u8(fault.axis)
            writer.u8(fault.severity)
            writer.f32(fault.value)
            writer.f32(fault.limit)
        case .ack(let ack):
            writer.u16(ack.ackedSeq)
            writer.u8(ack.ackedType)
        case .nack(let ack, let reason):
            writer.u16(ack.ackedSeq)
            writer.u8(ack.ackedType)
            writer.u16(reason.rawValue)
        case .jointCommand(let command):
            writer.u8(UInt8(command.joints.count))
            for joint in command.joints {
                writer.f32(joint.position)
                writer.f32(joint.maxVelocity)
                writer.f32(joint.maxCurrent)
            }
        case .setDrives(let enable):
            writer.u8(enable ? 1 : 0)
        case .stop(let category):
            writer.u8(category)
        }
    }

    static func decode(_ type: MessageType, _ payload: UnsafeRawBufferPointer) throws(FrameError) -> Message {
        var reader = ByteReader(payload)
        func require(_ size: Int) throws(FrameError) {
            guard payload.count == size else {
                throw .invalidPayload(type, reason: .size(expected: size, actual: payload.count))
            }
        }
        func jointCount(perJoint: Int, header: Int) throws(FrameError) -> Int {
            guard payload.count >= 1 else { throw .invalidPayload(type, reason: .size(expected: header, actual: 0)) }
            let count = Int(payload[0])
            guard (1...ProtocolConstants.maxJoints).contains(count) else {
                throw .invalidPayload(type, reason: .jointCount(count))
            }
            try require(header + perJoint * count)
            return count
        }

        switch type {
        case .hello:
            try require(helloSize)
            let rawKind = reader.u8()
            guard let kind = BoardKind(rawValue: rawKind) else {
                throw .invalidPayload(type, reason: .enumValue(field: "kind", value: rawKind))
            }
            let protocolVersion = reader.u8()
            let major = reader.u8(), minor = reader.u8(), patch = reader.u8()
            var serial = InlineArray<16, UInt8>(repeating: 0)
            for index in serial.indices { serial[index] = reader.u8() }
            return .hello(DeviceInfo(kind: kind, protocolVersion: protocolVersion,
                                     firmwareMajor: major, firmwareMinor: minor, firmwarePatch: patch,
                                     serial: SerialNumber(bytes: serial),
                                     capabilities: Capabilities(rawValue: reader.u32()),
                                     jointCount: reader.u8(), sampleRateHz: reader.u16(),
                                     heartbeatPeriodMs: reader.u16()))
        case .heartbeat:
            try require(heartbeatSize)
            return .heartbeat(Heartbeat(state: BoardState(rawValue: reader.u8()), reserved: reader.u8(),
                                        rxCRCErrors: reader.u16(), rxSequenceGaps: reader.u16()))
        case .getInfo:
            try require(0)
            return .getInfo
        case .clearFaults:
            try require(0)
            return .clearFaults
        case .tare:
            try require(0)
            return .tare
        case .forceTorqueSample:
            try require(forceTorqueSize)
            return .forceTorqueSample(ForceTorqueSample(
                fx: reader.f32(), fy: reader.f32(), fz: reader.f32(),
                tx: reader.f32(), ty: reader.f32(), tz: reader.f32(),
                status: ForceTorqueStatus(rawValue: reader.u16())))
        case .jointState:
            let count = try jointCount(perJoint: jointReadingSize, header: 3)
            reader.offset = 1
            let status = ArmStatus(rawValue: reader.u16())
            var joints = JointArray(count: count, filler: JointReading.zero)
            for index in 0..<count {
                joints[index] = JointReading(position: reader.f32(), velocity: reader.f32(),
                                             current: reader.f32(), flags: JointFlags(rawValue: reader.u8()))
            }
            return .jointState(JointState(status: status, joints: joints))
        case .estopState:
            try require(estopSize)
            let engaged = reader.u8()
            guard engaged <= 1 else { throw .invalidPayload(type, reason: .enumValue(field: "engaged", value: engaged)) }
            return .estopState(EStopState(engaged: engaged == 1, source: reader.u8()))
        case .faultReport:
            try require(faultSize)
            return .faultReport(FaultReport(code: FaultCode(rawValue: reader.u16()), axis: reader.u8(),
                                            severity: reader.u8(), value: reader.f32(), limit: reader.f32()))
        case .ack:
            try require(ackSize)
            return .ack(Acknowledgement(ackedSeq: reader.u16(), ackedType: reader.u8()))
        case .nack:
            try require(nackSize)
            let ack = Acknowledgement(ackedSeq: reader.u16(), ackedType: reader.u8())
            return .nack(ack, reason: NackReason(rawValue: reader.u16()))
        case .jointCommand:
            let count = try jointCount(perJoint: jointTargetSize, header: 1)
            reader.offset = 1
            var joints = JointArray(count: count, filler: JointTarget.zero)
            for index in 0..<count {
                joints[index] = JointTarget(position: reader.f32(), maxVelocity: reader.f32(), maxCurrent: reader.f32())
            }
            return .jointCommand(JointCommand(joints: joints))
        case .setDrives:
            try require(1)
            let enable = reader.u8()
            guard enable <= 1 else { throw .invalidPayload(type, reason: .enumValue(field: "enable", value: enable)) }
            return .setDrives(enable: enable == 1)
        case .stop:
            try require(1)
            return .stop(category: reader.u8())
        }
    }
}
