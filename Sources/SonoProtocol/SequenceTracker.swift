/// Follows a sender's u16 sequence numbers and counts lost frames (PROTOCOL.md §4.2).
public struct SequenceTracker: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable {
        case first
        case inOrder
        /// `count` frames between the previous one and this one never arrived.
        case gap(count: Int)
        /// A duplicate or a frame from before the sender rebooted.
        case reset
    }

    private var expected: UInt16?
    public private(set) var lostFrames: UInt64 = 0
    public private(set) var gaps: UInt64 = 0
    public private(set) var resets: UInt64 = 0

    public init() {}

    public mutating func observe(_ seq: UInt16) -> Outcome {
        defer { expected = seq &+ 1 }
        guard let expected else { return .first }
        let distance = seq &- expected
        if distance == 0 { return .inOrder }
        if distance < 0x8000 {
            lostFrames &+= UInt64(distance)
            gaps &+= 1
            return .gap(count: Int(distance))
        }
        resets &+= 1
        return .reset
    }

    /// After a `HELLO` or a reconnect: the next frame starts a new count without a gap.
    public mutating func restart() { expected = nil }
}
