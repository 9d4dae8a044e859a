public import SonoCore
public import SonoGeometry

/// How far a probe pose is from a view's canonical pose.
public struct PoseDistance: Sendable, Equatable {
    /// Distance between the probe tips across the view's beam, mm: how far the probe sits
    /// from the window on the skin. The component along the beam is contact depth (a probe
    /// pressing 8 N into a soft chest sinks 10–30 mm), which does not change the view.
    public var positionMM: Double
    /// Depth along the view's beam, mm (+ = deeper than the canonical pose on the skin).
    public var depthMM: Double = 0
    /// Angle between the beam axes, degrees.
    public var beamAngleDeg: Double
    /// Rotation about the beam between the imaging planes, degrees (0…90: a plane has no sign).
    public var planeRotationDeg: Double

    public init(positionMM: Double, beamAngleDeg: Double, planeRotationDeg: Double) {
        self.positionMM = positionMM
        self.beamAngleDeg = beamAngleDeg
        self.planeRotationDeg = planeRotationDeg
    }

    public func isWithin(_ tolerance: ViewTolerance) -> Bool {
        positionMM <= tolerance.positionMM && beamAngleDeg <= tolerance.beamAngleDeg
            && planeRotationDeg <= tolerance.planeRotationDeg
    }
}

/// How close a pose must be to a canonical pose to count as that view.
public struct ViewTolerance: Sendable, Equatable {
    public var positionMM = 12.0
    public var beamAngleDeg = 12.0
    public var planeRotationDeg = 15.0
    public init() {}
}

/// Simulator truth about a frame: the view it shows, its true diagnostic quality for every
/// standard view and its distance to every canonical pose. Used for training and scoring;
/// never by the daemon's decisions.
public struct ViewLabel: Sendable, Equatable {
    public var view: StandardView
    public var distances: [StandardView: PoseDistance]
    /// True quality q ∈ [0, 1] of the frame as each standard view (`ViewQuality`).
    public var quality: [StandardView: Double] = [:]
    /// How much of the image the ribs and lung leave open (`ViewQuality.window`), and the
    /// contact factor: the two parts of q that do not depend on the view.
    public var window = 0.0
    public var coupling = 0.0
}

/// The simulator's true diagnostic quality of a frame as one standard view (docs/VIRTUAL-PATIENT.md,
/// "True view quality"):
///
///     q = coupling(F) · window(pose, t) · 2^−e²,   e² = (d/12 mm)² + (β/12°)² + (ρ/15°)²
///
/// d the probe's offset across the view's beam, β the angle between the beams, ρ the rotation
/// about the beam (depth along the beam is not an error). One error at today's tolerance
/// (12 mm, 12°, 15°) alone gives q = 0.5; q = 1 at the canonical pose of an open window.
public enum ViewQuality {
    /// A frame is diagnostic for a view when its quality is at least this.
    public static let diagnostic = 0.7
    /// The hard label is the best view with at least this quality (else OTHER).
    public static let present = 0.5
    /// The contact factor rises smoothly from 0 at `couplingZeroN` to 1 at `couplingFullN`.
    public static let couplingZeroN = 1.0
    public static let couplingFullN = 3.0
    /// The window factor looks along rays in the image plane within ± this of the beam: the
    /// central part of the sector, where every standard view has its key structures.
    public static let windowHalfAngleDeg = 10.0
    public static let windowRays = 21
    /// The beam is a slice, not a plane: rays start from `elevationPlanes` points across the
    /// probe face's elevation aperture (± `elevationHalfWidthMM`), so that a rib edge parallel
    /// to the image plane shades the slice a part at a time rather than all at once.
    public static let elevationPlanes = 5
    public static let elevationHalfWidthMM = 4.0

    /// The pose factor 2^−e² for a distance and the reference tolerance.
    public static func pose(_ d: PoseDistance, tolerance: ViewTolerance = .init()) -> Double {
        let p = d.positionMM / tolerance.positionMM
        let b = d.beamAngleDeg / tolerance.beamAngleDeg
        let r = d.planeRotationDeg / tolerance.planeRotationDeg
        return exp2(-(p * p + b * b + r * r))
    }

    /// The contact factor: a smoothstep in the axial force.
    public static func coupling(forceN: Double) -> Double {
        let x = min(1, max(0, (forceN - couplingZeroN) / (couplingFullN - couplingZeroN)))
        return x * x * (3 - 2 * x)
    }

    /// The largest weight of one ray: the most the window factor (so q) changes when one ray's
    /// path crosses a rib or lung edge. Between such crossings q is continuous in the pose.
    public static var largestRayWeight: Double { (rayWeights.max() ?? 1) / Double(elevationPlanes) }

    /// Weight of ray `index` of `windowRays`, centre-heavy (cos² across the fan), summing to 1.
    static let rayWeights: [Double] = {
        let raw = (0..<windowRays).map { k -> Double in
            let t = Double(k) / Double(windowRays - 1) * 2 - 1  // −1 … 1
            let c = cos(t * .pi / 2 * 0.9)
            return c * c
        }
        let total = raw.reduce(0, +)
        return raw.map { $0 / total }
    }()
}

