import Foundation
import SonoImaging
@testable import SonoVision
import SonoTestSupport
import Synchronization
import Testing

/// Small ONNX models built in code, to check loading, the contract and the errors.
enum TestModel {
    static let labels = "PLAX,PSAX,A4C,A2C,SC4C,OTHER"

    static func tensor(_ name: String, _ dims: [Int], _ values: [Float]) -> Onnx_TensorProto {
        var tensor = Onnx_TensorProto()
        tensor.name = name
        tensor.dims = dims.map(Int64.init)
        tensor.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        tensor.floatData = values
        return tensor
    }

    static func node(_ op: String, _ name: String, _ inputs: [String], _ outputs: [String],
                     ints: [String: [Int]] = [:], int: [String: Int] = [:]) -> Onnx_NodeProto {
        var node = Onnx_NodeProto()
        node.opType = op
        node.name = name
        node.input = inputs
        node.output = outputs
        for (key, values) in ints {
            var attribute = Onnx_AttributeProto()
            attribute.name = key
            attribute.type = .ints
            attribute.ints = values.map(Int64.init)
            node.attribute.append(attribute)
        }
        for (key, value) in int {
            var attribute = Onnx_AttributeProto()
            attribute.name = key
            attribute.type = .int
            attribute.i = Int64(value)
            node.attribute.append(attribute)
        }
        return node
    }

    static func valueInfo(_ name: String, _ dims: [Int]) -> Onnx_ValueInfoProto {
        var info = Onnx_ValueInfoProto()
        info.name = name
        var type = Onnx_TypeProto.Tensor()
        type.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        for dim in dims {
            var d = Onnx_TensorShapeProto.Dimension()
            d.dimValue = Int64(dim)
            type.shape.dim.append(d)
        }
        info.type.tensorType = type
        return info
    }

    /// conv (2 filters: sum of the 3×3 window, and its negative) → BN → ReLU → global average
    /// pool → flatten → Gemm to 6 logits. Every value is known in closed form.
    static func model(size: Int = 16, nodes extra: [Onnx_NodeProto] = [], replace: [Onnx_NodeProto]? = nil,
                      metadata: [String: String]? = nil, inputDims: [Int]? = nil) -> Onnx_ModelProto {
        var graph = Onnx_GraphProto()
        graph.name = "test"
        graph.initializer = [
            tensor("w", [2, 1, 3, 3], Array(repeating: 1, count: 9) + Array(repeating: -1, count: 9)),
            tensor("b", [2], [0.5, 0.5]),
            tensor("gamma", [2], [2, 1]), tensor("beta", [2], [0.1, 0]),
            tensor("mean", [2], [1, 0]), tensor("var", [2], [4 - 1e-5, 1 - 1e-5]),
            tensor("fc", [6, 2], [1, 0, 0, 1, 1, 1, 2, 0, 0, 2, -1, 0]),
            tensor("fcb", [6], [0, 0, 0, 0, 0, 1]),
        ]
        graph.node = replace ?? [
            node("Conv", "conv1", ["frame", "w", "b"], ["c"], ints: ["kernel_shape": [3, 3], "pads": [1, 1, 1, 1]]),
            node("BatchNormalization", "bn1", ["c", "gamma", "beta", "mean", "var"], ["n"]),
            node("Relu", "relu1", ["n"], ["r"]),
            node("GlobalAveragePool", "gap", ["r"], ["g"]),
            node("Flatten", "flatten", ["g"], ["f"]),
            node("Gemm", "fc", ["f", "fc", "fcb"], ["logits"], int: ["transB": 1]),
        ] + extra
        graph.input = [valueInfo("frame", inputDims ?? [1, 1, size, size])]
        graph.output = [valueInfo("logits", [1, 6])]
        var model = Onnx_ModelProto()
        model.irVersion = 8
        var opset = Onnx_OperatorSetIdProto()
        opset.version = 17
        model.opsetImport = [opset]
        model.producerName = "SonoVisionTests"
        model.graph = graph
        for (key, value) in metadata ?? ["sono.labels": labels, "sono.input.size": "\(size)", "sono.normalize.mean": "0",
                                         "sono.normalize.std": "1", "sono.resize": "bilinear-half-pixel"] {
            var entry = Onnx_StringStringEntryProto()
            entry.key = key
            entry.value = value
            model.metadataProps.append(entry)
        }
        return model
    }

