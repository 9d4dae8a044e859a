import Foundation
public import SonoCore
public import SonoGeometry
import SonoTOML
import TOMLKit

/// Where a standard view is expected on an average patient: the planner's starting point.
public struct ViewPrior: Sendable, Equatable {
    public var view: StandardView
    /// Probe pose at the view's acoustic window (chest frame, mm), beam into the body.
    public var pose: Pose
    /// Depth along the beam of the point the beam is kept aimed at while the window is searched, mm.
    public var aimDepthMM: Double
    /// The population's RMS deviation from this pose: how far the search must reach.
    public var spreadMM: Double
    public var spreadBeamDeg: Double
    public var spreadRotationDeg: Double

    public var aimPoint: Vector3 { pose.position + pose.rotation.z * aimDepthMM }
}

/// Errors of the planner's inputs, naming the file and key at fault.
public enum PlannerError: Error, Sendable, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case invalid(path: String, key: String, reason: String)
    case unknownView(String, known: [String])
    case emptyProtocol

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot read \(path): \(reason)"
        case .invalid(let path, let key, let reason): "\(path): \(key): \(reason)"
        case .unknownView(let view, let known):
            "unknown view '\(view)': the scan prior and model know \(known.joined(separator: ", "))"
        case .emptyProtocol: "a scan protocol needs at least one view"
        }
    }
}

/// The scan prior (`hardware/scan-prior.toml`, written by `sonoctl sim priors`).
public struct ScanPrior: Sendable, Equatable {
    public var views: [StandardView: ViewPrior]

    public init(views: [StandardView: ViewPrior]) { self.views = views }

    public static func load(path: String) throws(PlannerError) -> ScanPrior {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .unreadable(path: path, reason: "\(error.localizedDescription)")
        }
        let table: TOMLTable
        do { table = try TOMLDocument.parse(text) } catch {
            throw .unreadable(path: path, reason: "not valid TOML: \(error)")
        }
        guard let viewTables = table["view"]?.table, !viewTables.isEmpty else {
            throw .invalid(path: path, key: "view", reason: "no [view.NAME] tables")
        }
        var views: [StandardView: ViewPrior] = [:]
        for (name, value) in viewTables {
            let key = "view.\(name)"
            guard let view = StandardView(name: name), view != .other else {
                throw .invalid(path: path, key: key, reason: "not a standard view ("
                    + StandardView.standard.map(\.rawValue).joined(separator: ", ") + ")")
            }
            guard let entry = value.table else { throw .invalid(path: path, key: key, reason: "must be a table") }
            func vector(_ field: String) throws(PlannerError) -> Vector3 {
                guard let array = entry[field]?.array, array.count == 3 else {
                    throw .invalid(path: path, key: "\(key).\(field)", reason: "must be an array of 3 numbers")
                }
                var values: [Double] = []
                for item in array {
                    guard let number = item.double ?? item.int.map(Double.init), number.isFinite else {
                        throw .invalid(path: path, key: "\(key).\(field)", reason: "must be an array of 3 numbers")
                    }
                    values.append(number)
                }
                return Vector3(values[0], values[1], values[2])
            }
            func number(_ field: String, _ range: ClosedRange<Double>) throws(PlannerError) -> Double {
                guard let number = entry[field]?.double ?? entry[field]?.int.map(Double.init) else {
                    throw .invalid(path: path, key: "\(key).\(field)", reason: "missing or not a number")
                }
                guard range.contains(number) else {
                    throw .invalid(path: path, key: "\(key).\(field)",
                                   reason: "\(number) is outside \(range.lowerBound)…\(range.upperBound)")
                }
                return number
            }
            let beam = try vector("beam")
            let lateral = try vector("lateral")
            guard beam.length > 0.5, abs(beam.normalized.dot(lateral.normalized)) < 0.2 else {
                throw .invalid(path: path, key: "\(key).lateral", reason: "beam and lateral must be non-zero and nearly perpendicular")
            }
            let pose = Pose(rotation: Rotation(forward: beam, right: lateral), position: try vector("position"))
            views[view] = ViewPrior(
                view: view, pose: pose, aimDepthMM: try number("aim_depth_mm", 20...250),
                spreadMM: try number("spread_mm", 0...100), spreadBeamDeg: try number("spread_beam_deg", 0...90),
                spreadRotationDeg: try number("spread_rotation_deg", 0...90))
        }
        return ScanPrior(views: views)
    }
}
