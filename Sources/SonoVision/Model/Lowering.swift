/// The graph lowered to the steps the inference engine runs, with every shape known at load
/// time and the usual inference-time fusions done once: BatchNormalization folded into the
/// preceding convolution's weights, Relu fused into the step before it, a constant Add after
/// MatMul taken as its bias. Anything else is refused here, naming the node.
struct ExecutionPlan: Sendable {
    enum PoolKind: Sendable, Equatable { case max, averageIncludingPadding, averageExcludingPadding }

    struct Convolution: Sendable {
        var input: String, output: String
        var weights: ConstantTensor  // [O, I/groups, kH, kW]
        var bias: [Float]
        var strides: [Int], padsBegin: [Int], padsEnd: [Int], dilations: [Int]  // oneDNN dilation: ONNX − 1
        var groups: Int
        var relu = false
    }

    struct Pooling: Sendable {
        var input: String, output: String
        var kind: PoolKind
        var kernel: [Int], strides: [Int], padsBegin: [Int], padsEnd: [Int]
    }

    struct InnerProduct: Sendable {
        var input: String, output: String
        var weights: ConstantTensor  // [N, K]
        var bias: [Float]
        var relu = false
    }

    enum Step: Sendable {
        case convolution(Convolution)
        case pooling(Pooling)
        case innerProduct(InnerProduct)
        case add(a: String, b: String, output: String, relu: Bool)
        case relu(input: String, output: String)
        /// Logistic function 1 / (1 + e^−x), element-wise.
        case sigmoid(input: String, output: String)
        /// Same elements, new dimensions (plain row-major layout).
        case reshape(input: String, output: String)
        case softmax(input: String, output: String)

        var output: String {
            switch self {
            case .convolution(let c): c.output
            case .pooling(let p): p.output
            case .innerProduct(let i): i.output
            case .add(_, _, let output, _), .relu(_, let output), .sigmoid(_, let output), .reshape(_, let output),
                 .softmax(_, let output): output
            }
        }
    }

    var steps: [Step]
    /// Dimensions of every activation, by name.
    var shapes: [String: [Int]]
    var input: String
    /// The logits.
    var output: String
    /// The optional quality output (models/README.md).
    var quality: String?
}

enum Lowering {
    static let supportedOperators: Set<String> = [
        "Conv", "BatchNormalization", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "Gemm", "MatMul",
        "Add", "Flatten", "Reshape", "Softmax", "Sigmoid", "Identity", "Dropout",
    ]

