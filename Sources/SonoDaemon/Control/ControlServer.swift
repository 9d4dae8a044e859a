import SonoSystem
#if canImport(Glibc)
import Glibc
#endif
import Foundation
public import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The control socket: HTTP/1.1 + JSON on a Unix socket (SwiftNIO), bound to a path or taken
/// from systemd socket activation. Requests are parsed and answered on the event loop; the
/// API's work (which may wait for the control loop) runs on a worker queue.
public final class ControlServer: @unchecked Sendable {
    // @unchecked: `channel` is written by `start` and read by `stop`, which the control server stage runs one after the other.
    public enum Endpoint: Sendable {
        /// Bind this path (replacing a stale socket file), mode 0660, group `group` if it exists.
        case path(String, group: String)
        /// A listening socket passed by systemd.
        case descriptor(Int32)
    }

    /// Bytes of answers or events a connection may have queued in sonod for a client that does
    /// not read them (NIO's write-buffer high-water mark; the kernel's socket buffer comes on
    /// top). Past it sonod stops reading that connection's requests until the client catches
    /// up, and drops an event-stream client, which it would otherwise buffer for without end
    /// (docs/control-api.yaml, GET /v1/events). A slow or stuck client costs at most this much.
    public static let maxQueuedBytesPerConnection = 64 * 1024

    /// A connection that sends nothing for this long while no request of it is being answered
    /// is closed (half-open or abandoned clients); event streams are exempt.
    static let idleTimeout = TimeAmount.seconds(30)

    private let api: ControlAPI
    private let events: EventBus
    private let logger: Logger
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let work = DispatchQueue(label: "sono.control", attributes: .concurrent)
    private var channel: (any Channel)?

    public init(api: ControlAPI, events: EventBus, logger: Logger) {
        self.api = api
        self.events = events
        self.logger = logger
    }

    public func start(_ endpoint: Endpoint) throws(StartupError) {
        let api = self.api
        let events = self.events
        let work = self.work
        let logger = self.logger
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 32)
            .childChannelOption(.writeBufferWaterMark,
                                value: .init(low: Self.maxQueuedBytesPerConnection / 2, high: Self.maxQueuedBytesPerConnection))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // No more requests are read while the answers to earlier ones wait for the client.
                    try channel.pipeline.syncOperations.addHandler(BackPressureHandler())
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: Self.idleTimeout))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        ControlHTTPHandler(api: api, events: events, work: work, logger: logger))
                }
            }
        do {
            switch endpoint {
            case .descriptor(let fd):
                channel = try bootstrap.withBoundSocket(fd).wait()
            case .path(let path, let groupName):
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                        withIntermediateDirectories: true)
                channel = try bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).wait()
                // Members of the socket's group may connect; nobody else.
                if let gid = UserDatabase.groupID(named: groupName) { _ = chown(path, uid_t(UInt32.max), gid_t(gid)) }
                guard chmod(path, 0o660) == 0 else { throw StartupError.socket("chmod 0660 \(path) failed: errno \(errno)") }
            }
        } catch let error as StartupError {
            throw error
        } catch {
            throw .socket("cannot listen on \(endpoint): \(error)")
        }
    }

    public func stop() {
        try? channel?.close().wait()
        try? group.syncShutdownGracefully()
    }
}

