/// `[console]` of sono.toml: the operator console's web listener (docs/CONSOLE.md).
public struct ConsoleSettings: Sendable, Equatable {
    /// On by default, on loopback: only someone already on the machine can reach it, and a session
    /// can only be opened with a login URL the Unix socket hands to its members (`sonoctl
    /// console`), with their role; the console grants nothing the socket does not.
    public var enabled = true
    public var host = "127.0.0.1"
    /// 0: any free port (sonod-sim; the login URL names the one bound).
    public var port = 8470
    /// The page's HTML, CSS and JavaScript (installed by `make install`).
    public var assetsDirectory = "/usr/share/sono/console"
    /// Certificate chain and private key (PEM files): with both set the console is served over
    /// HTTPS (TLS 1.2 or later), on any address; without them, on loopback only.
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// How long a login URL stays valid (it also works only once).
    public var loginSeconds = 60
    /// How long a console session lasts after login.
    public var sessionMinutes = 480

    public init() {}

    /// HOST:PORT with an IPv4 address, a name, or a bracketed IPv6 address.
    static func parseListen(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port), !host.isEmpty else { return nil }
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else { return nil }
            host = String(host.dropFirst().dropLast())
        }
        return (host, port)
    }

    /// Whether `host` can only be reached from this machine.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Whether `host` means every address of the machine.
    static func isWildcard(_ host: String) -> Bool {
        host == "0.0.0.0" || (host.contains(":") && host.allSatisfy { $0 == ":" || $0 == "0" })
    }

    /// Whether the console is served over HTTPS.
    public var usesTLS: Bool { tlsCertificate != nil && tlsKey != nil }

    /// The setting that cannot be used and why, or nil.
    var problem: (key: String, reason: String)? {
        guard enabled else { return nil }
        if (tlsCertificate == nil) != (tlsKey == nil) {
            return (tlsCertificate == nil ? "console.tls_certificate" : "console.tls_key",
                    "console.tls_certificate and console.tls_key go together: set both (HTTPS) or neither (HTTP on loopback)")
        }
        for (key, path) in [("console.tls_certificate", tlsCertificate), ("console.tls_key", tlsKey)] {
            if let path, !path.hasPrefix("/") { return (key, "must be an absolute path, got '\(path)'") }
        }
        if Self.isWildcard(host) {
            return ("console.listen", "\(host) is every address: name the one the console is reached at "
                + "(the login URL and the Host check use it, and a certificate is issued for it), e.g. 127.0.0.1:8470")
        }
        guard !Self.isLoopback(host), !usesTLS else { return nil }
        return ("console.listen", "\(host) is not a loopback address: the console listens beyond this machine only with TLS "
            + "(set console.tls_certificate and console.tls_key), or keep it on 127.0.0.1")
    }
}
