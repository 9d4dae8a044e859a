import Foundation
public import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import Synchronization

/// The operator console's web listener (docs/CONSOLE.md): TCP, separate from the control
/// socket; plain HTTP on loopback, or HTTPS on any address when sono.toml names a certificate
/// and key. It serves the page, opens sessions from the socket's one-time login URLs, passes
/// the page's API requests to the same `ControlAPI` with the credentials of the Unix user who
/// asked for the login (the socket's own authoriser decides, then the session's role caps it),
/// and streams the live image, telemetry and events over a WebSocket.
public final class ConsoleServer: @unchecked Sendable {
    // @unchecked: `channel` is written by `start` and read by `stop`, which its stage runs one after the other.
    let settings: ConsoleSettings
    let gate: ConsoleGate
    let api: ControlAPI
    let logger: Logger
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let work = DispatchQueue(label: "sono.console", attributes: .concurrent)
    private var channel: (any Channel)?
    let live: ConsoleLive

    /// Queued bytes per connection past which the live stream skips images for that browser
    /// (and drops it if events cannot be queued either).
    static let highWaterBytes = 256 * 1024
    /// An HTTP connection that sends nothing this long is closed (the live stream is exempt).
    static let idleTimeout = TimeAmount.seconds(60)

    public init(settings: ConsoleSettings, gate: ConsoleGate, api: ControlAPI, scanner: Scanner, logger: Logger) {
        self.settings = settings
        self.gate = gate
        self.api = api
        self.logger = logger
        live = ConsoleLive(scanner: scanner, sessions: gate.sessions, eventLoop: group.next(), logger: logger)
    }

    public func start() throws(StartupError) {
        if let problem = settings.problem { throw .console("\(problem.key): \(problem.reason)") }
        let assets = try ConsoleAssets.load(directory: settings.assetsDirectory)
        var secureContext: NIOSSLContext?
        if let certificate = settings.tlsCertificate, let key = settings.tlsKey {
            secureContext = try ConsoleTLS.serverContext(certificateFile: certificate, keyFile: key,
                                                         peopleGroups: [api.authorizer.socketGroup, api.authorizer.operatorGroup])
        }
        let tls = secureContext
        let policy = ConsolePolicy(sessions: gate.sessions, secure: tls != nil)
        let context = ConsoleHTTPHandler.Shared(api: api, policy: policy, assets: assets, live: live, work: work, logger: logger,
                                                sessionsDirectory: api.scanner.sessions.directory)
        let live = self.live
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 32)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: Self.highWaterBytes / 2, high: Self.highWaterBytes))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let http = ConsoleHTTPHandler(shared: context)
                    let upgrader = NIOWebSocketServerUpgrader(
                        maxFrameSize: 4096, automaticErrorHandling: true,
                        shouldUpgrade: { channel, head in
                            // Refused upgrades fall through to the HTTP handler, which says why (401/403).
                            channel.eventLoop.makeSucceededFuture(policy.liveSession(head) == nil ? nil : HTTPHeaders())
                        },
                        upgradePipelineHandler: { channel, head in
                            channel.eventLoop.makeCompletedFuture {
                                guard let session = policy.liveSession(head) else { throw ChannelError.inappropriateOperationForState }
                                try channel.pipeline.syncOperations.addHandler(ConsoleLiveHandler(live: live, sessionID: session.id))
                            }
                        })
                    // Idle before TLS: a client that stalls mid-handshake is timed out too.
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: Self.idleTimeout))
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { context in
                            context.pipeline.syncOperations.removeHandler(http, promise: nil)
                        }),
                        withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(http)
                }
            }
        do {
            let bound = try bootstrap.bind(host: settings.host, port: settings.port).wait()
            channel = bound
            let port = bound.localAddress?.port ?? settings.port
            let host = settings.host.contains(":") ? "[\(settings.host)]" : settings.host
            policy.allow(port: port, listenHost: host)
            gate.listening(at: "\(policy.scheme)://\(host):\(port)")
            logger.info("console: \(policy.scheme)://\(host):\(port) (login: sonoctl console)")
        } catch {
            throw .console("cannot listen on \(settings.host):\(settings.port): \(error)")
        }
    }

    public func stop() {
        live.stop()
        try? channel?.close().wait()
        try? group.syncShutdownGracefully()
    }
}

/// The console page's files, read once at start (a missing file stops sonod at start, not the
/// first browser that asks).
struct ConsoleAssets: Sendable {
    struct File: Sendable {
        var type: String
        var data: Data
    }

