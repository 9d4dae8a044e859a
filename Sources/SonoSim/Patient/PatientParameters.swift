public import SonoGeometry

/// A virtual patient, as a patient file (TOML) describes it. Coordinates are in the chest
/// frame (docs/VIRTUAL-PATIENT.md): origin on the skin over the sternum at the 4th intercostal
/// space, +x to the patient's left, +y toward the head, +z anterior (out of the chest), mm.
public struct PatientParameters: Sendable, Equatable {
    /// Shown in reports; the file's stem unless the file sets `name`.
    public var name: String = "default"
    /// Seeds speckle, noise and sensor noise: same seed and inputs, same frames and samples.
    public var seed: UInt64 = 1
    public var heartRateBPM: Double = 70
    public var heart = Heart()
    public var chest = Chest()
    public var imaging = Imaging()

    public init() {}

    public struct Heart: Sendable, Equatable {
        /// Centre of the heart (middle of the LV long axis), chest frame, mm.
        public var centerMM = Vector3(35, -15, -85)
        /// Direction of the LV long axis, base to apex: azimuth in the frontal plane from the
        /// patient's left (+x) toward the feet (−y), and elevation toward anterior (+z), degrees.
        public var longAxisAzimuthDeg: Double = 40
        public var longAxisElevationDeg: Double = 25
        /// Rotation of the heart about its long axis, degrees (0: RV anterior-right of the LV).
        public var rotationDeg: Double = 0
        /// Size relative to an average adult heart (LV long axis 85 mm).
        public var scale: Double = 1
        public init() {}
    }

    public struct Chest: Sendable, Equatable {
        /// Centre-to-centre distance of neighbouring ribs, mm.
        public var ribSpacingMM: Double = 24
        /// Thickness of the chest wall (skin, fat, muscle) down to the ribs' inner surface, mm.
        public var skinToHeartMM: Double = 25
        /// Tissue stiffness along the probe axis at small indentation, N/mm.
        public var stiffnessNPerMM: Double = 0.8
        public var breathingAmplitudeMM: Double = 4
        public var breathingRateBPM: Double = 14
        /// Radius of the chest's curvature across the patient (skin falls away laterally), mm.
        public var radiusMM: Double = 170
        public init() {}
    }

    public struct Imaging: Sendable, Equatable {
        /// Electronic noise and speckle contrast, 0 (clean) to 1 (very noisy).
        public var noise: Double = 0.3
        /// How open the acoustic windows are: 1 wide (lean patient), 0 mostly covered by lung.
        public var windowQuality: Double = 0.8
        public init() {}
    }
}

/// One documented key of a patient file: its unit and valid range. The loader validates
/// against this table and docs/VIRTUAL-PATIENT.md lists it. (`name`, a string, is the one key
/// not in the table.)
public struct PatientKey: Sendable {
    /// Dotted path in the file: `table.key`, or `key` at the top level.
    public let path: String
    /// Unit of the value (of each component for arrays); empty for plain numbers and ratios.
    public let unit: String
    /// Valid range of the value; for arrays, the envelope of `componentRanges`.
    public let range: ClosedRange<Double>
    public let meaning: String
    /// Names of the components of an array value, e.g. `["x", "y", "z"]`; empty for scalars.
    public let components: [String]
    /// Valid range of each component, parallel to `components`.
    public let componentRanges: [ClosedRange<Double>]
    /// The value must be an integer (TOML integer), not just a number.
    public let isInteger: Bool

    init(path: String, unit: String, range: ClosedRange<Double>, meaning: String, isInteger: Bool = false) {
        self.path = path
        self.unit = unit
        self.range = range
        self.meaning = meaning
        self.components = []
        self.componentRanges = []
        self.isInteger = isInteger
    }

    init(path: String, unit: String, components: [(name: String, range: ClosedRange<Double>)], meaning: String) {
        self.path = path
        self.unit = unit
        self.meaning = meaning
        self.components = components.map(\.name)
        self.componentRanges = components.map(\.range)
        self.range = components.map(\.range.lowerBound).min()! ... components.map(\.range.upperBound).max()!
        self.isInteger = false
    }

    /// The valid range of component `index` (the whole range for scalars).
    public func range(ofComponent index: Int) -> ClosedRange<Double> {
        componentRanges.indices.contains(index) ? componentRanges[index] : range
    }

    /// The key at a dotted path, or nil.
    public static func named(_ path: String) -> PatientKey? { all.first { $0.path == path } }

    public static let all: [PatientKey] = [
        PatientKey(path: "seed", unit: "", range: 0...9_007_199_254_740_991, meaning: "seed of speckle and sensor noise",
                   isInteger: true),
        PatientKey(path: "heart_rate_bpm", unit: "beats/min", range: 30...200, meaning: "heart rate"),
        PatientKey(path: "heart.center_mm", unit: "mm",
                   components: [("x", -100...150), ("y", -150...100), ("z", -200 ... -40)],
                   meaning: "centre of the heart in the chest frame"),
        PatientKey(path: "heart.long_axis_deg", unit: "degrees",
                   components: [("azimuth", -90...90), ("elevation", -90...90)],
                   meaning: "LV long axis, base to apex"),
        PatientKey(path: "heart.rotation_deg", unit: "degrees", range: -180...180, meaning: "rotation about the long axis"),
        PatientKey(path: "heart.scale", unit: "", range: 0.7...1.4, meaning: "heart size relative to average"),
        PatientKey(path: "chest.rib_spacing_mm", unit: "mm", range: 15...40, meaning: "rib centre-to-centre distance"),
        PatientKey(path: "chest.skin_to_heart_mm", unit: "mm", range: 10...60, meaning: "chest wall thickness"),
        PatientKey(path: "chest.stiffness_n_per_mm", unit: "N/mm", range: 0.1...5, meaning: "tissue stiffness along the probe axis"),
        PatientKey(path: "chest.breathing_amplitude_mm", unit: "mm", range: 0...20, meaning: "chest wall excursion"),
        PatientKey(path: "chest.breathing_rate_bpm", unit: "breaths/min", range: 4...40, meaning: "breathing rate"),
        PatientKey(path: "chest.radius_mm", unit: "mm", range: 100...400, meaning: "chest curvature radius"),
        PatientKey(path: "imaging.noise", unit: "", range: 0...1, meaning: "noise and speckle contrast"),
        PatientKey(path: "imaging.window_quality", unit: "", range: 0...1, meaning: "how open the acoustic windows are"),
    ]
}
