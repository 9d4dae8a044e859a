import Foundation
import SwiftProtobuf

/// The bound on every tensor's size, from a model file that may be hostile: dimensions come from
/// the file, and their product sizes buffers (a constant's values, each activation oneDNN
/// allocates). 2^26 values (256 MiB of float32) is about 450 times the shipped model's largest
/// tensor (conv5's 128×128×3×3 weights).
enum TensorSize {
    static let maxElements = 1 << 26

    /// The number of values of a tensor with `dims`; nil when a dimension is negative or the
    /// product exceeds `maxElements` (checked step by step, so it never overflows).
    static func elements(_ dims: [Int]) -> Int? {
        var count = 1
        for dim in dims {
            guard dim >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            guard !overflow, product <= maxElements else { return nil }
            count = product
        }
        return count
    }
}

/// A constant tensor of the graph (an initializer), as float32.
struct ConstantTensor: Sendable {
    var dims: [Int]
    var values: [Float]
    var count: Int { dims.reduce(1, *) }
}

/// One node, with its attributes decoded to the few kinds Sono's operators use.
struct GraphNode: Sendable {
    enum Attribute: Sendable, Equatable {
        case int(Int)
        case float(Float)
        case ints([Int])
        case floats([Float])
        case string(String)
        case other(Int)
    }

    var name: String
    var op: String
    var domain: String
    var inputs: [String]
    var outputs: [String]
    var attributes: [String: Attribute]

    /// Every integer attribute Sono's operators read (kernel sizes, strides, pads, dilations,
    /// groups, axes, flags) is far below this; the bound keeps the shape arithmetic done with
    /// them from overflowing.
    static let maxIntegerAttribute: UInt = 1 << 16

    func int(_ key: String, default value: Int) throws(ModelError) -> Int {
        switch attributes[key] {
        case nil: return value
        case .int(let v)?:
            guard v.magnitude <= Self.maxIntegerAttribute else { throw outOfRange(key, v) }
            return v
        default: throw .unsupportedAttribute(node: name, op: op, attribute: key, reason: "must be an integer")
        }
    }

    func float(_ key: String, default value: Float) throws(ModelError) -> Float {
        switch attributes[key] {
        case nil: return value
        case .float(let v)?: return v
        default: throw .unsupportedAttribute(node: name, op: op, attribute: key, reason: "must be a float")
        }
    }

    func ints(_ key: String) throws(ModelError) -> [Int]? {
        switch attributes[key] {
        case nil: return nil
        case .ints(let v)?:
            if let large = v.first(where: { $0.magnitude > Self.maxIntegerAttribute }) { throw outOfRange(key, large) }
            return v
        default: throw .unsupportedAttribute(node: name, op: op, attribute: key, reason: "must be a list of integers")
        }
    }

    private func outOfRange(_ key: String, _ value: Int) -> ModelError {
        .unsupportedAttribute(node: name, op: op, attribute: key, reason: "holds \(value); Sono's operators take integers within ±\(Self.maxIntegerAttribute)")
    }

    func string(_ key: String) throws(ModelError) -> String? {
        switch attributes[key] {
        case nil: return nil
        case .string(let v)?: return v
        default: throw .unsupportedAttribute(node: name, op: op, attribute: key, reason: "must be a string")
        }
    }
}

/// An ONNX model's graph as Sono uses it: nodes in topological order, constants, the one input
/// with its shape, the logits output and the optional quality output, and the metadata that
/// carries the model contract.
struct ONNXGraph: Sendable {
    var nodes: [GraphNode]
    var constants: [String: ConstantTensor]
    var inputName: String
    /// Input dimensions; nil for a symbolic dimension (e.g. a dynamic batch).
    var inputShape: [Int?]
    /// The logits output: the only output, whatever its name, or the one named `logits`.
    var outputName: String
    /// The optional second output, named `quality` (models/README.md).
    var qualityOutputName: String?
    var metadata: [String: String]
    var opset: Int
    var producer: String

