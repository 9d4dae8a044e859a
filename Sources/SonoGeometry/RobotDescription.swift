import Foundation
import SonoTOML
import TOMLKit

/// The arm as hardware/arm.toml describes it: where its base stands in the chest frame, its
/// joints (standard Denavit–Hartenberg parameters and limits), the calibrated flange-to-probe
/// transform and its parking pose. Angles are radians here, degrees in the file.
public struct RobotDescription: Sendable, Equatable {
    public struct Joint: Sendable, Equatable {
        public var name: String
        /// Standard DH: Rz(θ + offset) · Tz(d) · Tx(a) · Rx(α).
        public var d: Double
        public var a: Double
        public var alpha: Double
        public var offset: Double
        public var lower: Double
        public var upper: Double
        public var maxVelocity: Double
        public var maxAcceleration: Double
        public var maxCurrent: Double
    }

    public var name: String
    /// Robot base frame in the chest frame.
    public var base: Pose
    public var joints: [Joint]
    /// Flange → probe face.
    public var tool: Pose
    public var home: [Double]

    public var jointCount: Int { joints.count }
}

public enum RobotDescriptionError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case syntax(source: String, message: String)
    case missing(source: String, key: String)
    case wrongType(source: String, key: String, expected: String)
    case invalid(source: String, key: String, reason: String)
    case unknownKey(source: String, key: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot read robot description \(path): \(reason)"
        case .syntax(let source, let message): "\(source): not valid TOML: \(message)"
        case .missing(let source, let key): "\(source): \(key) is missing"
        case .wrongType(let source, let key, let expected): "\(source): \(key) must be \(expected)"
        case .invalid(let source, let key, let reason): "\(source): \(key) \(reason)"
        case .unknownKey(let source, let key): "\(source): unknown key \(key)"
        }
    }
}

extension RobotDescription {
    public static func load(path: String) throws(RobotDescriptionError) -> RobotDescription {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .unreadable(path: path, reason: error.localizedDescription)
        }
        return try parse(toml: text, source: path)
    }

    public static func parse(toml: String, source: String) throws(RobotDescriptionError) -> RobotDescription {
        let root: TOMLTable
        do { root = try TOMLDocument.parse(toml) } catch {
            throw .syntax(source: source, message: "\(error)")
        }
        let file = Fields(source: source)
        try file.onlyKnownKeys(root, ["name", "base", "joint", "tool", "home"], in: nil)
        let name = try file.string(root, "name")
        let base = try file.pose(try file.table(root, "base"), "base")
        let tool = try file.pose(try file.table(root, "tool"), "tool")
        try file.onlyKnownKeys(try file.table(root, "home"), ["joints_deg"], in: "home")
        guard let jointArray = root["joint"]?.array, !jointArray.isEmpty else {
            throw .missing(source: source, key: "[[joint]]")
        }
        var joints: [Joint] = []
        for (index, value) in jointArray.enumerated() {
            guard let table = value.table else {
                throw .wrongType(source: source, key: "joint[\(index)]", expected: "a table ([[joint]])")
            }
            let key = "joint[\(index)]"
            try file.onlyKnownKeys(table, ["name", "d_mm", "a_mm", "alpha_deg", "offset_deg", "lower_deg", "upper_deg",
                                           "max_velocity_deg_s", "max_acceleration_deg_s2", "max_current_a"], in: key)
            let joint = Joint(
                name: try file.string(table, "name", in: key),
                d: try file.number(table, "d_mm", in: key),
                a: try file.number(table, "a_mm", in: key),
                alpha: try file.number(table, "alpha_deg", in: key) * .pi / 180,
                offset: try file.number(table, "offset_deg", in: key) * .pi / 180,
                lower: try file.number(table, "lower_deg", in: key) * .pi / 180,
                upper: try file.number(table, "upper_deg", in: key) * .pi / 180,
                maxVelocity: try file.positive(table, "max_velocity_deg_s", in: key) * .pi / 180,
                maxAcceleration: try file.positive(table, "max_acceleration_deg_s2", in: key) * .pi / 180,
                maxCurrent: try file.positive(table, "max_current_a", in: key))
            guard joint.lower < joint.upper else {
                throw .invalid(source: source, key: "\(key) (\(joint.name)).lower_deg",
                               reason: "must be below upper_deg")
            }
            joints.append(joint)
        }
        guard joints.count <= 8 else {
            throw .invalid(source: source, key: "[[joint]]", reason: "has \(joints.count) joints; the protocol carries 1…8")
        }
        let home = try file.numbers(try file.table(root, "home"), "joints_deg", count: joints.count, in: "home")
            .map { $0 * .pi / 180 }
        for (index, angle) in home.enumerated() where !(joints[index].lower...joints[index].upper).contains(angle) {
            throw .invalid(source: source, key: "home.joints_deg[\(index)]", reason: "is outside \(joints[index].name)'s limits")
        }
        return RobotDescription(name: name, base: base, joints: joints, tool: tool, home: home)
    }
}

