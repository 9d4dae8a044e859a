import Foundation
import SonoImaging
@testable import SonoVision
import SonoTestSupport
import Testing

/// Sono against onnxruntime on the same frames, for the shipped model and for the quality-output
/// fixture (Tests/SonoVisionTests/Fixtures/view-classifier-quality.onnx, random weights, written
/// by tools/vision/make_quality_fixture.py): `make test-vision` runs tools/vision/parity_reference.py
/// (onnxruntime from PyPI) on each and points SONO_ORT_REFERENCE and SONO_ORT_QUALITY_REFERENCE at
/// its outputs. Without them the suite is skipped, unless SONO_REQUIRE_ORT=1.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["SONO_ORT_REFERENCE"] != nil
                    || ProcessInfo.processInfo.environment["SONO_REQUIRE_ORT"] == "1",
                "needs SONO_ORT_REFERENCE (make test-vision)"))
struct OnnxRuntimeParityTests {
    static let root = Repository.root
    static let fixtures = Repository.url("Tests/SonoVisionTests/Fixtures")
    static let qualityFixture = fixtures.appendingPathComponent("view-classifier-quality.onnx").path

    struct Reference: Decodable {
        struct Result: Decodable {
            var file: String
            var logits: [Float]
            /// Present when the model has the quality output.
            var quality: [Float]?
        }
        var model: String
        var labels: [String]
        var qualityLabels: [String]?
        var results: [Result]

        enum CodingKeys: String, CodingKey {
            case model, labels, results
            case qualityLabels = "quality_labels"
        }
    }

    /// Every output of `modelPath` on every frame of the reference within 1e-4 of onnxruntime's;
    /// returns the largest differences of the logits and of the quality.
    func checkParity(referencePath: String, modelPath: String) throws -> (logits: Float, quality: Float) {
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: URL(fileURLWithPath: referencePath)))
        #expect(reference.model == URL(fileURLWithPath: modelPath).lastPathComponent, "the reference was made with another model")
        let classifier = try ViewClassifier(path: modelPath)
        #expect(classifier.labels == reference.labels)
        #expect(classifier.hasQuality == (reference.qualityLabels != nil))
        #expect(classifier.qualityLabels == reference.qualityLabels ?? [])
        #expect(reference.results.count >= 25, "the reference covers every fixture")
        var worstLogit: Float = 0, worstQuality: Float = 0
        for result in reference.results {
            let frame = try PNG.readGray8(path: Self.fixtures.appendingPathComponent(result.file).path)
            _ = try classifier.classify(frame.pixels, width: frame.width, height: frame.height)
            let logits = Array(classifier.logits)
            #expect(logits.count == result.logits.count)
            for (mine, theirs) in zip(logits, result.logits) {
                worstLogit = max(worstLogit, abs(mine - theirs))
                #expect(abs(mine - theirs) <= 1e-4, "\(result.file): \(logits) vs onnxruntime \(result.logits)")
            }
            guard let qualityLabels = reference.qualityLabels else {
                #expect(result.quality == nil)
                continue
            }
            let theirs = try #require(result.quality, "\(result.file): the reference has no quality")
            #expect(theirs.count == qualityLabels.count)
            // onnxruntime's quality in output order against Sono's per label.
            for (label, value) in zip(qualityLabels, theirs) {
                let index = try #require(classifier.labels.firstIndex(of: label))
                let mine = classifier.quality[index]
                worstQuality = max(worstQuality, abs(mine - value))
                #expect(abs(mine - value) <= 1e-4, "\(result.file): quality of \(label) \(mine) vs onnxruntime \(value)")
            }
            // Labels without a quality (OTHER) stay 0.
            for (index, label) in classifier.labels.enumerated() where !qualityLabels.contains(label) {
                #expect(classifier.quality[index] == 0)
            }
        }
        print("parity with onnxruntime (\(reference.model)): \(reference.results.count) frames, largest logit difference "
              + "\(worstLogit)" + (reference.qualityLabels != nil ? ", largest quality difference \(worstQuality)" : ""))
        return (worstLogit, worstQuality)
    }

    @Test func logitsMatchOnnxRuntimeWithin1e4() throws {
        let path = try #require(ProcessInfo.processInfo.environment["SONO_ORT_REFERENCE"], "SONO_ORT_REFERENCE is not set")
        // The model the reference was made with (make test-vision: the shipped one). Its quality
        // output, once it has one, is checked too.
        let modelPath = ProcessInfo.processInfo.environment["SONO_PARITY_MODEL"]
            ?? Self.root.appendingPathComponent("models/view-classifier.onnx").path
        _ = try checkParity(referencePath: path, modelPath: modelPath)
    }

    @Test func bothOutputsOfTheQualityFixtureMatchOnnxRuntimeWithin1e4() throws {
        let path = try #require(ProcessInfo.processInfo.environment["SONO_ORT_QUALITY_REFERENCE"],
                                "SONO_ORT_QUALITY_REFERENCE is not set (make test-vision)")
        let classifier = try ViewClassifier(path: Self.qualityFixture)
        #expect(classifier.hasQuality)
        let worst = try checkParity(referencePath: path, modelPath: Self.qualityFixture)
        #expect(worst.quality <= 1e-4)
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