    static func plan(_ graph: ONNXGraph, inputSize: Int) throws(ModelError) -> ExecutionPlan {
        var shapes: [String: [Int]] = [graph.inputName: [1, 1, inputSize, inputSize]]
        var aliases: [String: String] = [:]
        var steps: [ExecutionPlan.Step] = []
        // A graph output counts as a consumer: nothing is fused into the step that produces it
        // when another node reads it too.
        var consumers: [String: Int] = [graph.outputName: 1]
        if let quality = graph.qualityOutputName { consumers[quality, default: 0] += 1 }
        for node in graph.nodes { for input in node.inputs where !input.isEmpty { consumers[input, default: 0] += 1 } }

        func resolve(_ name: String) -> String { aliases[name] ?? name }
        func activation(_ node: GraphNode, _ index: Int) throws(ModelError) -> (String, [Int]) {
            guard index < node.inputs.count else { throw .shapeMismatch(node: node.name, reason: "input \(index) is missing") }
            let name = resolve(node.inputs[index])
            guard let shape = shapes[name] else { throw .missingTensor(node: node.name, name: node.inputs[index]) }
            return (name, shape)
        }
        func constant(_ node: GraphNode, _ index: Int) throws(ModelError) -> ConstantTensor? {
            guard index < node.inputs.count, !node.inputs[index].isEmpty else { return nil }
            guard let tensor = graph.constants[node.inputs[index]] else {
                throw .unsupportedAttribute(node: node.name, op: node.op, attribute: "input \(index) '\(node.inputs[index])'",
                                            reason: "must be a constant (initializer)")
            }
            return tensor
        }
        /// The step that produced `name`, if its output feeds nothing else (so it may absorb a follower).
        func soleProducer(of name: String) -> Int? {
            guard consumers[name] == 1, name != graph.inputName else { return nil }
            return steps.lastIndex { $0.output == name }
        }

        for node in graph.nodes {
            guard node.domain.isEmpty || node.domain == "ai.onnx" else {
                throw .unsupportedOperator(node: node.name, op: "\(node.domain).\(node.op)")
            }
            guard let output = node.outputs.first, !output.isEmpty else {
                throw .shapeMismatch(node: node.name, reason: "it has no output")
            }
            switch node.op {
            case "Identity", "Dropout":
                let (input, shape) = try activation(node, 0)
                aliases[output] = input
                shapes[input] = shape

            case "Conv":
                let (input, shape) = try activation(node, 0)
                guard let weights = try constant(node, 1), weights.dims.count == 4 else {
                    throw .shapeMismatch(node: node.name, reason: "weights must be a constant 4-D tensor")
                }
                guard shape.count == 4 else { throw .shapeMismatch(node: node.name, reason: "input is \(shape), expected N×C×H×W") }
                let groups = try node.int("group", default: 1)
                guard groups >= 1, shape[1] % groups == 0, weights.dims[1] * groups == shape[1], weights.dims[0] % groups == 0 else {
                    throw .shapeMismatch(node: node.name, reason: "input has \(shape[1]) channels, weights \(weights.dims), group \(groups)")
                }
                let kernel = Array(weights.dims[2...])
                let (strides, begin, end, dilations) = try window(node, kernel: kernel, input: Array(shape[2...]))
                let bias = try constant(node, 2)?.values ?? [Float](repeating: 0, count: weights.dims[0])
                guard bias.count == weights.dims[0] else { throw .shapeMismatch(node: node.name, reason: "bias has \(bias.count) values for \(weights.dims[0]) channels") }
                var spatial: [Int] = []
                for axis in 0..<2 {
                    let extent = (kernel[axis] - 1) * dilations[axis] + 1
                    let size = (shape[2 + axis] + begin[axis] + end[axis] - extent) / strides[axis] + 1
                    guard size > 0 else { throw .shapeMismatch(node: node.name, reason: "output would be empty") }
                    spatial.append(size)
                }
                shapes[output] = [1, weights.dims[0]] + spatial
                steps.append(.convolution(.init(input: input, output: output, weights: weights, bias: bias, strides: strides,
                                                padsBegin: begin, padsEnd: end, dilations: dilations.map { $0 - 1 },
                                                groups: groups)))

            case "BatchNormalization":
                let (input, shape) = try activation(node, 0)
                guard let index = soleProducer(of: input), case .convolution(var conv) = steps[index], !conv.relu else {
                    throw .unsupportedAttribute(node: node.name, op: node.op, attribute: "placement",
                                                reason: "is supported only directly after a Conv whose output feeds nothing else (it is folded into it)")
                }
                guard let scale = try constant(node, 1), let shift = try constant(node, 2),
                      let mean = try constant(node, 3), let variance = try constant(node, 4) else {
                    throw .shapeMismatch(node: node.name, reason: "scale, B, mean and var must be constants")
                }
                let channels = shape[1]
                guard [scale, shift, mean, variance].allSatisfy({ $0.count == channels }) else {
                    throw .shapeMismatch(node: node.name, reason: "parameters must have \(channels) values")
                }
                let epsilon = try node.float("epsilon", default: 1e-5)
                let perChannel = conv.weights.count / channels
                for channel in 0..<channels {
                    let factor = scale.values[channel] / (variance.values[channel] + epsilon).squareRoot()
                    for k in 0..<perChannel { conv.weights.values[channel * perChannel + k] *= factor }
                    conv.bias[channel] = (conv.bias[channel] - mean.values[channel]) * factor + shift.values[channel]
                }
                conv.output = output
                steps[index] = .convolution(conv)
                shapes[output] = shape

            case "Relu":
                let (input, shape) = try activation(node, 0)
                shapes[output] = shape
                if let index = soleProducer(of: input) {
                    switch steps[index] {
                    case .convolution(var conv) where !conv.relu:
                        conv.relu = true
                        conv.output = output
                        steps[index] = .convolution(conv)
                        continue
                    case .innerProduct(var product) where !product.relu:
                        product.relu = true
                        product.output = output
                        steps[index] = .innerProduct(product)
                        continue
                    case .add(let a, let b, _, false):
                        steps[index] = .add(a: a, b: b, output: output, relu: true)
                        continue
                    default: break
                    }
                }
                steps.append(.relu(input: input, output: output))

            case "Sigmoid":
                let (input, shape) = try activation(node, 0)
                shapes[output] = shape
                steps.append(.sigmoid(input: input, output: output))

            case "MaxPool", "AveragePool":
                let (input, shape) = try activation(node, 0)
                guard shape.count == 4 else { throw .shapeMismatch(node: node.name, reason: "input is \(shape), expected N×C×H×W") }
                guard try node.int("ceil_mode", default: 0) == 0 else {
                    throw .unsupportedAttribute(node: node.name, op: node.op, attribute: "ceil_mode", reason: "must be 0")
                }
                guard try node.int("storage_order", default: 0) == 0 else {
                    throw .unsupportedAttribute(node: node.name, op: node.op, attribute: "storage_order", reason: "must be 0")
                }
                guard let kernel = try node.ints("kernel_shape"), kernel.count == 2, kernel.allSatisfy({ $0 > 0 }) else {
                    throw .unsupportedAttribute(node: node.name, op: node.op, attribute: "kernel_shape", reason: "must give two positive sizes")
                }
                let (strides, begin, end, dilations) = try window(node, kernel: kernel, input: Array(shape[2...]))
                guard dilations == [1, 1] else {
                    throw .unsupportedAttribute(node: node.name, op: node.op, attribute: "dilations", reason: "must be 1")
                }
                let kind: ExecutionPlan.PoolKind = node.op == "MaxPool" ? .max
                    : (try node.int("count_include_pad", default: 0) == 1 ? .averageIncludingPadding : .averageExcludingPadding)
                var spatial: [Int] = []
                for axis in 0..<2 {
                    let size = (shape[2 + axis] + begin[axis] + end[axis] - kernel[axis]) / strides[axis] + 1
                    guard size > 0 else { throw .shapeMismatch(node: node.name, reason: "output would be empty") }
                    spatial.append(size)
                }
                shapes[output] = [1, shape[1]] + spatial
                steps.append(.pooling(.init(input: input, output: output, kind: kind, kernel: kernel, strides: strides,
                                            padsBegin: begin, padsEnd: end)))

            case "GlobalAveragePool":
                let (input, shape) = try activation(node, 0)
                guard shape.count == 4 else { throw .shapeMismatch(node: node.name, reason: "input is \(shape), expected N×C×H×W") }
                shapes[output] = [1, shape[1], 1, 1]
                steps.append(.pooling(.init(input: input, output: output, kind: .averageExcludingPadding,
                                            kernel: [shape[2], shape[3]], strides: [1, 1], padsBegin: [0, 0], padsEnd: [0, 0])))

            case "Flatten":
                let (input, shape) = try activation(node, 0)
                var axis = try node.int("axis", default: 1)
                if axis < 0 { axis += shape.count }
                guard (0...shape.count).contains(axis) else {
                    throw .unsupportedAttribute(node: node.name, op: node.op, attribute: "axis", reason: "is outside the input's rank")
                }
                shapes[output] = [shape[..<axis].reduce(1, *), shape[axis...].reduce(1, *)]
                steps.append(.reshape(input: input, output: output))

            case "Reshape":
                let (input, shape) = try activation(node, 0)
                guard let target = try constant(node, 1) else {
                    throw .shapeMismatch(node: node.name, reason: "the shape must be a constant")
                }
                // The target's values come from the file: integers within a tensor's size, -1 or 0.
                guard target.values.allSatisfy({ $0 >= -1 && $0 <= Float(TensorSize.maxElements) && $0.rounded() == $0 }) else {
                    throw .shapeMismatch(node: node.name, reason: "the shape \(target.values) holds a value that is no dimension")
                }
                var dims = target.values.enumerated().map { index, value in value == 0 && index < shape.count ? shape[index] : Int(value) }
                let known = TensorSize.elements(dims.filter { $0 > 0 }) ?? 0
                let total = TensorSize.elements(shape) ?? 0
                if let unknown = dims.firstIndex(of: -1) { dims[unknown] = known > 0 ? total / known : 0 }
                guard dims.allSatisfy({ $0 > 0 }), TensorSize.elements(dims) == total else {
                    throw .shapeMismatch(node: node.name, reason: "cannot reshape \(shape) to \(target.values.map { Int($0) })")
                }
                shapes[output] = dims
                steps.append(.reshape(input: input, output: output))

            case "Gemm", "MatMul":
                let (input, shape) = try activation(node, 0)
                guard shape.count == 2, shape[0] == 1 else {
                    throw .shapeMismatch(node: node.name, reason: "input is \(shape); \(node.op) needs 1×K (add a Flatten)")
                }
                guard let b = try constant(node, 1), b.dims.count == 2 else {
                    throw .shapeMismatch(node: node.name, reason: "B must be a constant matrix")
                }
                if node.op == "Gemm" {
                    guard try node.int("transA", default: 0) == 0 else {
                        throw .unsupportedAttribute(node: node.name, op: node.op, attribute: "transA", reason: "must be 0")
                    }
                }
                let transB = node.op == "Gemm" ? try node.int("transB", default: 0) == 1 : false
                let (k, n) = transB ? (b.dims[1], b.dims[0]) : (b.dims[0], b.dims[1])
                guard k == shape[1] else { throw .shapeMismatch(node: node.name, reason: "input has \(shape[1]) features, B expects \(k)") }
                let alpha = node.op == "Gemm" ? try node.float("alpha", default: 1) : 1
                let beta = node.op == "Gemm" ? try node.float("beta", default: 1) : 1
                // oneDNN's inner product takes weights as N×K.
                var weights = ConstantTensor(dims: [n, k], values: [Float](repeating: 0, count: n * k))
                for row in 0..<n {
                    for column in 0..<k {
                        weights.values[row * k + column] = alpha * (transB ? b.values[row * k + column] : b.values[column * n + row])
                    }
                }
                var bias = [Float](repeating: 0, count: n)
                if node.op == "Gemm", let c = try constant(node, 2) {
                    guard c.count == n || c.count == 1 else { throw .shapeMismatch(node: node.name, reason: "C has \(c.count) values for \(n) outputs") }
                    for index in 0..<n { bias[index] = beta * c.values[c.count == 1 ? 0 : index] }
                }
                shapes[output] = [1, n]
                steps.append(.innerProduct(.init(input: input, output: output, weights: weights, bias: bias)))

            case "Add":
                guard node.inputs.count == 2 else { throw .shapeMismatch(node: node.name, reason: "Add takes two inputs") }
                if let c = graph.constants[node.inputs[1]] ?? graph.constants[node.inputs[0]] {
                    // A constant addend: the bias of the inner product before it (MatMul + Add).
                    let activationIndex = graph.constants[node.inputs[1]] != nil ? 0 : 1
                    let (input, shape) = try activation(node, activationIndex)
                    guard let index = soleProducer(of: input), case .innerProduct(var product) = steps[index], !product.relu,
                          c.count == product.bias.count || c.count == 1 else {
                        throw .unsupportedAttribute(node: node.name, op: node.op, attribute: "constant input",
                                                    reason: "is supported only as the bias of a MatMul/Gemm just before it")
                    }
                    for index in product.bias.indices { product.bias[index] += c.values[c.count == 1 ? 0 : index] }
                    product.output = output
                    steps[index] = .innerProduct(product)
                    shapes[output] = shape
                } else {
                    let (a, shapeA) = try activation(node, 0)
                    let (b, shapeB) = try activation(node, 1)
                    guard shapeA == shapeB else {
                        throw .shapeMismatch(node: node.name, reason: "Add of \(shapeA) and \(shapeB) (broadcasting is not supported)")
                    }
                    shapes[output] = shapeA
                    steps.append(.add(a: a, b: b, output: output, relu: false))
                }

            case "Softmax":
                let (input, shape) = try activation(node, 0)
                let axis = try node.int("axis", default: graph.opset >= 13 ? -1 : 1)
                guard shape.count == 2, axis == 1 || axis == -1 else {
                    throw .unsupportedAttribute(node: node.name, op: node.op, attribute: "axis", reason: "must be the last axis of a 2-D input")
                }
                shapes[output] = shape
                steps.append(.softmax(input: input, output: output))

            default:
                throw .unsupportedOperator(node: node.name, op: node.op)
            }
            // Every activation is a buffer oneDNN allocates: its size is bounded like a constant's.
            if let shape = shapes[output], TensorSize.elements(shape) == nil {
                throw .shapeMismatch(node: node.name, reason: "its output \(shape) would hold more than the \(TensorSize.maxElements) values a tensor may have")
            }
        }
        let output = resolve(graph.outputName)
        guard shapes[output] != nil else { throw .missingTensor(node: "graph output", name: graph.outputName) }
        var quality: String?
        if let name = graph.qualityOutputName {
            quality = resolve(name)
            guard shapes[resolve(name)] != nil else { throw .missingTensor(node: "graph output", name: name) }
        }
        return ExecutionPlan(steps: steps, shapes: shapes, input: graph.inputName, output: output, quality: quality)
    }

