public import Foundation
import Synchronization

/// The control socket's side of the console: it hands login URLs to the socket's members
/// (POST /v1/console/login) for the sessions the console's listener then accepts.
public final class ConsoleGate: Sendable {
    public let sessions: ConsoleSessions
    /// http://HOST:PORT of the bound listener (nil until it listens).
    private let base = Mutex<String?>(nil)
    /// Why the listener is not up, when it could not start.
    private let failure = Mutex<String?>(nil)

    public init(settings: ConsoleSettings) {
        sessions = ConsoleSessions(loginSeconds: settings.loginSeconds, sessionSeconds: settings.sessionMinutes * 60)
    }

    public var baseURL: String? { base.withLock { $0 } }
    public var failureReason: String? { failure.withLock { $0 } }
    func listening(at url: String) { base.withLock { $0 = url } }
    func failed(_ reason: String) { failure.withLock { $0 = reason } }
}

public struct ConsoleLoginRequestJSON: RequestBodyJSON {
    /// Ask for less than the caller's role (an operator opening a viewer-only screen); never more.
    public var role: String?
    /// Shorter than the configured validity (`[console] login_s`); never longer.
    public var expiresInS: Int?
    public init(role: String?, expiresInS: Int?) {
        self.role = role
        self.expiresInS = expiresInS
    }
    public static let fields: Set<String> = ["role", "expires_in_s"]
    public static let empty = ConsoleLoginRequestJSON(role: nil, expiresInS: nil)
}

public struct ConsoleLoginJSON: Codable, Sendable, Equatable {
    public var url: String
    public var expiresAt: String
    public var role: String
    public var user: String
}
