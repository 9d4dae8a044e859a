import Foundation
@testable import SonoDaemon
import SonoSystem
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The console's certificate and key, read at start: every way they can be wrong stops the
/// console with the file named (the browser test, tools/console/test_console_tls.py, serves
/// HTTPS with a fresh pair end to end).
@Suite struct ConsoleTLSTests {
    // A self-signed P-256 certificate (CN sono-console-test, valid until 2126) and its key, and
    // a second key that is not its own. Test material only.
    static let certificate = """
        -----BEGIN CERTIFICATE-----
        MIIBoTCCAUagAwIBAgIUC3UJuY/EH/P1BPPMFaM6v1PedEEwCgYIKoZIzj0EAwIw
        HDEaMBgGA1UEAwwRc29uby1jb25zb2xlLXRlc3QwIBcNMjYxMjA3MTYwMDQ5WhgP
        MjEyNjExMTMxNjAwNDlaMBwxGjAYBgNVBAMMEXNvbm8tY29uc29sZS10ZXN0MFkw
        EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEca2glxKhX6xxcSRypOw4561UXxmefS/o
        gftH185ssy/ts4wQlzko1oduX2k2TiDZPEFy69PuF4LPu5bMMuc2+KNkMGIwHQYD
        VR0OBBYEFMjRLPSbCQsGPnzU526w3LqgONdTMB8GA1UdIwQYMBaAFMjRLPSbCQsG
        PnzU526w3LqgONdTMA8GA1UdEwEB/wQFMAMBAf8wDwYDVR0RBAgwBocEfwAAATAK
        BggqhkjOPQQDAgNJADBGAiEA/fwyGY6yvgMnPUZdUAoyeL7oxJVFtfY8YEoeSQOq
        Vo0CIQCgsLgfseUDPexgLluH/VBDebo1j41W60/Le+dT8ZMLDg==
        -----END CERTIFICATE-----

        """
    static let key = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgzv4gKcjjS808oqh8
        Jv4sFdwexiGXy3Cz0Muf9Q/EixWhRANCAARxraCXEqFfrHFxJHKk7DjnrVRfGZ59
        L+iB+0fXzmyzL+2zjBCXOSjWh25faTZOINk8QXLr0+4Xgs+7lswy5zb4
        -----END PRIVATE KEY-----

        """
    static let otherKey = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgzxuEGoXkVCvEWFjf
        ZDxDuB/no7Yb8nLILw8dd8OvSzuhRANCAARuqYFExOwdNy0Ko/+Q3ot6gUl4MgAf
        ka+e7r+vklvVJyT1zEr8VeDpTRiDwrEVyPElDyQUCx8P+EsCBuGcREM1
        -----END PRIVATE KEY-----

        """

    /// Writes `text` to a fresh file with `mode`; returns its path.
    func file(_ text: String, mode: Int = 0o600) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sono-tls-\(UUID().uuidString).pem").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    /// The console's message when the pair is refused, or nil when a context is made.
    func refusal(certificate: String, key: String, peopleGroups: [String] = [], now: Date = Date()) -> String? {
        do {
            _ = try ConsoleTLS.serverContext(certificateFile: certificate, keyFile: key, peopleGroups: peopleGroups, now: now)
            return nil
        } catch {
            return error.description
        }
    }

    @Test func aCertificateAndItsOwnKeyMakeAContext() throws {
        #expect(refusal(certificate: try file(Self.certificate), key: try file(Self.key)) == nil)
        // Group-readable by a group of its own (Debian's ssl-cert, say) is allowed.
        #expect(refusal(certificate: try file(Self.certificate), key: try file(Self.key, mode: 0o640)) == nil)
    }

    @Test func aKeyItsGroupOfPeopleCanReadIsRefused() throws {
        // The file's group is this process's; make that the "socket group" of the check.
        let group = try #require(UserDatabase.groupName(gid: UInt32(getegid())))
        let key = try file(Self.key, mode: 0o640)
        let message = refusal(certificate: try file(Self.certificate), key: key, peopleGroups: ["no-such-group-\(UUID())", group])
        #expect(message?.contains("readable by group \(group)") == true, "\(message ?? "accepted")")
        #expect(refusal(certificate: try file(Self.certificate), key: try file(Self.key, mode: 0o600), peopleGroups: [group]) == nil)
    }

    @Test func everyBadPairIsRefusedNamingTheFile() throws {
        let certificate = try file(Self.certificate)
        let key = try file(Self.key)
        let cases: [(String, String, Date, String)] = [
            (certificate, try file(Self.otherKey), Date(), "does not fit"),
            (certificate, try file(Self.key, mode: 0o644), Date(), "readable by every user"),
            (certificate, key, Date(timeIntervalSince1970: 5_000_000_000), "expired"),
            (try file("not a certificate\n"), key, Date(), "tls_certificate"),
            (try file(""), key, Date(), "tls_certificate"),
            (certificate, try file("not a key\n"), Date(), "not an unencrypted PEM private key"),
            (certificate, try file(Self.certificate), Date(), "not an unencrypted PEM private key"),
            ("/nonexistent/console.crt", key, Date(), "/nonexistent/console.crt"),
            (certificate, "/nonexistent/console.key", Date(), "/nonexistent/console.key"),
            (try file(String(repeating: "A", count: ConsoleTLS.largestFile + 1)), key, Date(), "larger than 1 MiB"),
        ]
        for (certificate, key, now, expected) in cases {
            let message = refusal(certificate: certificate, key: key, now: now)
            #expect(message?.contains(expected) == true, "\(certificate) + \(key): \(message ?? "accepted")")
        }
    }
}
