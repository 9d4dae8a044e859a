/// Process exit statuses: the sysexits.h values Sono's commands use, and Sono's own for results
/// that are not errors of the command itself. Scripts (and systemd) tell failures apart by them.
public struct ExitStatus: RawRepresentable, Hashable, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let success = ExitStatus(rawValue: 0)
    /// A failure with no more specific status.
    public static let failure = ExitStatus(rawValue: 1)

    // sonoctl's answers to sonod's refusals, by the control API's HTTP status.
    /// sonod refused the request in its present state (HTTP 409).
    public static let refused = ExitStatus(rawValue: 1)
    /// sonod rejected the request as malformed (any other 4xx/5xx).
    public static let badRequest = ExitStatus(rawValue: 2)
    /// sonod denied this user access (HTTP 403).
    public static let accessDenied = ExitStatus(rawValue: 4)

    /// A scan that did not acquire every view, or pressed harder than the hard force cap.
    public static let scanIncomplete = ExitStatus(rawValue: 3)
    /// A replayed recording that diverged from the recording (a different command from
    /// `accessDenied`'s, so the two share the number).
    public static let replayDiverged = ExitStatus(rawValue: 4)

    /// EX_USAGE: the command was used wrongly (bad arguments).
    public static let usage = ExitStatus(rawValue: 64)
    /// EX_DATAERR: the input data was wrong (a damaged or unreadable recording).
    public static let dataError = ExitStatus(rawValue: 65)
    /// EX_NOINPUT: an input file does not exist or cannot be read.
    public static let noInput = ExitStatus(rawValue: 66)
    /// EX_UNAVAILABLE: a service the command needs is not there (sonod, a device).
    public static let unavailable = ExitStatus(rawValue: 69)
    /// EX_SOFTWARE: an internal error (an answer that should have parsed did not).
    public static let software = ExitStatus(rawValue: 70)
    /// EX_OSERR: the operating system refused something the command cannot do without (exec).
    public static let osError = ExitStatus(rawValue: 71)
    /// EX_IOERR: an input/output error (a file that could not be written).
    public static let ioError = ExitStatus(rawValue: 74)
    /// EX_CONFIG: the configuration is wrong.
    public static let configuration = ExitStatus(rawValue: 78)
}