/// One connection: requests in order (keep-alive), each answered with JSON, or turned into a
/// server-sent event stream for GET /v1/events.
final class ControlHTTPHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: NIO calls a handler only on its channel's event loop; work on the `work` queue hops back to it before touching state.
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let api: ControlAPI
    private let events: EventBus
    private let work: DispatchQueue
    private let logger: Logger
    private var request = RequestAssembly()
    private var peer: PeerCredentials?
    private var subscription: UInt64?
    private var keepAlive: RepeatedTask?
    /// Requests taken and not yet answered (the idle timeout leaves such a connection alone).
    private var inFlight = 0

    init(api: ControlAPI, events: EventBus, work: DispatchQueue, logger: Logger) {
        self.api = api
        self.events = events
        self.work = work
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        peer = Self.credentials(of: context.channel)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let subscription { events.unsubscribe(subscription) }
        subscription = nil
        keepAlive?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let head = request.take(unwrapInboundIn(data)) { handle(head, context: context) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            // An event stream only sends; a request being answered may take a while.
            if subscription == nil && inFlight == 0 { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func handle(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        if let refusal = request.tooLargeRefusal {
            respond(refusal, head: head, context: context)
            return
        }
        let operation: ControlAPI.Operation
        switch api.resolve(method: head.method.rawValue, target: head.uri, peer: peer) {
        case .response(let response):
            logger.notice("control: \(head.method) \(head.uri) → \(response.status)", metadata: ["uid": "\(peer?.uid ?? 0)"])
            respond(response, head: head, context: context)
            return
        case .operation(let resolved):
            operation = resolved
        }
        if let refusal = request.mediaTypeRefusal(head) {
            respond(refusal, head: head, context: context)
            return
        }
        if operation == .events {
            startEventStream(head: head, context: context)
            return
        }
        let data = request.data
        let api = self.api
        let peer = self.peer
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        inFlight += 1
        work.async {
            let response = api.perform(operation, body: data, peer: peer)
            eventLoop.execute {
                let (handler, context) = loopBound.value
                handler.inFlight -= 1
                if case .safety = operation {
                    handler.logger.info("control: \(head.method) \(head.uri) → \(response.status)", metadata: ["uid": "\(handler.peer?.uid ?? 0)"])
                }
                handler.respond(response, head: head, context: context)
            }
        }
    }

    private func respond(_ response: ControlAPI.Response, head: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: "\(response.body.count + 1)")
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        let keepAlive = head.isKeepAlive
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        let status = HTTPResponseStatus(statusCode: response.status)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: response.body.count + 1)
        buffer.writeBytes(response.body)
        buffer.writeInteger(UInt8(ascii: "\n"))
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    private func startEventStream(head: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/event-stream")
        headers.add(name: "Cache-Control", value: "no-cache")
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))),
                              promise: nil)
        let channel = context.channel
        let allocator = channel.allocator
        let logger = self.logger
        let uid = peer?.uid ?? 0
        // Called on the publishing thread (the bus's subscribers must not block): the check and
        // the write happen on the channel's event loop.
        @Sendable func send(_ text: String) {
            channel.eventLoop.execute {
                guard channel.isActive else { return }
                guard channel.isWritable else {
                    // More than maxQueuedBytesPerConnection wait for this client: it has fallen
                    // behind, and the stream is not buffered for it without end.
                    logger.warning("control: event stream of uid \(uid) dropped: more than \(ControlServer.maxQueuedBytesPerConnection) bytes queued for a client that does not read them")
                    channel.close(promise: nil)
                    return
                }
                var buffer = allocator.buffer(capacity: text.utf8.count)
                buffer.writeString(text)
                channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(buffer)), promise: nil)
            }
        }
        send(": sono event stream\n\n")
        subscription = events.subscribe { event in
            send("event: \(event.name)\ndata: \(String(decoding: event.data, as: UTF8.self))\n\n")
        }
        keepAlive = context.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(15), delay: .seconds(15)) { _ in
            send(": keep-alive\n\n")
        }
    }

    /// SO_PEERCRED of the connection (nil if it cannot be read: such peers get 403).
    static func credentials(of channel: any Channel) -> PeerCredentials? {
        guard let provider = channel as? any SocketOptionProvider else { return nil }
        let future: EventLoopFuture<PeerCred> = provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET),
                                                                           name: SocketOptionName(SO_PEERCRED))
        // channelActive runs on the channel's event loop, where the option is read at once.
        var result: PeerCred?
        future.assumeIsolated().whenSuccess { result = $0 }
        return result.map { PeerCredentials(pid: $0.pid, uid: $0.uid, gid: $0.gid) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.warning("control connection: \(error)")
        context.close(promise: nil)
    }
}

/// struct ucred of <sys/socket.h> (glibc hides it behind _GNU_SOURCE): three 32-bit fields.
struct PeerCred: Sendable {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}
