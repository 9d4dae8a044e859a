import ArgumentParser
import Foundation
import Histogram
import SonoImaging
import SonoVision

/// `sonoctl classify`: the view classifier on one image, on a labelled data set, or timed.
struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Classify the echocardiography view of a frame (PNG), score a labelled data set, or time the model.",
        discussion: """
            sonoctl classify FRAME.png                 view and confidence of one frame (and its predicted quality
                                                       as each view, when the model has a quality output)
            sonoctl classify --eval DIR                per-view precision/recall and confusion matrix on DIR/labels.csv; with a
                                                       quality model and true quality columns (plax_q, …), also view
                                                       accuracy on clear frames, quality MAE and the precision of
                                                       "diagnostic" (predicted q ≥ 0.7)
            sonoctl classify --bench                   latency per frame on one core, and onnxruntime's on the same machine
            """)

    @Argument(help: "8-bit grayscale PNG frames to classify.")
    var frames: [String] = []

    @Option(help: "ONNX model (Sono's model contract: models/README.md).")
    var model = "models/view-classifier.onnx"

    @Option(help: "Score a data set written by `sonoctl sim dataset` (folder with labels.csv).")
    var eval: String?

    @Flag(help: "Time inference (one thread) and compare with onnxruntime.")
    var bench = false

    @Option(help: "Frames to time with --bench.")
    var iterations = 2_000

    @Option(help: "Python with onnxruntime for the --bench comparison.")
    var python = "python3"

    @Flag(help: "JSON output.")
    var json = false

    func validate() throws {
        if frames.isEmpty && eval == nil && !bench { throw ValidationError("give a frame, --eval DIR or --bench") }
    }

    func run() throws {
        let classifier: ViewClassifier
        do { classifier = try ViewClassifier(path: model, threads: 1) } catch { throw ValidationError("\(error)") }
        for path in frames { try classifyOne(path, classifier) }
        if let eval { try evaluate(eval, classifier) }
        if bench { try benchmark(classifier) }
    }

    func load(_ path: String) throws -> (width: Int, height: Int, pixels: [UInt8]) {
        do { return try PNG.readGray8(path: path) } catch { throw ValidationError("\(path): \(error)") }
    }

    func classifyOne(_ path: String, _ classifier: ViewClassifier) throws {
        let frame = try load(path)
        let prediction: ViewPrediction
        do { prediction = try classifier.classify(frame.pixels, width: frame.width, height: frame.height) } catch {
            throw ValidationError("\(path): \(error)")
        }
        let probabilities = Array(classifier.probabilities)
        // The predicted quality per view, in the model's quality order (empty without a quality output).
        let quality = classifier.qualityLabels.map { label in
            (label, classifier.quality[classifier.labels.firstIndex(of: label) ?? 0])
        }
        if json {
            let fields = zip(classifier.labels, probabilities).map { "\"\($0)\": \(String(format: "%.6f", $1))" }
            let qualityField = quality.isEmpty ? ""
                : ", \"quality\": {" + quality.map { "\"\($0.0)\": \(String(format: "%.6f", $0.1))" }.joined(separator: ", ") + "}"
            print("{\"file\": \"\(path)\", \"view\": \"\(prediction.label)\", \"confidence\": \(String(format: "%.6f", prediction.confidence)), "
                  + "\"probabilities\": {\(fields.joined(separator: ", "))}\(qualityField)}")
        } else {
            let others = zip(classifier.labels, probabilities).sorted { $0.1 > $1.1 }.dropFirst().prefix(2)
                .map { "\($0.0) \(String(format: "%.1f%%", $0.1 * 100))" }.joined(separator: ", ")
            print("\(path): \(prediction.label) \(String(format: "%.1f%%", prediction.confidence * 100))  (next: \(others))")
            if !quality.isEmpty {
                print("  predicted quality: " + quality.map { "\($0.0) \(String(format: "%.2f", $0.1))" }.joined(separator: ", "))
            }
        }
    }

    func evaluate(_ folder: String, _ classifier: ViewClassifier) throws {
        let csvPath = URL(fileURLWithPath: folder).appendingPathComponent("labels.csv").path
        guard let text = try? String(contentsOfFile: csvPath, encoding: .utf8) else {
            throw ValidationError("cannot read \(csvPath) (write one with `sonoctl sim dataset`)")
        }
        var lines = text.split(separator: "\n").map(String.init)
        guard let header = lines.first?.split(separator: ",").map(String.init),
              let fileColumn = header.firstIndex(of: "file"), let viewColumn = header.firstIndex(of: "view") else {
            throw ValidationError("\(csvPath): needs 'file' and 'view' columns")
        }
        lines.removeFirst()
        let labels = classifier.labels
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: labels.count), count: labels.count)
        // True quality per view (`sonoctl sim dataset`'s plax_q, …), scored when the model predicts quality.
        let qualityColumns = header.enumerated().compactMap { index, name -> (label: String, column: Int)? in
            name.hasSuffix("_q") && name.count > 2 ? (String(name.dropLast(2)).uppercased(), index) : nil
        }
        var quality = classifier.hasQuality && !qualityColumns.isEmpty ? QualityScore() : nil
        // The views scored: those with a true-quality column the model predicts a quality for.
        let scoredViews = qualityColumns.filter { classifier.qualityLabels.contains($0.label) }
            .map { (column: $0.column, index: labels.firstIndex(of: $0.label)!) }
        for (number, line) in lines.enumerated() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard fields.count > max(fileColumn, viewColumn, qualityColumns.map(\.column).max() ?? 0) else {
                throw ValidationError("\(csvPath) line \(number + 2): too few fields")
            }
            guard let truth = labels.firstIndex(of: fields[viewColumn]) else {
                throw ValidationError("\(csvPath) line \(number + 2): view '\(fields[viewColumn])' is not one of the model's labels \(labels)")
            }
            let frame = try load(URL(fileURLWithPath: folder).appendingPathComponent(fields[fileColumn]).path)
            let prediction: ViewPrediction
            do { prediction = try classifier.classify(frame.pixels, width: frame.width, height: frame.height) } catch {
                throw ValidationError("\(fields[fileColumn]): \(error)")
            }
            confusion[truth][prediction.labelIndex] += 1
            if quality != nil {
                var trueQuality: [Double] = []
                for (_, column) in qualityColumns {
                    guard let q = Double(fields[column]), q.isFinite else {
                        throw ValidationError("\(csvPath) line \(number + 2): '\(header[column])' is not a number: '\(fields[column])'")
                    }
                    trueQuality.append(q)
                }
                let pairs = scoredViews.map { (truth: Double(fields[$0.column]) ?? 0, predicted: Double(classifier.quality[$0.index])) }
                quality?.add(trueQuality: trueQuality, correct: prediction.labelIndex == truth, pairs: pairs)
            }
        }
        let total = confusion.joined().reduce(0, +)
        let correct = labels.indices.map { confusion[$0][$0] }.reduce(0, +)
        let accuracy = total > 0 ? Double(correct) / Double(total) : 0
        if json {
            let rows = confusion.map { "[\($0.map(String.init).joined(separator: ", "))]" }.joined(separator: ", ")
            print("{\"frames\": \(total), \"accuracy\": \(String(format: "%.5f", accuracy)), \"labels\": [\(labels.map { "\"\($0)\"" }.joined(separator: ", "))], \"confusion\": [\(rows)]"
                  + (quality.map { ", " + $0.jsonFields } ?? "") + "}")
            return
        }
        print("model \(classifier.path) (\(classifier.contract.version)); \(total) frames from \(folder)")
        print(String(format: "frame accuracy: %.2f%% (%d/%d)", accuracy * 100, correct, total))
        if let quality { print(quality.text) }
        print("\nview      precision  recall  frames")
        for (index, label) in labels.enumerated() {
            let predicted = labels.indices.map { confusion[$0][index] }.reduce(0, +)
            let actual = confusion[index].reduce(0, +)
            let precision = predicted > 0 ? Double(confusion[index][index]) / Double(predicted) : .nan
            let recall = actual > 0 ? Double(confusion[index][index]) / Double(actual) : .nan
            print(label.padding(toLength: 8, withPad: " ", startingAt: 0)
                  + String(format: " %8.1f%% %6.1f%% %7d", precision * 100, recall * 100, actual))
        }
        print("\nconfusion (rows: truth, columns: predicted)")
        print("         " + labels.map { $0.padding(toLength: 7, withPad: " ", startingAt: 0) }.joined())
        for (index, label) in labels.enumerated() {
            print(label.padding(toLength: 9, withPad: " ", startingAt: 0)
                  + confusion[index].map { String($0).padding(toLength: 7, withPad: " ", startingAt: 0) }.joined())
        }
    }

    func benchmark(_ classifier: ViewClassifier) throws {
        let size = classifier.contract.inputSize
        // Simulator-sized frames: 128² resized to the model's input, as in a scan.
        var pixels = [UInt8](repeating: 0, count: 128 * 128)
        for index in pixels.indices { pixels[index] = UInt8(truncatingIfNeeded: index &* 2_654_435_761 >> 24) }
        var histogram = Histogram<UInt64>(highestTrackableValue: 10_000_000, numberOfSignificantValueDigits: .three)
        try pixels.withUnsafeBufferPointer { buffer in
            for iteration in 0..<(iterations + 100) {
                let start = DispatchTime.now().uptimeNanoseconds
                do { try classifier.classify(buffer, width: 128, height: 128) } catch { throw ValidationError("\(error)") }
                if iteration >= 100 { histogram.record((DispatchTime.now().uptimeNanoseconds - start) / 1_000) }
            }
        }
        let p50 = histogram.valueAtPercentile(50), p99 = histogram.valueAtPercentile(99)
        print("view classifier \(classifier.contract.version): 1×1×\(size)×\(size), one thread, \(iterations) frames")
        print("  command: .build/release/sonoctl classify --bench --iterations \(iterations)")
        print("  Sono (oneDNN): p50 \(p50) µs, p99 \(p99) µs per frame (resize + normalise + network + softmax)")
        let script = "tools/vision/ort_bench.py"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, script, "--model", model, "--frames", String(iterations)]
        let output = Pipe()
        process.standardOutput = output
        do { try process.run() } catch { throw ValidationError("cannot run \(python) \(script): \(error)") }
        process.waitUntilExit()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        guard process.terminationStatus == 0,
              let line = String(data: data, encoding: .utf8)?.split(separator: "\n").last,
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let ortP50 = (object["p50_us"] as? NSNumber)?.doubleValue, let ortP99 = (object["p99_us"] as? NSNumber)?.doubleValue else {
            throw ValidationError("\(script) did not report p50_us/p99_us (is onnxruntime installed? make deps)")
        }
        print(String(format: "  onnxruntime %@ (Python, 1 thread): p50 %.0f µs, p99 %.0f µs per frame (network only)",
                     (object["version"] as? String ?? "?") as NSString, ortP50, ortP99))
        print(String(format: "  ratio onnxruntime / Sono: p50 %.2f×, p99 %.2f× (> 1: Sono is faster)",
                     ortP50 / Double(p50), ortP99 / Double(p99)))
    }
}