    static let files = ["index.html": "text/html; charset=utf-8", "console.css": "text/css; charset=utf-8",
                        "console.js": "text/javascript; charset=utf-8"]
    var byPath: [String: File] = [:]

    static func load(directory: String) throws(StartupError) -> ConsoleAssets {
        var assets = ConsoleAssets()
        for (name, type) in files {
            let path = "\(directory)/\(name)"
            guard let data = FileManager.default.contents(atPath: path) else {
                throw .console("cannot read the console page's \(path) ([console] assets; `make install` puts them in /usr/share/sono/console)")
            }
            assets.byPath[name == "index.html" ? "/" : "/\(name)"] = File(type: type, data: data)
        }
        return assets
    }
}

/// Who may use the console from where: the session cookie, the Host (against DNS rebinding:
/// only the listener's own names), the Origin of state-changing requests and WebSocket
/// upgrades, and the CSRF token.
final class ConsolePolicy: Sendable {
    static let cookieName = "sono_console"
    static let csrfHeader = "X-CSRF-Token"
    let sessions: ConsoleSessions
    /// Served over TLS: the page's origin is https, and the session cookie is `Secure`.
    let secure: Bool
    private let hosts = Mutex<Set<String>>([])

    init(sessions: ConsoleSessions, secure: Bool) {
        self.sessions = sessions
        self.secure = secure
    }

    var scheme: String { secure ? "https" : "http" }

    /// The session cookie's attributes: never readable by the page's script, never sent with
    /// another site's requests, and under TLS never sent in clear.
    var cookieAttributes: String { "Path=/; HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "") }

    /// The Host values (and, with the scheme, Origins) this listener answers to; compared in lower case.
    func allow(port: Int, listenHost: String) {
        hosts.withLock { $0 = ["127.0.0.1:\(port)", "localhost:\(port)", "[::1]:\(port)", "\(listenHost.lowercased()):\(port)"] }
    }

    struct Refusal: Error {
        var status: Int
        var code: String
        var message: String
    }

    func hostAllowed(_ head: HTTPRequestHead) -> Bool {
        guard let host = head.headers.first(name: "host")?.lowercased() else { return false }
        return hosts.withLock { $0.contains(host) }
    }

    func originAllowed(_ origin: String) -> Bool {
        let lowered = origin.lowercased()
        let scheme = scheme
        return hosts.withLock { $0.contains { lowered == "\(scheme)://\($0)" } }
    }

    /// The request's session, from its cookie.
    func authenticate(_ head: HTTPRequestHead) -> Result<ConsoleSession, Refusal> {
        guard hostAllowed(head) else {
            return .failure(Refusal(status: 403, code: "forbidden", message: "unexpected Host header: use the URL sonoctl console printed"))
        }
        guard let id = Self.cookie(Self.cookieName, in: head.headers) else {
            return .failure(Refusal(status: 401, code: "unauthorized", message: "no console session: run `sonoctl console` and open the URL it prints"))
        }
        guard let session = sessions.session(id) else {
            return .failure(Refusal(status: 401, code: "unauthorized", message: "the console session has expired or ended: run `sonoctl console` again"))
        }
        return .success(session)
    }

    /// A state-changing request must come from the console's own page: no foreign Origin, and
    /// the session's CSRF token in its header.
    func checkStateChange(_ head: HTTPRequestHead, session: ConsoleSession) -> Refusal? {
        if let origin = head.headers.first(name: "origin"), !originAllowed(origin) {
            return Refusal(status: 403, code: "forbidden", message: "requests from \(origin) are refused: only the console's own page may change state")
        }
        guard let token = head.headers.first(name: Self.csrfHeader),
              ConsoleSessions.constantTimeEqual(token, session.csrfToken) else {
            return Refusal(status: 403, code: "forbidden", message: "missing or wrong \(Self.csrfHeader) header (reload the console page)")
        }
        return nil
    }

    /// The session of an acceptable live-stream upgrade: the path, the Host, an Origin that is the
    /// console's own (browsers always send one on WebSocket upgrades), and the cookie.
    func liveSession(_ head: HTTPRequestHead) -> ConsoleSession? {
        guard head.uri == "/console/live", let origin = head.headers.first(name: "origin"), originAllowed(origin),
              case .success(let session) = authenticate(head) else { return nil }
        return session
    }

    static func cookie(_ name: String, in headers: HTTPHeaders) -> String? {
        for header in headers["cookie"] {
            for part in header.split(separator: ";") {
                let pair = part.split(separator: "=", maxSplits: 1)
                if pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces) == name {
                    return pair[1].trimmingCharacters(in: .whitespaces)
                }
            }
        }
        return nil
    }
}
