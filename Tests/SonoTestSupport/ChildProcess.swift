public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why a child process could not be run as asked.
public enum ChildProcessError: Error, CustomStringConvertible {
    case cannotStart(command: String, reason: String)
    case timedOut(command: String, seconds: Double, output: String)

    public var description: String {
        switch self {
        case .cannotStart(let command, let reason): "\(command): cannot start: \(reason)"
        case .timedOut(let command, let seconds, let output):
            "\(command): still running after \(Int(seconds)) s, killed; its output: \(output.suffix(2000))"
        }
    }
}

/// A child process by posix_spawn, waited for with waitpid: the tests' one way to run programs
/// (sonod, Python checkers, Chromium, umockdev-run, the crash writer). Foundation's Process is
/// not used: it leaves short-lived children unreaped here while another child runs, and hangs
/// in waitUntilExit.
public final class ChildProcess {
    /// Where one of the child's output streams goes.
    public enum Output: Sendable {
        /// A pipe this object reads (`readLine`); stdout only.
        case pipe
        /// A file, created or truncated.
        case file(String)
        /// stderr only: wherever stdout goes.
        case stdout
        case null
        /// The test process's own stream.
        case inherit
    }

    public let pid: pid_t
    public let command: String
    /// The file stdout or stderr was sent to, if any (read by `output` and `stderr`).
    public let stdoutPath: String?
    public let stderrPath: String?
    private let stdoutRead: Int32?
    private let ownsStderrFile: Bool
    private var pending: [UInt8] = []
    private var status: Int32?

