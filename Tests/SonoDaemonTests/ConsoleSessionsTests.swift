import Foundation
@testable import SonoDaemon
import Testing

/// The console's logins and sessions, and its `[console]` settings (the browser tests,
/// tools/console/test_console.py, check the same rules end to end).
@Suite struct ConsoleSessionsTests {
    let peer = PeerCredentials(pid: 1, uid: 1000, gid: 1000)

    @Test func aLoginWorksOnceAndOnlyBeforeItExpires() throws {
        let sessions = ConsoleSessions(loginSeconds: 60, sessionSeconds: 600)
        let now = Date()
        let login = sessions.issueLogin(peer: peer, user: "ana", role: .operator, now: now)
        let session = try sessions.redeem(login.token, now: now.addingTimeInterval(1)).get()
        #expect(session.role == .operator && session.peer == peer && session.csrfToken.count == 64)
        #expect(sessions.session(session.id, now: now.addingTimeInterval(2))?.user == "ana")
        #expect(sessions.redeem(login.token, now: now.addingTimeInterval(2)) == .failure(.unknown))  // used

        let late = sessions.issueLogin(peer: peer, user: "ana", role: .viewer, seconds: 5, now: now)
        #expect(sessions.redeem(late.token, now: now.addingTimeInterval(6)) == .failure(.expired))
        #expect(sessions.redeem("not-a-token", now: now) == .failure(.unknown))
    }

    @Test func aLoginCannotOutliveTheConfiguredValidityAndSessionsExpire() throws {
        let sessions = ConsoleSessions(loginSeconds: 10, sessionSeconds: 60)
        let now = Date()
        let login = sessions.issueLogin(peer: peer, user: "ana", role: .viewer, seconds: 500, now: now)
        #expect(login.expires == now.addingTimeInterval(10))
        let session = try sessions.redeem(login.token, now: now).get()
        #expect(sessions.session(session.id, now: now.addingTimeInterval(61)) == nil)
    }

    @Test func rolesCapAccess() {
        #expect(ConsoleRole.viewer.permits(.read) && ConsoleRole.viewer.permits(.stop) && !ConsoleRole.viewer.permits(.motion))
        #expect(ConsoleRole.operator.permits(.motion))
    }


    @Test func tokensDiffer() {
        #expect(Set((0..<100).map { _ in ConsoleSessions.randomToken() }).count == 100)
        #expect(ConsoleSessions.constantTimeEqual("abc", "abc") && !ConsoleSessions.constantTimeEqual("abc", "abd")
                && !ConsoleSessions.constantTimeEqual("abc", "ab"))
    }

    @Test func overTLSTheOriginsSchemeIsHttpsAndTheCookieSecure() {
        let sessions = ConsoleSessions(loginSeconds: 60, sessionSeconds: 600)
        let tls = ConsolePolicy(sessions: sessions, secure: true)
        tls.allow(port: 8470, listenHost: "Cart-3.Local")
        #expect(tls.originAllowed("https://cart-3.local:8470") && tls.originAllowed("https://127.0.0.1:8470"))
        #expect(!tls.originAllowed("http://cart-3.local:8470") && !tls.originAllowed("https://cart-3.local:8471"))
        #expect(tls.cookieAttributes.hasSuffix("; Secure"))
        let plain = ConsolePolicy(sessions: sessions, secure: false)
        plain.allow(port: 8470, listenHost: "127.0.0.1")
        #expect(plain.originAllowed("http://127.0.0.1:8470") && !plain.originAllowed("https://127.0.0.1:8470"))
        #expect(!plain.cookieAttributes.contains("Secure"))
    }

    @Test func consoleSettingsAreReadAndANonLoopbackListenIsRefused() throws {
        let set = try DaemonConfiguration.parse("[console]\nlisten = \"127.0.0.1:9000\"\nlogin_s = 30\n", path: "s.toml")
        #expect(set.console.host == "127.0.0.1" && set.console.port == 9000 && set.console.loginSeconds == 30)
        let v6 = try DaemonConfiguration.parse("[console]\nlisten = \"[::1]:9000\"\n", path: "s.toml")
        #expect(v6.console.host == "::1")
        for (text, key) in [("[console]\nlisten = \"0.0.0.0:8470\"\n", "console.listen"),
                            ("[console]\nlisten = \"192.168.1.5:8470\"\n", "console.listen"),
                            ("[console]\nlisten = \"8470\"\n", "console.listen"),
                            ("[console]\nlisten = \"0.0.0.0:8470\"\ntls_certificate = \"/c\"\ntls_key = \"/k\"\n", "every address"),
                            ("[console]\nlisten = \"[::]:8470\"\ntls_certificate = \"/c\"\ntls_key = \"/k\"\n", "every address"),
                            ("[console]\nlisten = \"192.168.1.5:8470\"\ntls_certificate = \"/c\"\n", "console.tls_key"),
                            ("[console]\ntls_key = \"/k\"\n", "console.tls_certificate"),
                            ("[console]\nlisten = \"192.168.1.5:8470\"\ntls_certificate = \"c.pem\"\ntls_key = \"/k\"\n",
                             "console.tls_certificate")] {
            do {
                _ = try DaemonConfiguration.parse(text, path: "s.toml")
                Issue.record("accepted: \(text)")
            } catch {
                #expect(error.description.contains(key), "\(error)")
            }
        }
        // With a certificate and key, any address: served over HTTPS.
        let tls = try DaemonConfiguration.parse("[console]\nlisten = \"192.168.1.5:8470\"\ntls_certificate = \"/c\"\ntls_key = \"/k\"\n",
                                                path: "s.toml")
        #expect(tls.console.usesTLS && tls.console.host == "192.168.1.5")
        #expect(!set.console.usesTLS)
        // Off, the address does not matter.
        #expect(throws: Never.self) { try DaemonConfiguration.parse("[console]\nenabled = false\nlisten = \"0.0.0.0:1\"\n", path: "s.toml") }
    }
}
