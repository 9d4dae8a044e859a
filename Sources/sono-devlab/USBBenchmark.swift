import ArgumentParser
import Foundation
import SonoCore
import SonoDevices
import SonoProtocol
import SonoSystem
import SonoTestbed

/// `sono-devlab bench-usb`: frames/s and MB/s the USB probe driver sustains through the
/// emulated probe — libusb, usbfs ioctls answered by umockdev's handler in this process, the
/// driver's transfer pool, receiver and hand-over to a reader — and the same at the protocol's
/// 60 frames/s with the device pacing itself, where nothing may be lost.
struct USBBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-usb",
        abstract: "Measure the USB probe driver's throughput through the emulated probe.")

    @Option(help: "Frames to receive as fast as the emulated probe sends them.")
    var frames = 2_000

    @Option(help: "Frame sides to measure (comma-separated; the probe has 128, 256, 512).")
    var sides = "128,256,512"

    @Option(help: "Bulk-IN transfers in flight.")
    var transfers = 8

    @Option(help: "Seconds of the real-time run at 60 frames/s (0: skip).")
    var realtimeSeconds = 10.0

    func run() throws {
        let sideList = sides.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        print("USB probe driver through the emulated probe (libusb → umockdev usbfs handler in-process), "
            + "\(transfers) transfers in flight")
        print("  command: umockdev-wrapper .build/release/sono-devlab bench-usb --frames \(frames) --sides \(sides) "
            + "--realtime-seconds \(realtimeSeconds)")
        for side in sideList {
            let result = try measure(side: side, frames: frames, pacing: .asFastAsPossible, seconds: 120)
            print(String(format: "  %3d×%-3d as fast as possible: %6.0f frames/s, %6.1f MB/s, CPU %.2f s per s; ",
                         side, side, result.framesPerSecond, result.megabytesPerSecond, result.cpuPerSecond)
                + result.counters)
        }
        if realtimeSeconds > 0 {
            let count = Int(realtimeSeconds * 60)
            let result = try measure(side: 256, frames: count, pacing: .realTime, seconds: realtimeSeconds * 2 + 5)
            print(String(format: "  256×256 at 60 frames/s (device paced): %d frames in %.1f s, %.2f frames/s; ",
                         count, result.seconds, result.framesPerSecond) + result.counters
                + String(format: "; interval jitter p99 %.2f ms, max %.2f ms", result.jitterP99Millis, result.jitterMaxMillis))
        }
    }

    struct Result {
        var seconds: Double
        var framesPerSecond: Double
        var megabytesPerSecond: Double
        var cpuPerSecond: Double
        var jitterP99Millis: Double
        var jitterMaxMillis: Double
        var counters: String
    }

    func measure(side: Int, frames: Int, pacing: EmulatedUSBProbe.Pacing, seconds: Double) throws -> Result {
        let probe: EmulatedUSBProbe
        do { probe = try EmulatedUSBProbe.plug(serial: "PRB-BENCH-\(side)", pacing: pacing) } catch {
            throw ValidationError("\(error)")
        }
        defer { probe.unplug() }
        let imaging = ProbeImagingSettings(width: side, height: side)
        let source: USBProbeSource
        do {
            source = try USBProbeSource(configuration: USBProbeConfiguration(imaging: imaging, transfersInFlight: transfers))
            try source.start()
            try source.waitUntilStreaming(seconds: 5)
        } catch {
            throw ValidationError("\(error)")
        }
        defer { source.close() }
        var pixels = [UInt8](repeating: 0, count: side * side)
        var arrivals: [UInt64] = []  // when the reader got each frame
        var acquired: [UInt64] = []  // when the probe acquired it (the driver's timestamp)
        arrivals.reserveCapacity(frames)
        acquired.reserveCapacity(frames)
        let cpuBefore = cpuSeconds()
        let deadline = Date(timeIntervalSinceNow: seconds)
        while arrivals.count < frames, Date() < deadline {
            let info = try? pixels.withUnsafeMutableBufferPointer { buffer throws(FrameSourceError) in
                try source.nextFrame(into: buffer, timeoutMicros: 100_000)
            }
            if let info {
                arrivals.append(MonotonicClock.nowMicros())
                acquired.append(info.timestampMicros)
            }
        }
        let cpu = cpuSeconds() - cpuBefore
        let statistics = source.statistics
        guard arrivals.count == frames, let first = arrivals.first, let last = arrivals.last else {
            throw ValidationError("only \(arrivals.count) of \(frames) \(side)×\(side) frames arrived: \(statistics.link)")
        }
        let elapsed = Double(last - first) / 1e6
        let rate = Double(frames - 1) / elapsed
        // Jitter of the acquisition stamps the driver gives (device clock mapped onto the host's).
        let nominal = 1000 / 60.0
        let jitter = zip(acquired, acquired.dropFirst()).map { abs(Double($1 - $0) / 1000 - nominal) }.sorted()
        let r = statistics.receiver
        return Result(seconds: elapsed, framesPerSecond: rate, megabytesPerSecond: rate * Double(side * side + 64) / 1e6,
                      cpuPerSecond: cpu / max(elapsed, 1e-9),
                      jitterP99Millis: jitter.isEmpty ? 0 : jitter[Int(Double(jitter.count - 1) * 0.99)],
                      jitterMaxMillis: jitter.last ?? 0,
                      counters: "dropped \(r.droppedFrames), rejected \(r.rejected), transfer errors \(r.transferErrors), "
                        + "device dropped \(r.deviceFramesDropped), host overruns \(statistics.hostOverruns)")
    }

    func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}
