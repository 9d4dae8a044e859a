// Child processes for the browser test: posix_spawn and waitpid with a deadline (Foundation's
// Process leaves short-lived children unreaped here and hangs in waitUntilExit).

import Foundation

enum Subprocess {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs `argv` with stdout to `stdout` and stderr to `stderr` (files); its exit status (128 +
    /// signal when killed), or a failure naming the command when it cannot start or does not end
    /// within `seconds` (it is killed then).
    static func run(_ argv: [String], stdout: String, stderr: String, seconds: Double) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let environment = ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup($0) } + [nil]
        defer { (cArgs + cEnv).forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, argv[0], &actions, nil, cArgs, cEnv)
        guard result == 0 else {
            throw Failure(description: "\(argv[0]): cannot start: \(String(cString: strerror(result)))")
        }
        if let status = wait(pid, seconds: seconds) { return status }
        kill(pid, SIGKILL)
        _ = wait(pid, seconds: 5)
        throw Failure(description: "\(argv.joined(separator: " ")): still running after \(Int(seconds)) s, killed")
    }

    /// waitpid with a deadline; the exit status, or nil on timeout.
    static func wait(_ pid: pid_t, seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        var status: Int32 = 0
        while Date() < deadline {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                let signal = status & 0x7f
                return signal == 0 ? (status >> 8) & 0xff : 128 + signal
            }
            if result < 0 { return -1 }
            usleep(20_000)
        }
        return nil
    }

    /// The first executable named `names` on PATH, or nil.
    static func find(_ names: [String]) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init)
        for name in names {
            for directory in directories where access("\(directory)/\(name)", X_OK) == 0 {
                return "\(directory)/\(name)"
            }
        }
        return nil
    }
}