    /// Strides, pads (begin, end) and dilations of a 2-D window, checked.
    static func window(_ node: GraphNode, kernel: [Int], input: [Int]) throws(ModelError)
        -> ([Int], [Int], [Int], [Int]) {
        let strides = try node.ints("strides") ?? [1, 1]
        let dilations = try node.ints("dilations") ?? [1, 1]
        var pads = try node.ints("pads") ?? [0, 0, 0, 0]
        guard strides.count == 2, strides.allSatisfy({ $0 > 0 }) else {
            throw .unsupportedAttribute(node: node.name, op: node.op, attribute: "strides", reason: "must be two positive integers")
        }
        guard dilations.count == 2, dilations.allSatisfy({ $0 > 0 }) else {
            throw .unsupportedAttribute(node: node.name, op: node.op, attribute: "dilations", reason: "must be two positive integers")
        }
        switch try node.string("auto_pad") ?? "NOTSET" {
        case "NOTSET": break
        case "VALID": pads = [0, 0, 0, 0]
        case "SAME_UPPER", "SAME_LOWER":
            let upper = (try node.string("auto_pad")) == "SAME_UPPER"
            for axis in 0..<2 {
                let out = (input[axis] + strides[axis] - 1) / strides[axis]
                let total = max(0, (out - 1) * strides[axis] + (kernel[axis] - 1) * dilations[axis] + 1 - input[axis])
                pads[axis] = upper ? total / 2 : total - total / 2
                pads[axis + 2] = total - pads[axis]
            }
        case let other:
            throw .unsupportedAttribute(node: node.name, op: node.op, attribute: "auto_pad", reason: "\(other) is not supported")
        }
        guard pads.count == 4, pads.allSatisfy({ $0 >= 0 }) else {
            throw .unsupportedAttribute(node: node.name, op: node.op, attribute: "pads", reason: "must be four non-negative integers")
        }
        return (strides, [pads[0], pads[1]], [pads[2], pads[3]], dilations)
    }
}