    /// Parses the protobuf (code generated once from onnx.proto with swift-protobuf).
    static func load(path: String) throws(ModelError) -> ONNXGraph {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .unreadable(path: path, reason: error.localizedDescription)
        }
        let model: Onnx_ModelProto
        do { model = try Onnx_ModelProto(serializedBytes: data) } catch {
            throw .notONNX(path: path, reason: "protobuf decoding failed (\(error))")
        }
        guard model.hasGraph, !model.graph.node.isEmpty else { throw .notONNX(path: path, reason: "it has no graph") }
        return try parse(model, path: path)
    }

    static func parse(_ model: Onnx_ModelProto, path: String) throws(ModelError) -> ONNXGraph {
        let graph = model.graph
        var constants: [String: ConstantTensor] = [:]
        for tensor in graph.initializer { constants[tensor.name] = try constant(tensor) }
        var nodes: [GraphNode] = []
        for (index, node) in graph.node.enumerated() {
            let name = node.name.isEmpty ? "#\(index) \(node.opType)" : node.name
            if node.opType == "Constant" {
                // A Constant node is an initializer written as a node.
                guard let value = node.attribute.first(where: { $0.name == "value" }), value.hasT, node.output.count == 1 else {
                    throw .unsupportedAttribute(node: name, op: "Constant", attribute: "value", reason: "must hold a tensor")
                }
                constants[node.output[0]] = try constant(value.t, name: node.output[0])
                continue
            }
            var attributes: [String: GraphNode.Attribute] = [:]
            for attribute in node.attribute {
                attributes[attribute.name] = switch attribute.type {
                case .int: .int(Int(attribute.i))
                case .float: .float(attribute.f)
                case .ints: .ints(attribute.ints.map { Int($0) })
                case .floats: .floats(attribute.floats)
                case .string: .string(String(decoding: attribute.s, as: UTF8.self))
                default: .other(attribute.type.rawValue)
                }
            }
            nodes.append(GraphNode(name: name, op: node.opType, domain: node.domain, inputs: node.input,
                                   outputs: node.output, attributes: attributes))
        }
        let inputs = graph.input.filter { constants[$0.name] == nil }
        guard inputs.count == 1, let input = inputs.first else {
            throw .notONNX(path: path, reason: "Sono's models take exactly one input; this one has \(inputs.count)")
        }
        let (outputName, qualityOutputName) = try outputs(graph.output.map(\.name))
        guard input.type.tensorType.elemType == Int32(Onnx_TensorProto.DataType.float.rawValue) else {
            throw .contract(key: "input '\(input.name)'", reason: "must be float32")
        }
        let shape: [Int?] = input.type.tensorType.shape.dim.map { dim in
            if case .dimValue(let value)? = dim.value, value > 0 { Int(value) } else { nil }
        }
        var metadata: [String: String] = [:]
        for entry in model.metadataProps { metadata[entry.key] = entry.value }
        let opset = model.opsetImport.first { $0.domain.isEmpty || $0.domain == "ai.onnx" }.map { Int($0.version) } ?? 0
        return ONNXGraph(nodes: nodes, constants: constants, inputName: input.name, inputShape: shape,
                         outputName: outputName, qualityOutputName: qualityOutputName, metadata: metadata, opset: opset,
                         producer: "\(model.producerName) \(model.producerVersion)")
    }

    static let logitsOutput = "logits"
    static let qualityOutput = "quality"

    /// The graph's outputs by name: one output (any name) is the logits; two must be `logits`
    /// and `quality`, in either order. Anything else is refused, naming the output.
    static func outputs(_ names: [String]) throws(ModelError) -> (logits: String, quality: String?) {
        let listed = names.map { "'\($0)'" }.joined(separator: ", ")
        switch names.count {
        case 1:
            return (names[0], nil)
        case 2:
            guard names.contains(logitsOutput) else {
                throw .contract(key: "outputs", reason: "must include one named \(logitsOutput) when there are two (got \(listed))")
            }
            guard let other = names.first(where: { $0 != logitsOutput }), other == qualityOutput else {
                throw .contract(key: "output '\(names.first { $0 != logitsOutput } ?? logitsOutput)'",
                                reason: "is not allowed: the second output must be named \(qualityOutput) (got \(listed))")
            }
            return (logitsOutput, qualityOutput)
        default:
            throw .contract(key: "outputs", reason: "must be \(logitsOutput) and optionally \(qualityOutput) (got \(names.count): \(listed))")
        }
    }

    static func constant(_ tensor: Onnx_TensorProto, name: String? = nil) throws(ModelError) -> ConstantTensor {
        let name = name ?? tensor.name
        let dims = tensor.dims.map { Int($0) }
        guard dims.allSatisfy({ $0 >= 0 }) else { throw .badTensor(name: name, reason: "negative dimension in \(dims)") }
        guard let count = TensorSize.elements(dims) else {
            throw .badTensor(name: name, reason: "dims \(dims) hold more than the \(TensorSize.maxElements) values a tensor may have")
        }
        switch Onnx_TensorProto.DataType(rawValue: Int(tensor.dataType)) {
        case .float?:
            if !tensor.rawData.isEmpty {
                guard tensor.rawData.count == count * 4 else {
                    throw .badTensor(name: name, reason: "raw data holds \(tensor.rawData.count) bytes, dims \(dims) need \(count * 4)")
                }
                var values = [Float](repeating: 0, count: count)
                values.withUnsafeMutableBytes { _ = tensor.rawData.copyBytes(to: $0) }  // little-endian, as ONNX specifies
                return ConstantTensor(dims: dims, values: values)
            }
            guard tensor.floatData.count == count else {
                throw .badTensor(name: name, reason: "holds \(tensor.floatData.count) floats, dims \(dims) need \(count)")
            }
            return ConstantTensor(dims: dims, values: tensor.floatData)
        case .int64?:
            // Shapes (Reshape's second input) arrive as int64 tensors.
            var values: [Int64]
            if !tensor.rawData.isEmpty {
                guard tensor.rawData.count == count * 8 else { throw .badTensor(name: name, reason: "raw data size does not match \(dims)") }
                values = [Int64](repeating: 0, count: count)
                values.withUnsafeMutableBytes { _ = tensor.rawData.copyBytes(to: $0) }
            } else {
                values = tensor.int64Data
            }
            guard values.count == count else { throw .badTensor(name: name, reason: "holds \(values.count) values, dims \(dims) need \(count)") }
            return ConstantTensor(dims: dims, values: values.map { Float($0) })
        default:
            throw .badTensor(name: name, reason: "element type \(tensor.dataType) is not supported (float32 or int64)")
        }
    }
}
