import Foundation
import Logging
import NIOCore
import NIOWebSocket
import SonoSystem

/// The console's live stream, one WebSocket per open page: each new probe image as a binary
/// message (raw 8-bit grayscale under a 32-byte header, drawn on a canvas: no encoding on the
/// daemon, see docs/CONSOLE.md for the measurements that chose it), telemetry as JSON at 25 Hz,
/// the full status at 2 Hz and every daemon event as it is published. Runs on the console's
/// event loop, and only while a page is open; it reads what the frame pipeline and the control
/// loop already publish and never waits on them. A browser that falls behind misses images
/// rather than queueing them; one that cannot take events either is dropped (its page reconnects).
final class ConsoleLive: @unchecked Sendable {
    // @unchecked: `clients`, `timer`, `subscription` and the counters are touched only on `eventLoop`.
    struct Client {
        var channel: any Channel
        var sessionID: String
    }

    let scanner: Scanner
    let sessions: ConsoleSessions
    let eventLoop: any EventLoop
    let logger: Logger
    private var clients: [ObjectIdentifier: Client] = [:]
    private var timer: RepeatedTask?
    private var subscription: UInt64?
    private var tick: UInt64 = 0
    private var lastFrame: UInt64 = 0
    private var lastJoints: [Double] = []
    private var lastJointMicros: UInt64 = 0
    private var jointSpeeds: [Double] = []
    /// Images not sent to a browser that had too much queued.
    private(set) var skippedImages: UInt64 = 0

    static let tickMillis: Int64 = 5
    static let telemetryEvery: UInt64 = 8  // 40 ms: 25 Hz
    static let statusEvery: UInt64 = 100  // 500 ms
    static let sessionCheckEvery: UInt64 = 1000  // 5 s

    init(scanner: Scanner, sessions: ConsoleSessions, eventLoop: any EventLoop, logger: Logger) {
        self.scanner = scanner
        self.sessions = sessions
        self.eventLoop = eventLoop
        self.logger = logger
    }

    func add(_ channel: any Channel, sessionID: String) {
        eventLoop.execute { [self] in
            clients[ObjectIdentifier(channel)] = Client(channel: channel, sessionID: sessionID)
            if timer == nil { startTimer() }
            lastFrame = 0  // the new page gets the current image at once
            send(text: statusMessage(), to: [channel])
        }
    }

    func remove(_ channel: any Channel) {
        eventLoop.execute { [self] in
            clients.removeValue(forKey: ObjectIdentifier(channel))
            if clients.isEmpty { stopTimer() }
        }
    }

    func stop() {
        try? eventLoop.submit { [self] in
            stopTimer()
            for client in clients.values { client.channel.close(promise: nil) }
            clients.removeAll()
        }.wait()
    }

