import ArgumentParser
import Foundation
import SonoDaemon

/// `sonoctl console`: a one-time login URL for sonod's web console, asked for over the control
/// socket, so the console session is this Unix user's, with their role (docs/CONSOLE.md).
struct Console: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a one-time login URL for the operator web console (valid once, for a minute).",
        discussion: """
            The session it opens acts as you: viewer if you are in the socket's group, operator if \
            you are in the operator group. Open the URL in a browser on this machine.
            """)
    @OptionGroup var options: SocketOptions
    @Flag(help: "Open a viewer console even if you are an operator (motion controls off; stops still work).")
    var viewer = false
    @Option(help: "Seconds the URL stays valid (at most the configured [console] login_s).")
    var expires: Int?

    func run() throws {
        try reporting {
            let request = ConsoleLoginRequestJSON(role: viewer ? "viewer" : nil, expiresInS: expires)
            let data = try options.call("POST", "/v1/console/login", body: APICoding.encode(request))
            guard !options.json else { return }
            let login = try options.decode(ConsoleLoginJSON.self, data)
            print(login.url)
            FileHandle.standardError.write(Data("sonoctl: \(login.role) console for \(login.user); the link works once, until \(login.expiresAt)\n".utf8))
        }
    }
}
