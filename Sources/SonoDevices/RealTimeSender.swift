public import SonoProtocol
public import SonoSystem
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What became of one real-time send.
public enum RealTimeSendResult: Sendable, Equatable {
    case sent
    /// The port is not open (the board is reconnecting).
    case notConnected
    /// The kernel's transmit buffer is full (or the link is mid-write as the loop takes the
    /// port back): nothing of the frame went out.
    case wouldBlock
    case failed(errno: Errno)
    case encodeFailed
}

/// The control loop's path to a board: encodes into a buffer allocated once and hands the
/// frame to the link's `PortWriter`, which, while the loop sends, makes the loop the port's
/// only writer (the link's own frames wait in its outbox and go out first). No lock, no
/// allocation, no waiting; the writer numbers the frame in one sequence with the link's own
/// frames, in the order they go out.
///
/// Exactly one thread may call `send` (the control loop); counters may be read from any.
public final class RealTimeSender: @unchecked Sendable {
    // @unchecked: `scratch` is used only by the one sending thread (checked by `sender` in debug builds); the counters are atomics.
    private let link: BoardLink
    private let scratch: UnsafeMutableRawBufferPointer
    private let sentFrames = Atomic<UInt64>(0)
    private let failedFrames = Atomic<UInt64>(0)
    /// The one thread that sends: the scratch buffer and the link's sequence are not locked.
    private let sender = ThreadOwner("the control loop")

    public init(link: BoardLink) {
        self.link = link
        scratch = .allocate(byteCount: ProtocolConstants.maxDecodedFrame, alignment: 8)
    }

    deinit { scratch.deallocate() }

    /// Frames written whole, and frames not written (not connected, buffer full, error).
    public var sent: UInt64 { sentFrames.load(ordering: .relaxed) }
    public var failed: UInt64 { failedFrames.load(ordering: .relaxed) }

    public func send(_ message: Message) -> RealTimeSendResult {
        assert(sender.isOwnedByCurrentThread(), "RealTimeSender.send: only \(sender.role)'s thread may send")
        let result: RealTimeSendResult
        do throws(EncodeError) {
            // Numbered by the port's writer as it goes on the wire (one sequence with the link's frames).
            let count = try FrameCodec.encodeBody(message, seq: 0, timestampMicros: MonotonicClock.nowMicros(), into: scratch)
            result = link.portWriter.sendRealTime(body: UnsafeRawBufferPointer(rebasing: scratch[0..<count]))
        } catch {
            result = .encodeFailed
        }
        if result == .sent { sentFrames.add(1, ordering: .relaxed) } else { failedFrames.add(1, ordering: .relaxed) }
        return result
    }
}
