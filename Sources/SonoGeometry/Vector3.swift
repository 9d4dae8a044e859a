/// A 3-vector in millimetres (positions) or unitless (directions), double precision:
/// kinematic chains and ray marching accumulate error in Float.
public struct Vector3: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var x: Double
    public var y: Double
    public var z: Double

    @inlinable public init(_ x: Double, _ y: Double, _ z: Double) {
        self.x = x
        self.y = y
        self.z = z
    }

    public static let zero = Vector3(0, 0, 0)
    public static let unitX = Vector3(1, 0, 0)
    public static let unitY = Vector3(0, 1, 0)
    public static let unitZ = Vector3(0, 0, 1)

    @inlinable public static func + (a: Self, b: Self) -> Self { Self(a.x + b.x, a.y + b.y, a.z + b.z) }
    @inlinable public static func - (a: Self, b: Self) -> Self { Self(a.x - b.x, a.y - b.y, a.z - b.z) }
    @inlinable public static prefix func - (a: Self) -> Self { Self(-a.x, -a.y, -a.z) }
    @inlinable public static func * (a: Self, s: Double) -> Self { Self(a.x * s, a.y * s, a.z * s) }
    @inlinable public static func * (s: Double, a: Self) -> Self { Self(a.x * s, a.y * s, a.z * s) }
    @inlinable public static func / (a: Self, s: Double) -> Self { Self(a.x / s, a.y / s, a.z / s) }
    @inlinable public static func += (a: inout Self, b: Self) { a = a + b }
    @inlinable public static func -= (a: inout Self, b: Self) { a = a - b }

    @inlinable public func dot(_ other: Self) -> Double { x * other.x + y * other.y + z * other.z }

    @inlinable public func cross(_ other: Self) -> Self {
        Self(y * other.z - z * other.y, z * other.x - x * other.z, x * other.y - y * other.x)
    }

    @inlinable public var lengthSquared: Double { dot(self) }
    @inlinable public var length: Double { lengthSquared.squareRoot() }

    /// The unit vector along this one; `self` when its length is zero.
    @inlinable public var normalized: Self {
        let length = self.length
        return length > 0 ? self / length : self
    }

    public var isFinite: Bool { x.isFinite && y.isFinite && z.isFinite }

    /// Angle between two vectors, radians (0…π).
    public func angle(to other: Self) -> Double {
        let denominator = length * other.length
        guard denominator > 0 else { return 0 }
        return acos(max(-1, min(1, dot(other) / denominator)))
    }

    public var description: String { "(\(format(x)), \(format(y)), \(format(z)))" }
}

func format(_ value: Double) -> String {
    let scaled = (value * 1_000).rounded() / 1_000
    return "\(scaled)"
}

#if canImport(Glibc)
import Glibc
#endif
