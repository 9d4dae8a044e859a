// Patient files: TOML → PatientParameters, validated against `PatientKey.all`.
// Keys, units and ranges: docs/VIRTUAL-PATIENT.md, "Patient files".

import SonoGeometry
import SonoSystem
import SonoTOML
import TOMLKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What is wrong with a patient file. Every case names the file (`source`) and, where there is
/// one, the key; `description` is the message to show the operator, e.g.
/// `hardware/patients/x.toml: chest.rib_spacing_mm = 50 is outside 15…40 mm`.
public enum PatientFileError: Error, Equatable, CustomStringConvertible {
    /// The file cannot be read (missing, a directory, no permission, not UTF-8).
    case unreadable(path: String, reason: String)
    /// Not valid TOML. `line`/`column` are 1-based, when the parser knows them.
    case syntax(source: String, line: Int?, column: Int?, message: String)
    /// A key or table the patient format does not have. `known` lists the keys valid at that
    /// place (for the suggestion in the message).
    case unknownKey(source: String, key: String, known: [String])
    /// A value of the wrong TOML type, e.g. a string where a number is expected.
    case wrongType(source: String, key: String, expected: String, found: String)
    /// NaN or ±infinity where a finite number is expected.
    case notFinite(source: String, key: String, value: Double)
    /// A number outside the key's valid range. For array components `key` names the
    /// component, e.g. `heart.center_mm[2]`.
    case outOfRange(source: String, key: String, value: Double, range: ClosedRange<Double>, unit: String)
    /// Values valid one by one that contradict each other.
    case inconsistent(source: String, key: String, reason: String)

    /// The file the error is about.
    public var source: String {
        switch self {
        case .unreadable(let path, _): path
        case .syntax(let source, _, _, _), .unknownKey(let source, _, _), .wrongType(let source, _, _, _),
             .notFinite(let source, _, _), .outOfRange(let source, _, _, _, _), .inconsistent(let source, _, _):
            source
        }
    }

    /// The key the error is about, nil for unreadable files and syntax errors.
    public var key: String? {
        switch self {
        case .unreadable, .syntax: nil
        case .unknownKey(_, let key, _), .wrongType(_, let key, _, _), .notFinite(_, let key, _),
             .outOfRange(_, let key, _, _, _), .inconsistent(_, let key, _):
            key
        }
    }

    /// For an unknown key, the known key it is most likely a misspelling of.
    public var suggestion: String? {
        guard case .unknownKey(_, let key, let known) = self else { return nil }
        return nearest(to: key, in: known)
    }

    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            return "\(path): cannot read patient file: \(reason)"
        case .syntax(let source, let line, let column, let message):
            var place = source
            if let line { place += ":\(line)" }
            if let line, line > 0, let column { place += ":\(column)" }
            return "\(place): not valid TOML: \(message)"
        case .unknownKey(let source, let key, let known):
            var message = "\(source): unknown key \(key)"
            if let suggestion {
                message += "; did you mean \(suggestion)?"
            } else if !known.isEmpty {
                message += "; known keys here: \(known.joined(separator: ", "))"
            }
            return message
        case .wrongType(let source, let key, let expected, let found):
            return "\(source): \(key) must be \(expected), not \(found)"
        case .notFinite(let source, let key, let value):
            return "\(source): \(key) = \(formatNumber(value)) is not a finite number"
        case .outOfRange(let source, let key, let value, let range, let unit):
            let unitSuffix = unit.isEmpty ? "" : " \(unit)"
            return "\(source): \(key) = \(formatNumber(value)) is outside "
                + "\(formatNumber(range.lowerBound))…\(formatNumber(range.upperBound))\(unitSuffix)"
        case .inconsistent(let source, let key, let reason):
            return "\(source): \(key): \(reason)"
        }
    }
}

extension PatientParameters {
    /// Reads and validates a patient file. `name` defaults to the file's stem.
    public static func load(path: String) throws(PatientFileError) -> PatientParameters {
        let text = try readText(path: path)
        return try parse(toml: text, source: path)
    }

    /// Parses and validates patient-file text. `source` names the text in error messages (the
    /// path, for files); `name` defaults to its stem.
    public static func parse(toml: String, source: String) throws(PatientFileError) -> PatientParameters {
        let root: TOMLTable
        do {
            root = try TOMLDocument.parse(toml)
        } catch {
            throw .syntax(source: source, line: error.line, column: error.column, message: error.message)
        }

        let reader = Reader(source: source)
        var patient = PatientParameters()
        patient.name = stem(of: source) ?? patient.name

        let tables = ["heart", "chest", "imaging"]
        let topKnown = ["name"] + PatientKey.all.map(\.path).filter { !$0.contains(".") } + tables
        for (key, value) in root {
            if key == "name" {
                guard let name = value.string else {
                    throw .wrongType(source: source, key: key, expected: "a string", found: describeType(value))
                }
                patient.name = name
            } else if tables.contains(key) {
                guard let table = value.table else {
                    throw .wrongType(source: source, key: key, expected: "a table ([\(key)])",
                                     found: describeType(value))
                }
                let prefix = key + "."
                let known = PatientKey.all.map(\.path).filter { $0.hasPrefix(prefix) }
                for (innerKey, innerValue) in table {
                    let path = prefix + innerKey
                    guard let patientKey = PatientKey.named(path) else {
                        throw .unknownKey(source: source, key: path, known: known)
                    }
                    try reader.assign(innerValue, for: patientKey, to: &patient)
                }
            } else if let patientKey = PatientKey.named(key) {
                try reader.assign(value, for: patientKey, to: &patient)
            } else {
                throw .unknownKey(source: source, key: key, known: topKnown)
            }
        }

        try checkConsistency(patient, source: source)
        return patient
    }

