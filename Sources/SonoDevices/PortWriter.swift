public import SonoProtocol
public import SonoSystem
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The one writer of a board link's port (issue 16, finding 8). A frame reaches the wire whole,
/// never interleaved with another, and numbered in the order it goes out (PROTOCOL.md §4.2:
/// one sequence per sender, counting every frame), whichever thread produced it:
///
/// - The link's own frames (heartbeats, requests, from the reader and from requesting threads,
///   serialised by the link's mutex) go into an outbox, a byte ring with one producer, as
///   unnumbered frame bodies.
/// - While a control loop sends on the port (`sendRealTime`, every cycle while it commands the
///   arm), the loop owns it: it alone writes, draining the outbox before its own frame, so link
///   frames go out within one control period. When the loop has not sent for
///   `loopQuietMicros` (no loop, as on the force sensor; drives off; a stalled loop), the link
///   drains the outbox itself: its heartbeats must not wait for a loop that is not there.
/// - Whoever drains numbers each frame as it writes it (`FrameCodec.seal`), so sequence order
///   is wire order; a request learns the number its frame went out with through its ticket.
/// - The port is written non-blocking. A write the kernel takes only in part leaves the rest
///   at the head of what is pending, and the next write continues it before anything else.
///   (Two writers sharing a descriptor would put the next frame into the middle of the cut one.)
///
/// Whoever drains holds `draining`, a flag the loop only ever tries: it never waits for the
/// link, and the link holds it only while the loop is quiet. The descriptor is published by
/// the link's reader when it opens the port and withdrawn (waiting for a writer in flight)
/// before it closes it, so a closed and reused descriptor is never written.
final class PortWriter: @unchecked Sendable {
    // @unchecked: the ring's bytes are written by the one producer (under the link's mutex)
    // before it publishes `produced`, and read only by the holder of `draining` after it sees
    // it; `rest`, `scratch`, `nextSeq` and `sentAs` are touched only by the holder of
    // `draining`; `nextTicket` only by the producer. All flags are atomics.
    private let descriptor = Atomic<Int32>(-1)
    private let users = Atomic<Int>(0)
    private let draining = Atomic<Bool>(false)
    /// When the loop last sent (monotonic µs; 0: never).
    private let loopSentMicros = Atomic<UInt64>(0)
    /// How long after the loop's last send the port is still its to write: a few periods of
    /// the 1 kHz loop, so a late cycle does not hand the port back and forth.
    static let loopQuietMicros: UInt64 = 3_000

    /// The outbox: records of [u16 body length][u64 ticket][frame body], wrapping.
    private let ring: UnsafeMutableRawBufferPointer
    private static let recordHeader = 10
    /// Bytes ever put into and taken out of the ring (wrapping counters; their difference is
    /// what waits).
    private let produced = Atomic<Int>(0)
    private let consumed = Atomic<Int>(0)
    private var nextTicket: UInt64 = 1
    /// The unwritten end of a frame the kernel took in part.
    private let rest: UnsafeMutableRawBufferPointer
    private var restStart = 0
    private var restEnd = 0
    /// Where the drainer seals a frame (one at a time; it holds `draining`).
    private let scratch: UnsafeMutableRawBufferPointer
    private let body: UnsafeMutableRawBufferPointer
    private var nextSeq: UInt16 = 0
    /// The sequence numbers the latest link frames went out with: slot `ticket % count` holds
    /// (ticket, seq).
    private let sentAs: UnsafeMutablePointer<(ticket: UInt64, seq: UInt16)>
    private static let sentAsCount = 64

    private let partialWrites = Atomic<UInt64>(0)

    /// `capacity`: the outbox, in bytes (a few hundred link frames).
    init(capacity: Int = 16_384) {
        ring = .allocate(byteCount: capacity, alignment: 8)
        rest = .allocate(byteCount: ProtocolConstants.maxEncodedFrame, alignment: 8)
        scratch = .allocate(byteCount: ProtocolConstants.maxEncodedFrame, alignment: 8)
        body = .allocate(byteCount: ProtocolConstants.maxDecodedFrame, alignment: 8)
        sentAs = .allocate(capacity: Self.sentAsCount)
        sentAs.initialize(repeating: (0, 0), count: Self.sentAsCount)
    }

    deinit {
        ring.deallocate()
        rest.deallocate()
        scratch.deallocate()
        body.deallocate()
        sentAs.deallocate()
    }

    /// Writes the kernel took only in part, each finished by a later write.
    var partialWriteCount: UInt64 { partialWrites.load(ordering: .relaxed) }