    private func startTimer() {
        let events = scanner.events
        let loop = eventLoop
        subscription = events.subscribe { [weak self] event in
            // On the publishing thread, which must not block: the write happens on the loop.
            let text = Self.eventMessage(event)
            loop.execute { self?.broadcastEvent(text) }
        }
        timer = eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(Self.tickMillis)) { [weak self] _ in
            self?.step()
        }
    }

    private func stopTimer() {
        timer?.cancel()
        timer = nil
        if let subscription { scanner.events.unsubscribe(subscription) }
        subscription = nil
    }

    private func step() {
        tick &+= 1
        let channels = clients.values.map(\.channel)
        if let frame = imageMessage() {
            for channel in channels where channel.isActive {
                guard channel.isWritable else {
                    skippedImages += 1
                    continue
                }
                channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .binary, data: frame), promise: nil)
            }
        }
        if tick % Self.telemetryEvery == 0 { send(text: telemetryMessage(), to: channels.filter(\.isWritable)) }
        if tick % Self.statusEvery == 0 { send(text: statusMessage(), to: channels.filter(\.isWritable)) }
        if tick % Self.sessionCheckEvery == 0 {
            for client in clients.values where sessions.session(client.sessionID) == nil {
                // The session expired or logged out: its stream ends too (the page then says so).
                client.channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose,
                                                            data: closeData(code: 4001, reason: "session ended")), promise: nil)
                client.channel.close(promise: nil)
            }
        }
    }

    private func broadcastEvent(_ text: String) {
        for client in clients.values {
            guard client.channel.isWritable else {
                logger.warning("console: live stream dropped: more than \(ConsoleServer.highWaterBytes) bytes queued for a browser that does not read them")
                client.channel.close(promise: nil)
                continue
            }
            send(text: text, to: [client.channel])
        }
    }

    private func send(text: String, to channels: [any Channel]) {
        guard !channels.isEmpty else { return }
        var buffer = channels[0].allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        for channel in channels where channel.isActive {
            channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: buffer), promise: nil)
        }
    }

    private func closeData(code: UInt16, reason: String) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 2 + reason.utf8.count)
        buffer.writeInteger(code)
        buffer.writeString(reason)
        return buffer
    }

    /// The newest image if the pipeline has one the pages have not had. Layout (little-endian):
    /// u8 kind (1), u8 0, u16 width, u16 height, u16 0, u64 frame number, f64 acquisition time and
    /// f64 send time (ms since the Unix epoch; the page's latency), then width × height bytes.
    private func imageMessage() -> ByteBuffer? {
        guard let pipeline = scanner.pipeline else { return nil }
        let snapshot = pipeline.snapshot
        guard snapshot.frameNumber != lastFrame, snapshot.width > 0, snapshot.pixels.count == snapshot.width * snapshot.height else { return nil }
        lastFrame = snapshot.frameNumber
        let nowMicros = MonotonicClock.nowMicros()
        let nowMs = Date().timeIntervalSince1970 * 1000
        let age = nowMicros > snapshot.acquiredMicros ? Double(nowMicros - snapshot.acquiredMicros) / 1000 : 0
        var buffer = ByteBufferAllocator().buffer(capacity: 32 + snapshot.pixels.count)
        buffer.writeInteger(UInt8(1))
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt16(snapshot.width), endianness: .little)
        buffer.writeInteger(UInt16(snapshot.height), endianness: .little)
        buffer.writeInteger(UInt16(0))
        buffer.writeInteger(snapshot.frameNumber, endianness: .little)
        buffer.writeInteger((nowMs - age).bitPattern, endianness: .little)
        buffer.writeInteger(nowMs.bitPattern, endianness: .little)
        buffer.writeBytes(snapshot.pixels)
        return buffer
    }

    private func telemetryMessage() -> String {
        let s = scanner.controller.status
        let joints = Array(s.joints)
        if joints.count == lastJoints.count, s.micros > lastJointMicros {
            let dt = Double(s.micros - lastJointMicros) / 1e6
            jointSpeeds = zip(joints, lastJoints).map { round2(abs($0 - $1) / dt) }
        } else {
            jointSpeeds = joints.map { _ in 0 }
        }
        lastJoints = joints
        lastJointMicros = s.micros
        var view: ConsoleViewJSON?
        if let pipeline = scanner.pipeline, let observation = pipeline.snapshot.observation {
            let labels = pipeline.classifier.labels
            var probabilities: [String: Double] = [:]
            for (index, label) in labels.enumerated() where index < observation.probabilities.count {
                probabilities[label] = round2(Double(observation.probabilities[index]))
            }
            var quality: [String: Double]?
            if !observation.smoothedQuality.isEmpty {
                var values: [String: Double] = [:]
                for label in pipeline.classifier.qualityLabels {
                    if let index = labels.firstIndex(of: label), index < observation.smoothedQuality.count {
                        values[label] = round2(Double(observation.smoothedQuality[index]))
                    }
                }
                quality = values
            }
            view = ConsoleViewJSON(label: observation.smoothedLabel, confidence: round2(Double(observation.smoothedConfidence)),
                                   probabilities: probabilities, quality: quality)
        }
        let telemetry = ConsoleTelemetryJSON(
            type: "telemetry", tMs: Date().timeIntervalSince1970 * 1000, state: s.state.rawValue,
            latched: s.latched.map { LatchedJSON(cause: $0.cause.rawValue, value: round2($0.value), limit: $0.limit) },
            forceN: VectorJSON(x: round2(s.force.x), y: round2(s.force.y), z: round2(s.force.z)),
            contactTargetN: s.contactTargetN, forceLimited: s.forceLimited, inContact: s.inContact,
            leaseRemainingMs: round2(Double(s.leaseRemainingMicros) / 1000), tipSpeedMmS: round2(s.tipSpeedMMs),
            jointSpeedRadS: jointSpeeds, forceAgeMs: round2(Double(s.forceAgeMicros) / 1000),
            jointAgeMs: round2(Double(s.jointAgeMicros) / 1000),
            positionMm: [s.probe.position.x, s.probe.position.y, s.probe.position.z].map(round2),
            moving: s.moving, retracting: s.retracting, liftingOff: s.liftingOff, releasing: s.releasing, view: view)
        return String(decoding: APICoding.encode(telemetry), as: UTF8.self)
    }

    private func statusMessage() -> String {
        "{\"type\":\"status\",\"status\":" + String(decoding: APICoding.encode(scanner.status()), as: UTF8.self) + "}"
    }

    static func eventMessage(_ event: DaemonEvent) -> String {
        "{\"type\":\"event\",\"name\":\"\(event.name)\",\"at\":\"\(rfc3339(event.date))\",\"data\":"
            + String(decoding: event.data, as: UTF8.self) + "}"
    }
}

struct ConsoleViewJSON: Codable, Sendable, Equatable {
    var label: String
    var confidence: Double
    /// The classifier's probability of each label for the newest frame.
    var probabilities: [String: Double]
    /// The smoothed predicted diagnostic quality of each view (models with the quality output).
    @Nullable var quality: [String: Double]?
}

struct ConsoleTelemetryJSON: Codable, Sendable {
    var type: String
    var tMs: Double
    var state: String
    @Nullable var latched: LatchedJSON?
    var forceN: VectorJSON
    @Nullable var contactTargetN: Double?
    var forceLimited: Bool
    var inContact: Bool
    var leaseRemainingMs: Double
    var tipSpeedMmS: Double
    var jointSpeedRadS: [Double]
    var forceAgeMs: Double
    var jointAgeMs: Double
    var positionMm: [Double]
    var moving: Bool
    var retracting: Bool
    var liftingOff: Bool
    var releasing: Bool
    @Nullable var view: ConsoleViewJSON?
}

/// The server end of one page's live stream: it only listens for the close and pings.
final class ConsoleLiveHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: used only on its channel's event loop.
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame
    let live: ConsoleLive
    let sessionID: String
    private var closing = false

    init(live: ConsoleLive, sessionID: String) {
        self.live = live
        self.sessionID = sessionID
    }

    func handlerAdded(context: ChannelHandlerContext) {
        live.add(context.channel, sessionID: sessionID)
    }

    func channelInactive(context: ChannelHandlerContext) {
        live.remove(context.channel)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .connectionClose:
            guard !closing else { return context.close(promise: nil) }
            closing = true
            var data = frame.unmaskedData
            let code = data.readSlice(length: min(2, data.readableBytes)) ?? context.channel.allocator.buffer(capacity: 0)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: code))).whenComplete { _ in
                channel.close(promise: nil)
            }
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        default:
            break  // the page sends nothing else; commands go through the HTTP API with their checks
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { return }  // a stream's reader need not talk
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
