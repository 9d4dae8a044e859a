// One frame through the view classifier (resize + normalise + network + softmax) on one
// thread, with allocations counted: the per-frame path must not allocate.
// Run: swift package --allow-writing-to-package-directory benchmark --target ViewClassification
// (make bench-vision also prints the onnxruntime comparison).
import Benchmark
import Foundation
import SonoVision

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        maxDuration: .seconds(5),
        maxIterations: 5_000
    )

    Benchmark("classify one 128×128 frame (shipped model, 1 thread)") { benchmark in
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let classifier = try ViewClassifier(path: root.appendingPathComponent("models/view-classifier.onnx").path, threads: 1)
        var pixels = [UInt8](repeating: 0, count: 128 * 128)
        for index in pixels.indices { pixels[index] = UInt8(truncatingIfNeeded: (index &* 2_654_435_761) >> 24) }
        try pixels.withUnsafeBufferPointer { frame in
            try classifier.classify(frame, width: 128, height: 128)  // first frame sizes the resize tables
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(try classifier.classify(frame, width: 128, height: 128))
            }
            benchmark.stopMeasurement()
        }
    }
}