    /// Bytes waiting in the outbox.
    var pendingBytes: Int { produced.load(ordering: .acquiring) &- consumed.load(ordering: .acquiring) }

    // MARK: - The descriptor (the link's reader thread)

    /// Makes `fd` the port written from now on, with an empty outbox (what was pending was for
    /// the previous connection; the link's first write on the new one is a lone delimiter).
    ///
    /// The writer writes through its own duplicate of the descriptor, which it closes in
    /// `withdraw` once no write is in flight, so its lifetime is the writer's alone. (Under
    /// umockdev the duplicate also stays out of the emulator's per-descriptor relay, whose
    /// round trip through a normal-priority thread and lock, taken by every read and write on
    /// the opened node, would make the control loop wait for the link's reader: on hardware a
    /// write is a plain system call, and so it is here.)
    /// - Returns: false (and nothing published) when the descriptor cannot be duplicated.
    @discardableResult
    func publish(_ fd: Int32) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 && flags & O_NONBLOCK == 0 { _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
        let own = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard own >= 0 else { return false }
        acquireDraining()
        consumed.store(produced.load(ordering: .acquiring), ordering: .releasing)
        restStart = 0
        restEnd = 0
        releaseDraining()
        descriptor.store(own, ordering: .sequentiallyConsistent)
        return true
    }

    /// Withdraws the descriptor, waits (off the real-time path) until no writer uses it, and
    /// closes the writer's duplicate.
    func withdraw() {
        let own = descriptor.exchange(-1, ordering: .sequentiallyConsistent)
        var tries = 0
        while users.load(ordering: .sequentiallyConsistent) != 0 {
            // A link write in flight may be in its poll: let it run (see `acquireDraining`).
            tries += 1
            if tries < 64 { sched_yield() } else { usleep(100) }
        }
        if own >= 0 { _ = Glibc.close(own) }
    }

    // MARK: - The link's frames (under the link's mutex: one producer)

    /// Puts `message` into the outbox, unnumbered; returns its ticket (see `sequence(of:)`),
    /// or nil when the outbox cannot take it whole.
    /// - Throws: `EncodeError` when the message cannot be encoded (a payload out of range).
    func enqueue(_ message: Message, timestampMicros: UInt64) throws(EncodeError) -> UInt64? {
        try withUnsafeTemporaryAllocation(byteCount: ProtocolConstants.maxDecodedFrame, alignment: 8) {
            raw throws(EncodeError) -> UInt64? in
            let count = try FrameCodec.encodeBody(message, seq: 0, timestampMicros: timestampMicros, into: raw)
            return enqueue(body: UnsafeRawBufferPointer(rebasing: raw[0..<count]))
        }
    }

    /// Puts raw bytes (a lone delimiter) into the outbox, to be written as they are, unnumbered;
    /// false when it is full.
    func enqueueRaw(_ bytes: UnsafeRawBufferPointer) -> Bool {
        enqueue(record: bytes, raw: true, ticket: 0)
    }

    private func enqueue(body: UnsafeRawBufferPointer) -> UInt64? {
        let ticket = nextTicket
        guard enqueue(record: body, raw: false, ticket: ticket) else { return nil }
        nextTicket &+= 1
        return ticket
    }

    /// A record: its length (the top bit set for raw bytes; no frame body reaches it), ticket, bytes.
    private func enqueue(record bytes: UnsafeRawBufferPointer, raw: Bool, ticket: UInt64) -> Bool {
        let tail = produced.load(ordering: .relaxed)
        let waiting = tail &- consumed.load(ordering: .acquiring)
        let size = Self.recordHeader + bytes.count
        guard bytes.count < 0x8000, size <= ring.count - waiting else { return false }
        var length = UInt16(bytes.count) | (raw ? 0x8000 : 0)
        var ticket = ticket
        withUnsafeBytes(of: &length) { copyIn($0, at: tail) }
        withUnsafeBytes(of: &ticket) { copyIn($0, at: tail &+ 2) }
        copyIn(bytes, at: tail &+ Self.recordHeader)
        produced.store(tail &+ size, ordering: .releasing)
        return true
    }

