import ArgumentParser
import Foundation
import SonoCore
import SonoDevices
import SonoImaging
import SonoProtocol
import SonoSim
import SonoSystem

/// `sonoctl probe`: the USB ultrasound probe directly through the driver (not through sonod,
/// which must not be running with the same probe: the interface can be claimed once).
struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Talk to the USB ultrasound probe (firmware-protocol/USB-PROBE.md) through the driver.",
        subcommands: [ProbeInfoCommand.self, ProbeStream.self])
}

struct ProbeSelection: ParsableArguments {
    @Option(name: .customLong("device"), help: "The probe's USB IDs, usb:VID:PID in hex.")
    var device = "usb:1209:5310"

    @Option(help: "Only the probe with this serial number.")
    var serial: String?

    func ids() throws -> (UInt16, UInt16) {
        let parts = device.split(separator: ":")
        guard parts.count == 3, parts[0] == "usb", let vendor = UInt16(parts[1], radix: 16),
              let product = UInt16(parts[2], radix: 16) else {
            throw ValidationError("--device '\(device)' must be usb:VID:PID in hex, e.g. usb:1209:5310")
        }
        return (vendor, product)
    }
}

struct ProbeInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info",
        abstract: "Print the probe's GET_INFO (identity, limits, geometries) and GET_STATUS.")

    @OptionGroup var selection: ProbeSelection

    func run() throws { try reporting(body) }

    func body() throws {
        let (vendor, product) = try selection.ids()
        let answer: (info: ProbeInfo, status: ProbeStatus, address: USBProbeAddress)
        do { answer = try USBProbeQuery.describe(vendorID: vendor, productID: product, serial: selection.serial) } catch {
            throw CLIError(message: "\(error)", code: .failure)
        }
        let info = answer.info, status = answer.status
        print("probe \(info.serial) at \(answer.address), firmware \(info.firmwareVersion), protocol \(info.protocolVersion)")
        print("  depth \(info.depthRangeMM.lowerBound)–\(info.depthRangeMM.upperBound) mm, gain "
            + "\(Double(info.gainRangeCentiDB.lowerBound) / 100)–\(Double(info.gainRangeCentiDB.upperBound) / 100) dB, "
            + "frame rate \(Double(info.rateRangeCentiFPS.lowerBound) / 100)–\(Double(info.rateRangeCentiFPS.upperBound) / 100) /s, "
            + "sector \(Double(info.sectorCentiDeg) / 100)°")
        print("  geometries " + info.geometries.map { "\($0.width)×\($0.height)" }.joined(separator: ", ")
            + ", max frame \(info.maxFrameBytes) bytes (transfers of \(info.transferLength))")
        print("  state \(status.state), last error: \(status.reason), temperature "
            + (status.temperatureC.map { String(format: "%.1f °C", $0) } ?? "unknown")
            + ", frames acquired \(status.framesAcquired), sent \(status.framesSent), dropped \(status.framesDropped)")
    }
}

