public import SonoCore
public import SonoGeometry

/// Draws probe poses for training data: most around a standard view, spread evenly over its
/// true quality from 1 down to about 0.1 (so that the model learns quality as a continuous
/// signal, the diagnostic line at 0.7 included), some further out (the hard negatives), some
/// anywhere on the chest, at random cardiac and breathing phases and contact forces.
public struct TrainingPoseSampler: Sendable {
    public let patient: VirtualPatient
    public let geometry: StandardViewGeometry

    public init(patient: VirtualPatient, geometry: StandardViewGeometry) {
        self.patient = patient
        self.geometry = geometry
    }

    public struct Draw: Sendable {
        public var pose: Pose
        public var forceN: Double
        public var seconds: Double
    }

    public func draw(_ rng: inout SplitMix64) -> Draw {
        let seconds = rng.unit() * 20
        var force = 3 + rng.unit() * 7
        if rng.unit() < 0.05 { force = rng.unit() * 1.5 }
        let kind = rng.unit()
        let view = StandardView.standard[Int(rng.next() % UInt64(StandardView.standard.count))]
        guard kind < 0.85, let canonical = geometry.canonical[view] else {
            return Draw(pose: randomChestPose(&rng), forceN: force, seconds: seconds)
        }
        // Near: an error of e tolerance units (ViewQuality: q = 2^−e² in an open window), e
        // uniform in 0…1.8, shared out at random between slide, tilt and turn. Far: 1.3–3× the tolerance.
        let near = kind < 0.6
        var positionScale = 16 + rng.unit() * 20
        var angleScale = (16 + rng.unit() * 25) * .pi / 180
        var spinScale = 40 * Double.pi / 180
        if near {
            let e = rng.unit() * 1.8
            var share = (rng.unit(), rng.unit(), rng.unit())
            let norm = (share.0 * share.0 + share.1 * share.1 + share.2 * share.2).squareRoot()
            share = (share.0 / norm, share.1 / norm, share.2 / norm)
            let tolerance = geometry.tolerance
            positionScale = e * share.0 * tolerance.positionMM
            angleScale = e * share.1 * tolerance.beamAngleDeg * .pi / 180
            spinScale = e * share.2 * tolerance.planeRotationDeg * .pi / 180
        }
        var pose = canonical
        pose.position += pose.rotation * (unitVector(&rng, planar: true) * (near ? positionScale : rng.unit() * positionScale))
        let tilt = Rotation(axis: unitVector(&rng, planar: true), angle: near ? angleScale : rng.unit() * angleScale)
        let spinSign = rng.unit() < 0.5 ? -1.0 : 1.0
        let spin = Rotation(axis: .unitZ, angle: near ? spinSign * spinScale : (rng.unit() * 2 - 1) * spinScale)
        pose.rotation = pose.rotation * tilt * spin
        return Draw(pose: pose, forceN: force, seconds: seconds)
    }

    func randomChestPose(_ rng: inout SplitMix64) -> Pose {
        let surface = patient.chest.surface
        let x = -60 + rng.unit() * 200, y = -170 + rng.unit() * 230
        let inward = -surface.normal(x: x, y: y)
        let tilt = Rotation(axis: unitVector(&rng, planar: false).cross(inward), angle: rng.unit() * 40 * .pi / 180)
        let beam = tilt * inward
        let lateral = Rotation(axis: beam, angle: rng.unit() * 2 * .pi) * Vector3.unitX
        return Pose(rotation: Rotation(forward: beam, right: lateral), position: surface.point(x: x, y: y))
    }

    func unitVector(_ rng: inout SplitMix64, planar: Bool) -> Vector3 {
        let angle = rng.unit() * 2 * .pi
        if planar { return Vector3(cos(angle), sin(angle), 0) }
        let z = rng.unit() * 2 - 1
        let r = (1 - z * z).squareRoot()
        return Vector3(r * cos(angle), r * sin(angle), z)
    }
}

#if canImport(Glibc)
import Glibc
#endif