    private func copyIn(_ bytes: UnsafeRawBufferPointer, at position: Int) {
        forEachPiece(at: position, count: bytes.count) { slots, offset in
            UnsafeMutableRawBufferPointer(rebasing: ring[slots])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + slots.count)]))
        }
    }

    private func copyOut(_ destination: UnsafeMutableRawBufferPointer, at position: Int) {
        forEachPiece(at: position, count: destination.count) { slots, offset in
            UnsafeMutableRawBufferPointer(rebasing: destination[offset..<(offset + slots.count)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: ring[slots]))
        }
    }

    /// The one or two contiguous pieces of the ring that `count` bytes from `position` occupy,
    /// each with its offset into those bytes.
    private func forEachPiece(at position: Int, count: Int, _ body: (Range<Int>, Int) -> Void) {
        var offset = 0
        while offset < count {
            let index = (position &+ offset) % ring.count
            let chunk = min(count - offset, ring.count - index)
            body(index..<(index + chunk), offset)
            offset += chunk
        }
    }

    /// The ticket of the link frame that went out numbered `seq`, among the latest ones; nil
    /// when none did (a stray or very late acknowledgement). Off the real-time path.
    func ticket(sentAs seq: UInt16) -> UInt64? {
        acquireDraining()
        defer { releaseDraining() }
        var best: UInt64?
        for index in 0..<Self.sentAsCount where sentAs[index].ticket != 0 && sentAs[index].seq == seq {
            best = max(best ?? 0, sentAs[index].ticket)
        }
        return best
    }

    /// What became of the link's attempt to get its outbox onto the wire.
    enum LinkFlush: Equatable {
        /// Everything is written.
        case written
        /// The control loop owns the port and writes the outbox on its next cycle.
        case handedToLoop
        case notConnected
        /// The kernel took nothing for `millis` (the board is not reading).
        case timedOut(millis: Int)
        case failed(Errno)
    }

    /// Whether the loop sent within `loopQuietMicros`, and so writes the outbox itself.
    private var loopIsSending: Bool {
        let last = loopSentMicros.load(ordering: .acquiring)
        return last != 0 && MonotonicClock.nowMicros() &- last < Self.loopQuietMicros
    }

    /// Drains the outbox from the link's side, waiting up to `timeoutMillis` for the port to
    /// take it; leaves it to the loop while the loop sends. Never call from the loop.
    func flushFromLink(timeoutMillis: Int32) -> LinkFlush {
        if loopIsSending { return .handedToLoop }
        acquireDraining()
        defer { releaseDraining() }
        return withDescriptor { fd -> LinkFlush in
            guard fd >= 0 else { return .notConnected }
            let deadline = MonotonicClock.nowMicros() &+ UInt64(max(0, timeoutMillis)) * 1_000
            while true {
                switch drain(fd) {
                case .empty: return .written
                case .failed(let error): return .failed(error)
                case .blocked:
                    let now = MonotonicClock.nowMicros()
                    guard now < deadline else { return .timedOut(millis: Int(timeoutMillis)) }
                    var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&poller, 1, Int32(max(1, (deadline &- now) / 1_000)))
                }
            }
        }
    }

    // MARK: - The control loop's frames (one thread; never waits)

    /// Writes `body` (from `FrameCodec.encodeBody`), numbered next, after whatever is pending,
    /// without waiting: `.wouldBlock` (nothing of this frame written, no number used) when the
    /// port cannot take the pending bytes first or the link is mid-write at the moment the loop
    /// takes the port back.
    func sendRealTime(body frame: UnsafeRawBufferPointer) -> RealTimeSendResult {
        withDescriptor { fd -> RealTimeSendResult in
            guard fd >= 0 else { return .notConnected }
            loopSentMicros.store(MonotonicClock.nowMicros(), ordering: .releasing)
            guard tryDraining() else { return .wouldBlock }
            defer { releaseDraining() }
            switch drain(fd, frames: Self.outboxFramesPerCycle) {
            case .blocked: return .wouldBlock
            case .failed(let error): return .failed(errno: error)
            case .empty: break
            }
            guard let count = FrameCodec.seal(frame, seq: nextSeq, into: scratch) else { return .encodeFailed }
            switch writeSealed(fd, count, numbered: true, keepIfUnwritten: false) {
            case .failed(let error): return .failed(errno: error)
            case .unwritten: return .wouldBlock
            case .whole, .cut: return .sent
            }
        }
    }

    // MARK: - Draining (holder of `draining` only)

    private enum Drain { case empty, blocked, failed(Errno) }

    /// The most outbox frames the loop writes before its own in one cycle: a backlog (the port
    /// was full) goes out over a few cycles instead of stretching one. Order stays wire order:
    /// frames are numbered as they are written.
    static let outboxFramesPerCycle = 8

    /// Writes the rest of a cut frame, then the outbox (at most `frames` of it), until done or
    /// the port is full.
    private func drain(_ fd: Int32, frames: Int = .max) -> Drain {
        var budget = frames
        while restStart < restEnd, let base = rest.baseAddress {
            switch Self.writeSome(fd, base + restStart, restEnd - restStart) {
            case .failure(let error): return .failed(error)
            case .success(0): return .blocked
            case .success(let written):
                if written < restEnd - restStart { partialWrites.add(1, ordering: .relaxed) }
                restStart += written
            }
        }
        while budget > 0 {
            budget -= 1
            let head = consumed.load(ordering: .relaxed)
            guard produced.load(ordering: .acquiring) &- head > 0 else { return .empty }
            var length: UInt16 = 0
            var ticket: UInt64 = 0
            withUnsafeMutableBytes(of: &length) { copyOut($0, at: head) }
            withUnsafeMutableBytes(of: &ticket) { copyOut($0, at: head &+ 2) }
            let raw = length & 0x8000 != 0
            let size = Int(length & 0x7FFF)
            let bytes = UnsafeMutableRawBufferPointer(rebasing: body[0..<min(size, body.count)])
            copyOut(bytes, at: head &+ Self.recordHeader)
            consumed.store(head &+ Self.recordHeader &+ size, ordering: .releasing)
            let count: Int
            if raw {
                UnsafeMutableRawBufferPointer(rebasing: scratch[0..<bytes.count]).copyMemory(from: UnsafeRawBufferPointer(bytes))
                count = bytes.count
            } else {
                guard let sealed = FrameCodec.seal(UnsafeRawBufferPointer(bytes), seq: nextSeq, into: scratch) else { continue }
                sentAs[Int(ticket % UInt64(Self.sentAsCount))] = (ticket, nextSeq)
                count = sealed
            }
            // Taken from the outbox: written now, or kept as the rest to finish first.
            switch writeSealed(fd, count, numbered: !raw, keepIfUnwritten: true) {
            case .whole: continue
            case .cut, .unwritten: return .blocked
            case .failed(let error): return .failed(error)
            }
        }
        return .empty
    }

    private enum Written { case whole, cut, unwritten, failed(Errno) }

    /// Writes the `count` sealed bytes in `scratch`. What the kernel does not take is kept as
    /// the rest, to go first next time, once any byte of it went out, or when the frame came
    /// from the outbox (`keepIfUnwritten`); a loop frame nothing of which went out is dropped
    /// whole and does not use its number.
    private func writeSealed(_ fd: Int32, _ count: Int, numbered: Bool, keepIfUnwritten: Bool) -> Written {
        guard let base = scratch.baseAddress else { return .failed(.badFileDescriptor) }
        switch Self.writeSome(fd, base, count) {
        case .failure(let error): return .failed(error)
        case .success(let written):
            if written == 0 && !keepIfUnwritten { return .unwritten }
            if numbered { nextSeq &+= 1 }
            guard written < count else { return .whole }
            if written > 0 { partialWrites.add(1, ordering: .relaxed) }
            UnsafeMutableRawBufferPointer(rebasing: rest[0..<(count - written)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: scratch[written..<count]))
            restStart = 0
            restEnd = count - written
            return written == 0 ? .unwritten : .cut
        }
    }

    /// One non-blocking write(2): the bytes the kernel took (0 when the port is full).
    private static func writeSome(_ fd: Int32, _ base: UnsafeRawPointer, _ count: Int) -> Result<Int, Errno> {
        do throws(Errno) {
            return .success(try Errno.retryingInterrupts { Glibc.write(fd, base, count) })
        } catch {
            return error.isWouldBlock ? .success(0) : .failure(error)
        }
    }

    @inline(__always)
    private func withDescriptor<R>(_ body: (Int32) -> R) -> R {
        users.add(1, ordering: .sequentiallyConsistent)
        defer { users.subtract(1, ordering: .sequentiallyConsistent) }
        return body(descriptor.load(ordering: .sequentiallyConsistent))
    }

    private func tryDraining() -> Bool {
        draining.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
    }

    /// Off the real-time path only. The loop holds the flag for one cycle's writes at most, a
    /// link thread across non-blocking writes or a poll: after a few tries this sleeps rather
    /// than yields, so that a SCHED_FIFO waiter (the link's reader) never keeps a lower-priority
    /// holder off the CPU it needs to finish.
    private func acquireDraining() {
        var tries = 0
        while !tryDraining() {
            tries += 1
            if tries < 64 { sched_yield() } else { usleep(100) }
        }
    }

    private func releaseDraining() { draining.store(false, ordering: .releasing) }
}
