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
    /// Certificate and key (PEM) for serving the console beyond loopback. Such an address is
    /// refused without them, and with them too while this sonod has no TLS built in.
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

    /// Why the listen address cannot be used, or nil.
    var listenProblem: String? {
        guard enabled, !Self.isLoopback(host) else { return nil }
        guard tlsCertificate != nil, tlsKey != nil else {
            return "\(host) is not a loopback address: the console listens beyond this machine only with TLS "
                + "(set console.tls_certificate and console.tls_key), or keep it on 127.0.0.1"
        }
        return "\(host) is not a loopback address, and this sonod serves the console over plain HTTP only "
            + "(no TLS library is built in): keep it on 127.0.0.1 and reach it through an SSH tunnel or a TLS proxy on the cart"
    }
}
