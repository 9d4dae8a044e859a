import Foundation
@testable import SonoDevices
import SonoProtocol
import SonoSystem
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One writer per port (issue 16, finding 8), on a real tty: a control loop sending at 1 kHz and
/// two link threads sending heartbeats share one port through `PortWriter`, while the far end
/// (the board) reads in bursts with long pauses, so the tty's buffer fills and the kernel takes
/// writes in part. Every frame must arrive whole and in its turn: the board's decoder counts no
/// damaged frame, every frame reported written is received, and the numbers run without a gap.
@Suite struct PortWriterTests {
    @Test func interleavedLoopAndLinkWritersDamageNoFrame() throws {
        let tty = try PseudoTerminal()
        defer { tty.close() }
        let writer = PortWriter()
        writer.publish(tty.hostSide)

        let running = Atomic<Bool>(true)
        let loopSent = Atomic<UInt64>(0)
        let loopRefused = Atomic<UInt64>(0)
        let linkSent = Atomic<UInt64>(0)
        let linkLock = Mutex<Void>(())
        let group = DispatchGroup()

        // The control loop: a 6-joint command every millisecond.
        DispatchQueue.global().async(group: group) {
            let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: ProtocolConstants.maxDecodedFrame, alignment: 8)
            defer { scratch.deallocate() }
            let command = Message.jointCommand(JointCommand(joints: JointArray(count: 6, filler: JointTarget(
                position: 0.5, maxVelocity: 1, maxCurrent: 2))))
            while running.load(ordering: .relaxed) {
                guard let count = try? FrameCodec.encodeBody(command, seq: 0, timestampMicros: 1, into: scratch) else { continue }
                switch writer.sendRealTime(body: UnsafeRawBufferPointer(rebasing: scratch[0..<count])) {
                case .sent: loopSent.add(1, ordering: .relaxed)
                default: loopRefused.add(1, ordering: .relaxed)
                }
                usleep(1_000)
            }
        }
        // Two link threads (the reader's heartbeats, a requester), serialised as the link's
        // mutex serialises them, each writing through the outbox.
        for _ in 0..<2 {
            DispatchQueue.global().async(group: group) {
                while running.load(ordering: .relaxed) {
                    linkLock.withLock { _ in
                        let ticket = try? writer.enqueue(.heartbeat(Heartbeat(state: .active)), timestampMicros: 2)
                        if ticket ?? nil != nil { linkSent.add(1, ordering: .relaxed) }
                        _ = writer.flushFromLink(timeoutMillis: 2)
                    }
                    usleep(300)
                }
            }
        }

        // The board: reads for 50 ms, then does not read for 300 ms (the tty fills), four times.
        var decoder = StreamDecoder()
        var order = SequenceTracker()
        var received = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4_096, alignment: 8)
        defer { buffer.deallocate() }
        func read(forMillis millis: UInt64) {
            let end = MonotonicClock.nowMicros() + millis * 1_000
            while MonotonicClock.nowMicros() < end {
                var poller = pollfd(fd: tty.boardSide, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, 5) > 0 else { continue }
                let count = Glibc.read(tty.boardSide, buffer.baseAddress, buffer.count)
                guard count > 0 else { continue }
                decoder.feed(UnsafeRawBufferPointer(rebasing: buffer[0..<count])) { result in
                    if case .success(let frame) = result {
                        received += 1
                        _ = order.observe(frame.seq)
                    }
                }
            }
        }
        // At least four rounds, and on until both writers have written plenty and the kernel
        // has cut a write (a loaded machine gives the writer threads less time per round).
        let giveUp = MonotonicClock.nowMicros() + 30_000_000
        var rounds = 0
        while rounds < 4 || (loopSent.load(ordering: .relaxed) < 200 || linkSent.load(ordering: .relaxed) < 200
                             || writer.partialWriteCount == 0) && MonotonicClock.nowMicros() < giveUp {
            read(forMillis: 50)
            usleep(300_000)
            rounds += 1
        }
        running.store(false, ordering: .relaxed)
        group.wait()
        // What is still pending goes out from the link's side, as the reader thread would send it.
        let end = MonotonicClock.nowMicros() + 2_000_000
        while writer.flushFromLink(timeoutMillis: 0) != PortWriter.LinkFlush.written, MonotonicClock.nowMicros() < end {
            read(forMillis: 20)
        }
        read(forMillis: 200)

        let written = loopSent.load(ordering: .relaxed) + linkSent.load(ordering: .relaxed)
        #expect(writer.partialWriteCount > 0, "the tty never filled: the test did not exercise a cut write")
        #expect(decoder.statistics.droppedFrames == 0, "damaged frames on the board side: \(decoder.statistics)")
        #expect(UInt64(received) == written,
                "received \(received) frames, the writers reported \(written) written (loop refused \(loopRefused.load(ordering: .relaxed)))")
        // One sequence in wire order (PROTOCOL.md §4.2): no frame numbered out of turn.
        #expect(order.gaps == 0 && order.resets == 0, "out of order: \(order.gaps) gaps, \(order.resets) resets")
        #expect(loopSent.load(ordering: .relaxed) >= 200 && linkSent.load(ordering: .relaxed) >= 200)
    }
}

/// A raw pseudo-terminal pair from /dev/ptmx: the host writes the terminal end (non-blocking,
/// as libserialport opens a tty), the test reads the master end as a board would.
private struct PseudoTerminal {
    let boardSide: Int32
    let hostSide: Int32

    init() throws {
        let master = open("/dev/ptmx", O_RDWR | O_NOCTTY)
        guard master >= 0 else { throw Errno.current }
        // <asm-generic/ioctls.h>: TIOCSPTLCK = _IOW('T', 0x31, int), TIOCGPTN = _IOR('T', 0x30,
        // unsigned int) (function-like macros, which Swift does not import).
        let setLock: UInt = 0x4004_5431
        let getNumber: UInt = 0x8004_5430
        var unlock: Int32 = 0
        var number: UInt32 = 0
        guard ioctl(master, setLock, &unlock) == 0, ioctl(master, getNumber, &number) == 0 else {
            let error = Errno.current
            _ = Glibc.close(master)
            throw error
        }
        let terminal = open("/dev/pts/\(number)", O_RDWR | O_NOCTTY | O_NONBLOCK)
        guard terminal >= 0 else {
            let error = Errno.current
            _ = Glibc.close(master)
            throw error
        }
        // Raw: bytes pass unchanged (no newline translation, no echo, no flow control).
        var settings = termios()
        tcgetattr(terminal, &settings)
        cfmakeraw(&settings)
        tcsetattr(terminal, TCSANOW, &settings)
        boardSide = master
        hostSide = terminal
    }

    func close() {
        _ = Glibc.close(hostSide)
        _ = Glibc.close(boardSide)
    }
}