/// Typed access to one file's fields, with errors naming the key.
private struct Fields {
    let source: String

    func qualified(_ key: String, _ parent: String?) -> String { parent.map { "\($0).\(key)" } ?? key }

    /// A misspelt key would silently fall back to nothing: refuse any key the format lacks.
    func onlyKnownKeys(_ table: TOMLTable, _ known: Set<String>, in parent: String?) throws(RobotDescriptionError) {
        for (key, _) in table where !known.contains(key) {
            throw .unknownKey(source: source, key: qualified(key, parent))
        }
    }

    func value(_ table: TOMLTable, _ key: String, in parent: String?) throws(RobotDescriptionError) -> any TOMLValueConvertible {
        guard let value = table[key] else { throw .missing(source: source, key: qualified(key, parent)) }
        return value
    }

    func table(_ table: TOMLTable, _ key: String) throws(RobotDescriptionError) -> TOMLTable {
        guard let nested = try value(table, key, in: nil).table else {
            throw .wrongType(source: source, key: key, expected: "a table ([\(key)])")
        }
        return nested
    }

    func string(_ table: TOMLTable, _ key: String, in parent: String? = nil) throws(RobotDescriptionError) -> String {
        guard let string = try value(table, key, in: parent).string else {
            throw .wrongType(source: source, key: qualified(key, parent), expected: "a string")
        }
        return string
    }

    func number(_ table: TOMLTable, _ key: String, in parent: String?) throws(RobotDescriptionError) -> Double {
        try finite(try value(table, key, in: parent), qualified(key, parent))
    }

    func positive(_ table: TOMLTable, _ key: String, in parent: String?) throws(RobotDescriptionError) -> Double {
        let number = try number(table, key, in: parent)
        guard number > 0 else { throw .invalid(source: source, key: qualified(key, parent), reason: "must be positive") }
        return number
    }

    func finite(_ value: any TOMLValueConvertible, _ key: String) throws(RobotDescriptionError) -> Double {
        let number: Double
        if let int = value.int { number = Double(int) } else if let double = value.double { number = double } else {
            throw .wrongType(source: source, key: key, expected: "a number")
        }
        guard number.isFinite else { throw .invalid(source: source, key: key, reason: "must be finite") }
        return number
    }

    func numbers(_ table: TOMLTable, _ key: String, count: Int, in parent: String) throws(RobotDescriptionError) -> [Double] {
        let name = qualified(key, parent)
        guard let array = try value(table, key, in: parent).array, array.count == count else {
            throw .wrongType(source: source, key: name, expected: "an array of \(count) numbers")
        }
        var result: [Double] = []
        for index in 0..<count { result.append(try finite(array[index], "\(name)[\(index)]")) }
        return result
    }

    func pose(_ table: TOMLTable, _ parent: String) throws(RobotDescriptionError) -> Pose {
        try onlyKnownKeys(table, ["position_mm", "rpy_deg"], in: parent)
        let p = try numbers(table, "position_mm", count: 3, in: parent)
        let rpy = try numbers(table, "rpy_deg", count: 3, in: parent).map { $0 * .pi / 180 }
        return Pose(rotation: Rotation(roll: rpy[0], pitch: rpy[1], yaw: rpy[2]), position: Vector3(p[0], p[1], p[2]))
    }
}

extension Rotation {
    /// Roll about x, then pitch about y, then yaw about z (fixed axes): R = Rz·Ry·Rx.
    public init(roll: Double, pitch: Double, yaw: Double) {
        self = Rotation(axis: .unitZ, angle: yaw) * Rotation(axis: .unitY, angle: pitch) * Rotation(axis: .unitX, angle: roll)
    }
}
