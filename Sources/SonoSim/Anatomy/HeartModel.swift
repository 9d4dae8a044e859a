public import SonoGeometry

/// The heart in its own frame, beating. Heart frame: origin at the heart's centre, +z along the
/// LV long axis from base to apex, +x from the LV toward the RV, +y = z × x. Sizes are for an
/// average adult (LV long axis ≈ 85 mm) and scale with `PatientParameters.Heart.scale`.
///
/// Chambers, walls, the aortic root and valves are analytic solids (ellipsoids, capsules,
/// discs): cheap enough to evaluate for every beam sample of every frame.
public struct HeartModel: Sendable {
    /// Heart frame → chest frame (before breathing motion).
    public let pose: Pose
    public let scale: Double
    public let heartRateBPM: Double

    public init(_ heart: PatientParameters.Heart, heartRateBPM: Double) {
        let azimuth = heart.longAxisAzimuthDeg * .pi / 180
        let elevation = heart.longAxisElevationDeg * .pi / 180
        let longAxis = Vector3(cos(elevation) * cos(azimuth), -cos(elevation) * sin(azimuth), sin(elevation))
        // With no extra rotation the RV lies anterior and to the patient's right of the LV.
        let towardRV = Vector3(-0.75, 0.1, 0.65)
        var frame = Rotation(forward: longAxis, right: towardRV)
        frame = Rotation(axis: longAxis, angle: heart.rotationDeg * .pi / 180) * frame
        pose = Pose(rotation: frame, position: heart.centerMM)
        scale = heart.scale
        self.heartRateBPM = heartRateBPM
    }

    /// Position in the cardiac cycle at `seconds`, 0…1 from end-diastole (the R wave).
    public func phase(at seconds: Double) -> Double {
        let beats = seconds * heartRateBPM / 60
        return beats - beats.rounded(.down)
    }

    /// Ventricular contraction, 0 at end-diastole to 1 at end-systole (35 % of the cycle).
    public static func contraction(phase: Double) -> Double {
        let systole = 0.35
        if phase < systole { return 0.5 * (1 - cos(.pi * phase / systole)) }
        let relaxation = min(1, (phase - systole) / 0.3)
        return 0.5 * (1 + cos(.pi * relaxation))
    }

    /// The heart at one instant: chamber sizes and valve states for a cardiac phase.
    public struct Instant: Sendable {
        let lvCavity: Ellipsoid
        let lvOuter: Ellipsoid
        let rvCavity: Ellipsoid
        let rvOuter: Ellipsoid
        let laCavity: Ellipsoid
        let raCavity: Ellipsoid
        let aorta: Capsule
        let envelope: Ellipsoid
        let mitral: Valve
        let tricuspid: Valve
        let aortic: Valve
        let baseZ: Double
    }

    public func instant(phase: Double) -> Instant {
        let c = Self.contraction(phase: phase)
        let ventricle = 1 - 0.22 * c, ventricleLong = 1 - 0.08 * c, wall = 1 - 0.08 * c
        let atrium = 1 + 0.18 * c
        let baseZ = -33.0 + 3 * c
        // AV valves open in diastole (after isovolumic relaxation), the aortic valve in ejection.
        let avOpen = phase > 0.42 && phase < 0.97 ? 1.0 : 0.0
        let aorticOpen = phase > 0.05 && phase < 0.33 ? 1.0 : 0.0
        return Instant(
            lvCavity: Ellipsoid(center: Vector3(0, 0, 5), radii: Vector3(21 * ventricle, 21 * ventricle, 40 * ventricleLong)),
            lvOuter: Ellipsoid(center: Vector3(0, 0, 7), radii: Vector3(31 * wall, 31 * wall, 47 * wall)),
            rvCavity: Ellipsoid(center: Vector3(28, 0, -2), radii: Vector3(17 * ventricle, 22 * ventricle, 36 * ventricleLong)),
            rvOuter: Ellipsoid(center: Vector3(28, 0, -2), radii: Vector3(20.5 * wall, 25.5 * wall, 39.5 * wall)),
            laCavity: Ellipsoid(center: Vector3(-6, -4, -56), radii: Vector3(19 * atrium, 18 * atrium, 21 * atrium)),
            raCavity: Ellipsoid(center: Vector3(31, 2, -54), radii: Vector3(17 * atrium, 17 * atrium, 21 * atrium)),
            aorta: Capsule(from: Vector3(7, 13, -28), to: Vector3(12, 34, -82), radius: 12),
            envelope: Ellipsoid(center: Vector3(12, 2, -12), radii: Vector3(58, 52, 84)),
            mitral: Valve(center: Vector3(-4, -2, baseZ), normal: .unitZ, radius: 15, opening: avOpen),
            tricuspid: Valve(center: Vector3(28, 0, baseZ), normal: .unitZ, radius: 15, opening: avOpen),
            aortic: Valve(center: Vector3(8, 15, -33), normal: Vector3(0.09, 0.36, -0.93).normalized, radius: 11,
                          opening: aorticOpen),
            baseZ: baseZ)
    }