/// The quality side of `classify --eval`, on a data set with true quality per view.
///
/// - View accuracy on clear frames: those whose best true quality is at least 0.5 (the hard
///   label `view` is that view) or whose every true quality is below 0.2 (OTHER); the frames in
///   between have no clear answer.
/// - Quality MAE over the (frame, view) pairs where the true or the predicted quality is at
///   least 0.1 (the many pairs where both are about 0 would only dilute it).
/// - Precision of "diagnostic": of the pairs with a predicted quality at least 0.7 (the
///   planner's line), the share whose true quality is at least 0.7; and its recall.
struct QualityScore {
    static let clearView = 0.5, clearOther = 0.2, pairFloor = 0.1, diagnostic = 0.7

    var clearFrames = 0, clearCorrect = 0
    var pairs = 0, absoluteError = 0.0
    var predictedDiagnostic = 0, trulyDiagnostic = 0, bothDiagnostic = 0

    mutating func add(trueQuality: [Double], correct: Bool, pairs frame: [(truth: Double, predicted: Double)]) {
        let best = trueQuality.max() ?? 0
        if best >= Self.clearView || best < Self.clearOther {
            clearFrames += 1
            if correct { clearCorrect += 1 }
        }
        for pair in frame {
            if pair.truth >= Self.pairFloor || pair.predicted >= Self.pairFloor {
                pairs += 1
                absoluteError += abs(pair.predicted - pair.truth)
            }
            let predicted = pair.predicted >= Self.diagnostic, truly = pair.truth >= Self.diagnostic
            if predicted { predictedDiagnostic += 1 }
            if truly { trulyDiagnostic += 1 }
            if predicted && truly { bothDiagnostic += 1 }
        }
    }