    /// Starts `argv` (argv[0] looked up on PATH when it has no slash). `environment` nil: this
    /// process's. stdin is /dev/null. By default stdout is a pipe and stderr a temporary file.
    public init(_ argv: [String], environment: [String: String]? = nil, stdout: Output = .pipe,
                stderr: Output? = nil) throws(ChildProcessError) {
        command = argv.joined(separator: " ")
        guard let executable = argv.first else { throw .cannotStart(command: "(nothing)", reason: "no program given") }
        ownsStderrFile = stderr == nil
        let stderr = stderr ?? .file(Temporary.path("stderr"))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var pipeEnds: [Int32] = [-1, -1]
        switch stdout {
        case .pipe:
            guard pipe(&pipeEnds) == 0 else {
                throw .cannotStart(command: command, reason: "pipe: \(String(cString: strerror(errno)))")
            }
            posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
            posix_spawn_file_actions_addclose(&actions, pipeEnds[0])
            posix_spawn_file_actions_addclose(&actions, pipeEnds[1])
            stdoutPath = nil
        case .file(let path):
            posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            stdoutPath = path
        case .null, .stdout:
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            stdoutPath = nil
        case .inherit:
            stdoutPath = nil
        }
        switch stderr {
        case .file(let path):
            posix_spawn_file_actions_addopen(&actions, 2, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            stderrPath = path
        case .stdout:
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
            stderrPath = stdoutPath
        case .null, .pipe:
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
            stderrPath = nil
        case .inherit:
            stderrPath = nil
        }
        let variables = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = variables.map { strdup($0) } + [nil]
        defer { (cArgs + cEnv).forEach { free($0) } }
        var child: pid_t = 0
        let result = executable.contains("/")
            ? posix_spawn(&child, executable, &actions, nil, cArgs, cEnv)
            : posix_spawnp(&child, executable, &actions, nil, cArgs, cEnv)
        if pipeEnds[1] >= 0 { close(pipeEnds[1]) }
        guard result == 0 else {
            if pipeEnds[0] >= 0 { close(pipeEnds[0]) }
            throw .cannotStart(command: command, reason: String(cString: strerror(result)))
        }
        stdoutRead = pipeEnds[0] >= 0 ? pipeEnds[0] : nil
        pid = child
    }

    deinit {
        if status == nil {
            kill(pid, SIGKILL)
            _ = wait(seconds: 5)
        }
        if let stdoutRead { close(stdoutRead) }
        if ownsStderrFile, let stderrPath { unlink(stderrPath) }
    }

    /// The next line of the piped stdout, waiting up to `seconds`; nil at end of output or timeout.
    public func readLine(seconds: Double) -> String? {
        guard let stdoutRead else { return nil }
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if let newline = pending.firstIndex(of: 0x0A) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return line
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return nil }
            var poller = pollfd(fd: stdoutRead, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(left * 1000) + 1) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let got = read(stdoutRead, &chunk, chunk.count)
            if got <= 0 {
                // End of output: a last line without its newline still counts.
                guard !pending.isEmpty else { return nil }
                defer { pending.removeAll() }
                return String(decoding: pending, as: UTF8.self)
            }
            pending += chunk[..<got]
        }
    }

    /// All remaining stdout lines (after the child has exited).
    public func remainingLines() -> [String] {
        var lines: [String] = []
        while let line = readLine(seconds: 2) { lines.append(line) }
        return lines
    }

    /// waitpid with a deadline: the exit status (128 + signal when killed), or nil on timeout.
    public func wait(seconds: Double) -> Int32? {
        if let status { return status }
        let deadline = Date().addingTimeInterval(seconds)
        var raw: Int32 = 0
        while true {
            let result = waitpid(pid, &raw, WNOHANG)
            if result == pid {
                let signal = raw & 0x7f
                status = signal == 0 ? (raw >> 8) & 0xff : 128 + signal
                return status
            }
            if result < 0 {
                status = -1
                return status
            }
            if Date() >= deadline { return nil }
            usleep(10_000)
        }
    }

    /// Sends `signal` (SIGTERM, SIGINT, SIGKILL…); false when the child is already gone.
    @discardableResult
    public func signal(_ signal: Int32) -> Bool { status == nil && kill(pid, signal) == 0 }

    /// SIGTERM, then SIGKILL when it has not exited within `seconds`: its exit status.
    @discardableResult
    public func terminate(seconds: Double = 30) -> Int32 {
        if let status { return status }
        signal(SIGTERM)
        if let status = wait(seconds: seconds) { return status }
        signal(SIGKILL)
        return wait(seconds: 5) ?? -1
    }

    /// What the child wrote to its stdout file (`.file`), so far.
    public var output: String { stdoutPath.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) } ?? "" }

    /// What the child wrote to its stderr file, so far.
    public var stderr: String { stderrPath.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) } ?? "" }

    /// A finished run: its exit status and what it wrote.
    public struct Run: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Runs `argv` to completion (stdout piped, stderr to a temporary file unless given).
    /// Throws when it cannot start, or when it is still running after `seconds` (it is killed).
    public static func run(_ argv: [String], environment: [String: String]? = nil, stdout: Output = .pipe,
                           stderr: Output? = nil, seconds: Double = 120) throws(ChildProcessError) -> Run {
        let child = try ChildProcess(argv, environment: environment, stdout: stdout, stderr: stderr)
        var lines: [String] = []
        let deadline = Date().addingTimeInterval(seconds)
        while let line = child.readLine(seconds: max(0.1, deadline.timeIntervalSinceNow)) { lines.append(line) }
        guard let status = child.wait(seconds: max(0.1, deadline.timeIntervalSinceNow)) else {
            child.signal(SIGKILL)
            _ = child.wait(seconds: 5)
            throw .timedOut(command: child.command, seconds: seconds,
                            output: (lines.joined(separator: "\n") + child.output + child.stderr))
        }
        let piped = lines.joined(separator: "\n")
        return Run(status: status, stdout: stdoutIsPiped(stdout) ? piped : child.output, stderr: child.stderr)
    }

    private static func stdoutIsPiped(_ output: Output) -> Bool { if case .pipe = output { true } else { false } }

    /// The first of `names` that is an executable on PATH, or nil.
    public static func find(_ names: [String]) -> String? {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for name in names {
            for directory in directories where access("\(directory)/\(name)", X_OK) == 0 { return "\(directory)/\(name)" }
        }
        return nil
    }
}