struct ProbeStream: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stream",
        abstract: "Stream frames from the probe and report rate, throughput and the receiver's counters.",
        discussion: """
            Exits 0 when --frames frames arrived (with --expect-intact: and none was dropped or rejected),
            1 otherwise. Under `umockdev-run --pcap` this replays a capture through the real driver
            (sono-devlab usb-capture writes one from the virtual patient's frames).
            """)

    @OptionGroup var selection: ProbeSelection

    @Option(help: "Frames to receive.")
    var frames = 300

    @Option(help: "Seconds to wait for them.")
    var seconds = 30.0

    @Option(help: "Frame width and height (one of the probe's geometries).")
    var side = 128

    @Option(help: "Imaging depth, mm.")
    var depth = 160

    @Option(help: "Receive gain, dB.")
    var gain = 0.0

    @Option(help: "Frame rate, frames/s.")
    var rate = 60.0

    @Option(help: "Bulk-IN transfers in flight.")
    var transfers = 8

    @Option(help: "Frames the driver holds for this reader before overwriting the oldest (a replayed capture comes as fast as umockdev can send it).")
    var bufferedFrames = 4

    @Flag(help: "Fail unless every frame arrived intact and in sequence.")
    var expectIntact = false

    @Option(help: "Write the last frame as a PNG here.")
    var png: String?

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        guard frames >= 1 else { throw ValidationError("--frames \(frames): at least 1") }
        guard (1...4096).contains(side) else { throw ValidationError("--side \(side): 1…4096 pixels") }
        guard (1...1000).contains(depth) else { throw ValidationError("--depth \(depth): 1…1000 mm") }
        guard (-300...300).contains(gain) else { throw ValidationError("--gain \(gain): −300…300 dB") }
        guard rate > 0, rate <= 600 else { throw ValidationError("--rate \(rate): above 0, at most 600 frames/s") }
        guard (1...64).contains(transfers) else { throw ValidationError("--transfers \(transfers): 1…64") }
        guard (1...4096).contains(bufferedFrames) else { throw ValidationError("--buffered-frames \(bufferedFrames): 1…4096") }
    }

    func run() throws { try reporting(body) }

    func body() throws {
        let (vendor, product) = try selection.ids()
        let imaging = ProbeImagingSettings(depthMM: UInt16(depth), gainCentiDB: Int16((gain * 100).rounded()),
                                           rateCentiFPS: UInt16((rate * 100).rounded()), width: side, height: side)
        let configuration = USBProbeConfiguration(vendorID: vendor, productID: product, serial: selection.serial,
                                                  imaging: imaging, transfersInFlight: transfers,
                                                  bufferedFrames: bufferedFrames)
        let events = EventLog()
        let source: USBProbeSource
        do {
            source = try USBProbeSource(configuration: configuration) { events.append($0) }
            try source.start()
        } catch {
            throw CLIError(message: "\(error)", code: .failure)
        }
        defer { source.close() }
        var pixels = [UInt8](repeating: 0, count: side * side)
        var received = 0
        var firstMicros: UInt64 = 0
        var lastMicros: UInt64 = 0
        let deadline = Date(timeIntervalSinceNow: seconds)
        var failure: String?
        while received < frames, Date() < deadline {
            do {
                let info = try pixels.withUnsafeMutableBufferPointer { buffer throws(FrameSourceError) in
                    try source.nextFrame(into: buffer, timeoutMicros: 100_000)
                }
                guard info != nil else { continue }
                lastMicros = MonotonicClock.nowMicros()
                if received == 0 { firstMicros = lastMicros }
                received += 1
                failure = nil
            } catch {
                failure = "\(error)"
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        let statistics = source.statistics
        source.close()
        let seconds = Double(lastMicros - firstMicros) / 1e6
        let perSecond = received > 1 && seconds > 0 ? Double(received - 1) / seconds : 0
        let megabytes = perSecond * Double(side * side + 64) / 1e6
        let r = statistics.receiver
        let intact = r.droppedFrames == 0 && r.rejected == 0 && r.resyncDiscards == 0 && r.transferErrors == 0
            && statistics.hostOverruns == 0
        if let png { try PNG.write(path: png, width: side, height: side, pixels: pixels) }
        if json {
            let result = ProbeStreamJSON(frames: received, framesPerSecond: perSecond, megabytesPerSecond: megabytes,
                                         delivered: r.framesDelivered, dropped: r.droppedFrames, rejected: r.rejected,
                                         crcMismatch: r.crcMismatch, resyncDiscards: r.resyncDiscards,
                                         transferErrors: r.transferErrors, hostOverruns: statistics.hostOverruns,
                                         events: events.all.map(\.description))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            for event in events.all { print("event: \(event)") }
            print("\(received) of \(frames) frames, " + String(format: "%.1f frames/s, %.2f MB/s", perSecond, megabytes))
            print("receiver: \(r.framesDelivered) delivered, \(r.droppedFrames) dropped, \(r.rejected) rejected "
                + "(\(r.crcMismatch) CRC, \(r.truncated) truncated, \(r.badMagic) bad magic, \(r.badHeader) bad header), "
                + "\(r.resyncDiscards) resync discards, \(r.transferErrors) transfer errors, "
                + "\(statistics.hostOverruns) host overruns; device dropped \(r.deviceFramesDropped)")
        }
        guard received >= frames else {
            throw CLIError(message: "only \(received) of \(frames) frames in \(self.seconds) s" + (failure.map { ": \($0)" } ?? ""),
                           code: .failure)
        }
        if expectIntact, !intact {
            throw CLIError(message: "frames were lost or rejected (see the counters above)", code: .failure)
        }
    }
}

struct ProbeStreamJSON: Encodable {
    var frames: Int
    var framesPerSecond: Double
    var megabytesPerSecond: Double
    var delivered: UInt64
    var dropped: UInt64
    var rejected: UInt64
    var crcMismatch: UInt64
    var resyncDiscards: UInt64
    var transferErrors: UInt64
    var hostOverruns: UInt64
    var events: [String]
}

/// Events from the driver's thread, kept in order.
final class EventLog: @unchecked Sendable {
    // @unchecked: `events` is touched only under `lock`.
    private let lock = NSLock()
    private var events: [USBProbeEvent] = []
    func append(_ event: USBProbeEvent) { lock.withLock { events.append(event) } }
    var all: [USBProbeEvent] { lock.withLock { events } }
}
