import Foundation
public import SonoProtocol
public import SonoSystem
import Synchronization

/// A byte stream a simulated board talks over: a PTY master, a socket, a pipe.
public protocol BoardTransport: Sendable {
    /// Reads what is available without blocking; 0 when nothing is.
    func readAvailable(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    func write(_ bytes: UnsafeRawBufferPointer) throws
}

/// A transport over a file descriptor the caller owns (it is not closed here).
public struct FileDescriptorTransport: BoardTransport {
    public enum Failure: Error, CustomStringConvertible {
        case system(operation: String, errno: Errno)
        public var description: String {
            switch self {
            case .system(let operation, let code): "\(operation) failed: \(code)"
            }
        }
    }

    public let descriptor: Int32
    public init(descriptor: Int32) { self.descriptor = descriptor }

    public func readAvailable(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 0) > 0, poller.revents & Int16(POLLIN) != 0 else { return 0 }
        do throws(Errno) {
            return try Errno.retryingInterrupts { read(descriptor, buffer.baseAddress, buffer.count) }
        } catch where error.isWouldBlock {
            return 0
        } catch {
            throw Failure.system(operation: "read", errno: error)
        }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            do throws(Errno) {
                offset += try Errno.retryingInterrupts { Glibc.write(descriptor, rest.baseAddress, rest.count) }
            } catch where error.isWouldBlock {
                // The peer's buffer is full (a non-blocking PTY): try again until it drains.
                continue
            } catch {
                throw Failure.system(operation: "write", errno: error)
            }
        }
    }
}

/// What a test or the bench can do to a running simulated board.
public struct BoardFaultInjection: Sendable {
    /// The board stops sending anything (a hung or unpowered board), but keeps running.
    public var silent = false
    /// Flip one byte in each of the next N frames the board sends.
    public var corruptNextFrames = 0
}

/// Counters of a running simulated board.
public struct BoardRunnerStatistics: Sendable, Equatable {
    public var ticks: UInt64 = 0
    public var framesSent: UInt64 = 0
    public var framesCorrupted: UInt64 = 0
    public var overruns: UInt64 = 0
    public var receive = ReceiveStatistics()
    public var hostLostFrames: UInt64 = 0
}

/// Runs a `BoardFirmware` in real time on its own thread: at every tick of the board's sample
/// rate (absolute deadlines, so the rate does not drift) it takes in what the host sent,
/// steps the firmware and writes the frames it emits, stamped with the board's clock
/// (CLOCK_MONOTONIC µs, shared with the host so latency can be measured).
public final class BoardRunner: @unchecked Sendable {
    // @unchecked: `firmware` is touched only by the runner thread while it runs, and by
    // `withFirmware`, which takes `firmwareLock`.
    private let firmware: any BoardFirmware
    private let transport: any BoardTransport
    private let firmwareLock = Mutex<Void>(())
    private let control = Mutex(Control())
    private let finished = DispatchSemaphore(value: 0)

    private struct Control {
        var running = false
        var faults = BoardFaultInjection()
        var statistics = BoardRunnerStatistics()
    }

    public init(firmware: any BoardFirmware, transport: any BoardTransport) {
        self.firmware = firmware
        self.transport = transport
    }

    public var statistics: BoardRunnerStatistics { control.withLock { $0.statistics } }

    public func inject(_ change: (inout BoardFaultInjection) -> Void) {
        control.withLock { change(&$0.faults) }
    }

    /// Runs `body` with the firmware while the runner thread is between ticks.
    public func withFirmware<T>(_ body: (any BoardFirmware) -> T) -> T {
        firmwareLock.withLock { _ in body(firmware) }
    }

    /// Starts the board's thread; `realTimePriority` asks for SCHED_FIFO (a board is its own
    /// microcontroller: on a busy host its simulation must not starve), ignored when not permitted.
    public func start(realTimePriority: Int32? = nil) {
        let started = control.withLock { state in
            defer { state.running = true }
            return state.running
        }
        guard !started else { return }
        let thread = Thread { [self] in
            ThreadScheduling.nameCurrentThread("sono-sim-board")
            if let realTimePriority { ThreadScheduling.useFIFO(priority: realTimePriority) }
            run()
            finished.signal()
        }
        thread.start()
    }

    public func stop() {
        let wasRunning = control.withLock { state in
            defer { state.running = false }
            return state.running
        }
        if wasRunning { finished.wait() }
    }

