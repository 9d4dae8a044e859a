import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SonoReport

/// One console connection's HTTP requests: the page, login, the session, key frames, and the
/// control API passed through with the session's credentials and role.
final class ConsoleHTTPHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    // @unchecked: NIO calls a handler only on its channel's event loop; work on the queue hops back to it before touching state.
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    struct Shared: Sendable {
        var api: ControlAPI
        var policy: ConsolePolicy
        var assets: ConsoleAssets
        var live: ConsoleLive
        var work: DispatchQueue
        var logger: Logger
        var sessionsDirectory: String
    }

    struct Response {
        var status: Int
        var type: String
        var body: Data
        var headers: [(String, String)] = []

        static func json(_ response: ControlAPI.Response) -> Response {
            var body = response.body
            body.append(0x0A)
            return Response(status: response.status, type: "application/json", body: body, headers: response.headers)
        }

        static func error(_ status: Int, _ code: String, _ message: String) -> Response {
            json(ControlAPI.error(status, code, message))
        }
    }

    private let shared: Shared
    private var request = RequestAssembly()
    private var inFlight = 0

    init(shared: Shared) { self.shared = shared }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let head = request.take(unwrapInboundIn(data)) { handle(head, context: context) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            if inFlight == 0 { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func handle(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = String(head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        let method = head.method.rawValue
        let policy = shared.policy
        if let refusal = request.tooLargeRefusal { return respond(.json(refusal), head, context) }

        // The page itself holds no data: served to anyone who reaches the listener by its own name.
        if method == "GET", let asset = shared.assets.byPath[path] {
            guard policy.hostAllowed(head) else { return respond(.error(403, "forbidden", "unexpected Host header"), head, context) }
            return respond(Response(status: 200, type: asset.type, body: asset.data), head, context)
        }
        if method == "GET", path == "/login" { return respond(login(head), head, context) }

        let session: ConsoleSession
        switch policy.authenticate(head) {
        case .success(let found): session = found
        case .failure(let refusal): return respond(.error(refusal.status, refusal.code, refusal.message), head, context)
        }
        if method != "GET", let refusal = policy.checkStateChange(head, session: session) {
            shared.logger.warning("console: \(method) \(path) by \(session.user) (uid \(session.peer.uid)) refused: \(refusal.message)")
            return respond(.error(refusal.status, refusal.code, refusal.message), head, context)
        }
        switch (method, path) {
        case ("GET", "/console/session"):
            return respond(.json(ControlAPI.json(200, ConsoleSessionJSON(session))), head, context)
        case ("GET", "/console/live"):
            return respond(.error(403, "forbidden", "the live stream is a WebSocket from the console's own page (Origin checked)"), head, context)
        case ("POST", "/console/logout"):
            shared.policy.sessions.end(session.id)
            var response = Response.json(ControlAPI.json(200, ["logged_out": true]))
            response.headers.append(("Set-Cookie", "\(ConsolePolicy.cookieName)=; \(shared.policy.cookieAttributes); Max-Age=0"))
            return respond(response, head, context)
        default:
            break
        }
        if method == "GET", path.hasPrefix("/console/sessions/"), path.hasSuffix("/report") {
            return report(path, head: head, context: context)
        }
        if method == "GET", path.hasPrefix("/console/sessions/") {
            return respond(keyFrame(path), head, context)
        }
        guard path.hasPrefix("/v1/") else { return respond(.error(404, "not_found", "no such console path: \(path)"), head, context) }
        proxy(head, path: path, session: session, context: context)
    }

    /// GET /login?token=…: the one-time token for a session cookie, then the page.
    private func login(_ head: HTTPRequestHead) -> Response {
        guard shared.policy.hostAllowed(head) else { return .error(403, "forbidden", "unexpected Host header") }
        let query = head.uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
        let token = query.split(separator: "&").compactMap { part -> String? in
            let pair = part.split(separator: "=", maxSplits: 1)
            return pair.count == 2 && pair[0] == "token" ? String(pair[1]) : nil
        }.first ?? ""
        switch shared.policy.sessions.redeem(token) {
        case .failure(let error):
            shared.logger.warning("console: login refused: \(error)")
            let text = "<!doctype html><meta charset=utf-8><title>Sono console: login refused</title>"
                + "<p>\(error.description.capitalizedFirst). Run <code>sonoctl console</code> again for a new link.</p>\n"
            return Response(status: 401, type: "text/html; charset=utf-8", body: Data(text.utf8))
        case .success(let session):
            shared.logger.notice("console: \(session.user) (uid \(session.peer.uid)) logged in as \(session.role.rawValue)")
            let maxAge = Int(session.expires.timeIntervalSinceNow.rounded())
            return Response(status: 303, type: "text/plain", body: Data("logged in\n".utf8), headers: [
                ("Location", "/"),
                ("Set-Cookie", "\(ConsolePolicy.cookieName)=\(session.id); \(shared.policy.cookieAttributes); Max-Age=\(maxAge)"),
            ])
        }
    }

    /// A session name as SessionStore makes them (nothing that could leave the sessions directory).
    static func validSessionName(_ name: String) -> Bool {
        let nameCharacters = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
        return (1...64).contains(name.count) && !name.hasPrefix(".") && name.unicodeScalars.allSatisfy(nameCharacters.contains)
    }

    /// GET /console/sessions/NAME/report: the session's HTML report (SonoReport), built from the
    /// MCAP recording its summary names, as far as it is written (the daemon run's recording is
    /// still open while it runs); the report covers that whole recording.
    private func report(_ path: String, head: HTTPRequestHead, context: ChannelHandlerContext) {
        let parts = path.split(separator: "/").map(String.init)  // console, sessions, NAME, report
        guard parts.count == 4, Self.validSessionName(parts[2]) else {
            return respond(.error(404, "not_found", "no such session report: \(path)"), head, context)
        }
        let summaryPath = "\(shared.sessionsDirectory)/\(parts[2])/summary.json"
        guard let data = FileManager.default.contents(atPath: summaryPath),
              let summary = try? APICoding.decoder().decode(ScanSummaryJSON.self, from: data) else {
            return respond(.error(404, "not_found", "session \(parts[2]) has no scan summary (a report needs a finished scan)"), head, context)
        }
        guard let recording = summary.recording else {
            return respond(.error(404, "not_found", "session \(parts[2])'s run was not recorded ([recording] mcap = false): no report"), head, context)
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        inFlight += 1
        shared.work.async {
            var response: Response
            do {
                let report = try SessionReportBuilder.build(path: recording, tolerant: true)
                response = Response(status: 200, type: "text/html; charset=utf-8", body: Data(SessionReport.html(report).utf8))
                // The report is one self-contained page: inline styles and images, no scripts.
                response.headers.append(("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:"))
            } catch {
                response = .error(500, "internal", "cannot build the report from \(recording): \(error)")
            }
            let answer = response
            eventLoop.execute {
                let (handler, context) = loopBound.value
                handler.inFlight -= 1
                handler.respond(answer, head, context)
            }
        }
    }

    /// GET /console/sessions/NAME/VIEW.png: a session's key frame.
    private func keyFrame(_ path: String) -> Response {
        let parts = path.split(separator: "/").map(String.init)  // console, sessions, NAME, FILE
        let viewCharacters = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        guard parts.count == 4, Self.validSessionName(parts[2]), parts[3].hasSuffix(".png"),
              parts[3].dropLast(4).unicodeScalars.allSatisfy(viewCharacters.contains), parts[3].count > 4 else {
            return .error(404, "not_found", "no such key frame: \(path)")
        }
        guard let data = FileManager.default.contents(atPath: "\(shared.sessionsDirectory)/\(parts[2])/\(parts[3])") else {
            return .error(404, "not_found", "session \(parts[2]) has no key frame \(parts[3])")
        }
        return Response(status: 200, type: "image/png", body: data)
    }

    /// /v1/…: the control API, as the Unix user behind the session, within the session's role.
    private func proxy(_ head: HTTPRequestHead, path: String, session: ConsoleSession, context: ChannelHandlerContext) {
        let method = head.method.rawValue
        let operation: ControlAPI.Operation
        switch shared.api.resolve(method: method, target: head.uri, peer: session.peer) {
        case .response(let response):
            log(method, path, session, response.status)
            return respond(.json(response), head, context)
        case .operation(let resolved):
            operation = resolved
        }
        switch operation {
        case .events:
            return respond(.error(404, "not_found", "the console streams events on its WebSocket, /console/live"), head, context)
        case .consoleLogin:
            return respond(.error(403, "forbidden", "a console session cannot make login URLs: use `sonoctl console`"), head, context)
        default:
            break
        }
        if let access = ControlAPI.access(method: method, path: path), !session.role.permits(access) {
            log(method, path, session, 403)
            return respond(.error(403, "forbidden", "this console session is a viewer's (\(session.user)): \(access.rawValue) requests need an operator's"),
                           head, context)
        }
        if let refusal = request.mediaTypeRefusal(head) { return respond(.json(refusal), head, context) }
        let data = request.data
        let api = shared.api
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        inFlight += 1
        shared.work.async {
            let response = api.perform(operation, body: data, peer: session.peer)
            eventLoop.execute {
                let (handler, context) = loopBound.value
                handler.inFlight -= 1
                handler.log(method, path, session, response.status)
                handler.respond(.json(response), head, context)
            }
        }
    }

    /// Every request that changes state is logged with the Unix user behind the session.
    private func log(_ method: String, _ path: String, _ session: ConsoleSession, _ status: Int) {
        guard method != "GET" else { return }
        shared.logger.notice("console: \(method) \(path) by \(session.user) (uid \(session.peer.uid), \(session.role.rawValue) console) → \(status)",
                             metadata: ["uid": "\(session.peer.uid)"])
    }

    private func respond(_ response: Response, _ head: HTTPRequestHead, _ context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.type)
        headers.add(name: "Content-Length", value: "\(response.body.count)")
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        headers.add(name: "X-Frame-Options", value: "DENY")
        headers.add(name: "Referrer-Policy", value: "no-referrer")
        if !response.headers.contains(where: { $0.0 == "Content-Security-Policy" }) {
            headers.add(name: "Content-Security-Policy",
                        value: "default-src 'self'; img-src 'self' data: blob:; connect-src 'self' ws: wss:; frame-ancestors 'none'; form-action 'self'")
        }
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        let keepAlive = head.isKeepAlive
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: response.status),
                                                             headers: headers))), promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: response.body.count)
        buffer.writeBytes(response.body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        shared.logger.debug("console connection: \(error)")
        context.close(promise: nil)
    }
}

/// GET /console/session: who this console is, and the CSRF token its page sends back.
struct ConsoleSessionJSON: Codable, Sendable {
    var user: String
    var uid: UInt32
    var role: String
    var csrfToken: String
    var expiresAt: String

    init(_ session: ConsoleSession) {
        user = session.user
        uid = session.peer.uid
        role = session.role.rawValue
        csrfToken = session.csrfToken
        expiresAt = rfc3339(session.expires)
    }
}

extension String {
    var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}
