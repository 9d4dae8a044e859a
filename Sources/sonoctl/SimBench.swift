import ArgumentParser
import Foundation
import SonoCore
import SonoGeometry
import SonoSim

/// `sonoctl sim bench`: how fast the virtual patient renders, on one core.
struct SimBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure frames rendered per second at 128×128 and 256×256 on one core.")

    @OptionGroup var options: PatientOptions

    @Option(help: "Seconds to render per size.")
    var seconds: Double = 3

    func run() throws {
        let patient = try options.load()
        let geometry = StandardViewGeometry(patient: patient)
        print("virtual patient render speed (one thread, \(patient.parameters.name), depth \(options.depth) mm)")
        print("  command: .build/release/sonoctl sim bench --seconds \(seconds)")
        for size in [128, 256, 512] {
            let settings = ImagingSettings(width: size, height: size, depthMM: options.depth, sectorDeg: options.sector)
            let renderer = UltrasoundRenderer(patient: patient, settings: settings)
            var pixels = [UInt8](repeating: 0, count: renderer.pixelCount)
            let views = StandardView.standard.compactMap { geometry.canonical[$0] }
            var durations: [Double] = []
            let start = Date()
            var frame: UInt64 = 0
            while Date().timeIntervalSince(start) < seconds {
                let t0 = Date()
                pixels.withUnsafeMutableBufferPointer {
                    renderer.render(probe: views[Int(frame) % views.count], contactForceN: 6,
                                    seconds: Double(frame) / 30, frameIndex: frame, into: $0)
                }
                durations.append(Date().timeIntervalSince(t0))
                frame += 1
            }
            durations.sort()
            let median = durations[durations.count / 2]
            let p99 = durations[min(durations.count - 1, durations.count * 99 / 100)]
            print(String(format: "  %3d×%-3d  %7.0f frames/s (median %.2f ms, p99 %.2f ms, %d frames)",
                         size, size, 1 / median, median * 1_000, p99 * 1_000, durations.count))
        }
    }
}
