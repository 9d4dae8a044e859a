import Dispatch
import Foundation
public import SonoProtocol
import SonoSystem
import Synchronization

/// Settings of one board link. Defaults follow PROTOCOL.md §4.
public struct BoardLinkConfiguration: Sendable {
    /// Human name for events and errors ("force sensor", "arm").
    public var name: String
    public var port: SerialPortSelector
    public var serial = SerialConfiguration()
    /// A board of another kind on this port is refused (a swapped cable must not pass).
    public var expectedKind: BoardKind?
    /// Capabilities the host's safety relies on (the arm's watchdogs): a board whose HELLO
    /// lacks one is refused, naming it.
    public var requiredCapabilities: Capabilities = []
    /// The joint count the host's arm model has (hardware/arm.toml); nil: not checked.
    public var expectedJointCount: Int?
    /// Heartbeat periods a board may announce (PROTOCOL.md §4.1: 10–500 ms).
    public var allowedHeartbeatPeriodMillis: ClosedRange<Int> = 10...500
    public var hostHeartbeatPeriodMillis = 50
    /// Silence after which the board counts as lost, until its `HELLO` announces its own
    /// heartbeat period (then 3 × that period).
    public var livenessDeadlineMillis = 150
    public var requestTimeoutMillis = 50
    public var requestAttempts = 3
    public var helloTimeoutMillis = 200
    public var reconnectInitialDelayMillis = 50
    public var reconnectMaxDelayMillis = 2_000
    /// Longest a reader waits in one poll; bounds how late supervision notices silence.
    public var pollIntervalMillis: Int32 = 5
    /// SCHED_FIFO priority for the reader thread when it feeds the control loop (the loop's
    /// stale-data deadlines are a few ms; background work must not starve the reader). Nil:
    /// normal scheduling. Without permission the reader runs normally, as the loop does.
    public var realTimePriority: Int32?

    public init(name: String, port: SerialPortSelector, expectedKind: BoardKind? = nil) {
        self.name = name
        self.port = port
        self.expectedKind = expectedKind
    }
}

public enum LinkState: Sendable, Equatable, CustomStringConvertible {
    case stopped
    case connecting(attempt: Int)
    case handshaking(path: String)
    case connected(DeviceInfo, path: String)

    public var description: String {
        switch self {
        case .stopped: "stopped"
        case .connecting(let attempt): "connecting (attempt \(attempt))"
        case .handshaking(let path): "waiting for HELLO on \(path)"
        case .connected(let info, let path):
            "connected to \(info.kind) \(info.serial) firmware \(info.firmwareVersion) on \(path)"
        }
    }
}

public enum LinkEvent: Sendable, Equatable, CustomStringConvertible {
    case connected(DeviceInfo, path: String)
    /// The board stopped talking or its port vanished; the link is reconnecting.
    case lost(reason: String, silentForMillis: Int)
    case connectFailed(attempt: Int, reason: String, retryInMillis: Int)

    public var description: String {
        switch self {
        case .connected(let info, let path):
            "connected: \(info.kind) serial \(info.serial) firmware \(info.firmwareVersion) on \(path)"
        case .lost(let reason, let silent):
            "lost: \(reason) (last valid frame \(silent) ms ago)"
        case .connectFailed(let attempt, let reason, let retry):
            "connect attempt \(attempt) failed: \(reason); retrying in \(retry) ms"
        }
    }
}

public enum LinkError: Error, Sendable, Equatable, CustomStringConvertible {
    case notConnected(link: String)
    case serial(SerialError)
    case encode(EncodeError)
    case rejected(MessageType, reason: NackReason, link: String)
    case timedOut(MessageType, attempts: Int, millisEach: Int, link: String)
    /// The port's outbox is full: neither the control loop nor the link could write for a while.
    case outboxFull(MessageType, pendingBytes: Int, link: String)

    public var description: String {
        switch self {
        case .notConnected(let link): "\(link) board is not connected"
        case .serial(let error): error.description
        case .encode(let error): error.description
        case .rejected(let type, let reason, let link): "\(link) board rejected \(type): \(reason)"
        case .timedOut(let type, let attempts, let millis, let link):
            "\(link) board did not answer \(type) (\(attempts) attempts, \(millis) ms each)"
        case .outboxFull(let type, let pending, let link):
            "\(link) port cannot take \(type): \(pending) bytes already wait to be written (the board is not reading)"
        }
    }
}

