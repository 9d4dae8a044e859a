public import SonoGeometry

/// A virtual patient: heart and chest built from its parameters. Immutable and Sendable;
/// everything time-dependent is derived from the time given.
public struct VirtualPatient: Sendable {
    public let parameters: PatientParameters
    public let heart: HeartModel
    public let chest: ChestModel

    public init(_ parameters: PatientParameters) {
        self.parameters = parameters
        heart = HeartModel(parameters.heart, heartRateBPM: parameters.heartRateBPM)
        chest = ChestModel(parameters.chest, windowQuality: parameters.imaging.windowQuality, heart: heart)
    }

    /// The anatomy at one instant: breathing excursion, heart position and cardiac phase.
    public struct Snapshot: Sendable {
        public let seconds: Double
        public let cardiacPhase: Double
        /// Chest-wall rise, mm.
        public let rise: Double
        let heartPose: Pose
        let heartInverseRotation: Rotation
        let heartScale: Double
        let heartInstant: HeartModel.Instant
    }

    public func snapshot(at seconds: Double) -> Snapshot {
        let rise = chest.breathing(at: seconds)
        // Inspiration lowers the diaphragm, and the heart with it.
        var heartPose = heart.pose
        heartPose.position += Vector3(0, -0.5 * rise, 0.3 * rise)
        let phase = heart.phase(at: seconds)
        return Snapshot(seconds: seconds, cardiacPhase: phase, rise: rise, heartPose: heartPose,
                        heartInverseRotation: heartPose.rotation.transposed, heartScale: heart.scale,
                        heartInstant: heart.instant(phase: phase))
    }

    /// What is at `p` (chest frame), and the point in the coordinates its texture moves with
    /// (the heart's frame for cardiac tissue, so speckle follows the beating heart).
    @inline(__always)
    public func tissue(at p: Vector3, _ snapshot: Snapshot) -> (tissue: Tissue, anchor: Vector3) {
        let q = snapshot.heartInverseRotation * (p - snapshot.heartPose.position) / snapshot.heartScale
        let depth = chest.depthBelowSkin(p, rise: snapshot.rise)
        if depth >= parameters.chest.skinToHeartMM, let cardiac = HeartModel.tissue(at: q, snapshot.heartInstant) {
            return (cardiac, q)
        }
        let nearHeart = snapshot.heartInstant.envelope.scaled(by: 1.12).contains(q)
        return (chest.tissue(at: p, depth: depth, nearHeart: nearHeart), p)
    }
}
