import Foundation

/// One frame's classification: the most likely label and its probability.
public struct ViewPrediction: Sendable, Equatable {
    public var labelIndex: Int
    public var label: String
    public var confidence: Float
}

/// The view classifier: an ONNX model checked against Sono's model contract, run by oneDNN.
/// `classify` converts a frame into the model input, runs the network, turns the logits into
/// probabilities and, when the model has the optional `quality` output, spreads its values over
/// the labels, all in buffers allocated at load. One classifier per thread.
public final class ViewClassifier {
    public let contract: ModelContract
    public let path: String
    /// Producer and opset of the file, for the model card and `sonoctl`.
    public let producer: String
    public let opset: Int
    private let engine: InferenceEngine
    private var preprocessor: Preprocessor
    private let probabilityBuffer: UnsafeMutableBufferPointer<Float>
    /// Predicted quality per label (label order, 0 for labels the model has no quality for).
    private let qualityBuffer: UnsafeMutableBufferPointer<Float>
    /// For each value of the quality output, in output order, the index of its label in `labels`;
    /// empty without a quality output.
    private let qualityIndices: [Int]

    /// Loads and checks `path`; `threads` is the number of CPU threads inference may use.
    public init(path: String, threads: Int = 1) throws(ModelError) {
        let graph = try ONNXGraph.load(path: path)
        contract = try ModelContract(metadata: graph.metadata, inputShape: graph.inputShape,
                                     hasQualityOutput: graph.qualityOutputName != nil)
        let plan = try Lowering.plan(graph, inputSize: contract.inputSize)
        guard let outputShape = plan.shapes[plan.output], outputShape.reduce(1, *) == contract.labels.count else {
            throw .contract(key: "output", reason: "must be logits over the \(contract.labels.count) labels (got \(plan.shapes[plan.output] ?? []))")
        }
        if let quality = plan.quality {
            let count = plan.shapes[quality]?.reduce(1, *) ?? 0
            guard count == contract.qualityLabels.count else {
                throw .contract(key: ModelContract.qualityLabelsKey,
                                reason: "lists \(contract.qualityLabels.count) labels but the quality output has \(count) values (shape \(plan.shapes[quality] ?? []))")
            }
        }
        let labels = contract.labels
        qualityIndices = contract.qualityLabels.map { labels.firstIndex(of: $0)! }  // ModelContract checked each is a label
        engine = try InferenceEngine(plan: plan, threads: threads)
        preprocessor = Preprocessor(contract: contract)
        probabilityBuffer = .allocate(capacity: contract.labels.count)
        probabilityBuffer.initialize(repeating: 0)
        qualityBuffer = .allocate(capacity: contract.labels.count)
        qualityBuffer.initialize(repeating: 0)
        self.path = path
        producer = graph.producer
        opset = graph.opset
    }

    deinit {
        probabilityBuffer.deallocate()
        qualityBuffer.deallocate()
    }

    /// Whether the model has the optional `quality` output (models/README.md).
    public var hasQuality: Bool { engine.qualityOutput != nil }

    /// The labels the model predicts a quality for (`sono.quality.labels`, in the model's output
    /// order); empty when `hasQuality` is false.
    public var qualityLabels: [String] { contract.qualityLabels }

    /// The predicted diagnostic quality of the last `classify` as each label, in label order
    /// (0 for labels without one, such as OTHER, and for every label when `hasQuality` is false).
    public var quality: UnsafeBufferPointer<Float> { UnsafeBufferPointer(qualityBuffer) }

    public var labels: [String] { contract.labels }

    /// The probabilities of the last `classify`, in label order.
    public var probabilities: UnsafeBufferPointer<Float> { UnsafeBufferPointer(probabilityBuffer) }

    /// The raw logits of the last `classify`.
    public var logits: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: engine.output, count: engine.outputCount) }

    /// Converts a frame into the model's input (crop, resize, normalise) without running the
    /// network; `classify` does this first. Public so that its cost can be measured alone.
    public func prepare(_ pixels: UnsafeBufferPointer<UInt8>, width: Int, height: Int) throws(ModelError) {
        try preprocessor.convert(pixels, width: width, height: height, into: engine.input)
    }

    /// Classifies one 8-bit grayscale frame of any size.
    @discardableResult
    public func classify(_ pixels: UnsafeBufferPointer<UInt8>, width: Int, height: Int) throws(ModelError) -> ViewPrediction {
        try prepare(pixels, width: width, height: height)
        try engine.run()
        // Softmax, stabilised by the largest logit.
        let logits = engine.output
        var largest = -Float.infinity
        for index in 0..<probabilityBuffer.count { largest = max(largest, logits[index]) }
        var sum: Float = 0
        for index in 0..<probabilityBuffer.count {
            let value = expf(logits[index] - largest)
            probabilityBuffer[index] = value
            sum += value
        }
        var best = 0
        for index in 0..<probabilityBuffer.count {
            probabilityBuffer[index] /= sum
            if probabilityBuffer[index] > probabilityBuffer[best] { best = index }
        }
        // Quality: already a Sigmoid in the graph; kept finite and in [0, 1] whatever the model does.
        if let quality = engine.qualityOutput {
            for (position, label) in qualityIndices.enumerated() {
                let value = quality[position]
                qualityBuffer[label] = value.isFinite ? min(max(value, 0), 1) : 0
            }
        }
        return ViewPrediction(labelIndex: best, label: contract.labels[best], confidence: probabilityBuffer[best])
    }

    public func classify(_ pixels: [UInt8], width: Int, height: Int) throws(ModelError) -> ViewPrediction {
        let result = pixels.withUnsafeBufferPointer { buffer in
            Result { () throws(ModelError) in try classify(buffer, width: width, height: height) }
        }
        return try result.get()
    }

    /// The model input of the last frame (for parity checks).
    var input: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: engine.input, count: engine.inputCount) }
}
