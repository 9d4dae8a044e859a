/// Why a model could not be loaded or run. Load-time errors name the file, node or key.
public enum ModelError: Error, Sendable, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case notONNX(path: String, reason: String)
    case unsupportedOperator(node: String, op: String)
    case unsupportedAttribute(node: String, op: String, attribute: String, reason: String)
    case shapeMismatch(node: String, reason: String)
    case missingTensor(node: String, name: String)
    case badTensor(name: String, reason: String)
    case contract(key: String, reason: String)
    case inference(operation: String, status: Int32)
    case frame(reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot read model \(path): \(reason)"
        case .notONNX(let path, let reason): "\(path) is not an ONNX model: \(reason)"
        case .unsupportedOperator(let node, let op):
            "node '\(node)': operator \(op) is not supported (supported: \(Lowering.supportedOperators.sorted().joined(separator: ", ")))"
        case .unsupportedAttribute(let node, let op, let attribute, let reason):
            "node '\(node)' (\(op)): attribute \(attribute) \(reason)"
        case .shapeMismatch(let node, let reason): "node '\(node)': shape mismatch: \(reason)"
        case .missingTensor(let node, let name): "node '\(node)': input '\(name)' is neither a graph input nor produced by an earlier node"
        case .badTensor(let name, let reason): "initializer '\(name)': \(reason)"
        case .contract(let key, let reason): "model contract: \(key) \(reason) (see models/README.md)"
        case .inference(let operation, let status): "oneDNN \(operation) failed with status \(status)"
        case .frame(let reason): "frame: \(reason)"
        }
    }
}
