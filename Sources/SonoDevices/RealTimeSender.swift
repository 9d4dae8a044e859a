public import SonoProtocol
public import SonoSystem
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Hands a link's open descriptor to its real-time sender without a lock on the sender's side.
/// The sender announces itself (`writers` + 1), then reads the descriptor; the reader thread
/// withdraws the descriptor, then waits for announced writers to finish before it closes the
/// port. Both sides use sequentially consistent operations, so a sender either sees −1 or is
/// seen by the closer: a closed (and possibly reused) descriptor is never written.
final class RealTimeGate: Sendable {
    private let descriptor = Atomic<Int32>(-1)
    private let writers = Atomic<Int>(0)

    func publish(_ fd: Int32) {
        // libserialport opens ports non-blocking; make sure, since a real-time write must not wait.
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 && flags & O_NONBLOCK == 0 { _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
        descriptor.store(fd, ordering: .sequentiallyConsistent)
    }

    /// Withdraws the descriptor and waits (off the real-time path) until no sender uses it.
    func withdraw() {
        descriptor.store(-1, ordering: .sequentiallyConsistent)
        while writers.load(ordering: .sequentiallyConsistent) != 0 { sched_yield() }
    }

    @inline(__always)
    func withDescriptor<R>(_ body: (Int32) -> R) -> R {
        writers.add(1, ordering: .sequentiallyConsistent)
        defer { writers.subtract(1, ordering: .sequentiallyConsistent) }
        return body(descriptor.load(ordering: .sequentiallyConsistent))
    }
}

/// What became of one real-time send.
public enum RealTimeSendResult: Sendable, Equatable {
    case sent
    /// The port is not open (the board is reconnecting).
    case notConnected
    /// The kernel's transmit buffer is full; nothing or only part of the frame went out (a
    /// partial frame ends at the next delimiter and the board drops it).
    case wouldBlock
    case failed(errno: Errno)
    case encodeFailed
}

/// The control loop's path to a board: encodes into a buffer allocated once and writes the
/// frame with one non-blocking write(2) on the link's descriptor. No lock, no allocation, no
/// waiting; sequence numbers come from the same atomic counter as the link's own sends, and
/// the kernel's tty write lock keeps whole frames from interleaving with the link's heartbeats
/// (frames are far below the tty's 2 KiB write chunk).
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
        scratch = .allocate(byteCount: ProtocolConstants.maxEncodedFrame, alignment: 8)
    }

    deinit { scratch.deallocate() }

    /// Frames written whole, and frames not written (not connected, buffer full, error).
    public var sent: UInt64 { sentFrames.load(ordering: .relaxed) }
    public var failed: UInt64 { failedFrames.load(ordering: .relaxed) }

    public func send(_ message: Message) -> RealTimeSendResult {
        assert(sender.isOwnedByCurrentThread(), "RealTimeSender.send: only \(sender.role)'s thread may send")
        let result = link.realTimeGate.withDescriptor { fd -> RealTimeSendResult in
            guard fd >= 0 else { return .notConnected }
            let seq = link.sequence.wrappingAdd(1, ordering: .relaxed).oldValue
            let frame = Frame(seq: seq, timestampMicros: MonotonicClock.nowMicros(), message: message)
            let count: Int
            do throws(EncodeError) { count = try FrameCodec.encode(frame, into: scratch) } catch { return .encodeFailed }
            let written = write(fd, scratch.baseAddress, count)
            if written == count { return .sent }
            let error = Errno.current
            if written >= 0 || error.isWouldBlock { return .wouldBlock }
            return .failed(errno: error)
        }
        if result == .sent { sentFrames.add(1, ordering: .relaxed) } else { failedFrames.add(1, ordering: .relaxed) }
        return result
    }
}