/// The canonical probe pose of each standard view for one patient, defined from its anatomy:
/// the acoustic window the view is taken from, the beam aimed at the heart, and the imaging
/// plane through the structures the view must show.
///
/// Probe frame: origin at the centre of the probe face, +z along the beam into the body,
/// +x the lateral direction of the image (the orientation marker), +y out of the image plane.
public struct StandardViewGeometry: Sendable {
    public let canonical: [StandardView: Pose]
    public let tolerance: ViewTolerance
    private let patient: VirtualPatient
    /// Below this contact force the image is too poor to show any view.
    public let minimumContactForceN: Double

    public init(patient: VirtualPatient, tolerance: ViewTolerance = .init(), minimumContactForceN: Double = 2) {
        let heart = patient.heart.pose
        let longAxis = heart.rotation.z          // base → apex
        let towardRV = heart.rotation.x
        let chest = patient.chest

        func aimed(from window: Vector3, at target: Vector3, lateral: Vector3) -> Pose {
            Pose(rotation: Rotation(forward: target - window, right: lateral), position: window)
        }

        // Parasternal long axis: the plane holding the LV long axis; marker toward the base
        // (the patient's right shoulder), so the aorta and LA sit on the image's marker side.
        let plax = aimed(from: chest.parasternalWindow, at: chest.parasternalTarget, lateral: -longAxis)
        // Parasternal short axis: same window, plane turned 90° clockwise: across the LV at the
        // papillary-muscle level.
        let papillary = heart.transform(Vector3(0, 0, 12 * patient.heart.scale))
        let psaxBeam = (papillary - chest.parasternalWindow).normalized
        let psax = aimed(from: chest.parasternalWindow, at: papillary, lateral: psaxBeam.cross(-longAxis))
        // Apical four-chamber: from the apex toward the base, plane through LV, RV and both atria.
        let a4c = aimed(from: chest.apicalWindow, at: chest.apicalTarget, lateral: towardRV)
        // Apical two-chamber: the four-chamber plane turned 60° about the beam, away from the aorta.
        let a4cBeam = a4c.rotation.z
        let a2cLateral = Rotation(axis: a4cBeam, angle: 60 * .pi / 180) * a4c.rotation.x
        let a2c = aimed(from: chest.apicalWindow, at: chest.apicalTarget, lateral: a2cLateral)
        // Subcostal four-chamber: from below the xiphoid, up through the liver, plane across
        // the patient (marker to the patient's left).
        let sc4c = aimed(from: chest.subcostalWindow, at: chest.subcostalTarget, lateral: .unitX)

        canonical = [.plax: plax, .psax: psax, .a4c: a4c, .a2c: a2c, .sc4c: sc4c]
        self.patient = patient
        self.tolerance = tolerance
        self.minimumContactForceN = minimumContactForceN
    }

    public func distance(from pose: Pose, to view: StandardView) -> PoseDistance? {
        guard let target = canonical[view] else { return nil }
        let beamAngle = pose.rotation.z.angle(to: target.rotation.z)
        // Compare the lateral axes after aligning the beams: the in-plane rotation.
        let aligned = target.rotation.x - pose.rotation.z * target.rotation.x.dot(pose.rotation.z)
        var planeAngle = pose.rotation.x.angle(to: aligned)
        if planeAngle > .pi / 2 { planeAngle = .pi - planeAngle }
        let offset = pose.position - target.position
        let depth = offset.dot(target.rotation.z)
        var distance = PoseDistance(positionMM: (offset - target.rotation.z * depth).length,
                                    beamAngleDeg: beamAngle * 180 / .pi, planeRotationDeg: planeAngle * 180 / .pi)
        distance.depthMM = depth
        return distance
    }

    /// What a probe at `pose` pressing with `contactForceN` shows at `seconds`: the true quality
    /// of the frame as each standard view (`ViewQuality`), and the view: the best one with
    /// q ≥ `ViewQuality.present`, else OTHER.
    public func label(pose: Pose, contactForceN: Double, seconds: Double = 0) -> ViewLabel {
        var distances: [StandardView: PoseDistance] = [:]
        for view in StandardView.standard {
            distances[view] = distance(from: pose, to: view)
        }
        var label = ViewLabel(view: .other, distances: distances)
        label.coupling = ViewQuality.coupling(forceN: contactForceN)
        // The window costs rays through the patient: only where some view could reach the threshold.
        let best = distances.values.map { ViewQuality.pose($0, tolerance: tolerance) }.max() ?? 0
        label.window = label.coupling * best >= 1e-3 ? window(from: pose, seconds: seconds) : 0
        var top = (view: StandardView.other, q: 0.0)
        for view in StandardView.standard {
            let q = distances[view].map { label.coupling * label.window * ViewQuality.pose($0, tolerance: tolerance) } ?? 0
            label.quality[view] = q
            if q > top.q { top = (view, q) }
        }
        if top.q >= ViewQuality.present { label.view = top.view }
        return label
    }