/// Counters of one link since it was created.
public struct LinkStatistics: Sendable, Equatable {
    public var receive = ReceiveStatistics()
    public var lostFrames: UInt64 = 0
    public var sequenceGaps: UInt64 = 0
    public var sequenceResets: UInt64 = 0
    public var connects: UInt64 = 0
    public var losses: UInt64 = 0
    public var framesSent: UInt64 = 0
    public var requestTimeouts: UInt64 = 0
    public var nacks: UInt64 = 0
    public init() {}
}

/// A supervised link to one firmware board over a serial port: framing and decoding,
/// sequence-gap and CRC counters, heartbeats both ways, request/acknowledge with retries,
/// and reconnection with exponential backoff when the board vanishes.
///
/// A reader thread owns the port's receive side and calls `onFrame` for every valid frame,
/// with the host's monotonic receive time in µs, and `onEvent` on connection changes.
/// Both run on that thread: keep them short.
public final class BoardLink: Sendable {
    public typealias FrameHandler = @Sendable (Frame, _ receivedAtMicros: UInt64) -> Void
    public typealias EventHandler = @Sendable (LinkEvent) -> Void

    public let configuration: BoardLinkConfiguration
    private let onFrame: FrameHandler
    private let onEvent: EventHandler
    private let shared: Mutex<Shared>
    private let finished = DispatchSemaphore(value: 0)
    /// The reader thread, which answers requests: a request from it would wait for itself.
    private let readerThread = ThreadOwner("the link's reader")
    /// The port's one writer: the link's frames go through its outbox, the control loop's
    /// (`RealTimeSender`) straight through it; the reader publishes and withdraws the descriptor.
    let portWriter = PortWriter()
    /// The host state the reader's heartbeats carry (PROTOCOL.md §3.2), set by the host's
    /// interlocks through `reportHostState`.
    private let hostState = Atomic<UInt8>(BoardState.ready.rawValue)

    /// The state the host's heartbeats tell the board from now on.
    public func reportHostState(_ state: BoardState) { hostState.store(state.rawValue, ordering: .relaxed) }

    private struct Shared: ~Copyable {
        var port: SerialPort?
        var state: LinkState = .stopped
        var running = false
        var statistics = LinkStatistics()
        /// Outstanding requests by the ticket their frame got from the port's writer.
        var pending: [UInt64: PendingRequest] = [:]
    }

    public init(_ configuration: BoardLinkConfiguration,
                onFrame: @escaping FrameHandler = { _, _ in },
                onEvent: @escaping EventHandler = { _ in }) {
        self.configuration = configuration
        self.onFrame = onFrame
        self.onEvent = onEvent
        shared = Mutex(Shared())
    }

    deinit { stop() }

    public var state: LinkState { shared.withLock { $0.state } }
    public var statistics: LinkStatistics { shared.withLock { $0.statistics } }
    /// Writes the kernel took only in part, each finished by the port's writer before any
    /// other frame (PortWriter).
    public var cutWrites: UInt64 { portWriter.partialWriteCount }

    public var deviceInfo: DeviceInfo? {
        if case .connected(let info, _) = state { return info }
        return nil
    }

    /// Starts the reader thread, which connects (and reconnects) on its own.
    public func start() {
        let alreadyRunning = shared.withLock { state in
            defer { state.running = true }
            return state.running
        }
        guard !alreadyRunning else { return }
        let thread = Thread { [self] in
            ThreadScheduling.nameCurrentThread("sono-link-\(configuration.name)")
            readerThread.claim()
            if let priority = configuration.realTimePriority { ThreadScheduling.useFIFO(priority: priority) }
            var reader = Reader(link: self)
            reader.run()
            readerThread.release()
            finished.signal()
        }
        thread.start()
    }

    /// Stops the reader thread and closes the port. Idempotent.
    public func stop() {
        let wasRunning = shared.withLock { state in
            defer { state.running = false }
            return state.running
        }
        if wasRunning { finished.wait() }
    }

    /// Waits until the link is connected, or `timeoutMillis` pass; returns the board's info.
    public func waitUntilConnected(timeoutMillis: Int) -> DeviceInfo? {
        let deadline = MonotonicClock.nowMicros() + UInt64(timeoutMillis) * 1_000
        while MonotonicClock.nowMicros() < deadline {
            if let info = deviceInfo { return info }
            usleep(1_000)
        }
        return deviceInfo
    }

