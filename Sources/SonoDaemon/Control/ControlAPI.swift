public import Foundation
public import SonoMotion
import SonoSystem

/// The control API's routes (docs/control-api.yaml), independent of the transport: a request
/// (method, path, body, peer) in, a status and JSON body out. Runs off the event loop: some
/// commands wait for the control loop's answer.
public struct ControlAPI: Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var body: Data
        public var headers: [(String, String)] = []
    }

    public enum Operation: Sendable, Equatable {
        case status, safety(SafetyCommand), release, startScan, scan, stopScan, startRecording, stopRecording, sessions, limits, events, consoleLogin
    }

    struct Route {
        var method: String
        var path: String
        var operation: Operation
        var access: Access
    }

    static let routes: [Route] = [
        Route(method: "GET", path: "/v1/status", operation: .status, access: .read),
        Route(method: "POST", path: "/v1/enable", operation: .safety(.enable), access: .motion),
        Route(method: "POST", path: "/v1/disable", operation: .safety(.disable), access: .stop),
        Route(method: "POST", path: "/v1/motion/enable", operation: .safety(.enableMotion), access: .motion),
        Route(method: "POST", path: "/v1/resume", operation: .safety(.resume), access: .motion),
        Route(method: "POST", path: "/v1/reset", operation: .safety(.reset), access: .motion),
        Route(method: "POST", path: "/v1/stop", operation: .safety(.protectiveStop), access: .stop),
        Route(method: "POST", path: "/v1/estop", operation: .safety(.emergencyStop), access: .stop),
        // Moves the arm (away from the patient), so it needs the operator's access, not a stop's.
        Route(method: "POST", path: "/v1/release", operation: .release, access: .motion),
        Route(method: "POST", path: "/v1/scan", operation: .startScan, access: .motion),
        Route(method: "GET", path: "/v1/scan", operation: .scan, access: .read),
        Route(method: "POST", path: "/v1/scan/stop", operation: .stopScan, access: .stop),
        Route(method: "POST", path: "/v1/recording/start", operation: .startRecording, access: .motion),
        Route(method: "POST", path: "/v1/recording/stop", operation: .stopRecording, access: .motion),
        Route(method: "GET", path: "/v1/sessions", operation: .sessions, access: .read),
        Route(method: "GET", path: "/v1/limits", operation: .limits, access: .read),
        Route(method: "GET", path: "/v1/events", operation: .events, access: .read),
        // A login URL for the web console, with the caller's role (viewer or operator).
        Route(method: "POST", path: "/v1/console/login", operation: .consoleLogin, access: .read),
    ]

    /// Every route as "METHOD /path", sorted (checked against docs/control-api-routes.txt).
    public static var routeList: [String] { routes.map { "\($0.method) \($0.path)" }.sorted() }

    public static let maxBodyBytes = 64 * 1024

    let scanner: Scanner
    let authorizer: PeerAuthorizer
    /// The web console's logins; nil when `[console] enabled = false`.
    let console: ConsoleGate?

    public init(scanner: Scanner, authorizer: PeerAuthorizer, console: ConsoleGate? = nil) {
        self.scanner = scanner
        self.authorizer = authorizer
        self.console = console
    }

    /// The access class of a route (nil: no such route).
    static func access(method: String, path: String) -> Access? {
        routes.first { $0.method == method && $0.path == path }?.access
    }

    public enum Resolution: Sendable {
        case operation(Operation)
        case response(Response)
    }

    /// Finds the route and checks the peer may use it.
    public func resolve(method: String, target: String, peer: PeerCredentials?) -> Resolution {
        let route: Route
        switch Self.route(method: method, target: target) {
        case .success(let found): route = found
        case .failure(let failure): return .response(failure.response)
        }
        guard let peer else { return .response(Self.error(403, "forbidden", "the peer's credentials could not be read")) }
        if let denial = authorizer.authorize(peer, for: route.access) {
            return .response(Self.error(403, "forbidden", denial.description))
        }
        return .operation(route.operation)
    }

    /// The route of a request line (the query is ignored), or the 404 / 405 answer. Static, without
    /// the scanner, so that the fuzz target (Fuzz/Sources/ControlAPIFuzz) reaches it.
    static func route(method: String, target: String) -> Result<Route, ResponseError> {
        let path = String(target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        let matching = routes.filter { $0.path == path }
        guard !matching.isEmpty else {
            return .failure(ResponseError(error(404, "not_found", "no such endpoint: \(path) (see docs/control-api.yaml)")))
        }
        guard let route = matching.first(where: { $0.method == method }) else {
            var response = error(405, "method_not_allowed",
                                 "\(method) is not allowed on \(path); use \(matching.map(\.method).joined(separator: ", "))")
            response.headers.append(("Allow", matching.map(\.method).joined(separator: ", ")))
            return .failure(ResponseError(response))
        }
        return .success(route)
    }

    /// Carries out an operation (not `.events`, which the transport streams). `peer`: who asked
    /// (the console's login is theirs).
    public func perform(_ operation: Operation, body: Data, peer: PeerCredentials? = nil) -> Response {
        switch operation {
        case .consoleLogin:
            return consoleLogin(body: body, peer: peer)
        case .status:
            return Self.json(200, scanner.status())
        case .safety(let command):
            switch scanner.perform(command) {
            case .success(let state): return Self.json(200, StateJSON(state: state.rawValue))
            case .failure(let error): return Self.error(error)
            }
        case .release:
            switch scanner.release() {
            case .success(let state): return Self.json(202, StateJSON(state: state.rawValue))
            case .failure(let error): return Self.error(error)
            }
        case .startScan:
            let request: ScanRequestJSON
            switch Self.decode(ScanRequestJSON.self, body) {
            case .success(let decoded): request = decoded
            case .failure(let failure): return failure.response
            }
            switch scanner.startScan(views: request.views) {
            case .success(let status): return Self.json(202, status)
            case .failure(let error): return Self.error(error)
            }
        case .scan:
            return Self.json(200, scanner.scanStatus())
        case .stopScan:
            return Self.json(200, scanner.stopScan())
        case .startRecording:
            let request: RecordingRequestJSON
            switch Self.decode(RecordingRequestJSON.self, body) {
            case .success(let decoded): request = decoded
            case .failure(let failure): return failure.response
            }
            do {
                let status = try scanner.sessions.start(name: request.name)
                scanner.events.publish(DaemonEvent("recording", status))
                return Self.json(200, status)
            } catch {
                if case .badName = error { return Self.error(400, "bad_request", error.description) }
                if case .alreadyActive = error { return Self.error(409, "conflict", error.description) }
                if case .exists = error { return Self.error(409, "conflict", error.description) }
                return Self.error(500, "internal", error.description)
            }
        case .stopRecording:
            let status = scanner.sessions.stop()
            scanner.events.publish(DaemonEvent("recording", status))
            return Self.json(200, status)
        case .sessions:
            return Self.json(200, scanner.sessions.list())
        case .limits:
            return Response(status: 200, body: scanner.limitsJSON())
        case .events:
            return Self.error(500, "internal", "the event stream is served by the transport")
        }
    }

    /// POST /v1/console/login: a one-time login URL whose session has the caller's role.
    func consoleLogin(body: Data, peer: PeerCredentials?) -> Response {
        guard let console else {
            return Self.error(409, "conflict", "the web console is off ([console] enabled = false in sono.toml)")
        }
        guard let base = console.baseURL else {
            return Self.error(503, "unavailable", console.failureReason.map { "the web console could not start: \($0)" }
                ?? "the web console is not listening yet")
        }
        guard let peer else { return Self.error(403, "forbidden", "the peer's credentials could not be read") }
        let request: ConsoleLoginRequestJSON
        switch Self.decode(ConsoleLoginRequestJSON.self, body) {
        case .success(let decoded): request = decoded
        case .failure(let failure): return failure.response
        }
        let entitled: ConsoleRole = authorizer.authorize(peer, for: .motion) == nil ? .operator : .viewer
        var role = entitled
        if let asked = request.role {
            guard let wanted = ConsoleRole(rawValue: asked) else {
                return Self.error(400, "bad_request", "field 'role': '\(asked)' is neither 'viewer' nor 'operator'")
            }
            if wanted == .operator && entitled == .viewer {
                return Self.error(403, "forbidden", "uid \(peer.uid) may not open an operator console: it is not in group '\(authorizer.operatorGroup)'")
            }
            role = wanted
        }
        // Longer than `[console] login_s` is cut to it (`expires_at` says when the URL lapses).
        if let seconds = request.expiresInS, !(1...600).contains(seconds) {
            return Self.error(400, "bad_request", "field 'expires_in_s': must be 1–600 s (at most [console] login_s counts), got \(seconds)")
        }
        let user = UserDatabase.userName(uid: peer.uid) ?? "uid \(peer.uid)"
        let login = console.sessions.issueLogin(peer: peer, user: user, role: role, seconds: request.expiresInS)
        return Self.json(201, ConsoleLoginJSON(url: "\(base)/login?token=\(login.token)", expiresAt: rfc3339(login.expires),
                                               role: role.rawValue, user: user))
    }

    /// A request body: empty (whitespace only) for the defaults, else a JSON object whose
    /// members are among `T.fields` and not null. Unknown members are refused rather than ignored:
    /// a misspelt `"view"` would otherwise start the default protocol, and move the arm, on a
    /// scan nobody asked for. A member sent as null is refused too (leave it out for its default).
    static func decode<T: RequestBodyJSON>(_ type: T.Type, _ body: Data) -> Result<T, ResponseError> {
        let fields = T.fields
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return .success(T.empty) }
        let members: [String: Any]
        do {
            guard let object = try JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) as? [String: Any] else {
                return .failure(ResponseError(Self.error(400, "bad_request", "the body must be a JSON object (or empty)")))
            }
            members = object
        } catch {
            return .failure(ResponseError(Self.error(400, "bad_request", "the body is not JSON: \(error.localizedDescription)")))
        }
        let allowed = fields.sorted().map { "'\($0)'" }.joined(separator: ", ")
        if let unknown = members.keys.sorted().first(where: { !fields.contains($0) }) {
            return .failure(ResponseError(Self.error(400, "bad_request", "unknown field '\(unknown)'; this endpoint takes \(allowed)")))
        }
        if let null = members.keys.sorted().first(where: { members[$0] is NSNull }) {
            return .failure(ResponseError(Self.error(400, "bad_request", "field '\(null)' is null; leave it out for its default")))
        }
        do {
            return .success(try APICoding.decoder().decode(type, from: body))
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            return .failure(ResponseError(Self.error(400, "bad_request", "field '\(key)': \(context.debugDescription)")))
        } catch {
            return .failure(ResponseError(Self.error(400, "bad_request", "the body is not the JSON this endpoint takes: \(error.localizedDescription)")))
        }
    }

    struct ResponseError: Error { var response: Response; init(_ response: Response) { self.response = response } }

    static func json(_ status: Int, _ value: some Encodable) -> Response {
        Response(status: status, body: APICoding.encode(value))
    }

    public static func error(_ status: Int, _ code: String, _ message: String) -> Response {
        json(status, ErrorJSON(error: message, code: code))
    }

    static func error(_ error: CommandError) -> Response {
        switch error {
        case .conflict(let reason): Self.error(409, "conflict", reason)
        case .badRequest(let reason): Self.error(400, "bad_request", reason)
        case .unavailable(let reason): Self.error(503, "unavailable", reason)
        }
    }
}