    /// Cross-field rules: values valid one by one that cannot describe one patient.
    fileprivate static func checkConsistency(_ patient: PatientParameters, source: String) throws(PatientFileError) {
        // The heart (a ball of radius 45 mm × scale around its centre, for this check) must lie
        // below the chest wall: the probe images it through the wall, it cannot touch the ribs.
        let depth = -patient.heart.centerMM.z
        let radius = averageHeartRadiusMM * patient.heart.scale
        let wall = patient.chest.skinToHeartMM
        if depth - radius < wall {
            let topOfHeart = depth - radius
            let neededZ = -(wall + radius)
            throw .inconsistent(
                source: source, key: "heart.center_mm",
                reason: "the heart reaches into the chest wall: its centre is \(formatNumber(depth)) mm below the skin "
                    + "and its radius is about \(formatNumber(radius)) mm (45 mm × heart.scale \(formatNumber(patient.heart.scale))), "
                    + "so its front is \(formatNumber(topOfHeart)) mm below the skin, less than "
                    + "chest.skin_to_heart_mm = \(formatNumber(wall)) mm; put the centre at z ≤ \(formatNumber(neededZ)) mm, "
                    + "or make the chest wall or the heart smaller")
        }
    }
}

// MARK: - Reading values

/// Converts TOML values to checked numbers for one source.
private struct Reader {
    let source: String

    func assign(_ value: any TOMLValueConvertible, for key: PatientKey,
                to patient: inout PatientParameters) throws(PatientFileError) {
        switch key.path {
        case "seed":
            patient.seed = UInt64(try integer(value, key: key))
        case "heart_rate_bpm": patient.heartRateBPM = try number(value, key: key)
        case "heart.center_mm":
            let v = try vector(value, key: key)
            patient.heart.centerMM = Vector3(v[0], v[1], v[2])
        case "heart.long_axis_deg":
            let v = try vector(value, key: key)
            patient.heart.longAxisAzimuthDeg = v[0]
            patient.heart.longAxisElevationDeg = v[1]
        case "heart.rotation_deg": patient.heart.rotationDeg = try number(value, key: key)
        case "heart.scale": patient.heart.scale = try number(value, key: key)
        case "chest.rib_spacing_mm": patient.chest.ribSpacingMM = try number(value, key: key)
        case "chest.skin_to_heart_mm": patient.chest.skinToHeartMM = try number(value, key: key)
        case "chest.stiffness_n_per_mm": patient.chest.stiffnessNPerMM = try number(value, key: key)
        case "chest.breathing_amplitude_mm": patient.chest.breathingAmplitudeMM = try number(value, key: key)
        case "chest.breathing_rate_bpm": patient.chest.breathingRateBPM = try number(value, key: key)
        case "chest.radius_mm": patient.chest.radiusMM = try number(value, key: key)
        case "imaging.noise": patient.imaging.noise = try number(value, key: key)
        case "imaging.window_quality": patient.imaging.windowQuality = try number(value, key: key)
        default:
            // A key in the table the loader does not know how to store: a programming error.
            fatalError("PatientKey \(key.path) has no field in PatientParameters")
        }
    }

    /// A finite number (TOML integer or float) in `range`.
    func number(_ value: any TOMLValueConvertible, key: PatientKey, keyName: String? = nil,
                range: ClosedRange<Double>? = nil, expected: String = "a number") throws(PatientFileError) -> Double {
        let name = keyName ?? key.path
        let number: Double
        if let int = value.int {
            number = Double(int)
        } else if let double = value.double {
            number = double
        } else {
            throw .wrongType(source: source, key: name, expected: expected, found: describeType(value))
        }
        guard number.isFinite else { throw .notFinite(source: source, key: name, value: number) }
        let range = range ?? key.range
        guard range.contains(number) else {
            throw .outOfRange(source: source, key: name, value: number, range: range, unit: key.unit)
        }
        return number
    }

    /// A TOML integer in the key's range.
    func integer(_ value: any TOMLValueConvertible, key: PatientKey) throws(PatientFileError) -> Int {
        guard let int = value.int else {
            if let double = value.double, !double.isFinite {
                throw .notFinite(source: source, key: key.path, value: double)
            }
            throw .wrongType(source: source, key: key.path, expected: "a non-negative integer",
                             found: describeType(value))
        }
        guard key.range.contains(Double(int)) else {
            throw .outOfRange(source: source, key: key.path, value: Double(int), range: key.range, unit: key.unit)
        }
        return int
    }

