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

/// Simulator truth about a frame: the view it shows and its distance to every canonical pose.
/// Used for training and scoring; never by the daemon's decisions.
public struct ViewLabel: Sendable, Equatable {
    public var view: StandardView
    public var distances: [StandardView: PoseDistance]
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

    /// The view a probe at `pose` pressing with `contactForceN` shows at `seconds`: the nearest
    /// canonical pose within tolerance, if the probe is coupled to the skin and its central
    /// beam reaches the heart's blood pool without crossing bone or lung (a probe on a rib sees
    /// a shadow, whatever its pose).
    public func label(pose: Pose, contactForceN: Double, seconds: Double = 0) -> ViewLabel {
        var distances: [StandardView: PoseDistance] = [:]
        for view in StandardView.standard {
            distances[view] = distance(from: pose, to: view)
        }
        guard contactForceN >= minimumContactForceN else { return ViewLabel(view: .other, distances: distances) }
        let candidates = distances.filter { $0.value.isWithin(tolerance) }
        guard let best = candidates.min(by: { score($0.value) < score($1.value) }),
              centralBeamReachesBlood(from: pose, seconds: seconds) else {
            return ViewLabel(view: .other, distances: distances)
        }
        return ViewLabel(view: best.key, distances: distances)
    }

    /// Whether the beam along the probe's axis meets blood before bone or lung, within 160 mm.
    public func centralBeamReachesBlood(from pose: Pose, seconds: Double) -> Bool {
        let snapshot = patient.snapshot(at: seconds)
        for depth in stride(from: 1.0, through: 160, by: 1) {
            switch patient.tissue(at: pose.position + pose.rotation.z * depth, snapshot).tissue {
            case .blood: return true
            case .bone, .lung: return false
            case .outside where depth > UltrasoundRenderer.footprintDepthMM: return false
            default: continue
            }
        }
        return false
    }

    private func score(_ d: PoseDistance) -> Double {
        d.positionMM / tolerance.positionMM + d.beamAngleDeg / tolerance.beamAngleDeg
            + d.planeRotationDeg / tolerance.planeRotationDeg
    }
}
