/// Deterministic randomness: everything the simulator draws comes from these, seeded by the
/// patient's seed, so the same seed and inputs give bit-identical frames and samples.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    @inline(__always)
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Standard normal (Box–Muller).
    public mutating func gaussian() -> Double {
        let u = max(unit(), 1e-300)
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * unit())
    }
}

/// A stateless hash of integer coordinates to [0, 1): speckle anchored to tissue positions.
@inline(__always)
func hashUnit(_ a: Int, _ b: Int, _ c: Int, seed: UInt64) -> Double {
    var h = seed &+ UInt64(bitPattern: Int64(a)) &* 0x9E37_79B9_7F4A_7C15
    h = SplitMix64.mix(h ^ (UInt64(bitPattern: Int64(b)) &* 0xC2B2_AE3D_27D4_EB4F))
    h = SplitMix64.mix(h ^ (UInt64(bitPattern: Int64(c)) &* 0x1656_67B1_9E37_79F9))
    return Double(h >> 11) * 0x1.0p-53
}

#if canImport(Glibc)
import Glibc
#endif