    /// An array of `key.components.count` finite numbers, each in its component's range.
    func vector(_ value: any TOMLValueConvertible, key: PatientKey) throws(PatientFileError) -> [Double] {
        let count = key.components.count
        let expected = "an array of \(count) numbers [\(key.components.joined(separator: ", "))]"
        guard let array = value.array, array.count == count else {
            throw .wrongType(source: source, key: key.path, expected: expected, found: describeType(value))
        }
        var result: [Double] = []
        for index in 0..<count {
            let element = array[index]
            guard element.int != nil || element.double != nil else {
                throw .wrongType(source: source, key: key.path, expected: expected,
                                 found: "an array with \(describeType(element)) at [\(index)]")
            }
            result.append(try number(element, key: key, keyName: "\(key.path)[\(index)] (\(key.components[index]))",
                                     range: key.range(ofComponent: index)))
        }
        return result
    }
}

/// How a TOML value reads in a message: "a string", "an array of 2 values", "a table".
private func describeType(_ value: any TOMLValueConvertible) -> String {
    switch value.type {
    case .table: return "a table"
    case .array:
        let count = value.array?.count ?? 0
        let kinds = Set((0..<count).compactMap { value.array?[$0].type })
        if count == 0 { return "an empty array" }
        let of = kinds.count == 1 ? plural(kinds.first!, count: count) : (count == 1 ? "value" : "values")
        return "an array of \(count) \(of)"
    case .string: return "a string"
    case .int: return "an integer"
    case .double: return "a floating-point number (\(value.double.map { "\($0)" } ?? "?"))"
    case .bool: return "a boolean"
    case .date: return "a date"
    case .time: return "a time"
    case .dateTime: return "a date-time"
    }
}

private func plural(_ type: TOMLType, count: Int) -> String {
    let singular: String
    switch type {
    case .table: singular = "table"
    case .array: singular = "array"
    case .string: singular = "string"
    case .int: singular = "integer"
    case .double: singular = "number"
    case .bool: singular = "boolean"
    case .date: singular = "date"
    case .time: singular = "time"
    case .dateTime: singular = "date-time"
    }
    return count == 1 ? singular : singular + "s"
}

// MARK: - Helpers

/// Radius of the average adult heart for the chest-wall check (scaled by `heart.scale`), mm.
private let averageHeartRadiusMM: Double = 45

/// `50` rather than `50.0`; `0.8` stays `0.8`; `nan`, `inf` and `-inf` as TOML writes them.
private func formatNumber(_ value: Double) -> String {
    if value.isNaN { return "nan" }
    if value.isInfinite { return value < 0 ? "-inf" : "inf" }
    if value == value.rounded(), abs(value) <= 9_007_199_254_740_992 { return String(Int64(value)) }
    return "\(value)"
}

/// The last path component without its extension; nil when that is empty.
private func stem(of path: String) -> String? {
    let file = path.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? ""
    var stem = file
    if let dot = file.lastIndex(of: "."), dot != file.startIndex { stem = String(file[..<dot]) }
    return stem.isEmpty ? nil : stem
}

/// The known key closest to `key` by edit distance, if it is close enough to be a misspelling.
private func nearest(to key: String, in known: [String]) -> String? {
    func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
    // Also compare without underscores, and without the unit suffix (`rib_spacing` for
    // `rib_spacing_mm`), so `heartrate` finds `heart_rate_bpm`.
    func squeezed(_ s: String) -> String { s.lowercased().filter { $0 != "_" && $0 != "-" } }
    func withoutUnit(_ s: String) -> String {
        guard let underscore = s.lastIndex(of: "_"), let dot = s.lastIndex(of: ".") ?? s.indices.first,
              underscore > dot else { return s }
        return String(s[..<underscore])
    }
    let typed = squeezed(key)
    let scored = known.map { candidate in
        (key: candidate, distance: min(distance(key.lowercased(), candidate),
                                       distance(typed, squeezed(candidate)),
                                       distance(typed, squeezed(withoutUnit(candidate)))))
    }
    guard let best = scored.min(by: { $0.distance < $1.distance }) else { return nil }
    let limit = max(2, key.count / 3)
    return best.distance <= limit ? best.key : nil
}

/// The whole file as UTF-8 text.
private func readText(path: String) throws(PatientFileError) -> String {
    let bytes: [UInt8]
    do { bytes = try FileContents.read(path: path, limitBytes: 1 << 20) } catch {
        switch error {
        case .tooLarge: throw .unreadable(path: path, reason: "larger than 1 MiB; not a patient file")
        case .system(let errno): throw .unreadable(path: path, reason: errno.description)
        }
    }
    guard let text = String(validating: bytes, as: UTF8.self) else {
        throw .unreadable(path: path, reason: "not UTF-8 text")
    }
    return text
}
