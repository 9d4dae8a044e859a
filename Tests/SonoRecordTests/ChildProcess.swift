import Foundation
import Glibc

/// A child process by posix_spawnp, waited for with waitpid (Foundation's Process leaves
/// short-lived children unreaped here while another child runs). Its stdout goes to a pipe the
/// test reads (`lines`), its stderr to a file.
final class ChildProcess {
    let pid: pid_t
    let stderrPath: String
    private let stdoutRead: Int32
    private var pending: [UInt8] = []
    private var status: Int32?

    init(_ argv: [String]) throws {
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        stdoutRead = pipeEnds[0]
        stderrPath = TestFiles.temporary("stderr")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
        posix_spawn_file_actions_addclose(&actions, pipeEnds[0])
        posix_spawn_file_actions_addclose(&actions, pipeEnds[1])
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var child: pid_t = 0
        let result = posix_spawnp(&child, argv[0], &actions, nil, cArgs, environ)
        close(pipeEnds[1])
        guard result == 0 else {
            close(pipeEnds[0])
            throw POSIXError(POSIXErrorCode(rawValue: result) ?? .EIO)
        }
        pid = child
    }

    deinit {
        if status == nil {
            kill(pid, SIGKILL)
            _ = wait(seconds: 5)
        }
        close(stdoutRead)
        unlink(stderrPath)
    }

    /// The next line of stdout, waiting up to `seconds`; nil at end of output or timeout.
    func readLine(seconds: Double) -> String? {
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
            if got <= 0 { return nil }
            pending += chunk[..<got]
        }
    }

    /// All remaining stdout lines (after the child has exited).
    func remainingLines() -> [String] {
        var lines: [String] = []
        while let line = readLine(seconds: 2) { lines.append(line) }
        return lines
    }

    /// waitpid with a deadline: the exit status (128 + signal when killed), or nil on timeout.
    func wait(seconds: Double) -> Int32? {
        if let status { return status }
        let deadline = Date().addingTimeInterval(seconds)
        var raw: Int32 = 0
        while Date() < deadline {
            let result = waitpid(pid, &raw, WNOHANG)
            if result == pid {
                let signal = raw & 0x7f
                status = signal == 0 ? (raw >> 8) & 0xff : 128 + signal
                return status
            }
            if result < 0 { return -1 }
            usleep(10_000)
        }
        return nil
    }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Runs to completion: (exit status, stdout, stderr).
    static func run(_ argv: [String], seconds: Double = 120) throws -> (status: Int32, stdout: String, stderr: String) {
        let child = try ChildProcess(argv)
        var output: [String] = []
        let deadline = Date().addingTimeInterval(seconds)
        while let line = child.readLine(seconds: max(0.1, deadline.timeIntervalSinceNow)) { output.append(line) }
        let status = child.wait(seconds: max(1, deadline.timeIntervalSinceNow)) ?? -1
        return (status, output.joined(separator: "\n"), child.stderr)
    }
}
