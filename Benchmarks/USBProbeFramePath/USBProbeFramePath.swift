// The USB probe driver's per-frame path without USB: a completed bulk-IN transfer validated by
// the receiver (header, lengths, CRC-32C over the whole frame), numbered and time-mapped, copied
// into the hand-over ring, and taken out by the reader — what libusb's event thread and the frame
// pipeline do for every frame (ProbeFrameIntake). Must not allocate. Through the emulated device
// (libusb and umockdev included): make bench-usb.
// Run: make bench-usb-path (swift package benchmark --target USBProbeFramePath)
import Benchmark
import Foundation
import SonoCore
import SonoDevices

/// Frames as the probe sends them, made once: 16 consecutive frame numbers of one geometry.
func probeFrames(side: Int) -> [[UInt8]] {
    (0..<16).map { number in
        let header = ProbeFrameHeader(frameNumber: UInt64(number), timestampMicros: 1_000_000 + UInt64(number) * 16_667,
                                      width: side, height: side, settingsSequence: 1, depthMM: 160, gainCentiDB: 0,
                                      rateCentiFPS: 6000, sectorCentiDeg: 8000)
        let pixels = (0..<side * side).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ number) }
        return (try? pixels.withUnsafeBytes { try header.encodeFrame(pixels: $0) }) ?? []
    }
}

let benchmarks: @Sendable () -> Void = {
    let megabytesPerSecond = BenchmarkMetric.custom("MB/s", polarity: .prefersLarger, useScalingFactor: false)
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal, megabytesPerSecond],
        maxDuration: .seconds(3),
        maxIterations: 100_000
    )
    for side in [128, 256, 512] {
        Benchmark("one \(side)×\(side) frame: receive, validate, hand over, take") { benchmark in
            let frames = probeFrames(side: side)
            let maxFrameBytes = 64 + 512 * 512
            let transferLength = (maxFrameBytes + 1 + 511) / 512 * 512
            let intake = ProbeFrameIntake(width: side, height: side, bufferedFrames: 4)
            intake.start(maxFrameBytes: maxFrameBytes)
            intake.markStreaming()
            var pixels = [UInt8](repeating: 0, count: side * side)
            var delivered = 0
            let started = DispatchTime.now().uptimeNanoseconds
            benchmark.startMeasurement()
            pixels.withUnsafeMutableBufferPointer { reader in
                for index in benchmark.scaledIterations {
                    // Frame numbers wrap every 16 frames: a sequence reset the receiver counts, no allocation.
                    frames[index % 16].withUnsafeBytes { bytes in
                        if intake.completed(bytes, requested: transferLength, arrivalMicros: 2_000_000 + UInt64(index) * 16_667) {
                            delivered += 1
                        }
                    }
                    _ = try? intake.take(into: reader, timeoutMicros: 0)
                }
            }
            benchmark.stopMeasurement()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            benchmark.measurement(megabytesPerSecond,
                                  Int(Double(delivered * (side * side + 64)) / seconds / 1e6))
            precondition(delivered == benchmark.scaledIterations.count, "a valid frame was not delivered")
        }
    }
}
