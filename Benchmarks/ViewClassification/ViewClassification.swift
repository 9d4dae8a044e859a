// One frame through the view classifier (resize + normalise + network + softmax) on one
// thread, with allocations counted: the per-frame path must not allocate.
// Run: swift package --allow-writing-to-package-directory benchmark --target ViewClassification
// (make bench-vision also prints the onnxruntime comparison).
import Benchmark
import Foundation
import SonoVision

/// The shipped model, or SONO_MODEL's.
func loadClassifier() throws -> ViewClassifier {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let model = ProcessInfo.processInfo.environment["SONO_MODEL"] ?? root.appendingPathComponent("models/view-classifier.onnx").path
    return try ViewClassifier(path: model, threads: 1)
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        maxDuration: .seconds(5),
        maxIterations: 5_000
    )

    // Sono's own per-frame code: crop, resize and normalise into the model's input.
    Benchmark("prepare one 128×128 frame (crop, resize, normalise)") { benchmark in
        let classifier = try loadClassifier()
        let pixels = [UInt8](repeating: 90, count: 128 * 128)
        try pixels.withUnsafeBufferPointer { frame in
            try classifier.prepare(frame, width: 128, height: 128)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { try classifier.prepare(frame, width: 128, height: 128) }
            benchmark.stopMeasurement()
        }
    }

    // The whole frame: the above, the network in oneDNN, the softmax.
    Benchmark("classify one 128×128 frame (1 thread)") { benchmark in
        let classifier = try loadClassifier()
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