    /// Sends one message: it goes out in order with every other frame on the port, within a
    /// control period while the control loop writes the port.
    /// - Throws: `.notConnected` without a port; `.outboxFull` when the port has not taken
    ///   earlier frames; `.serial` when the write fails or times out; `.encode` for a message
    ///   that cannot be encoded.
    public func send(_ message: Message) throws(LinkError) {
        try shared.withLock { (state) throws(LinkError) in
            _ = try write(message, state: &state, name: configuration.name)
        }
    }

    /// Sends a command that the board answers with ACK or NACK (PROTOCOL.md §4.4), resending
    /// on silence. Blocks the calling thread; never call it from the reader's callbacks.
    public func request(_ message: Message) throws(LinkError) -> Acknowledgement {
        assert(readerThread.isNotOwnedByCurrentThread(),
               "BoardLink.request waits for \(readerThread.role)'s answer: never call it from that thread")
        assert(!ThreadScheduling.currentThreadIsRealTime, "BoardLink.request blocks: never call it from a real-time thread")
        let attempts = max(1, configuration.requestAttempts)
        for _ in 0..<attempts {
            let slot = PendingRequest()
            let ticket = try shared.withLock { (state) throws(LinkError) -> UInt64 in
                let ticket = try write(message, state: &state, name: configuration.name)
                state.pending[ticket] = slot
                return ticket
            }
            let answered = slot.wait(millis: configuration.requestTimeoutMillis)
            let outcome = shared.withLock { state in
                state.pending[ticket] = nil
                if !answered { state.statistics.requestTimeouts += 1 }
                return slot.outcome
            }
            switch outcome {
            case .ack(let ack)?: return ack
            case .nack(let reason)?: throw .rejected(message.type, reason: reason, link: configuration.name)
            case nil: continue
            }
        }
        throw .timedOut(message.type, attempts: attempts, millisEach: configuration.requestTimeoutMillis,
                        link: configuration.name)
    }

    /// Queues `message` on the port's writer and gets it written; returns its ticket (the
    /// writer numbers it as it goes out).
    private func write(_ message: Message, state: inout Shared, name: String) throws(LinkError) -> UInt64 {
        guard let port = state.port else { throw .notConnected(link: name) }
        let ticket: UInt64?
        do throws(EncodeError) {
            ticket = try portWriter.enqueue(message, timestampMicros: MonotonicClock.nowMicros())
        } catch {
            throw .encode(error)
        }
        guard let ticket else { throw .outboxFull(message.type, pendingBytes: portWriter.pendingBytes, link: name) }
        try flush(port: port)
        state.statistics.framesSent += 1
        return ticket
    }

    /// Gets the outbox onto the wire (or leaves it to the control loop while that sends).
    private func flush(port: SerialPort) throws(LinkError) {
        switch portWriter.flushFromLink(timeoutMillis: Self.writeTimeoutMillis) {
        case .written, .handedToLoop: return
        case .notConnected: throw .notConnected(link: configuration.name)
        case .timedOut(let millis):
            throw .serial(.timedOut(operation: "write", path: port.path, milliseconds: millis))
        case .failed(let error): throw .serial(.transfer("write", port.path, errno: error.rawValue))
        }
    }

    /// Longest a link write waits for the port to take its bytes.
    static let writeTimeoutMillis: Int32 = 20

    // MARK: - Reader side (runs on the link's thread)

    /// The receive loop: connect, handshake, read, supervise, reconnect.
    private struct Reader: ~Copyable {
        let link: BoardLink
        var tracker = SequenceTracker()
        var lastValidFrameMicros: UInt64 = 0
        var nextHeartbeatMicros: UInt64 = 0
        var livenessDeadlineMicros: UInt64
        var attempt = 0
        var helloRequestedMicros: UInt64 = 0
        var helloRequests = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4_096, alignment: 8)

        init(link: BoardLink) {
            self.link = link
            livenessDeadlineMicros = UInt64(link.configuration.livenessDeadlineMillis) * 1_000
        }

        deinit { buffer.deallocate() }

        var configuration: BoardLinkConfiguration { link.configuration }

        mutating func run() {
            // Held outside `self` so that frame handling (which mutates `self`) can run inside `feed`.
            var decoder = StreamDecoder()
            while link.shared.withLock({ $0.running }) {
                guard let port = link.shared.withLock({ $0.port }) else {
                    if connect() { decoder.reset() }
                    continue
                }
                service(port, decoder: &decoder)
            }
            link.portWriter.withdraw()
            link.shared.withLock { state in
                state.port?.close()
                state.port = nil
                state.state = .stopped
                for slot in state.pending.values { slot.finish(nil) }
                state.pending.removeAll()
            }
        }