    /// Writes raw bytes as the board, e.g. line noise.
    public func injectRawBytes(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try transport.write($0) }
    }

    /// Longest burst of late ticks run back to back before the runner skips ahead.
    static let maxCatchUpTicks = 50

    private func run() {
        let periodNanos = 1_000_000_000 / UInt64(max(1, firmware.deviceInfo.sampleRateHz))
        let heartbeatNanos = UInt64(firmware.deviceInfo.heartbeatPeriodMs) * 1_000_000
        var decoder = StreamDecoder()
        var tracker = SequenceTracker()
        var seq: UInt16 = 0
        let input = UnsafeMutableRawBufferPointer.allocate(byteCount: 4_096, alignment: 8)
        let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 16_384, alignment: 8)
        defer {
            input.deallocate()
            output.deallocate()
        }
        var outputCount = 0
        var faults = BoardFaultInjection()
        var statistics = BoardRunnerStatistics()
        var tickMicros = MonotonicClock.nowMicros()

        /// Encodes a frame stamped with the current tick's time, as firmware stamps a sample
        /// with the instant it was taken.
        func emit(_ message: Message) {
            guard outputCount + ProtocolConstants.maxEncodedFrame <= output.count else { return }
            let frame = Frame(seq: seq, timestampMicros: tickMicros, message: message)
            seq &+= 1
            let target = UnsafeMutableRawBufferPointer(rebasing: output[outputCount...])
            guard let count = try? FrameCodec.encode(frame, into: target) else { return }
            if faults.corruptNextFrames > 0 {
                // Flip bits in the middle of the frame, never producing a 0x00 (which would
                // split it into two frames rather than corrupt one).
                let index = outputCount + count / 2
                output[index] = output[index] == 0xFF ? 0x7F : (output[index] ^ 0x80) | 0x01
                faults.corruptNextFrames -= 1
                statistics.framesCorrupted += 1
            }
            outputCount += count
            statistics.framesSent += 1
        }

        // A leading delimiter flushes whatever the host half-received before this boot.
        output[0] = 0
        outputCount = 1
        firmwareLock.withLock { _ in emit(.hello(firmware.deviceInfo)) }
        var nextTick = MonotonicClock.nowNanos()
        var nextHeartbeat = nextTick
        while true {
            let proceed = control.withLock { state -> Bool in
                faults.silent = state.faults.silent
                if faults.corruptNextFrames == 0 {
                    faults.corruptNextFrames = state.faults.corruptNextFrames
                    state.faults.corruptNextFrames = 0
                }
                state.statistics = statistics
                return state.running
            }
            guard proceed else { break }

            // Run every tick that is due. A hardware-timed board never skips a sample, so a
            // late wake-up (the OS, or umockdev's emulation) is caught up, not dropped; only a
            // gap longer than `maxCatchUpTicks` (a suspended process) skips ahead.
            let now = MonotonicClock.nowNanos()
            var due = 0
            while nextTick <= now && due < Self.maxCatchUpTicks {
                tickMicros = nextTick / 1_000
                step(at: tickMicros, isHeartbeatDue: nextTick >= nextHeartbeat)
                if nextTick >= nextHeartbeat { nextHeartbeat += heartbeatNanos }
                nextTick += periodNanos
                due += 1
            }
            if due > 1 { statistics.overruns += UInt64(due - 1) }
            if nextTick <= now { nextTick = now + periodNanos }

            if !faults.silent && outputCount > 0 {
                try? transport.write(UnsafeRawBufferPointer(rebasing: output[0..<outputCount]))
            }
            outputCount = 0
            MonotonicClock.sleep(untilNanos: nextTick)
        }

        func step(at micros: UInt64, isHeartbeatDue: Bool) {
            firmwareLock.withLock { _ in
                while let count = try? transport.readAvailable(into: input), count > 0 {
                    decoder.feed(UnsafeRawBufferPointer(rebasing: input[0..<count])) { result in
                        guard case .success(let frame) = result else { return }
                        if case .gap(let lost) = tracker.observe(frame.seq) { statistics.hostLostFrames += UInt64(lost) }
                        firmware.receive(frame.message, seq: frame.seq, at: micros, reply: emit)
                    }
                }
                firmware.tick(at: micros, emit: emit)
                if isHeartbeatDue {
                    emit(.heartbeat(Heartbeat(state: firmware.boardState,
                                              rxCRCErrors: UInt16(clamping: decoder.statistics.crcMismatch),
                                              rxSequenceGaps: UInt16(clamping: statistics.hostLostFrames))))
                }
            }
            statistics.receive = decoder.statistics
            statistics.ticks += 1
        }
    }
}