    var clearAccuracy: Double? { clearFrames > 0 ? Double(clearCorrect) / Double(clearFrames) : nil }
    var meanAbsoluteError: Double? { pairs > 0 ? absoluteError / Double(pairs) : nil }
    var diagnosticPrecision: Double? { predictedDiagnostic > 0 ? Double(bothDiagnostic) / Double(predictedDiagnostic) : nil }
    var diagnosticRecall: Double? { trulyDiagnostic > 0 ? Double(bothDiagnostic) / Double(trulyDiagnostic) : nil }

    var text: String {
        func percent(_ value: Double?) -> String { value.map { String(format: "%.2f%%", $0 * 100) } ?? "-" }
        return "view accuracy on clear frames (true best q ≥ 0.5, or every q < 0.2): "
            + "\(percent(clearAccuracy)) (\(clearCorrect)/\(clearFrames))\n"
            + "quality MAE: \(meanAbsoluteError.map { String(format: "%.3f", $0) } ?? "-") over \(pairs) (frame, view) pairs "
            + "with true or predicted q ≥ 0.1\n"
            + "diagnostic (predicted q ≥ 0.7): precision \(percent(diagnosticPrecision)) (\(bothDiagnostic)/\(predictedDiagnostic) "
            + "truly ≥ 0.7), recall \(percent(diagnosticRecall)) (\(bothDiagnostic)/\(trulyDiagnostic))"
    }

    /// The same as JSON fields (null where there was nothing to score).
    var jsonFields: String {
        func number(_ value: Double?) -> String { value.map { String(format: "%.5f", $0) } ?? "null" }
        return "\"clear_frames\": \(clearFrames), \"clear_accuracy\": \(number(clearAccuracy)), "
            + "\"quality_pairs\": \(pairs), \"quality_mae\": \(number(meanAbsoluteError)), "
            + "\"diagnostic_predicted\": \(predictedDiagnostic), \"diagnostic_precision\": \(number(diagnosticPrecision)), "
            + "\"diagnostic_true\": \(trulyDiagnostic), \"diagnostic_recall\": \(number(diagnosticRecall))"
    }
}