    /// `model()` with the optional quality output: a Gemm from the pooled features `f` (2 values)
    /// to Q values, then (if `sigmoid`) a Sigmoid, as graph output `name`; `sono.quality.labels`
    /// set to `labels` unless nil.
    static func withQuality(_ base: Onnx_ModelProto = model(), labels: String?, weights: [Float], bias: [Float],
                            sigmoid: Bool = true, name: String = "quality") -> Onnx_ModelProto {
        var model = base
        let q = bias.count
        model.graph.initializer += [tensor("qw", [q, 2], weights), tensor("qb", [q], bias)]
        model.graph.node.append(node("Gemm", "quality_fc", ["f", "qw", "qb"], [sigmoid ? "qz" : name], int: ["transB": 1]))
        if sigmoid { model.graph.node.append(node("Sigmoid", "quality_sigmoid", ["qz"], [name])) }
        model.graph.output.append(valueInfo(name, [1, q]))
        if let labels { model.metadataProps.append(metadataEntry("sono.quality.labels", labels)) }
        return model
    }

    static func metadataEntry(_ key: String, _ value: String) -> Onnx_StringStringEntryProto {
        var entry = Onnx_StringStringEntryProto()
        entry.key = key
        entry.value = value
        return entry
    }

    /// The quality fixture (tools/vision/make_quality_fixture.py), and the same model with its
    /// quality head, output and key removed: a logits-only model that does not depend on which
    /// model is shipped.
    static let qualityFixture = Repository.url("Tests/SonoVisionTests/Fixtures/view-classifier-quality.onnx").path

    static func logitsOnly(_ withQuality: Onnx_ModelProto) -> Onnx_ModelProto {
        var model = withQuality
        model.graph.output.removeAll { $0.name == "quality" }
        model.metadataProps.removeAll { $0.key == "sono.quality.labels" }
        // Drop the nodes whose outputs nothing reads any more (the quality head), then their weights.
        while true {
            let read = Set(model.graph.node.flatMap(\.input) + model.graph.output.map(\.name))
            let before = model.graph.node.count
            model.graph.node.removeAll { node in !node.output.contains(where: read.contains) }
            if model.graph.node.count == before { break }
        }
        let read = Set(model.graph.node.flatMap(\.input))
        model.graph.initializer.removeAll { !read.contains($0.name) }
        return model
    }

    static func write(_ model: Onnx_ModelProto) throws -> String {
        let path = Temporary.path("model.onnx")
        try Data(model.serializedBytes() as [UInt8]).write(to: URL(fileURLWithPath: path))
        return path
    }
}