    /// The tissue at `point` (heart frame, already divided by `scale`), or nil outside the heart.
    @inline(__always)
    public static func tissue(at q: Vector3, _ h: Instant) -> Tissue? {
        guard h.envelope.contains(q) else { return nil }
        if let valve = h.mitral.tissue(at: q) ?? h.tricuspid.tissue(at: q) ?? h.aortic.tissue(at: q) { return valve }

        let aortaDistance = h.aorta.distance(q)
        if aortaDistance < 0 { return .blood }
        if aortaDistance < 2.2 { return .vesselWall }
        // Ventricles lie on the apex side of the AV plane, atria on the base side.
        if q.z > h.baseZ {
            if h.lvCavity.contains(q) { return .blood }
            if h.rvCavity.contains(q) && !h.lvOuter.contains(q) { return .blood }
            if h.lvOuter.contains(q) || h.rvOuter.contains(q) { return .myocardium }
            if h.lvOuter.scaled(by: 1.08).contains(q) || h.rvOuter.scaled(by: 1.1).contains(q) { return .pericardium }
        } else {
            if h.laCavity.contains(q) || h.raCavity.contains(q) { return .blood }
            if h.laCavity.scaled(by: 1.12).contains(q) || h.raCavity.scaled(by: 1.12).contains(q) { return .myocardium }
            if h.lvOuter.contains(q) && q.z > h.baseZ - 6 { return .myocardium }  // the fibrous annulus
        }
        return nil
    }
}

struct Ellipsoid: Sendable {
    let center: Vector3
    let radii: Vector3

    @inline(__always)
    func contains(_ p: Vector3) -> Bool {
        let d = p - center
        let x = d.x / radii.x, y = d.y / radii.y, z = d.z / radii.z
        return x * x + y * y + z * z <= 1
    }

    func scaled(by factor: Double) -> Ellipsoid { Ellipsoid(center: center, radii: radii * factor) }
}

struct Capsule: Sendable {
    let from: Vector3
    let to: Vector3
    let radius: Double

    /// Signed distance to the capsule's surface (negative inside).
    @inline(__always)
    func distance(_ p: Vector3) -> Double {
        let axis = to - from
        let t = max(0, min(1, (p - from).dot(axis) / axis.lengthSquared))
        return (p - (from + axis * t)).length - radius
    }
}

/// A valve as a thin disc of leaflets; open leaflets fold to the rim and leave the orifice dark.
struct Valve: Sendable {
    let center: Vector3
    let normal: Vector3
    let radius: Double
    /// 0 closed, 1 open.
    let opening: Double

    @inline(__always)
    func tissue(at p: Vector3) -> Tissue? {
        let d = p - center
        let along = d.dot(normal)
        guard abs(along) < 9 else { return nil }
        let radial = (d - normal * along).length
        guard radial < radius else { return nil }
        if opening < 0.5 {
            // Closed: a thin bright coaptation line.
            return abs(along) < 1.3 ? .valve : nil
        }
        // Open: leaflets stand along the flow near the rim, 8 mm long.
        let toward = along
        return radial > radius * 0.72 && toward > 0 && toward < 8 ? .valve : nil
    }
}

#if canImport(Glibc)
import Glibc
#endif
