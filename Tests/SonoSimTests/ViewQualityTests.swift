import Foundation
import SonoCore
import SonoGeometry
@testable import SonoSim
import Testing

/// The simulator's true diagnostic quality (docs/VIRTUAL-PATIENT.md, "True view quality"): its
/// shape at the reference points, continuity, and that it never rises as an error grows.
@Suite struct ViewQualityTests {
    let patient = VirtualPatient(PatientParameters())
    var geometry: StandardViewGeometry { StandardViewGeometry(patient: patient) }

    /// A patient whose windows stay open around every canonical pose: wide ribs, a thin wall, a
    /// wide lung notch. Along a path that keeps `window == 1`, q is the pose factor alone.
    static var openWindowPatient: VirtualPatient {
        var parameters = PatientParameters()
        parameters.chest.ribSpacingMM = 36
        parameters.chest.skinToHeartMM = 14
        parameters.imaging.windowQuality = 1
        return VirtualPatient(parameters)
    }

    @Test func theToleranceBoxLiesAtHalfAndDiagnosticIsSeventy() {
        #expect(ViewQuality.pose(PoseDistance(positionMM: 0, beamAngleDeg: 0, planeRotationDeg: 0)) == 1)
        #expect(abs(ViewQuality.pose(PoseDistance(positionMM: 12, beamAngleDeg: 0, planeRotationDeg: 0)) - 0.5) < 1e-12)
        #expect(abs(ViewQuality.pose(PoseDistance(positionMM: 0, beamAngleDeg: 12, planeRotationDeg: 0)) - 0.5) < 1e-12)
        #expect(abs(ViewQuality.pose(PoseDistance(positionMM: 0, beamAngleDeg: 0, planeRotationDeg: 15)) - 0.5) < 1e-12)
        // The diagnostic line: one error alone at 72 % of its tolerance (8.6 mm, 8.6°, 10.8°).
        let edge = (log2(1 / ViewQuality.diagnostic)).squareRoot()
        #expect(abs(ViewQuality.pose(PoseDistance(positionMM: 12 * edge, beamAngleDeg: 0, planeRotationDeg: 0)) - 0.7) < 1e-12)
        #expect(ViewQuality.diagnostic == 0.7 && ViewQuality.present == 0.5)
    }

    @Test func theCouplingFactorRisesSmoothlyWithForce() {
        #expect(ViewQuality.coupling(forceN: 0) == 0 && ViewQuality.coupling(forceN: 1) == 0)
        #expect(ViewQuality.coupling(forceN: 3) == 1 && ViewQuality.coupling(forceN: 8) == 1)
        #expect(abs(ViewQuality.coupling(forceN: 2) - 0.5) < 1e-12)
        var previous = 0.0
        for step in 0...400 {
            let value = ViewQuality.coupling(forceN: Double(step) * 0.01)
            #expect(value >= previous && value - previous < 0.02, "coupling at \(Double(step) * 0.01) N")
            previous = value
        }
    }

    @Test func thePoseFactorNeverRisesAsAnyErrorGrows() {
        for base in [(0.0, 0.0, 0.0), (5.0, 3.0, 7.0), (11.0, 10.0, 2.0)] {
            for axis in 0..<3 {
                var previous = 2.0
                for step in 0...300 {
                    var e = [base.0, base.1, base.2]
                    e[axis] += Double(step) * 0.1
                    let value = ViewQuality.pose(PoseDistance(positionMM: e[0], beamAngleDeg: e[1], planeRotationDeg: e[2]))
                    #expect(value <= previous && value >= 0 && value <= 1)
                    previous = value
                }
            }
        }
    }

    @Test func qualityIsOneAtTheCanonicalPoseOfAnOpenWindow() throws {
        let patient = Self.openWindowPatient
        let geometry = StandardViewGeometry(patient: patient)
        for view in StandardView.standard {
            let pose = try #require(geometry.canonical[view])
            let label = geometry.label(pose: pose, contactForceN: 6, seconds: 0.2)
            #expect(label.window == 1, "\(view): window \(label.window)")
            #expect(abs((label.quality[view] ?? 0) - 1) < 1e-9, "\(view): q \(label.quality[view] ?? 0)")
            #expect(label.view == view)
        }
    }