        /// One attempt to open the port; on failure, sleeps the backoff delay.
        mutating func connect() -> Bool {
            attempt += 1
            link.shared.withLock { $0.state = .connecting(attempt: attempt) }
            do throws(SerialError) {
                let path = try configuration.port.resolve()
                let port = try SerialPort(path: path, configuration: configuration.serial)
                tracker.restart()
                let now = MonotonicClock.nowMicros()
                lastValidFrameMicros = now
                nextHeartbeatMicros = now
                helloRequests = 0
                helloRequestedMicros = 0
                guard link.portWriter.publish(port.fileDescriptor) else {
                    let error = Errno.current
                    port.close()
                    throw SerialError.system(operation: "duplicate the port's descriptor for its writer", path: path, errno: error)
                }
                link.shared.withLock { state in
                    state.port = port
                    state.state = .handshaking(path: path)
                }
                // A lone delimiter ends whatever half frame the board may hold from before.
                _ = [UInt8(0)].withUnsafeBytes { link.portWriter.enqueueRaw($0) }
                _ = link.portWriter.flushFromLink(timeoutMillis: BoardLink.writeTimeoutMillis)
                return true
            } catch {
                let delay = min(configuration.reconnectMaxDelayMillis,
                                configuration.reconnectInitialDelayMillis << min(attempt - 1, 16))
                link.onEvent(.connectFailed(attempt: attempt, reason: error.description, retryInMillis: delay))
                sleep(millis: delay)
                return false
            }
        }

        /// Reads what the port has, dispatches frames, and supervises the board.
        mutating func service(_ port: SerialPort, decoder: inout StreamDecoder) {
            let now = MonotonicClock.nowMicros()
            let handshaking = link.shared.withLock { if case .handshaking = $0.state { true } else { false } }
            if handshaking { requestHelloIfDue(now: now) }
            if now >= nextHeartbeatMicros {
                nextHeartbeatMicros = now + UInt64(configuration.hostHeartbeatPeriodMillis) * 1_000
                let state = BoardState(rawValue: link.hostState.load(ordering: .relaxed))
                _ = try? link.send(.heartbeat(Heartbeat(state: state)))
            }

            // Link frames the loop was to write but did not (it went quiet right after they
            // were queued) go out from here.
            if link.portWriter.pendingBytes > 0 {
                _ = link.portWriter.flushFromLink(timeoutMillis: 0)
            }

            let result: SerialPort.ReadResult
            do {
                result = try port.read(into: buffer, timeoutMillis: configuration.pollIntervalMillis)
            } catch {
                lose(port, reason: error.description)
                return
            }
            if case .bytes(let count) = result {
                let receivedAt = MonotonicClock.nowMicros()
                decoder.feed(UnsafeRawBufferPointer(rebasing: buffer[0..<count])) { result in
                    if case .success(let frame) = result { handle(frame, receivedAt: receivedAt) }
                }
                let receive = decoder.statistics
                link.shared.withLock { $0.statistics.receive = receive }
            }

            let silent = MonotonicClock.nowMicros() &- lastValidFrameMicros
            if silent > livenessDeadlineMicros {
                lose(port, reason: "\(configuration.name) board silent longer than its \(livenessDeadlineMicros / 1_000) ms deadline")
            }
        }

        mutating func requestHelloIfDue(now: UInt64) {
            let interval = UInt64(configuration.helloTimeoutMillis) * 1_000 / 2
            guard helloRequests == 0 || now - helloRequestedMicros >= interval else { return }
            if helloRequests >= 3 {
                let port = link.shared.withLock { $0.port }
                if let port { lose(port, reason: "no HELLO from \(port.path) after 3 GET_INFO requests") }
                return
            }
            helloRequests += 1
            helloRequestedMicros = now
            _ = try? link.send(.getInfo)
        }

        mutating func handle(_ frame: Frame, receivedAt: UInt64) {
            lastValidFrameMicros = receivedAt
            if case .hello = frame.message { tracker.restart() }
            switch tracker.observe(frame.seq) {
            case .gap(let count):
                link.shared.withLock {
                    $0.statistics.lostFrames += UInt64(count)
                    $0.statistics.sequenceGaps += 1
                }
            case .reset:
                link.shared.withLock { $0.statistics.sequenceResets += 1 }
            case .first, .inOrder:
                break
            }

            switch frame.message {
            case .hello(let info):
                accept(info)
            case .ack(let ack):
                complete(ack.ackedSeq, .ack(ack))
            case .nack(let ack, let reason):
                link.shared.withLock { $0.statistics.nacks += 1 }
                complete(ack.ackedSeq, .nack(reason))
            default:
                break
            }
            link.onFrame(frame, receivedAt)
        }