    /// The true quality of the frame at `pose` as `view` (0 for OTHER).
    public func quality(of view: StandardView, pose: Pose, contactForceN: Double, seconds: Double) -> Double {
        guard let d = distance(from: pose, to: view) else { return 0 }
        let partial = ViewQuality.coupling(forceN: contactForceN) * ViewQuality.pose(d, tolerance: tolerance)
        guard partial > 0 else { return 0 }
        return partial * window(from: pose, seconds: seconds)
    }

    /// The best true quality of `view` a probe pressing `contactForceN` could reach on this
    /// patient: an oracle search (for scoring a planner, never for driving one) over windows on
    /// a grid across the canonical beam (± `reachMM`, `stepMM` apart), the beam kept aimed at
    /// the canonical target and the plane at the canonical rotation, each scored by its mean
    /// quality over four phases of a breath. A view whose best is below `ViewQuality.diagnostic`
    /// cannot be acquired diagnostic on this patient by sliding over the skin.
    public func bestReachableQuality(of view: StandardView, contactForceN: Double = 8, reachMM: Double = 15,
                                     stepMM: Double = 3) -> (quality: Double, pose: Pose)? {
        guard let canonical = canonical[view] else { return nil }
        let aim = canonical.position + canonical.rotation.z * 100
        let breath = 60 / max(1, patient.parameters.chest.breathingRateBPM)
        let phases = (0..<4).map { Double($0) / 4 * breath }
        let steps = Int((reachMM / stepMM).rounded(.down))
        var best: (quality: Double, pose: Pose)?
        for i in -steps...steps {
            for j in -steps...steps {
                var pose = canonical
                pose.position += canonical.rotation.x * (Double(i) * stepMM) + canonical.rotation.y * (Double(j) * stepMM)
                let beam = (aim - pose.position).normalized
                let lateral = canonical.rotation.x - beam * canonical.rotation.x.dot(beam)
                pose.rotation = Rotation(forward: beam, right: lateral.normalized)
                let q = phases.reduce(0) { $0 + quality(of: view, pose: pose, contactForceN: contactForceN, seconds: $1) }
                    / Double(phases.count)
                if q > (best?.quality ?? -1) { best = (q, pose) }
            }
        }
        return best
    }

    /// How much of the image's centre the ribs and lung leave open: the weighted share of
    /// rays that reach the heart without crossing bone or lung — `ViewQuality.windowRays` rays
    /// within ± `windowHalfAngleDeg` of the beam (cos² weights, the centre counting most) in each
    /// of `elevationPlanes` parallel slices across the probe face. A ray reaches the heart when it meets blood, or gets as deep as the
    /// heart's near side (its centre's distance less 35 mm × scale): a ray that passes beside the
    /// heart is not shadowed, it just images something else.
    public func window(from pose: Pose, seconds: Double) -> Double {
        let snapshot = patient.snapshot(at: seconds)
        let heartDistance = (patient.heart.pose.position - pose.position).length
        let reach = min(160, max(20, heartDistance - 35 * patient.heart.scale))
        let half = ViewQuality.windowHalfAngleDeg * .pi / 180
        var open = 0.0
        for plane in 0..<ViewQuality.elevationPlanes {
            let offset = (Double(plane) / Double(max(1, ViewQuality.elevationPlanes - 1)) * 2 - 1)
                * ViewQuality.elevationHalfWidthMM
            let origin = pose.position + pose.rotation.y * offset
            for k in 0..<ViewQuality.windowRays {
                let angle = (Double(k) / Double(ViewQuality.windowRays - 1) * 2 - 1) * half
                let direction = pose.rotation.z * cos(angle) + pose.rotation.x * sin(angle)
                if rayReachesHeart(from: origin, direction: direction, within: reach, snapshot) {
                    open += ViewQuality.rayWeights[k]
                }
            }
        }
        return min(1, open / Double(ViewQuality.elevationPlanes))
    }

    /// Whether a ray meets blood, or passes `reach` mm of tissue, before bone, lung or air.
    private func rayReachesHeart(from origin: Vector3, direction: Vector3, within reach: Double,
                                 _ snapshot: VirtualPatient.Snapshot) -> Bool {
        for depth in stride(from: 1.0, through: 160, by: 1) {
            switch patient.tissue(at: origin + direction * depth, snapshot).tissue {
            case .blood: return true
            case .bone, .lung: return false
            case .outside where depth > UltrasoundRenderer.footprintDepthMM: return false
            default: if depth >= reach { return true }
            }
        }
        return false
    }

    /// Whether the beam along the probe's axis meets blood before bone or lung, within 160 mm.
    public func centralBeamReachesBlood(from pose: Pose, seconds: Double) -> Bool {
        rayReachesHeart(from: pose.position, direction: pose.rotation.z, within: .infinity, patient.snapshot(at: seconds))
    }
}

#if canImport(Glibc)
import Glibc
#endif