    /// Slide, tilt and turn away from each canonical pose in small steps (0.25 mm, 0.25°, 0.3°):
    /// q never jumps by more than a quarter (a rib edge crossing the slice shades it a few rays at
    /// a time; everything else is continuous), and where the window stays open it never rises.
    @Test func qualityIsContinuousAndNeverRisesAsTheProbeMovesAway() throws {
        let patient = Self.openWindowPatient
        let geometry = StandardViewGeometry(patient: patient)
        let moves: [(String, (Pose, Double) -> Pose)] = [
            ("slide across the beam", { pose, t in var p = pose; p.position += pose.rotation.x * (t * 25); return p }),
            ("slide out of the plane", { pose, t in var p = pose; p.position += pose.rotation.y * (t * 25); return p }),
            ("tilt", { pose, t in var p = pose; p.rotation = pose.rotation * Rotation(axis: .unitY, angle: t * 25 * .pi / 180); return p }),
            ("turn about the beam", { pose, t in var p = pose; p.rotation = pose.rotation * Rotation(axis: .unitZ, angle: t * 30 * .pi / 180); return p }),
        ]
        var largest = 0.0
        for view in [StandardView.plax, .a4c, .sc4c] {
            let canonical = try #require(geometry.canonical[view])
            for (name, move) in moves {
                var previous = geometry.label(pose: canonical, contactForceN: 6, seconds: 0.2)
                for step in 1...100 {
                    let label = geometry.label(pose: move(canonical, Double(step) / 100), contactForceN: 6, seconds: 0.2)
                    let q = label.quality[view] ?? 0, before = previous.quality[view] ?? 0
                    largest = max(largest, abs(q - before))
                    #expect(abs(q - before) <= 0.25, "\(view) \(name) step \(step): \(before) → \(q)")
                    if label.window == 1 && previous.window == 1 {
                        #expect(q <= before + 1e-12, "\(view) \(name) step \(step): \(before) → \(q) in an open window")
                    }
                    previous = label
                }
                #expect((previous.quality[view] ?? 1) < 0.2, "\(view) \(name): still \(previous.quality[view] ?? 0) at the end")
            }
        }
        print("largest change of q in one step: \(largest)")
    }

    @Test func ribsAndLungLowerTheWindowFactor() throws {
        // Thick wall, narrow ribs, a narrow lung notch: the parasternal fan meets bone or lung.
        var parameters = PatientParameters()
        parameters.chest.ribSpacingMM = 15
        parameters.chest.skinToHeartMM = 50
        parameters.imaging.windowQuality = 0.3
        let patient = VirtualPatient(parameters)
        let geometry = StandardViewGeometry(patient: patient)
        let psax = try #require(geometry.canonical[.psax])
        let label = geometry.label(pose: psax, contactForceN: 6, seconds: 0.2)
        #expect(label.window < 0.9, "window \(label.window)")
        #expect(abs((label.quality[.psax] ?? 0) - label.window * label.coupling) < 1e-9, "at the canonical pose q is the window")
    }

    @Test func theOracleFindsTheBestReachableWindow() throws {
        let open = StandardViewGeometry(patient: Self.openWindowPatient)
        let best = try #require(open.bestReachableQuality(of: .a4c))
        #expect(best.quality > 0.99, "an open window is best at its canonical pose: \(best.quality)")
        var parameters = PatientParameters()
        parameters.chest.ribSpacingMM = 15
        parameters.chest.skinToHeartMM = 50
        parameters.imaging.windowQuality = 0.3
        let shadowed = StandardViewGeometry(patient: VirtualPatient(parameters))
        let canonical = try #require(shadowed.canonical[.psax])
        let atCanonical = shadowed.quality(of: .psax, pose: canonical, contactForceN: 8, seconds: 0)
        let reachable = try #require(shadowed.bestReachableQuality(of: .psax))
        #expect(reachable.quality >= atCanonical - 0.05, "the search starts at the canonical pose: \(reachable.quality) vs \(atCanonical)")
    }

    @Test func theHardLabelIsTheBestViewAtHalfOrAbove() throws {
        var rng = SplitMix64(seed: 41)
        let sampler = TrainingPoseSampler(patient: patient, geometry: geometry)
        for _ in 0..<300 {
            let draw = sampler.draw(&rng)
            let label = geometry.label(pose: draw.pose, contactForceN: draw.forceN, seconds: draw.seconds)
            let best = label.quality.max { $0.value < $1.value }
            if let best, best.value >= ViewQuality.present {
                #expect(label.view == best.key)
            } else {
                #expect(label.view == .other)
            }
            for (view, q) in label.quality {
                #expect(abs(q - geometry.quality(of: view, pose: draw.pose, contactForceN: draw.forceN, seconds: draw.seconds)) < 1e-3)
            }
        }
    }
}
