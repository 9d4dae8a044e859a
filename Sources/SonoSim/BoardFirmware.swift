public import SonoProtocol

/// The behaviour of a firmware board, without I/O: it reacts to received messages and emits
/// its periodic stream on each tick. `BoardRunner` wires one to a byte stream in real time;
/// the virtual patient steps one in simulated time. Times are the board's clock in µs.
public protocol BoardFirmware: AnyObject {
    var deviceInfo: DeviceInfo { get }
    /// The board's state as its `HEARTBEAT` reports it.
    var boardState: BoardState { get }
    /// Handles one message from the host; `reply` sends a message back.
    func receive(_ message: Message, seq: UInt16, at micros: UInt64, reply: (Message) -> Void)
    /// Advances the board to `micros` and emits what it streams at that instant.
    func tick(at micros: UInt64, emit: (Message) -> Void)
}

extension BoardFirmware {
    /// Answers the requests every board understands; returns false for the others.
    func receiveCommon(_ message: Message, reply: (Message) -> Void) -> Bool {
        switch message {
        case .getInfo:
            reply(.hello(deviceInfo))
            return true
        case .heartbeat:
            return true
        default:
            return false
        }
    }
}

func acknowledge(_ seq: UInt16, _ type: MessageType) -> Message {
    .ack(Acknowledgement(ackedSeq: seq, ackedType: type.rawValue))
}

func refuse(_ seq: UInt16, _ type: MessageType, _ reason: NackReason) -> Message {
    .nack(Acknowledgement(ackedSeq: seq, ackedType: type.rawValue), reason: reason)
}