@Suite struct ModelLoadingTests {
    @Test func runsAKnownNetworkToItsClosedFormAnswer() throws {
        let path = try TestModel.write(TestModel.model())
        defer { try? FileManager.default.removeItem(atPath: path) }
        let classifier = try ViewClassifier(path: path)
        // A uniform frame of value v/255 with std 1, mean 0: x = v/255 everywhere.
        let v: UInt8 = 51
        let x = Float(v) / 255
        let pixels = [UInt8](repeating: v, count: 16 * 16)
        _ = try classifier.classify(pixels, width: 16, height: 16)
        // Conv with zero padding: interior windows sum 9x, edges 6x, corners 4x; + 0.5.
        // Mean over the 16×16 map: (196·9 + 56·6 + 4·4)/256 · x.
        let windowSum = Float(196 * 9 + 56 * 6 + 4 * 4) / 256
        // Channel 0: BN (c − 1)·2/2 + 0.1 then ReLU, per pixel; channel 1: ReLU(−s·x + 0.5).
        var channel0: Float = 0, channel1: Float = 0
        for (count, sum) in [(196, 9), (56, 6), (4, 4)] {
            let s = Float(sum) * x
            channel0 += Float(count) * max(0, (s + 0.5 - 1) + 0.1)
            channel1 += Float(count) * max(0, -s + 0.5)
        }
        channel0 /= 256
        channel1 /= 256
        let expected: [Float] = [channel0, channel1, channel0 + channel1, 2 * channel0, 2 * channel1, 1 - channel0]
        let logits = Array(classifier.logits)
        for (value, want) in zip(logits, expected) { #expect(abs(value - want) < 1e-5, "\(logits) vs \(expected)") }
        #expect(windowSum > 0)
        let probabilities = Array(classifier.probabilities)
        #expect(abs(probabilities.reduce(0, +) - 1) < 1e-5)
    }

    @Test func runsTheOtherOperatorsToTheirClosedFormAnswer() throws {
        // Two 1×1 convolutions (×2, ×3) added (5x), 4×4 average pool (stride 4), Reshape to 1×4, MatMul
        // with B[k][j] = j + 1 plus a constant Add of −j (a bias), then Softmax.
        var model = TestModel.model(size: 8)
        model.graph.initializer = [
            TestModel.tensor("w2", [1, 1, 1, 1], [2]), TestModel.tensor("w3", [1, 1, 1, 1], [3]),
            TestModel.tensor("B", [4, 6], (0..<4).flatMap { _ in (0..<6).map { Float($0 + 1) } }),
            TestModel.tensor("bias", [6], (0..<6).map { -Float($0) }),
        ]
        var shape = Onnx_TensorProto()
        shape.name = "shape"
        shape.dims = [2]
        shape.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        shape.int64Data = [1, -1]
        model.graph.initializer.append(shape)
        model.graph.node = [
            TestModel.node("Conv", "double", ["frame", "w2"], ["a"], ints: ["kernel_shape": [1, 1]]),
            TestModel.node("Conv", "triple", ["frame", "w3"], ["b"], ints: ["kernel_shape": [1, 1]]),
            TestModel.node("Add", "sum", ["a", "b"], ["s"]),
            TestModel.node("AveragePool", "pool", ["s"], ["p"], ints: ["kernel_shape": [4, 4], "strides": [4, 4]]),
            TestModel.node("Reshape", "reshape", ["p", "shape"], ["r"]),
            TestModel.node("MatMul", "project", ["r", "B"], ["m"]),
            TestModel.node("Add", "bias", ["m", "bias"], ["z"]),
            TestModel.node("Softmax", "softmax", ["z"], ["logits"]),
        ]
        let path = try TestModel.write(model)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let classifier = try ViewClassifier(path: path)
        let v: UInt8 = 10
        let x = Float(v) / 255
        _ = try classifier.classify([UInt8](repeating: v, count: 64), width: 8, height: 8)
        let z = (0..<6).map { 20 * x * Float($0 + 1) - Float($0) }
        let largest = z.max() ?? 0
        let exps = z.map { expf($0 - largest) }
        let expected = exps.map { $0 / exps.reduce(0, +) }
        let output = Array(classifier.logits)
        for (value, want) in zip(output, expected) { #expect(abs(value - want) < 1e-6, "\(output) vs \(expected)") }
    }

    @Test func anUnsupportedOperatorIsALoadErrorNamingTheNode() throws {
        var model = TestModel.model()
        model.graph.node[2] = TestModel.node("LeakyRelu", "encoder/act", ["n"], ["r"])
        let path = try TestModel.write(model)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: ModelError.unsupportedOperator(node: "encoder/act", op: "LeakyRelu")) { try ViewClassifier(path: path) }
        let message = "\(ModelError.unsupportedOperator(node: "encoder/act", op: "LeakyRelu"))"
        #expect(message.contains("encoder/act") && message.contains("LeakyRelu") && message.contains("Conv"))
    }

    @Test func aShapeMismatchIsALoadErrorNamingTheNode() throws {
        var model = TestModel.model()
        model.graph.initializer[6] = TestModel.tensor("fc", [6, 3], Array(repeating: 1, count: 18))
        let path = try TestModel.write(model)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { try ViewClassifier(path: path) } throws: { error in
            guard case ModelError.shapeMismatch(let node, _) = error else { return false }
            return node == "fc"
        }
    }

    /// Sizes a hostile model file states, each refused with the tensor or node it names before
    /// anything is sized by it: the onnx-model fuzz target's input (a constant whose dims
    /// multiply past 2^63), a constant or an activation above 2^26 values, integer attributes
    /// and Reshape targets that would overflow the shape arithmetic.
    @Test func sizesFromTheFileAreBoundedBeforeUse() throws {
        #expect { try ViewClassifier(path: Repository.path("Fuzz/regressions/onnx-model/constant-dims-product-overflows")) } throws: { error in
            guard case ModelError.badTensor(_, let reason) = error else { return false }
            return reason.contains("more than the \(TensorSize.maxElements) values")
        }
        var huge = TestModel.model()
        huge.graph.initializer[1] = TestModel.tensor("b", [1 << 20, 1 << 20, 1 << 30], [])
        var tooManyChannels = TestModel.model(size: 1024)  // 128 channels of 1024²: 2^27 values
        tooManyChannels.graph.initializer[0] = TestModel.tensor("w", [128, 1, 3, 3], Array(repeating: 0, count: 128 * 9))
        tooManyChannels.graph.initializer[1] = TestModel.tensor("b", [128], Array(repeating: 0, count: 128))
        var pads = TestModel.model()
        pads.graph.node[0] = TestModel.node("Conv", "conv1", ["frame", "w", "b"], ["c"], ints: ["kernel_shape": [3, 3], "pads": [Int.max, 1, 1, 1]])
        var strides = TestModel.model()
        strides.graph.node[0] = TestModel.node("Conv", "conv1", ["frame", "w", "b"], ["c"], ints: ["strides": [1 << 40, 1]])
        var group = TestModel.model()
        group.graph.node[0] = TestModel.node("Conv", "conv1", ["frame", "w", "b"], ["c"], int: ["group": Int.min])
        var reshape = TestModel.model()
        reshape.graph.initializer.append(TestModel.tensor("shape", [3], [1, 1e30, .nan]))
        reshape.graph.node[4] = TestModel.node("Reshape", "flatten", ["g", "shape"], ["f"])
        let cases: [(String, Onnx_ModelProto, (ModelError) -> Bool)] = [
            ("constant of 2^70 values", huge, { if case .badTensor("b", _) = $0 { true } else { false } }),
            ("128 channels of 1024×1024", tooManyChannels, { if case .shapeMismatch("conv1", let reason) = $0 { reason.contains("would hold more") } else { false } }),
            ("pads of Int.max", pads, { if case .unsupportedAttribute("conv1", _, "pads", _) = $0 { true } else { false } }),
            ("strides of 2^40", strides, { if case .unsupportedAttribute("conv1", _, "strides", _) = $0 { true } else { false } }),
            ("group of Int.min", group, { if case .unsupportedAttribute("conv1", _, "group", _) = $0 { true } else { false } }),
            ("Reshape to 1e30 and NaN", reshape, { if case .shapeMismatch("flatten", let reason) = $0 { reason.contains("no dimension") } else { false } }),
        ]
        for (name, model, expected) in cases {
            let path = try TestModel.write(model)
            defer { try? FileManager.default.removeItem(atPath: path) }
            #expect(Comment(rawValue: name)) { try ViewClassifier(path: path) } throws: { error in
                guard let error = error as? ModelError else { return false }
                return expected(error)
            }
        }
    }

    @Test func theContractIsCheckedKeyByKey() throws {
        let cases: [([String: String]?, [Int]?, String)] = [
            (["sono.input.size": "16", "sono.normalize.mean": "0", "sono.normalize.std": "1"], nil, "sono.labels"),
            (["sono.labels": TestModel.labels, "sono.input.size": "16", "sono.normalize.mean": "0", "sono.normalize.std": "0"],
             nil, "sono.normalize.std"),
            (["sono.labels": "A,A", "sono.input.size": "16", "sono.normalize.mean": "0", "sono.normalize.std": "1"], nil, "sono.labels"),
            (nil, [1, 3, 16, 16], "input shape"),
            (["sono.labels": "A,B,C", "sono.input.size": "16", "sono.normalize.mean": "0", "sono.normalize.std": "1"], nil, "output"),
        ]
        for (metadata, dims, key) in cases {
            let path = try TestModel.write(TestModel.model(metadata: metadata, inputDims: dims))
            defer { try? FileManager.default.removeItem(atPath: path) }
            #expect { try ViewClassifier(path: path) } throws: { error in
                guard case ModelError.contract(let failed, _) = error else { return false }
                return failed == key
            }
        }
    }

    @Test func notAModelIsAClearError() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sono-not-a-model.onnx").path
        try Data("this is not protobuf".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { try ViewClassifier(path: path) } throws: { error in
            if case ModelError.notONNX(let failed, _) = error { failed == path } else { false }
        }
        #expect(throws: ModelError.self) { try ViewClassifier(path: "/nonexistent/model.onnx") }
    }

    @Test func aFrameTooSmallForItsSizeIsRefused() throws {
        let path = try TestModel.write(TestModel.model())
        defer { try? FileManager.default.removeItem(atPath: path) }
        let classifier = try ViewClassifier(path: path)
        #expect(throws: ModelError.self) { try classifier.classify([UInt8](repeating: 0, count: 10), width: 16, height: 16) }
    }

    /// Loads `model` and expects a contract error for `key` whose message contains `mentions`.
    func expectRefusal(_ model: Onnx_ModelProto, key: String, mentions: [String],
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let path = try TestModel.write(model)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(sourceLocation: sourceLocation) { try ViewClassifier(path: path) } throws: { error in
            guard case ModelError.contract(let failed, _) = error, failed == key else { return false }
            let message = "\(error)"
            return mentions.allSatisfy { message.contains($0) }
        }
    }

    /// The daemon loads the model on one thread and classifies on another: the thread that runs
    /// it must keep to the classifier's thread count (OpenMP's limit is per thread).
    @Test func inferenceKeepsItsThreadCountOnAnotherThread() throws {
        let path = try TestModel.write(TestModel.model())
        defer { try? FileManager.default.removeItem(atPath: path) }
        // Handed to the other thread once, used there alone (as the daemon hands it to sono-frames).
        final class Handover: @unchecked Sendable { let classifier: ViewClassifier; init(_ c: ViewClassifier) { classifier = c } }
        let handover = Handover(try ViewClassifier(path: path, threads: 1))
        let result = Mutex<(before: Int, after: Int, error: Bool)>((0, 0, false))
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            let before = InferenceEngine.callingThreadLimit
            let failed = (try? handover.classifier.classify([UInt8](repeating: 90, count: 16 * 16), width: 16, height: 16)) == nil
            result.withLock { $0 = (before, InferenceEngine.callingThreadLimit, failed) }
            done.signal()
        }
        thread.start()
        done.wait()
        let seen = result.withLock { $0 }
        #expect(!seen.error)
        #expect(seen.before != 1 || ProcessInfo.processInfo.activeProcessorCount == 1, "the premise: a fresh thread may use every core")
        #expect(seen.after == 1, "a fresh thread's OpenMP limit was \(seen.before); after classifying, \(seen.after)")
    }

    @Test func theQualityOutputRunsToItsClosedFormAnswerPerLabel() throws {
        // Quality labels out of label order: A4C (index 2) from channel 0, PLAX (index 0) from 0.5 − channel 1.
        let model = TestModel.withQuality(labels: "A4C, PLAX", weights: [1, 0, 0, -1], bias: [0, 0.5])
        let path = try TestModel.write(model)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let classifier = try ViewClassifier(path: path)
        #expect(classifier.hasQuality)
        #expect(classifier.qualityLabels == ["A4C", "PLAX"] && classifier.contract.qualityLabels == ["A4C", "PLAX"])
        let plainPath = try TestModel.write(TestModel.model())
        defer { try? FileManager.default.removeItem(atPath: plainPath) }
        let plain = try ViewClassifier(path: plainPath)
        for v: UInt8 in [0, 51, 200] {
            let pixels = [UInt8](repeating: v, count: 16 * 16)
            _ = try classifier.classify(pixels, width: 16, height: 16)
            _ = try plain.classify(pixels, width: 16, height: 16)
            // The same network's logits with and without the second head.
            #expect(Array(classifier.logits) == Array(plain.logits))
            let x = Float(v) / 255
            var channel0: Float = 0, channel1: Float = 0
            for (count, sum) in [(196, 9), (56, 6), (4, 4)] {
                let s = Float(sum) * x
                channel0 += Float(count) * max(0, (s + 0.5 - 1) + 0.1)
                channel1 += Float(count) * max(0, -s + 0.5)
            }
            channel0 /= 256
            channel1 /= 256
            func sigmoid(_ z: Float) -> Float { 1 / (1 + expf(-z)) }
            let expected: [Float] = [sigmoid(0.5 - channel1), 0, sigmoid(channel0), 0, 0, 0]
            let quality = Array(classifier.quality)
            for (value, want) in zip(quality, expected) { #expect(abs(value - want) < 1e-6, "\(quality) vs \(expected)") }
        }
    }

    @Test func qualityIsClampedToTheUnitIntervalAndNonFiniteIsZero() throws {
        // No Sigmoid: SC4C far above 1, PSAX far below 0, A2C infinite (or NaN where channel 0 is 0).
        let model = TestModel.withQuality(labels: "SC4C,PSAX,A2C", weights: [10, 10, -10, -10, .infinity, 0],
                                          bias: [5, -5, 0], sigmoid: false)
        let path = try TestModel.write(model)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let classifier = try ViewClassifier(path: path)
        for v: UInt8 in [0, 200] {
            _ = try classifier.classify([UInt8](repeating: v, count: 16 * 16), width: 16, height: 16)
            #expect(Array(classifier.quality) == [0, 0, 0, 0, 1, 0], "\(Array(classifier.quality))")
        }
    }

    @Test func aLogitsOnlyModelLoadsAndClassifiesWithoutQuality() throws {
        // The quality fixture with its head removed, so the test holds whichever model is shipped.
        let fixture = try Onnx_ModelProto(serializedBytes: Data(contentsOf: URL(fileURLWithPath: TestModel.qualityFixture)))
        let logitsOnly = TestModel.logitsOnly(fixture)
        #expect(logitsOnly.graph.output.map(\.name) == ["logits"])
        #expect(!logitsOnly.graph.node.contains { $0.opType == "Sigmoid" })
        let path = try TestModel.write(logitsOnly)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let plain = try ViewClassifier(path: path)
        let full = try ViewClassifier(path: TestModel.qualityFixture)
        #expect(!plain.hasQuality && plain.qualityLabels.isEmpty && plain.contract.qualityLabels.isEmpty)
        #expect(full.hasQuality && full.qualityLabels == ["PLAX", "PSAX", "A4C", "A2C", "SC4C"])
        for name in ["default_a4c.png", "obese_a4c_256.png"] {
            let frame = try PNG.readGray8(path: Repository.url("Tests/SonoVisionTests/Fixtures/\(name)").path)
            let prediction = try plain.classify(frame.pixels, width: frame.width, height: frame.height)
            let withQuality = try full.classify(frame.pixels, width: frame.width, height: frame.height)
            #expect(prediction.labelIndex == withQuality.labelIndex && abs(prediction.confidence - withQuality.confidence) <= 1e-6)
            for (a, b) in zip(Array(plain.logits), Array(full.logits)) { #expect(abs(a - b) <= 1e-6) }
            #expect(plain.quality.allSatisfy { $0 == 0 })
            // The fixture's quality: in [0, 1], 0 for OTHER, not all 0.
            #expect(full.quality.allSatisfy { (0...1).contains($0) } && full.quality[5] == 0)
            #expect(full.quality.contains { $0 > 0 })
        }
    }

    @Test func aQualityOutputWithoutItsLabelsIsRefused() throws {
        try expectRefusal(TestModel.withQuality(labels: nil, weights: [1, 0], bias: [0]),
                          key: "sono.quality.labels", mentions: ["sono.quality.labels", "missing"])
        // And the key without the output.
        var model = TestModel.model()
        model.metadataProps.append(TestModel.metadataEntry("sono.quality.labels", "PLAX"))
        try expectRefusal(model, key: "sono.quality.labels", mentions: ["sono.quality.labels", "no output named quality"])
    }

    @Test func qualityLabelsMustMatchTheOutputAndTheLabels() throws {
        // Two labels for three values.
        try expectRefusal(TestModel.withQuality(labels: "PLAX,PSAX", weights: [1, 0, 0, 1, 1, 1], bias: [0, 0, 0]),
                          key: "sono.quality.labels", mentions: ["lists 2 labels", "3 values"])
        // A label that is not one of sono.labels.
        try expectRefusal(TestModel.withQuality(labels: "PLAX,A5C", weights: [1, 0, 0, 1], bias: [0, 0]),
                          key: "sono.quality.labels", mentions: ["'A5C'", "not one of sono.labels"])
        // The same label twice, or an empty one.
        try expectRefusal(TestModel.withQuality(labels: "PLAX,PLAX", weights: [1, 0, 0, 1], bias: [0, 0]),
                          key: "sono.quality.labels", mentions: ["distinct"])
        try expectRefusal(TestModel.withQuality(labels: "PLAX,", weights: [1, 0, 0, 1], bias: [0, 0]),
                          key: "sono.quality.labels", mentions: ["non-empty"])
    }

    @Test func outputsOtherThanLogitsAndQualityAreRefused() throws {
        // A second output named something else.
        try expectRefusal(TestModel.withQuality(labels: "PLAX", weights: [1, 0], bias: [0], name: "scores"),
                          key: "output 'scores'", mentions: ["'scores'", "must be named quality"])
        // Two outputs, neither named logits.
        var renamed = TestModel.withQuality(labels: "PLAX", weights: [1, 0], bias: [0])
        renamed.graph.node[5].output = ["scores"]
        renamed.graph.output[0].name = "scores"
        try expectRefusal(renamed, key: "outputs", mentions: ["logits", "'scores', 'quality'"])
        // Three outputs.
        var three = TestModel.withQuality(labels: "PLAX", weights: [1, 0], bias: [0])
        three.graph.output.append(TestModel.valueInfo("f", [1, 2]))
        try expectRefusal(three, key: "outputs", mentions: ["got 3", "'logits', 'quality', 'f'"])
    }

    @Test func resizingMatchesHalfPixelBilinear() {
        // 4 → 2: each output samples at 0.5 + 2i − 0.5 = 2i + 0.5 → between pixels 2i and 2i + 1.
        let table = Preprocessor.table(source: 4, destination: 2)
        #expect(table.map(\.0) == [0, 2] && table.map(\.1) == [1, 3] && table.map(\.2) == [0.5, 0.5])
        // 2 → 4: positions −0.25 (clamped to 0), 0.25, 0.75, 1.25 (both taps on the last pixel).
        let up = Preprocessor.table(source: 2, destination: 4)
        #expect(up.map(\.0) == [0, 0, 0, 1] && up.map(\.1) == [1, 1, 1, 1])
        #expect(up.map(\.2) == [0, 0.25, 0.75, 0.25])
    }
}

@Suite struct PreprocessorTests {
    @Test func theCropSelectsThePartOfTheFrameTheModelSees() throws {
        var metadata = ["sono.labels": "A,B", "sono.input.size": "8", "sono.normalize.mean": "0",
                        "sono.normalize.std": "1", "sono.crop": "0,0,0.5,1"]
        let contract = try ModelContract(metadata: metadata, inputShape: [1, 1, 8, 8])
        var preprocessor = Preprocessor(contract: contract)
        // Left half black, right half white: the crop sees black only.
        var frame = [UInt8](repeating: 0, count: 32 * 16)
        for y in 0..<16 { for x in 16..<32 { frame[y * 32 + x] = 255 } }
        let input = UnsafeMutablePointer<Float>.allocate(capacity: 64)
        defer { input.deallocate() }
        try frame.withUnsafeBufferPointer { try preprocessor.convert($0, width: 32, height: 16, into: input) }
        #expect((0..<64).allSatisfy { input[$0] == 0 })
        metadata["sono.crop"] = "0.5,0,1,1"
        var right = Preprocessor(contract: try ModelContract(metadata: metadata, inputShape: [1, 1, 8, 8]))
        try frame.withUnsafeBufferPointer { try right.convert($0, width: 32, height: 16, into: input) }
        #expect((0..<64).allSatisfy { abs(input[$0] - 1) < 1e-6 })
        metadata["sono.crop"] = "0.6,0,0.4,1"
        #expect(throws: ModelError.self) { try ModelContract(metadata: metadata, inputShape: [1, 1, 8, 8]) }
    }
}

@Suite struct TemporalSmootherTests {
    @Test func followsTheViewHeldOverTheWindowNotSingleFrames() {
        var smoother = TemporalSmoother(labels: ["A", "B"], window: 10)
        let a: [Float] = [0.9, 0.1], b: [Float] = [0.2, 0.8]
        for _ in 0..<10 { a.withUnsafeBufferPointer { _ = smoother.add($0) } }
        #expect(smoother.current?.label == "A" && smoother.stableFrames == 10)
        // One odd frame does not flip it.
        let flipped = b.withUnsafeBufferPointer { smoother.add($0) }
        #expect(flipped.label == "A")
        #expect(abs(flipped.confidence - (0.9 * 9 + 0.2) / 10) < 1e-6)
        // A sustained change does.
        for _ in 0..<8 { b.withUnsafeBufferPointer { _ = smoother.add($0) } }
        #expect(smoother.current?.label == "B")
        #expect(smoother.stableFrames < 9)
        smoother.reset()
        #expect(smoother.current == nil && smoother.filled == 0)
    }
}
