#if canImport(Glibc)
import Glibc
#endif

/// A rotation as a 3×3 orthonormal matrix, stored by columns: the columns are the rotated
/// frame's x, y and z axes expressed in the parent frame.
public struct Rotation: Sendable, Equatable, CustomStringConvertible {
    public var x: Vector3
    public var y: Vector3
    public var z: Vector3

    @inlinable public init(x: Vector3, y: Vector3, z: Vector3) {
        self.x = x
        self.y = y
        self.z = z
    }

    public static let identity = Rotation(x: .unitX, y: .unitY, z: .unitZ)

    /// Rotation by `angle` radians about the unit `axis` (Rodrigues).
    public init(axis: Vector3, angle: Double) {
        let k = axis.normalized
        let c = cos(angle), s = sin(angle), t = 1 - c
        x = Vector3(t * k.x * k.x + c, t * k.x * k.y + s * k.z, t * k.x * k.z - s * k.y)
        y = Vector3(t * k.x * k.y - s * k.z, t * k.y * k.y + c, t * k.y * k.z + s * k.x)
        z = Vector3(t * k.x * k.z + s * k.y, t * k.y * k.z - s * k.x, t * k.z * k.z + c)
    }

    /// The frame whose z axis is `forward` and whose x axis is as close to `right` as
    /// orthogonality allows (Gram–Schmidt).
    public init(forward: Vector3, right: Vector3) {
        let zAxis = forward.normalized
        var xAxis = right - zAxis * right.dot(zAxis)
        if xAxis.lengthSquared < 1e-18 {
            // `right` is parallel to `forward`: pick any perpendicular.
            xAxis = abs(zAxis.x) < 0.9 ? Vector3.unitX.cross(zAxis).cross(zAxis) : Vector3.unitY.cross(zAxis)
        }
        xAxis = xAxis.normalized
        self.init(x: xAxis, y: zAxis.cross(xAxis), z: zAxis)
    }

    @inlinable public static func * (r: Self, v: Vector3) -> Vector3 { r.x * v.x + r.y * v.y + r.z * v.z }

    @inlinable public static func * (a: Self, b: Self) -> Self { Self(x: a * b.x, y: a * b.y, z: a * b.z) }

    public var transposed: Self {
        Self(x: Vector3(x.x, y.x, z.x), y: Vector3(x.y, y.y, z.y), z: Vector3(x.z, y.z, z.z))
    }

    public var inverse: Self { transposed }

    /// The rotation angle, radians (0…π).
    public var angle: Double {
        let trace = x.x + y.y + z.z
        return acos(max(-1, min(1, (trace - 1) / 2)))
    }

    /// The rotation taking `self` to `other`, as an angle: how far apart two orientations are.
    public func angle(to other: Self) -> Double { (transposed * other).angle }

    /// Rotation vector (axis × angle, radians): the log map, used for orientation errors.
    public var rotationVector: Vector3 {
        let angle = self.angle
        if angle < 1e-9 { return .zero }
        let axis = Vector3(y.z - z.y, z.x - x.z, x.y - y.x)
        if angle > .pi - 1e-6 {
            // Near π the antisymmetric part vanishes: take the axis from the symmetric part.
            let candidates = [Vector3(x.x + 1, x.y, x.z), Vector3(y.x, y.y + 1, y.z), Vector3(z.x, z.y, z.z + 1)]
            let best = candidates.max { $0.lengthSquared < $1.lengthSquared } ?? .unitX
            return best.normalized * angle
        }
        return axis * (angle / (2 * sin(angle)))
    }

    public var description: String { "[x \(x) y \(y) z \(z)]" }
}

/// A rigid transform: rotation then translation (mm). `a * b` maps b's frame into a's parent.
public struct Pose: Sendable, Equatable, CustomStringConvertible {
    public var rotation: Rotation
    public var position: Vector3

    @inlinable public init(rotation: Rotation = .identity, position: Vector3 = .zero) {
        self.rotation = rotation
        self.position = position
    }

    public static let identity = Pose()

    @inlinable public static func * (a: Self, b: Self) -> Self {
        Self(rotation: a.rotation * b.rotation, position: a.rotation * b.position + a.position)
    }

    @inlinable public func transform(_ point: Vector3) -> Vector3 { rotation * point + position }

    public var inverse: Self {
        let inverseRotation = rotation.transposed
        return Self(rotation: inverseRotation, position: -(inverseRotation * position))
    }

    public var isFinite: Bool { rotation.x.isFinite && rotation.y.isFinite && rotation.z.isFinite && position.isFinite }

    public var description: String { "pose(p \(position), r \(rotation))" }
}
