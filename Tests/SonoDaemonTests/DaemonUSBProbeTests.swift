import Foundation
import SonoDaemon
import SonoTestbed
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// sonod on hardware configuration with the USB probe selected by configuration alone
/// (`devices.probe = "usb:1209:5310"`): this test process holds the emulated probe in its umockdev
/// testbed and starts sonod as a child, which inherits the testbed (LD_PRELOAD, UMOCKDEV_DIR) the
/// way `umockdev-run` passes it, so the daemon's driver finds the probe through libusb. The boards
/// are absent (the daemon runs without motion). Needs umockdev-wrapper.
@Suite(.serialized, .enabled(if: EmulatedSerialBench.isPreloaded
                             || ProcessInfo.processInfo.environment["SONO_REQUIRE_UMOCKDEV"] == "1",
                             "needs umockdev-wrapper (make test runs it)"))
struct DaemonUSBProbeTests {
    typealias D = DaemonProcessTests

    static func probeStatus(_ socket: String) throws -> (connected: Bool, detail: String, view: String?) {
        let answer = try D.curl(socket, "GET", "/v1/status")
        let status = try APICoding.decoder().decode(StatusJSON.self, from: Data(answer.body.utf8))
        return (status.devices.probe.connected, status.devices.probe.detail ?? "", status.view?.label)
    }

    /// What the daemon has logged so far (without stopping it).
    static func log(_ daemon: D.Daemon) -> String {
        (try? String(contentsOfFile: daemon.logPath, encoding: .utf8)) ?? ""
    }

    static func wait(seconds: Double = 10, until condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(100_000)
        }
        return false
    }

    @Test func sonodStreamsTheConfiguredUSBProbeAndFollowsUnplugAndReplug() throws {
        let probe = try EmulatedUSBProbe.plug(serial: "PRB-DAEMON-1", pacing: .realTime)
        var plugged = true
        defer { if plugged { probe.unplug() } }
        let socket = D.temporary("usb.sock")
        let config = try D.configuration(socket: socket, extra: """
            [devices]
            arm = "/dev/sono-arm-absent"
            force_sensor = "/dev/sono-force-absent"
            probe = "usb:1209:5310"
            [probe]
            serial = "PRB-DAEMON-1"
            width = 128
            height = 128
            frame_rate = 30
            [realtime]
            lock_memory = false
            """)
        let daemon = try D.Daemon(D.sonod, ["--config", config])
        defer { _ = daemon.terminate() }
        #expect(D.waitForSocket(socket), "sonod did not answer; log: \(Self.log(daemon))")
        #expect(daemon.waitForLog("probe: probe PRB-DAEMON-1 connected"), "\(Self.log(daemon))")
        // Frames reach the classifier: the status shows a view and a frame count.
        #expect(try Self.wait { try Self.probeStatus(socket).view != nil }, "no classification in the status")
        let streaming = try Self.probeStatus(socket)
        #expect(streaming.connected && streaming.detail.hasPrefix("streaming"), "\(streaming)")
        #expect(probe.imaging.rateCentiFPS == 3000 && probe.imaging.width == 128)

        probe.unplug()
        plugged = false
        #expect(daemon.waitForLog("probe: probe disconnected"), "\(Self.log(daemon))")
        let gone = try Self.probeStatus(socket)
        #expect(!gone.connected && gone.detail.contains("disconnected"), "\(gone)")

        try probe.replug()
        plugged = true
        #expect(try Self.wait { try Self.probeStatus(socket).connected }, "not re-opened after replug")
        let (status, log) = daemon.terminate()
        #expect(status == 0, "\(log)")
        #expect(log.components(separatedBy: "probe: probe PRB-DAEMON-1 connected").count == 3, "\(log)")
        #expect(log.contains("probe: streaming,") || log.contains("probe: closed"), "the final counters are logged: \(log)")
    }
}
