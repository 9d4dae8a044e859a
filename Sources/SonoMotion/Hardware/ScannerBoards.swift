public import SonoDevices
public import SonoProtocol

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

    /// `readerPriority`: SCHED_FIFO priority of the link threads, below the control loop's.
    public init(arm: SerialPortSelector, forceSensor: SerialPortSelector, readerPriority: Int32? = 70,
                onLinkEvent: @escaping @Sendable (BoardKind, LinkEvent) -> Void = { _, _ in }) {
        let inputs = MotionInputs()
        self.inputs = inputs
        var armLink = BoardLinkConfiguration(name: "arm", port: arm, expectedKind: .arm)
        armLink.realTimePriority = readerPriority
        var forceLink = BoardLinkConfiguration(name: "force sensor", port: forceSensor, expectedKind: .forceTorque)
        forceLink.realTimePriority = readerPriority
        self.arm = BoardLink(armLink,
                             onFrame: { inputs.arm($0, receivedAt: $1) },
                             onEvent: { event in
                                 inputs.link(.arm, alive: event.isConnected)
                                 onLinkEvent(.arm, event)
                             })
        self.forceSensor = BoardLink(forceLink,
                                     onFrame: { inputs.forceSensor($0, receivedAt: $1) },
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

    public func stop() {
        arm.stop()
        forceSensor.stop()
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
