import Foundation
import SonoDaemon
import SonoRecord
import SonoTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The daemon as a process, the way systemd and operators run it: socket activation, the notify
/// protocol, peer authorisation, malformed requests, bad configuration, SIGTERM and the
/// real-time policy. Most tests start a real `sonod-sim` (the daemon body on the virtual patient's
/// emulated boards); the hardware-mode ones start `sonod`, the service binary.
@Suite(.serialized)
struct DaemonProcessTests {
    static let root = Repository.root
    static var sonod: String { Repository.debugProduct("sonod") }
    static var sonodSim: String { Repository.debugProduct("sonod-sim") }

    /// A unique path under /tmp (Unix socket paths must stay short).
    static func temporary(_ name: String) -> String { Temporary.path(name) }

    /// A configuration pointing at the repository's files.
    static func configuration(socket: String, extra: String = "", recording: String = "",
                              mcapDirectory: String = temporary("recordings")) throws -> String {
        let path = temporary("sono.toml")
        let text = """
            [files]
            robot = "\(root.path)/hardware/arm.toml"
            safety = "\(root.path)/hardware/safety.toml"
            scan_prior = "\(root.path)/hardware/scan-prior.toml"
            model = "\(root.path)/models/view-classifier.onnx"
            [recording]
            directory = "\(temporary("sessions"))"
            mcap_directory = "\(mcapDirectory)"
            \(recording)
            [control]
            socket = "\(socket)"
            \(extra)
            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// sonod (or systemd-socket-activate running it) as a child process, its stdout and stderr
    /// into one log file the tests read.
    final class Daemon {
        let logPath = DaemonProcessTests.temporary("log")
        private let child: ChildProcess

        init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
            var env = ProcessInfo.processInfo.environment
            for (key, value) in environment { env[key] = value }
            child = try ChildProcess([executable] + arguments, environment: env, stdout: .file(logPath), stderr: .stdout)
        }

        var pid: pid_t { child.pid }
        var processIdentifier: pid_t { child.pid }

        /// SIGTERM (SIGKILL after 30 s): the exit status and the whole log.
        func terminate() -> (status: Int32, log: String) {
            let status = child.terminate(seconds: 30)
            return (status, child.output)
        }

        /// Waits until the log shows `text` (e.g. that sonod is ready).
        @discardableResult
        func waitForLog(_ text: String, seconds: Double = 30) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if child.output.contains(text) { return true }
                usleep(50_000)
            }
            return false
        }

        /// Waits for the process to exit by itself.
        func exitStatus(seconds: Double) -> Int32? { child.wait(seconds: seconds) }
    }

    /// curl on the control socket, optionally as another user (setpriv).
    static func curl(_ socket: String, _ method: String, _ path: String, body: String? = nil,
                     contentType: String = "application/json", asUID uid: UInt32? = nil) throws -> (status: Int, body: String) {
        var arguments = ["/usr/bin/curl", "-s", "-w", "\n%{http_code}", "--max-time", "10", "--unix-socket", socket,
                         "-X", method, "http://localhost\(path)"]
        if let body {
            let file = temporary("body")
            try body.write(toFile: file, atomically: true, encoding: .utf8)
            chmod(file, 0o644)
            arguments += ["-H", "Content-Type: \(contentType)", "--data-binary", "@\(file)"]
        }
        if let uid { arguments = ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(uid)", "--clear-groups"] + arguments }
        let text = try ChildProcess.run(arguments, stderr: .stdout, seconds: 20).stdout
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    static func waitForSocket(_ path: String, seconds: Double = 20) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let status = try? curl(path, "GET", "/v1/status"), status.status == 200 { return true }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return false
    }

    @Test func answersOnTheSocketSystemdPasses() throws {
        let socket = Self.temporary("activated.sock")
        let daemon = try Daemon("/usr/bin/systemd-socket-activate",
                                ["-l", socket, Self.sonodSim, "--socket", Self.temporary("unused.sock")])
        defer { _ = daemon.terminate() }
        #expect(Self.waitForSocket(socket), "no answer on the passed socket")
        #expect(daemon.waitForLog("ready (simulation)"))
        let status = try Self.curl(socket, "GET", "/v1/status")
        let decoded = try APICoding.decoder().decode(StatusJSON.self, from: Data(status.body.utf8))
        #expect(decoded.mode == "simulation" && decoded.state == "disabled", "after a (re)start the arm is disabled")
        // The simulation runs on its own safety profile, and says so (finding 9).
        #expect(decoded.safetyProfile.name == "simulation" && decoded.safetyProfile.simulation
                    && decoded.safetyProfile.path?.hasSuffix("hardware/safety-simulation.toml") == true, "\(decoded.safetyProfile)")
        let limits = try Self.curl(socket, "GET", "/v1/limits")
        let object = try JSONSerialization.jsonObject(with: Data(limits.body.utf8)) as? [String: Any]
        let profile = object?["safety_profile"] as? [String: Any]
        let stale = object?["stale"] as? [String: Any]
        #expect(profile?["name"] as? String == "simulation" && profile?["simulation"] as? Bool == true, "\(limits.body)")
        #expect(stale?["force_ms"] as? Double == 40 && (object?["planning"] as? [String: Any])?["margin"] as? Double == 0.8,
                "\(limits.body)")
        let (_, log) = daemon.terminate()
        #expect(log.contains("passed by systemd"), "\(log)")
    }

    @Test func tellsSystemdItIsReadyAndFeedsTheWatchdog() throws {
        let notify = Self.temporary("notify.sock")
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd); unlink(notify) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(notify.utf8) + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        let socketPath = Self.temporary("control.sock")
        let daemon = try Daemon(Self.sonodSim, ["--socket", socketPath],
                                environment: ["NOTIFY_SOCKET": notify, "WATCHDOG_USEC": "400000"])
        defer { _ = daemon.terminate() }
        var messages: [String] = []
        let deadline = Date().addingTimeInterval(25)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count > 0 { messages.append(String(decoding: buffer[0..<count], as: UTF8.self)) }
            if messages.contains(where: { $0.contains("WATCHDOG=1") }) && messages.contains(where: { $0.contains("READY=1") }) { break }
        }
        #expect(messages.contains { $0.contains("READY=1") }, "\(messages)")
        #expect(messages.contains { $0.contains("WATCHDOG=1") }, "\(messages)")
        #expect(messages.contains { $0.contains("STATUS=simulation") }, "\(messages)")
    }

    @Test func refusesMotionToPeersOutsideTheOperatorGroup() throws {
        // The socket's group is nogroup (so uid 65534 can connect); the operator group is one
        // that peer is not in. It may read and stop, not move.
        let socketPath = Self.temporary("auth.sock")
        let config = try Self.configuration(socket: socketPath,
                                            extra: "socket_group = \"nogroup\"\noperator_group = \"root\"")
        let daemon = try Daemon(Self.sonodSim, ["--config", config])
        defer { _ = daemon.terminate() }
        #expect(Self.waitForSocket(socketPath))
        #expect(daemon.waitForLog("ready (simulation)"))
        let nobody: UInt32 = 65534
        let read = try Self.curl(socketPath, "GET", "/v1/status", asUID: nobody)
        #expect(read.status == 200, "\(read)")
        let enable = try Self.curl(socketPath, "POST", "/v1/enable", asUID: nobody)
        #expect(enable.status == 403 && enable.body.contains("forbidden") && enable.body.contains("root"), "\(enable)")
        let scan = try Self.curl(socketPath, "POST", "/v1/scan", body: "{}", asUID: nobody)
        #expect(scan.status == 403, "\(scan)")
        let stop = try Self.curl(socketPath, "POST", "/v1/stop", asUID: nobody)
        #expect(stop.status == 200 || stop.status == 409, "stops are never refused for access: \(stop)")
        // Still disabled: nothing the peer sent moved anything.
        let status = try APICoding.decoder().decode(StatusJSON.self, from: Data(try Self.curl(socketPath, "GET", "/v1/status").body.utf8))
        #expect(status.state == "disabled" || status.state == "protective_stop")
    }

    @Test func answersMalformedRequestsWithAReasonAndStaysUp() throws {
        let socketPath = Self.temporary("bad.sock")
        let sessions = try Temporary.directory("bad-sessions")
        defer { try? FileManager.default.removeItem(atPath: sessions) }
        let daemon = try Daemon(Self.sonodSim, ["--socket", socketPath, "--sessions", sessions, "--no-recording"])
        defer { _ = daemon.terminate() }
        #expect(Self.waitForSocket(socketPath))
        #expect(daemon.waitForLog("ready (simulation)"))
        let cases: [(String, String, String?, String, Int)] = [
            ("GET", "/v1/nothing", nil, "application/json", 404),
            ("DELETE", "/v1/status", nil, "application/json", 405),
            ("POST", "/v1/scan", "{\"views\": 3}", "application/json", 400),
            ("POST", "/v1/scan", "{not json", "application/json", 400),
            ("POST", "/v1/scan", "{\"views\": [\"BOGUS\"]}", "application/json", 400),
            ("POST", "/v1/scan", "views=PLAX", "text/plain", 415),
            ("POST", "/v1/scan", String(repeating: "x", count: 70_000), "application/json", 413),
            ("POST", "/v1/recording/start", "{\"name\": \"../etc\"}", "application/json", 400),
            // Issue 18 (schemathesis against docs/control-api.yaml): a null member, an unknown
            // member (a misspelt "views" must not scan the default protocol), no views at all.
            ("POST", "/v1/recording/start", "{\"name\": null}", "application/json", 400),
            ("POST", "/v1/scan", "{\"view\": [\"A4C\"]}", "application/json", 400),
            ("POST", "/v1/scan", "{\"views\": null}", "application/json", 400),
            ("POST", "/v1/scan", "{\"views\": []}", "application/json", 400),
            ("POST", "/v1/scan", "[\"A4C\"]", "application/json", 400),
            // A session name that exists already is a conflict, not a server error.
            ("POST", "/v1/recording/start", "{\"name\": \"issue-18\"}", "application/json", 200),
            ("POST", "/v1/recording/stop", nil, "application/json", 200),
            ("POST", "/v1/recording/start", "{\"name\": \"issue-18\"}", "application/json", 409),
            ("POST", "/v1/scan", "{}", "application/json", 409),  // disabled: no scan
        ]
        for (method, path, body, type, expected) in cases {
            let answer = try Self.curl(socketPath, method, path, body: body, contentType: type)
            #expect(answer.status == expected, "\(method) \(path) \(body?.prefix(40) ?? "") → \(answer)")
            guard expected >= 400 else { continue }
            let error = try? APICoding.decoder().decode(ErrorJSON.self, from: Data(answer.body.utf8))
            #expect(error?.error.isEmpty == false, "a reason for \(method) \(path): \(answer.body)")
        }
        #expect(try Self.curl(socketPath, "GET", "/v1/status").status == 200, "sonod is still up")
    }

    @Test func rejectsABadConfigurationNamingTheKey() throws {
        let config = Self.temporary("bad.toml")
        try "[planner]\ncontact_force_n = 14\n".write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try Daemon(Self.sonod, ["--config", config])
        let status = daemon.exitStatus(seconds: 20)
        let (_, log) = daemon.terminate()
        #expect(status == 78, "EX_CONFIG")
        #expect(log.contains("planner.contact_force_n") && log.contains("outside"), "\(log)")
    }

    /// Finding 9: a site file may only tighten the safety profile. Each of these stops the
    /// daemon at start, exit 78 (EX_CONFIG), naming the key or the file: sono.toml's stale-data
    /// deadline looser than the hardware profile, the simulation profile named as the hardware's,
    /// and a deadline looser even than the simulation profile's.
    @Test func refusesASiteFileThatLoosensTheSafetyProfile() throws {
        let devices = """
            [devices]
            arm = "/dev/sono-test-no-arm"
            force_sensor = "/dev/sono-test-no-force"
            probe = "none"
            """
        let cases: [(executable: String, extra: String, expected: [String])] = [
            (Self.sonod, devices + "\n[realtime]\nstale_deadline_ms = 10\n",
             ["realtime.stale_deadline_ms = 10", "looser than the safety profile 'hardware'"]),
            (Self.sonodSim, "[realtime]\nstale_deadline_ms = 50\n",
             ["realtime.stale_deadline_ms = 50", "looser than the safety profile 'simulation'"]),
        ]
        for (index, entry) in cases.enumerated() {
            let config = try Self.configuration(socket: Self.temporary("loosen\(index).sock"), extra: entry.extra)
            let daemon = try Daemon(entry.executable, ["--config", config, "--no-recording"])
            let status = daemon.exitStatus(seconds: 30)
            let (_, log) = daemon.terminate()
            #expect(status == 78, "EX_CONFIG: \(log)")
            for text in entry.expected { #expect(log.contains(text), "\(text)\n\(log)") }
            #expect(!log.contains("ready ("), "\(log)")
        }
        // The simulation's profile where the hardware's belongs.
        let path = Self.temporary("sim-as-hardware.toml")
        let text = try String(contentsOfFile: Self.configuration(socket: Self.temporary("loosen-sim.sock"), extra: devices),
                              encoding: .utf8)
            .replacingOccurrences(of: "hardware/safety.toml", with: "hardware/safety-simulation.toml")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let daemon = try Daemon(Self.sonod, ["--config", path, "--no-recording"])
        let status = daemon.exitStatus(seconds: 30)
        let (_, log) = daemon.terminate()
        #expect(status == 78, "EX_CONFIG: \(log)")
        #expect(log.contains("safety-simulation.toml is the simulation safety profile") && log.contains("[files] safety"), "\(log)")
    }

    /// A recording disk already below `[recording] min_free_mib`: sonod does not start (a run it
    /// could not record), and says which directory and which key.
    @Test func refusesToStartWithTheRecordingDiskBelowItsFloor() throws {
        let largestFloorMiB: UInt64 = 1_048_576  // min_free_mib's upper bound
        let free = try #require(SessionRecorder.freeBytes(at: "/tmp")) >> 20
        try #require(free < largestFloorMiB, "/tmp has more free space (\(free) MiB) than the largest floor")
        let socketPath = Self.temporary("floor.sock")
        let config = try Self.configuration(socket: socketPath, recording: "min_free_mib = \(largestFloorMiB)")
        let daemon = try Daemon(Self.sonodSim, ["--config", config])
        let status = daemon.exitStatus(seconds: 60)
        let (_, log) = daemon.terminate()
        #expect(status != nil && status != 0, "\(log)")
        #expect(log.contains("below [recording] min_free_mib (\(largestFloorMiB) MiB)"), "\(log)")
    }

    /// The recording's disk reaches its floor mid-run (a 24 MiB tmpfs with 10 MiB free and a
    /// floor of 4 MiB): the run's MCAP closes, complete up to there; sonod says so once in its
    /// log and for as long as it lasts in its status, and runs on: the recording is not what
    /// keeps the patient safe.
    @Test func stopsRecordingCompleteAtTheFreeSpaceFloorAndRunsOn() throws {
        let disk = Self.temporary("floor-disk")
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        let mount = try ChildProcess(["/bin/mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", disk],
                                     stdout: .file(Self.temporary("mount.log")), stderr: .stdout)
        try #require(mount.wait(seconds: 10) == 0, "mounting a tmpfs needs root (make test runs as root): \(mount.output)")
        defer { _ = try? ChildProcess(["/bin/umount", disk], stdout: .null, stderr: .stdout).wait(seconds: 10) }
        // Leave 10 MiB free: a few seconds of the simulated probe's frames.
        try Data(count: 14 << 20).write(to: URL(fileURLWithPath: "\(disk)/ballast"))
        let socketPath = Self.temporary("floor.sock")
        let config = try Self.configuration(socket: socketPath, recording: "min_free_mib = 4", mcapDirectory: disk)
        let daemon = try Daemon(Self.sonodSim, ["--config", config])
        defer { _ = daemon.terminate() }  // before the unmount, should a check below end the test early
        #expect(Self.waitForSocket(socketPath))
        #expect(daemon.waitForLog("ready (simulation)"))
        #expect(daemon.waitForLog("recording stopped: stopped recording", seconds: 60))
        let status = try APICoding.decoder().decode(StatusJSON.self, from: Data(try Self.curl(socketPath, "GET", "/v1/status").body.utf8))
        let run = try #require(status.runRecording)
        #expect(!run.active && run.error?.contains("below the 4 MiB floor") == true, "\(run)")
        #expect(run.path.hasPrefix(disk))
        #expect(try Self.curl(socketPath, "POST", "/v1/enable").status == 200, "sonod runs on without its recording")
        let (exit, log) = daemon.terminate()
        #expect(exit == 0, "\(log)")
        #expect(log.components(separatedBy: "recording stopped:").count == 2, "said once: \(log)")
        #expect(log.contains("closed at the free-space floor, complete;") && !log.contains("did not close cleanly"), "\(log)")
        #expect((SessionRecorder.freeBytes(at: disk) ?? 0) >= 3 << 20, "the floor held (within a second's writing)")
        // Closed at the floor with its summary and footer: complete, not a crash's leftover.
        let reader = try MCAPReader(path: run.path)
        #expect(reader.hasSummary)
        let result = try reader.forEachMessage { _ in }
        #expect(result.complete && result.messages > 0, "\(result)")
    }

    @Test func stopsTheArmBeforeExitingOnSIGTERM() throws {
        let socketPath = Self.temporary("term.sock")
        let daemon = try Daemon(Self.sonodSim, ["--socket", socketPath])
        #expect(Self.waitForSocket(socketPath))
        #expect(daemon.waitForLog("ready (simulation)"))
        #expect(try Self.curl(socketPath, "POST", "/v1/enable").status == 200)
        #expect(try Self.curl(socketPath, "POST", "/v1/motion/enable").status == 200)
        let (status, log) = daemon.terminate()  // SIGTERM
        #expect(status == 0, "\(log)")
        // The stages stop in reverse: the socket closes, then the arm stops (the board
        // acknowledges STOP, then drives off), then the recording closes.
        let lines = log.split(separator: "\n").map(String.init)
        func line(_ text: String) -> Int? { lines.firstIndex { $0.contains(text) } }
        let stopping = line("stopping: the control socket closes first") ?? Int.max
        let stopAck = line("arm: STOP acknowledged after")
        let drivesAck = line("arm: drives off acknowledged after")
        let stopped = line("drives off (state disabled)")
        let recordingClosed = line("messages, ")
        #expect(stopAck != nil && drivesAck != nil && stopped != nil && recordingClosed != nil, "\(log)")
        if let stopAck, let drivesAck, let stopped, let recordingClosed {
            #expect(stopping < stopAck && stopAck < drivesAck && drivesAck < stopped && stopped < recordingClosed, "\(log)")
        }
        #expect(!log.contains("no STOP acknowledgement") && !log.contains("no acknowledgement of drives off"), "\(log)")
    }

    @Test func handsSonodSimulateOverToSonodSim() throws {
        let socketPath = Self.temporary("handover.sock")
        let daemon = try Daemon(Self.sonod, ["--simulate", "--socket", socketPath])
        defer { _ = daemon.terminate() }
        #expect(Self.waitForSocket(socketPath))
        #expect(daemon.waitForLog("sonod-sim[notice] sonod \(Scanner.version) ready (simulation)"))
    }

    /// `[realtime] require` on hardware: without CAP_SYS_NICE and CAP_IPC_LOCK (setpriv drops
    /// them from this root test's children) SCHED_FIFO and mlockall are refused, and sonod exits
    /// 78 naming both, before its control socket ever opens. In simulation the policy is off by
    /// default, and sonod-sim runs without them.
    @Test func refusesToRunWithoutRealTimeWhenRequired() throws {
        let drop = ["/usr/bin/setpriv", "--bounding-set=-sys_nice,-ipc_lock", "--inh-caps=-sys_nice,-ipc_lock", "--"]
        let socketPath = Self.temporary("rt.sock")
        let config = try Self.configuration(socket: socketPath, extra: """
            [devices]
            arm = "/dev/sono-test-no-arm"
            force_sensor = "/dev/sono-test-no-force"
            probe = "none"
            """)
        let hardware = try Daemon(drop[0], Array(drop.dropFirst()) + [Self.sonod, "--config", config, "--no-recording"])
        let status = hardware.exitStatus(seconds: 30)
        let (_, log) = hardware.terminate()
        #expect(status == 78, "EX_CONFIG: \(log)")
        #expect(log.contains("[realtime] require = true") && log.contains("SCHED_FIFO was refused")
                    && log.contains("CAP_SYS_NICE") && log.contains("mlockall was refused"), "\(log)")
        #expect(!log.contains("ready (hardware)") && !FileManager.default.fileExists(atPath: socketPath),
                "the control server is a later stage: it never started\n\(log)")

        let simulatedSocket = Self.temporary("rt-sim.sock")
        let simulated = try Daemon(drop[0], Array(drop.dropFirst()) + [Self.sonodSim, "--socket", simulatedSocket, "--no-recording"])
        defer { _ = simulated.terminate() }
        #expect(simulated.waitForLog("ready (simulation)"), "\(simulated.terminate().log)")
        #expect(simulated.waitForLog("SCHED_OTHER"), "the loop ran without SCHED_FIFO")
    }

    @Test func routesMatchTheAPIDocument() throws {
        let listed = try String(contentsOf: Self.root.appendingPathComponent("docs/control-api-routes.txt"), encoding: .utf8)
            .split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        #expect(listed.sorted() == ControlAPI.routeList, "docs/control-api-routes.txt vs the server's routes")
    }
}
