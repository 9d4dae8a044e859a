public import SonoDevices
public import SonoProtocol
public import SonoMotion
import SonoSystem
import Synchronization

extension RealTimeSender: ArmCommandOutput {
    public func send(_ message: Message) -> Bool { send(message) == .sent }
}

/// The arm and force-sensor boards wired to a motion controller: each board's link thread feeds
/// the controller's input queue, and the loop writes to the arm through a `RealTimeSender`.
/// ros2_control's split: these are the hardware interfaces; the controller knows only queues.
public final class ScannerBoards: Sendable {
    public let arm: BoardLink
    public let forceSensor: BoardLink
    public let armSender: RealTimeSender
    public let inputs: MotionInputs
    private let forceProgress = ForceSampleProgress()

    /// `readerPriority`: SCHED_FIFO priority of the link threads, below the control loop's.
    /// `armJointCount`: the joints of the arm model (hardware/arm.toml); an arm board driving
    /// another number is refused, as is one without the host and command watchdogs.
    public init(arm: SerialPortSelector, forceSensor: SerialPortSelector, armJointCount: Int?, readerPriority: Int32? = 70,
                onLinkEvent: @escaping @Sendable (BoardKind, LinkEvent) -> Void = { _, _ in }) {
        let inputs = MotionInputs()
        self.inputs = inputs
        var armLink = BoardLinkConfiguration(name: "arm", port: arm, expectedKind: .arm)
        armLink.requiredCapabilities = [.jointPositionControl, .hostWatchdog, .commandWatchdog]
        armLink.expectedJointCount = armJointCount
        armLink.realTimePriority = readerPriority
        var forceLink = BoardLinkConfiguration(name: "force sensor", port: forceSensor, expectedKind: .forceTorque)
        forceLink.realTimePriority = readerPriority
        self.arm = BoardLink(armLink,
                             onFrame: { inputs.arm($0, receivedAt: $1) },
                             onEvent: { event in
                                 inputs.link(.arm, alive: event.isConnected)
                                 onLinkEvent(.arm, event)
                             })
        let forceProgress = self.forceProgress
        self.forceSensor = BoardLink(forceLink,
                                     onFrame: { frame, received in
                                         if case .forceTorqueSample(let sample) = frame.message {
                                             forceProgress.note(sample.status)
                                         }
                                         inputs.forceSensor(frame, receivedAt: received)
                                     },
                                     onEvent: { event in
                                         inputs.link(.forceTorque, alive: event.isConnected)
                                         onLinkEvent(.forceTorque, event)
                                     })
        armSender = RealTimeSender(link: self.arm)
    }

    public func start() {
        arm.start()
        forceSensor.start()
    }

    /// Tells both boards the interlocks' state through the host's heartbeats (PROTOCOL.md §3.2).
    public func reportHostState(_ state: SafetyState) {
        let board: BoardState = switch state {
        case .disabled, .ready: .ready
        case .operatorEnabled, .scanning: .active
        case .protectiveStop: .stopped
        case .emergencyStop: .emergencyStop
        case .fault: .fault
        }
        arm.reportHostState(board)
        forceSensor.reportHostState(board)
    }

    public func stop() {
        arm.stop()
        forceSensor.stop()
    }

    /// Zeroes the force sensor (PROTOCOL.md §3.14): sends TARE, and once it is acknowledged
    /// waits for a sample that no longer says `tare_in_progress` (the sensor averages its next
    /// 100 samples). Returns how long the zeroing took.
    /// - Throws: `TareError.refused` when the link could not get an ACK (NACK, timeout, not
    ///   connected); `.unfinished` when no finished sample came within `timeoutMillis` of the ACK.
    @discardableResult
    public func tare(timeoutMillis: Int) throws(TareError) -> Double {
        let begun = MonotonicClock.nowMicros()
        do { _ = try forceSensor.request(.tare) } catch { throw .refused("\(error)") }
        let acknowledged = forceProgress.samples
        let deadline = MonotonicClock.nowMicros() + UInt64(max(0, timeoutMillis)) * 1_000
        while MonotonicClock.nowMicros() < deadline {
            // The samples counted after the ACK carry the sensor's status after it took the TARE.
            if forceProgress.samples > acknowledged, !forceProgress.status.contains(.tareInProgress) {
                return Double(MonotonicClock.nowMicros() - begun) / 1e6
            }
            MonotonicClock.sleep(untilNanos: MonotonicClock.nowNanos() + 1_000_000)
        }
        throw .unfinished(waitedMillis: timeoutMillis)
    }

    /// Waits for both boards; nil when both are connected, else the name of the missing one.
    public func waitUntilConnected(timeoutMillis: Int) -> String? {
        if arm.waitUntilConnected(timeoutMillis: timeoutMillis) == nil { return "arm" }
        if forceSensor.waitUntilConnected(timeoutMillis: timeoutMillis) == nil { return "force sensor" }
        return nil
    }
}

extension LinkEvent {
    var isConnected: Bool {
        if case .connected = self { true } else { false }
    }
}

/// Why the force sensor could not be zeroed.
public enum TareError: Error, Sendable, CustomStringConvertible {
    case refused(String)
    case unfinished(waitedMillis: Int)

    public var description: String {
        switch self {
        case .refused(let reason): "TARE was not acknowledged: \(reason)"
        case .unfinished(let millis):
            "the force sensor still reported tare_in_progress \(millis) ms after acknowledging TARE"
        }
    }
}

/// The force sensor's latest sample status and how many samples have come: what shows that a
/// TARE has finished. The link thread writes, `tare` reads.
private final class ForceSampleProgress: Sendable {
    private let count = Atomic<UInt64>(0)
    private let latest = Atomic<UInt16>(0)

    func note(_ status: ForceTorqueStatus) {
        latest.store(status.rawValue, ordering: .relaxed)
        count.add(1, ordering: .releasing)
    }

    var samples: UInt64 { count.load(ordering: .acquiring) }
    var status: ForceTorqueStatus { ForceTorqueStatus(rawValue: latest.load(ordering: .relaxed)) }
}
