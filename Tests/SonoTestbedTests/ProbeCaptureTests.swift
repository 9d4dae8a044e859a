import Foundation
import SonoDevices
import SonoTestbed
import SonoTestSupport
import Testing

let umockdevRun = ChildProcess.find(["umockdev-run"])

/// The probe's usbmon capture (USB-EMULATION.md §2.2): its structure, and that umockdev 0.17's
/// replayer (`umockdev-run -d … -p …`) plays it back to plain libusb calls doing the sequence
/// it describes (probe-capture-replay). Needs `umockdev-run`, not the preload: skipped without
/// it, unless SONO_REQUIRE_UMOCKDEV=1 makes that a failure.
@Suite(.serialized, .enabled(if: umockdevRun != nil || requireUMockdev, "needs umockdev-run (apt install umockdev)"))
struct ProbeCaptureTests {

    static var replayer: String {
        // Built next to the test bundle (.build/debug/).
        let directories: [URL?] = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
                                   Bundle.main.executableURL?.deletingLastPathComponent()]
        let candidates = directories.compactMap { $0?.appendingPathComponent("probe-capture-replay").path }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? "probe-capture-replay"
    }

    static let imaging = EmulatedUSBProbe.Imaging(depthMM: 120, gainCentiDB: -250, rateCentiFPS: 3000, width: 128, height: 128,
                                                  sequence: 5)

    static func temporaryDirectory() throws -> String { try Temporary.directory("capture", prefix: "probe-capture") }

    /// The pcap's records as (event type, transfer type, endpoint, urb_len, data_len, status).
    static func records(_ capture: String) throws -> (linkType: UInt32, events: [(Character, UInt8, UInt8, Int, Int, Int32)]) {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: capture)))
        func u32(_ offset: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) } }
        var events: [(Character, UInt8, UInt8, Int, Int, Int32)] = []
        var offset = 24
        while offset + 16 <= bytes.count {
            let length = Int(u32(offset + 8))
            let event = offset + 16
            events.append((Character(UnicodeScalar(bytes[event + 8])), bytes[event + 9], bytes[event + 10],
                           Int(u32(event + 32)), Int(u32(event + 36)), Int32(bitPattern: u32(event + 28))))
            offset = event + length
        }
        #expect(offset == bytes.count, "the last record is cut off")
        return (u32(20), events)
    }

    @Test func captureHoldsTheDriversSequence() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = try ProbeCapture.write(directory: directory, frames: 6, inFlight: 4, imaging: Self.imaging)
        #expect(files.syspath == "/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1")
        let record = try String(contentsOfFile: files.record, encoding: .utf8)
        #expect(record.contains("P: /devices/pci0000:00/0000:00:14.0/usb2/2-1\n"))
        #expect(record.contains("E: DEVNAME=/dev/bus/usb/002/002\n") && record.contains("A: busnum=2\\n\n"))
        let (linkType, events) = try Self.records(files.capture)
        #expect(linkType == 220)
        let summary = events.map { "\($0.0)\($0.1):\(String($0.2, radix: 16)):\($0.3)/\($0.4)" }
        let transfer = ProbeCapture.recommendedTransferLength
        let frame = 64 + 128 * 128
        #expect(summary == [
            "S2:80:255/0", "C2:80:80/80",                 // GET_INFO
            "S2:0:12/12", "C2:0:12/0",                    // SET_IMAGING, settings in the submission
            "S2:0:0/0", "C2:0:0/0",                       // START_STREAMING
        ] + Array(repeating: "S3:81:\(transfer)/0", count: 4)
          + ["C3:81:\(frame)/\(frame)", "S3:81:\(transfer)/0", "C3:81:\(frame)/\(frame)", "S3:81:\(transfer)/0"]
          + Array(repeating: "C3:81:\(frame)/\(frame)", count: 4))
        #expect(events.allSatisfy { $0.0 == "C" ? $0.5 == 0 : $0.5 == -115 })
    }

    @Test func refusedArgumentsAreTypedErrors() {
        #expect(throws: ProbeCaptureError.self) {
            try ProbeCapture.write(directory: "/tmp", frames: 2, inFlight: 4, imaging: Self.imaging)
        }
        #expect(throws: ProbeCaptureError.self) {
            try ProbeCapture.write(directory: "/tmp", frames: 8, transferLength: 4096, imaging: Self.imaging)
        }
        var refused = Self.imaging
        refused.width = 100
        #expect(throws: ProbeCaptureError.self) { try ProbeCapture.write(directory: "/tmp", frames: 8, imaging: refused) }
    }

    /// Replays under umockdev-run; returns probe-capture-replay's exit status and output.
    static func replay(_ files: ProbeCapture.Files, frames: Int, inFlight: Int, sending sent: EmulatedUSBProbe.Imaging = imaging,
                       directory: String) throws -> (Int32, String) {
        let umockdevRun = try #require(umockdevRun, "umockdev-run is not installed")
        let settings = sent.encoded.map { String(format: "%02x", $0) }.joined()
        let arguments = files.umockdevRunArguments + ["--", replayer, "\(frames)", "\(ProbeCapture.recommendedTransferLength)",
                                                      "\(inFlight)", settings, "PRB-0001"]
        // umockdev-run makes its own testbed: not the one of this process, if it runs preloaded.
        var environment = ProcessInfo.processInfo.environment
        environment["LD_PRELOAD"] = nil
        environment["UMOCKDEV_DIR"] = nil
        let replay = try ChildProcess([umockdevRun] + arguments, environment: environment,
                                      stdout: .file(directory + "/replay.log"), stderr: .stdout)
        let status = replay.wait(seconds: 60) ?? replay.terminate(seconds: 5)
        return (status, replay.output)
    }

    @Test(arguments: [true, false])
    func umockdevReplaysTheCaptureToPlainLibusb(outDataInSubmit: Bool) throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = try ProbeCapture.write(directory: directory, frames: 12, inFlight: 4, imaging: Self.imaging,
                                           outDataInSubmit: outDataInSubmit)
        let (status, output) = try Self.replay(files, frames: 12, inFlight: 4, directory: directory)
        #expect(status == 0, "probe-capture-replay under umockdev-run:\n\(output)")
        #expect(output.contains("ok    replayed 12 of 12 frames"))
    }

    /// With SET_IMAGING's data in its 'S' record (as usbmon records OUT data), umockdev compares
    /// the bytes: a driver sending other settings than the capture's gets no answer, and the
    /// replay is stuck at that record for good.
    @Test func aCapturePinsTheSettingsTheDriverSends() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = try ProbeCapture.write(directory: directory, frames: 4, inFlight: 4, imaging: Self.imaging)
        var other = Self.imaging
        other.sequence += 1
        let (status, output) = try Self.replay(files, frames: 4, inFlight: 4, sending: other, directory: directory)
        #expect(status == 1)
        #expect(output.contains("FAIL  SET_IMAGING: LIBUSB_ERROR_TIMEOUT"), "\(output)")
    }
}