        mutating func accept(_ info: DeviceInfo) {
            if let refusal = Self.refusal(of: info, configuration) {
                let port = link.shared.withLock { $0.port }
                if let port { lose(port, reason: "\(port.path): \(refusal)") }
                return
            }
            if info.heartbeatPeriodMs > 0 {
                livenessDeadlineMicros = 3 * UInt64(info.heartbeatPeriodMs) * 1_000
            }
            let path = link.shared.withLock { state -> String? in
                guard let port = state.port else { return nil }
                state.state = .connected(info, path: port.path)
                state.statistics.connects += 1
                return port.path
            }
            attempt = 0
            if let path { link.onEvent(.connected(info, path: path)) }
        }

        /// Why a board's HELLO does not give the host what its safety relies on, if it does not.
        static func refusal(of info: DeviceInfo, _ configuration: BoardLinkConfiguration) -> String? {
            if let expected = configuration.expectedKind, expected != info.kind {
                return "has a \(info.kind) board, expected \(expected)"
            }
            let missing = configuration.requiredCapabilities.subtracting(info.capabilities)
            if !missing.isEmpty {
                return "the \(info.kind) board lacks \(missing.names.joined(separator: ", ")), which the host's safety relies on "
                    + "(PROTOCOL.md §4.3); refused"
            }
            if let joints = configuration.expectedJointCount, Int(info.jointCount) != joints {
                return "the \(info.kind) board drives \(info.jointCount) joints, hardware/arm.toml describes \(joints); refused"
            }
            if !configuration.allowedHeartbeatPeriodMillis.contains(Int(info.heartbeatPeriodMs)) {
                return "the \(info.kind) board announces a \(info.heartbeatPeriodMs) ms heartbeat, outside "
                    + "\(configuration.allowedHeartbeatPeriodMillis.lowerBound)–\(configuration.allowedHeartbeatPeriodMillis.upperBound) ms "
                    + "(PROTOCOL.md §4.1); refused"
            }
            return nil
        }

        func complete(_ seq: UInt16, _ outcome: PendingRequest.Outcome) {
            guard let ticket = link.portWriter.ticket(sentAs: seq) else { return }
            let slot = link.shared.withLock { $0.pending[ticket] }
            slot?.finish(outcome)
        }

        mutating func lose(_ port: SerialPort, reason: String) {
            let silentMillis = Int((MonotonicClock.nowMicros() &- lastValidFrameMicros) / 1_000)
            let wasConnected = link.shared.withLock { state -> Bool in
                let connected = if case .connected = state.state { true } else { false }
                state.port = nil
                state.state = .connecting(attempt: attempt + 1)
                if connected { state.statistics.losses += 1 }
                return connected
            }
            link.portWriter.withdraw()
            port.close()
            if wasConnected {
                link.onEvent(.lost(reason: reason, silentForMillis: silentMillis))
            } else {
                let delay = min(configuration.reconnectMaxDelayMillis,
                                configuration.reconnectInitialDelayMillis << min(attempt, 16))
                link.onEvent(.connectFailed(attempt: attempt, reason: reason, retryInMillis: delay))
                sleep(millis: delay)
            }
        }

        /// Sleeps in short steps so that `stop()` is honoured promptly.
        func sleep(millis: Int) {
            let end = MonotonicClock.nowMicros() + UInt64(millis) * 1_000
            while link.shared.withLock({ $0.running }) && MonotonicClock.nowMicros() < end {
                usleep(2_000)
            }
        }
    }
}

/// One outstanding request: the reader thread fills in the answer and wakes the requester.
final class PendingRequest: Sendable {
    enum Outcome: Sendable { case ack(Acknowledgement), nack(NackReason) }
    private let semaphore = DispatchSemaphore(value: 0)
    private let lock = Mutex<Outcome?>(nil)

    var outcome: Outcome? { lock.withLock { $0 } }

    func finish(_ outcome: Outcome?) {
        lock.withLock { $0 = outcome }
        semaphore.signal()
    }

    func wait(millis: Int) -> Bool {
        semaphore.wait(timeout: .now() + .milliseconds(millis)) == .success
    }
}
