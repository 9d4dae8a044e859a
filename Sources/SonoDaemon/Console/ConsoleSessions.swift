public import Foundation
import SonoSystem
import Synchronization

/// What a console session may do: the role of the Unix user who asked for its login URL, as the
/// control socket's authoriser judged it then (or less, if they asked for less).
public enum ConsoleRole: String, Sendable, Codable {
    /// Status, image, events; and the stops, which anyone who can connect to the socket may make.
    case viewer
    /// Also enable, scan, record, reset, resume, release.
    case `operator`

    /// Whether this role may make requests of the access class (the socket's authoriser is asked too).
    func permits(_ access: Access) -> Bool {
        switch access {
        case .read, .stop: true
        case .motion: self == .operator
        }
    }
}

/// A logged-in console: who, with which role, and the token its state-changing requests carry.
public struct ConsoleSession: Sendable, Equatable {
    public var id: String
    /// Sent in X-CSRF-Token with every state-changing request (the cookie alone is not enough).
    public var csrfToken: String
    /// The credentials of the `sonoctl console` that asked for the login URL: every request the
    /// session makes is authorised as theirs, by the socket's own authoriser.
    public var peer: PeerCredentials
    public var user: String
    public var role: ConsoleRole
    public var expires: Date
}

/// One-time login URLs and the sessions they open. Bounded: at most `maxLogins` unused logins
/// and `maxSessions` sessions; past that the oldest goes.
public final class ConsoleSessions: Sendable {
    struct Login {
        var peer: PeerCredentials
        var user: String
        var role: ConsoleRole
        var expires: Date
    }

    struct State {
        var logins: [String: Login] = [:]
        var sessions: [String: ConsoleSession] = [:]
    }

    static let maxLogins = 32
    static let maxSessions = 16
    public let loginSeconds: Int
    public let sessionSeconds: Int
    private let state = Mutex(State())

    public init(loginSeconds: Int, sessionSeconds: Int) {
        self.loginSeconds = loginSeconds
        self.sessionSeconds = sessionSeconds
    }

    /// A fresh login token, valid once for `seconds` (at most `loginSeconds`).
    public func issueLogin(peer: PeerCredentials, user: String, role: ConsoleRole, seconds: Int? = nil,
                           now: Date = Date()) -> (token: String, expires: Date) {
        let token = Self.randomToken()
        let expires = now.addingTimeInterval(TimeInterval(min(seconds ?? loginSeconds, loginSeconds)))
        state.withLock { s in
            s.logins = s.logins.filter { $0.value.expires > now }
            while s.logins.count >= Self.maxLogins, let oldest = s.logins.min(by: { $0.value.expires < $1.value.expires }) {
                s.logins.removeValue(forKey: oldest.key)
            }
            s.logins[token] = Login(peer: peer, user: user, role: role, expires: expires)
        }
        return (token, expires)
    }

    public enum LoginError: Error, Sendable, Equatable, CustomStringConvertible {
        case unknown, expired
        public var description: String {
            switch self {
            case .unknown: "this login link is not valid (it may have been used already: each works once)"
            case .expired: "this login link has expired"
            }
        }
    }

    /// Exchanges a login token for a session; the token is gone either way.
    public func redeem(_ token: String, now: Date = Date()) -> Result<ConsoleSession, LoginError> {
        state.withLock { s in
            guard let login = s.logins.removeValue(forKey: token) else { return .failure(.unknown) }
            guard login.expires > now else { return .failure(.expired) }
            s.sessions = s.sessions.filter { $0.value.expires > now }
            while s.sessions.count >= Self.maxSessions, let oldest = s.sessions.min(by: { $0.value.expires < $1.value.expires }) {
                s.sessions.removeValue(forKey: oldest.key)
            }
            let session = ConsoleSession(id: Self.randomToken(), csrfToken: Self.randomToken(), peer: login.peer, user: login.user,
                                         role: login.role, expires: now.addingTimeInterval(TimeInterval(sessionSeconds)))
            s.sessions[session.id] = session
            return .success(session)
        }
    }

    /// The live session of that cookie value (nil: none, or expired).
    public func session(_ id: String, now: Date = Date()) -> ConsoleSession? {
        state.withLock { s in
            guard let session = s.sessions[id] else { return nil }
            guard session.expires > now else {
                s.sessions.removeValue(forKey: id)
                return nil
            }
            return session
        }
    }

    public func end(_ id: String) {
        _ = state.withLock { $0.sessions.removeValue(forKey: id) }
    }

    /// 32 bytes from the system's CSPRNG (getrandom), hex.
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(format: "%016llx", generator.next() as UInt64) }.joined()
    }

    /// Equal, in time that does not depend on where they differ.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for i in 0..<x.count { difference |= x[i] ^ y[i] }
        return difference == 0
    }
}
