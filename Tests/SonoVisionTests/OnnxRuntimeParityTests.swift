import Foundation
import SonoImaging
@testable import SonoVision
import SonoTestSupport
import Testing

/// The shipped model in Sono against onnxruntime on the same frames: `make test-vision` runs
/// tools/vision/parity_reference.py (onnxruntime from PyPI) and points SONO_ORT_REFERENCE at
/// its output. Without it the test is skipped, unless SONO_REQUIRE_ORT=1.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["SONO_ORT_REFERENCE"] != nil
                    || ProcessInfo.processInfo.environment["SONO_REQUIRE_ORT"] == "1",
                "needs SONO_ORT_REFERENCE (make test-vision)"))
struct OnnxRuntimeParityTests {
    static let root = Repository.root
    static let fixtures = Repository.url("Tests/SonoVisionTests/Fixtures")

    struct Reference: Decodable {
        struct Result: Decodable {
            var file: String
            var logits: [Float]
        }
        var labels: [String]
        var results: [Result]
    }

    @Test func logitsMatchOnnxRuntimeWithin1e4() throws {
        let path = try #require(ProcessInfo.processInfo.environment["SONO_ORT_REFERENCE"], "SONO_ORT_REFERENCE is not set")
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        // The model the reference was made with (make test-vision: the shipped one).
        let modelPath = ProcessInfo.processInfo.environment["SONO_PARITY_MODEL"]
            ?? Self.root.appendingPathComponent("models/view-classifier.onnx").path
        let classifier = try ViewClassifier(path: modelPath)
        #expect(classifier.labels == reference.labels)
        #expect(reference.results.count >= 25, "the reference covers every fixture")
        var worst: Float = 0
        for result in reference.results {
            let frame = try PNG.readGray8(path: Self.fixtures.appendingPathComponent(result.file).path)
            _ = try classifier.classify(frame.pixels, width: frame.width, height: frame.height)
            let logits = Array(classifier.logits)
            #expect(logits.count == result.logits.count)
            for (mine, theirs) in zip(logits, result.logits) {
                worst = max(worst, abs(mine - theirs))
                #expect(abs(mine - theirs) <= 1e-4, "\(result.file): \(logits) vs onnxruntime \(result.logits)")
            }
        }
        print("parity with onnxruntime: \(reference.results.count) frames, largest logit difference \(worst)")
    }

    @Test func theShippedModelNamesTheStandardViewsOfTheHeldOutPatients() throws {
        // The fixtures are canonical views of the five shipped patients, which training never saw.
        let classifier = try ViewClassifier(path: Self.root.appendingPathComponent("models/view-classifier.onnx").path)
        var wrong: [String] = []
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.fixtures.path).filter { $0.hasSuffix(".png") }
        for file in files.sorted() {
            let expected = file.split(separator: "_")[1].split(separator: ".")[0].uppercased()
            let frame = try PNG.readGray8(path: Self.fixtures.appendingPathComponent(file).path)
            let prediction = try classifier.classify(frame.pixels, width: frame.width, height: frame.height)
            if prediction.label != expected { wrong.append("\(file) → \(prediction.label)") }
        }
        #expect(wrong.count <= 1, "misclassified: \(wrong)")
    }
}
