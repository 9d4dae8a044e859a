/// What an ultrasound beam meets at a point, and how it echoes.
public enum Tissue: UInt8, Sendable, CaseIterable {
    case outside, skin, fat, muscle, bone, lung, liver, mediastinum
    case blood, myocardium, valve, pericardium, vesselWall

    /// Mean backscatter brightness, 0…1, before speckle, attenuation and gain.
    var echogenicity: Double {
        switch self {
        case .outside: 0
        case .skin: 0.55
        case .fat: 0.16
        case .muscle: 0.3
        case .bone: 1
        case .lung: 0.85
        case .liver: 0.3
        case .mediastinum: 0.12
        case .blood: 0.025
        case .myocardium: 0.42
        case .valve: 0.95
        case .pericardium: 0.8
        case .vesselWall: 0.7
        }
    }

    /// Attenuation, 1/mm of round-trip amplitude loss (soft tissue ≈ 0.5 dB/cm/MHz at 2.5 MHz).
    var attenuationPerMM: Double {
        switch self {
        case .blood: 0.002
        case .fat: 0.012
        default: 0.008
        }
    }
}
