public import SonoProtocol
import Synchronization

/// Where a simulated force sensor gets the wrench it measures (N, N·m, sensor frame).
/// The virtual patient's contact model supplies one; tests supply their own.
public protocol WrenchSource: AnyObject, Sendable {
    func wrench(atMicros micros: UInt64) -> ForceTorqueSample
}

/// A fixed wrench, settable from any thread (tests press and release the probe with it).
public final class SettableWrench: WrenchSource {
    private let value: Mutex<ForceTorqueSample>

    public init(_ value: ForceTorqueSample = ForceTorqueSample(fx: 0, fy: 0, fz: 0, tx: 0, ty: 0, tz: 0)) {
        self.value = Mutex(value)
    }

    public func set(_ sample: ForceTorqueSample) { value.withLock { $0 = sample } }
    public func wrench(atMicros micros: UInt64) -> ForceTorqueSample { value.withLock { $0 } }
}

/// Firmware of the 6-axis force/torque sensor board (PROTOCOL.md §3): streams `FT_SAMPLE`
/// at its sample rate, zeroes itself on `TARE`, flags saturation at its measuring range and
/// latches it as a fault (§3.7: `FAULT_REPORT sensor_saturated`, severity 2) that only a
/// `CLEAR_FAULTS` with the wrench back within range clears (§3.13).
public final class ForceSensorFirmware: BoardFirmware {
    public let deviceInfo: DeviceInfo
    /// Measuring range per force axis, N; beyond it the sample is flagged `saturated`.
    public let forceRange: Float
    public let torqueRange: Float
    private let source: any WrenchSource
    private var bias = ForceTorqueSample(fx: 0, fy: 0, fz: 0, tx: 0, ty: 0, tz: 0)
    private var tare: (remaining: Int, sum: ForceTorqueSample)?
    private let tareSamples = 100
    /// The latched fault, until a CLEAR_FAULTS finds its cause gone.
    public private(set) var latchedFault: FaultReport?
    /// Whether the latest sample was beyond the measuring range (the latch's cause).
    private var saturated = false

    public init(serial: String = "FT-0001", sampleRateHz: UInt16 = 1_000, heartbeatPeriodMs: UInt16 = 50,
                forceRange: Float = 200, torqueRange: Float = 10, source: any WrenchSource) {
        deviceInfo = DeviceInfo(kind: .forceTorque, firmwareMajor: 1, firmwareMinor: 4, firmwarePatch: 2,
                                serial: SerialNumber(serial), capabilities: [.forceTorque6Axis, .tare],
                                jointCount: 0, sampleRateHz: sampleRateHz, heartbeatPeriodMs: heartbeatPeriodMs)
        self.forceRange = forceRange
        self.torqueRange = torqueRange
        self.source = source
    }

    public var boardState: BoardState { latchedFault == nil ? .active : .fault }

    public func receive(_ message: Message, seq: UInt16, at micros: UInt64, reply: (Message) -> Void) {
        if receiveCommon(message, reply: reply) { return }
        switch message {
        case .tare:
            tare = (tareSamples, ForceTorqueSample(fx: 0, fy: 0, fz: 0, tx: 0, ty: 0, tz: 0))
            reply(acknowledge(seq, .tare))
        case .clearFaults:
            if latchedFault != nil && saturated {
                reply(refuse(seq, .clearFaults, .faultActive))
            } else {
                latchedFault = nil
                reply(acknowledge(seq, .clearFaults))
            }
        default:
            reply(refuse(seq, message.type, .unknownType))
        }
    }

    public func tick(at micros: UInt64, emit: (Message) -> Void) {
        let raw = source.wrench(atMicros: micros)
        var status: ForceTorqueStatus = []
        if let (remaining, sum) = tare {
            let total = sum + raw
            if remaining <= 1 {
                bias = total.scaled(by: 1 / Float(tareSamples))
                tare = nil
            } else {
                tare = (remaining - 1, total)
                status.insert(.tareInProgress)
            }
        }
        var sample = raw - bias
        sample.status = status
        let worst = Self.worstAxis(raw, forceRange: forceRange, torqueRange: torqueRange)
        saturated = worst.ratio > 1
        if saturated {
            sample.status.insert(.saturated)
            if latchedFault == nil {
                let report = FaultReport(code: .sensorSaturated, axis: worst.axis, severity: 2,
                                         value: worst.value, limit: worst.axis < 3 ? forceRange : torqueRange)
                latchedFault = report
                emit(.faultReport(report))
            }
        }
        emit(.forceTorqueSample(sample))
    }

    /// The axis (0–2 force, 3–5 torque) furthest into its measuring range, its reading and its
    /// reading over the range.
    private static func worstAxis(_ raw: ForceTorqueSample, forceRange: Float,
                                  torqueRange: Float) -> (axis: UInt8, value: Float, ratio: Float) {
        var worst: (axis: UInt8, value: Float, ratio: Float) = (0, raw.fx, 0)
        func consider(_ axis: UInt8, _ value: Float, _ range: Float) {
            let ratio = abs(value) / range
            if ratio > worst.ratio { worst = (axis, value, ratio) }
        }
        consider(0, raw.fx, forceRange)
        consider(1, raw.fy, forceRange)
        consider(2, raw.fz, forceRange)
        consider(3, raw.tx, torqueRange)
        consider(4, raw.ty, torqueRange)
        consider(5, raw.tz, torqueRange)
        return worst
    }
}

extension ForceTorqueSample {
    static func + (a: Self, b: Self) -> Self {
        Self(fx: a.fx + b.fx, fy: a.fy + b.fy, fz: a.fz + b.fz, tx: a.tx + b.tx, ty: a.ty + b.ty, tz: a.tz + b.tz)
    }

    static func - (a: Self, b: Self) -> Self {
        Self(fx: a.fx - b.fx, fy: a.fy - b.fy, fz: a.fz - b.fz, tx: a.tx - b.tx, ty: a.ty - b.ty, tz: a.tz - b.tz)
    }

    func scaled(by factor: Float) -> Self {
        Self(fx: fx * factor, fy: fy * factor, fz: fz * factor, tx: tx * factor, ty: ty * factor, tz: tz * factor)
    }
}
