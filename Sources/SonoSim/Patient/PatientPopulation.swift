import Foundation

/// The population of random adult patients the view classifier is trained on, as
/// `tools/vision/make_patients.py` samples it (its `SAMPLING` table and `sample_patient`), ported
/// so that `sonoctl sim eval` draws unseen patients from the same distribution without Python.
///
/// The same distribution, not the same stream: the script draws with Python's Mersenne Twister,
/// this with `SplitMix64`, so a given seed gives different patients here and there. What keeps
/// the sets apart is the patients' own `seed` (speckle and sensor noise) and their names:
///
/// | set | drawn by | patient seeds |
/// | --- | --- | --- |
/// | shipped test patients (`hardware/patients`) | hand | < 10000 |
/// | training | make_patients.py `--seed 7` | 100000 + i |
/// | validation | make_patients.py `--seed 8` | 200000 + i |
/// | evaluation (`sonoctl sim eval --seed S`) | `PatientPopulation(seed: S)` | 500000 + 1000·S + i, i < 1000 |
/// | soak (`make soak`, scripts/soak.py `--seed S`) | make_patients.py `--seed 700+S` | 700000 + S |
/// | crash soak (scripts/crash-soak.py `--seed S`) | make_patients.py `--seed 710+S` | 710000 + 1000·S + i |
///
/// Keep `Sampling` identical to the script's `SAMPLING` (and `PatientKey.all` for the valid ranges).
public struct PatientPopulation: Sendable {
    /// Sampling ranges of make_patients.py's `SAMPLING`: broad adult anatomy with a margin around
    /// the shipped patients, each inside the key's valid range.
    public enum Sampling {
        public static let heartRateBPM = 40.0...160.0
        public static let heartCenterX = 18.0...52.0
        public static let heartCenterY = -32.0...0.0
        public static let longAxisAzimuthDeg = 12.0...58.0
        public static let longAxisElevationDeg = 0.0...40.0
        public static let rotationDeg = -25.0...25.0
        public static let scale = 0.75...1.3
        public static let ribSpacingMM = 15.0...32.0
        public static let skinToHeartMM = 10.0...55.0
        /// Log-uniform.
        public static let stiffnessNPerMM = 0.15...3.0
        public static let breathingAmplitudeMM = 0.0...9.0
        public static let breathingRateBPM = 6.0...30.0
        public static let radiusMM = 110.0...320.0
        public static let noise = 0.05...0.7
        public static let windowQuality = 0.3...1.0
        /// The heart's front below the chest wall's inner surface, mm (sets the heart's depth).
        public static let frontMarginMM = 2.0...35.0
    }

    /// The first patient seed of evaluation sets; set S uses `evaluationSeedBase + 1000·S + i`.
    public static let evaluationSeedBase: UInt64 = 500_000
    /// Patients per evaluation seed: more would run into the next seed's patient seeds.
    public static let patientsPerSeed = 1_000

    /// One drawn patient: its file (what sonod-sim loads to rerun it) and the parameters read
    /// back from that file, so that the evaluation simulates exactly what the file says.
    public struct Member: Sendable {
        public var index: Int
        public var name: String
        public var toml: String
        public var parameters: PatientParameters
    }

    public let seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    /// The patient seed of member `index`.
    public func patientSeed(_ index: Int) -> UInt64 {
        Self.evaluationSeedBase + 1_000 * seed + UInt64(index)
    }

    /// Members `0..<count`, drawn in order from one stream (member i does not depend on count).
    public func members(_ count: Int) throws(PatientFileError) -> [Member] {
        precondition(count <= Self.patientsPerSeed, "at most \(Self.patientsPerSeed) patients per evaluation seed")
        var rng = SplitMix64(seed: 0xE7A1_5EED ^ (seed &* 0x9E37_79B9_7F4A_7C15))
        var result: [Member] = []
        for index in 0..<count {
            let name = String(format: "eval-%llu-%03d", seed, index)
            let toml = Self.draw(&rng, name: name, patientSeed: patientSeed(index))
            let parameters = try PatientParameters.parse(toml: toml, source: "\(name).toml")
            result.append(Member(index: index, name: name, toml: toml, parameters: parameters))
        }
        return result
    }

    /// make_patients.py's `sample_patient` and `toml_text`: the draws in the script's order,
    /// rounded as it rounds them.
    static func draw(_ rng: inout SplitMix64, name: String, patientSeed: UInt64) -> String {
        func uniform(_ range: ClosedRange<Double>) -> Double {
            range.lowerBound + (range.upperBound - range.lowerBound) * rng.unit()
        }
        func round(_ value: Double, _ digits: Int) -> Double {
            let factor = pow(10, Double(digits))
            return (value * factor).rounded() / factor
        }
        let scale = round(uniform(Sampling.scale), 3)
        let skin = round(uniform(Sampling.skinToHeartMM), 1)
        let margin = uniform(Sampling.frontMarginMM)
        // The loader's rule: −z − 45·scale ≥ skin_to_heart_mm. Depth = wall + heart radius + margin,
        // rounded away from the skin (which keeps the rule).
        var z = -(skin + 45 * scale + margin)
        z = max(-200, min(-40, z))
        z = (z * 10).rounded(.down) / 10
        let stiffness = exp(uniform(log(Sampling.stiffnessNPerMM.lowerBound)...log(Sampling.stiffnessNPerMM.upperBound)))
        let heartRate = round(uniform(Sampling.heartRateBPM), 1)
        let x = round(uniform(Sampling.heartCenterX), 1)
        let y = round(uniform(Sampling.heartCenterY), 1)
        let azimuth = round(uniform(Sampling.longAxisAzimuthDeg), 1)
        let elevation = round(uniform(Sampling.longAxisElevationDeg), 1)
        let rotation = round(uniform(Sampling.rotationDeg), 1)
        let rib = round(uniform(Sampling.ribSpacingMM), 1)
        let breathingAmplitude = round(uniform(Sampling.breathingAmplitudeMM), 2)
        let breathingRate = round(uniform(Sampling.breathingRateBPM), 1)
        let radius = round(uniform(Sampling.radiusMM), 0)
        let noise = round(uniform(Sampling.noise), 3)
        let window = round(uniform(Sampling.windowQuality), 3)
        func text(_ value: Double) -> String {
            // Shortest round-trip form, as Python prints a float ("85.0", "0.125").
            value == value.rounded() && abs(value) < 1e15 ? String(format: "%.1f", value) : "\(value)"
        }
        return """
            # Generated by sonoctl sim eval (SonoSim.PatientPopulation, the sampling of tools/vision/make_patients.py):
            # a random evaluation patient, unseen in training and validation. Rerun it with
            #   sonod-sim \(name).toml --scan PLAX,PSAX,A4C,A2C --exit-when-done
            name = "\(name)"
            seed = \(patientSeed)
            heart_rate_bpm = \(text(heartRate))

            [heart]
            center_mm = [\(text(x)), \(text(y)), \(text(z))]
            long_axis_deg = [\(text(azimuth)), \(text(elevation))]
            rotation_deg = \(text(rotation))
            scale = \(text(scale))

            [chest]
            rib_spacing_mm = \(text(rib))
            skin_to_heart_mm = \(text(skin))
            stiffness_n_per_mm = \(text(round(stiffness, 3)))
            breathing_amplitude_mm = \(text(breathingAmplitude))
            breathing_rate_bpm = \(text(breathingRate))
            radius_mm = \(text(radius))

            [imaging]
            noise = \(text(noise))
            window_quality = \(text(window))

            """
    }
}
