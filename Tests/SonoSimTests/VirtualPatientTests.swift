import Foundation
import SonoCore
import SonoGeometry
@testable import SonoSim
import SonoTestSupport
import Testing

/// The virtual patient: determinism, view geometry, acoustic windows and shadows, contact.
@Suite struct VirtualPatientTests {
    static let repository = Repository.root

    static var shippedPatients: [PatientParameters] {
        let folder = repository.appendingPathComponent("hardware/patients")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return files.filter { $0.hasSuffix(".toml") }.sorted().compactMap {
            try? PatientParameters.load(path: folder.appendingPathComponent($0).path)
        }
    }

    let patient = VirtualPatient(PatientParameters())
    var geometry: StandardViewGeometry { StandardViewGeometry(patient: patient) }

    func render(_ pose: Pose, patient: VirtualPatient? = nil, force: Double = 6, seconds: Double = 0.2,
                frame: UInt64 = 0, size: Int = 128) -> [UInt8] {
        let renderer = UltrasoundRenderer(patient: patient ?? self.patient,
                                          settings: ImagingSettings(width: size, height: size))
        var pixels = [UInt8](repeating: 0, count: renderer.pixelCount)
        pixels.withUnsafeMutableBufferPointer {
            renderer.render(probe: pose, contactForceN: force, seconds: seconds, frameIndex: frame, into: $0)
        }
        return pixels
    }

    @Test func sameSeedAndInputsGiveBitIdenticalFrames() throws {
        let pose = try #require(geometry.canonical[.a4c])
        let first = render(pose, frame: 7)
        #expect(first == render(pose, frame: 7))
        #expect(first != render(pose, frame: 8), "electronic noise differs frame to frame")
        var other = PatientParameters()
        other.seed = 2
        #expect(first != render(pose, patient: VirtualPatient(other), frame: 7), "speckle follows the seed")
    }

    @Test func theHeartBeats() throws {
        let pose = try #require(geometry.canonical[.a4c])
        let diastole = render(pose, seconds: 0)
        let systole = render(pose, seconds: 0.35 * 60 / 70)
        let changed = zip(diastole, systole).filter { abs(Int($0) - Int($1)) > 40 }.count
        #expect(changed > diastole.count / 50, "only \(changed) pixels changed between diastole and systole")
    }

    @Test func everyCanonicalPoseIsLabelledAsItsView() {
        for parameters in [PatientParameters()] + Self.shippedPatients {
            let geometry = StandardViewGeometry(patient: VirtualPatient(parameters))
            for view in StandardView.standard {
                guard let pose = geometry.canonical[view] else {
                    Issue.record("no canonical pose for \(view)")
                    continue
                }
                #expect(geometry.label(pose: pose, contactForceN: 6).view == view, "\(parameters.name) \(view)")
            }
        }
    }

    @Test func posesAwayFromTheViewAreOther() throws {
        let a4c = try #require(geometry.canonical[.a4c])
        var moved = a4c
        moved.position += a4c.rotation * Vector3(20, 0, 0)
        #expect(geometry.label(pose: moved, contactForceN: 6).view == .other)
        var tilted = a4c
        tilted.rotation = a4c.rotation * Rotation(axis: .unitY, angle: 20 * .pi / 180)
        #expect(geometry.label(pose: tilted, contactForceN: 6).view == .other)
        #expect(geometry.label(pose: a4c, contactForceN: 1).view == .other, "no coupling, no view")
        // Rotating the four-chamber plane 60° about the beam gives the two-chamber plane.
        var rotated = a4c
        rotated.rotation = a4c.rotation * Rotation(axis: .unitZ, angle: 60 * .pi / 180)
        #expect(geometry.label(pose: rotated, contactForceN: 6).view == .a2c)
        let distance = try #require(geometry.distance(from: moved, to: .a4c))
        #expect(abs(distance.positionMM - 20) < 1e-9 && distance.beamAngleDeg < 1e-6)
        // Pressed 15 mm into the chest along the beam: same window, same plane, same view.
        var pressed = a4c
        pressed.position += a4c.rotation.z * 15
        #expect(geometry.label(pose: pressed, contactForceN: 8).view == .a4c)
        let depth = try #require(geometry.distance(from: pressed, to: .a4c))
        #expect(depth.positionMM < 1e-9 && abs(depth.depthMM - 15) < 1e-9)
    }

    @Test func everyViewSeesBloodThroughItsWindowOnEveryShippedPatient() {
        for parameters in [PatientParameters()] + Self.shippedPatients {
            let patient = VirtualPatient(parameters)
            let geometry = StandardViewGeometry(patient: patient)
            let snapshot = patient.snapshot(at: 0)
            for view in StandardView.standard {
                guard let pose = geometry.canonical[view] else { continue }
                let path = (1...160).map { patient.tissue(at: pose.position + pose.rotation.z * Double($0), snapshot).tissue }
                let blocked = path.prefix { $0 != .blood }.contains { $0 == .bone || $0 == .lung }
                #expect(path.contains(.blood) && !blocked, "\(parameters.name) \(view): \(Set(path))")
            }
        }
    }

    @Test func ribsCastAcousticShadows() throws {
        let plax = try #require(geometry.canonical[.plax])
        var onRib = plax
        // 10 mm up: still within the PLAX tolerance, but the beam meets the next rib.
        onRib.position += Vector3(0, patient.parameters.chest.ribSpacingMM * 5 / 12, 0)
        onRib.position.z = patient.chest.surface.height(x: onRib.position.x, y: onRib.position.y)
        let snapshot = patient.snapshot(at: 0)
        let ribDepth = patient.parameters.chest.skinToHeartMM - 7
        #expect(patient.tissue(at: onRib.position + onRib.rotation.z * ribDepth, snapshot).tissue == .bone)

        func deepBrightness(_ pixels: [UInt8]) -> Double {
            // The central third of the image below 60 mm (of 160): behind the chest wall.
            var sum = 0, count = 0
            for row in 48..<128 { for column in 43..<85 { sum += Int(pixels[row * 128 + column]); count += 1 } }
            return Double(sum) / Double(count)
        }
        let clear = deepBrightness(render(plax))
        let shadowed = deepBrightness(render(onRib))
        #expect(shadowed < 0.45 * clear, "behind the rib \(shadowed), through the window \(clear)")
        // Within the PLAX tolerance by pose, but a shadow is no view.
        #expect(geometry.distance(from: onRib, to: .plax).map { $0.isWithin(geometry.tolerance) } == true)
        #expect(geometry.label(pose: onRib, contactForceN: 6).view == .other)
    }

    @Test func lightTouchGivesAPoorImage() throws {
        let pose = try #require(geometry.canonical[.psax])
        let mean = { (pixels: [UInt8]) in Double(pixels.reduce(0) { $0 + Int($1) }) / Double(pixels.count) }
        let pressed = mean(render(pose, force: 6))
        let light = mean(render(pose, force: 1))
        let lifted = mean(render(pose, force: 0))
        // What remains when lifted is the electronic noise floor.
        #expect(light < 0.6 * pressed)
        #expect(lifted < 0.35 * pressed && lifted < light)
    }

    @Test func contactForceRisesMonotonicallyWithIndentation() {
        let contact = ContactModel(patient: patient)
        let surface = patient.chest.surface
        let point = surface.point(x: 40, y: -20)
        let inward = -surface.normal(x: 40, y: -20)
        let probe = { (depth: Double) in
            Pose(rotation: Rotation(forward: inward, right: .unitX), position: point + inward * depth)
        }
        #expect(contact.state(probe: probe(-2), velocity: .zero, rise: 0) == .free)
        var previous = 0.0
        for step in 1...40 {
            let state = contact.state(probe: probe(Double(step) * 0.5), velocity: .zero, rise: 0)
            #expect(state.normalForceN > previous)
            // The probe is aimed along the normal where it touched; deeper the normal turns slightly.
            #expect(abs(state.sensorForce.z - state.normalForceN) < 1e-3 * state.normalForceN, "the sensor reads the push along +z")
            previous = state.normalForceN
        }
        // Stiffening: the second 5 mm cost more than the first.
        let f5 = contact.state(probe: probe(5), velocity: .zero, rise: 0).normalForceN
        let f10 = contact.state(probe: probe(10), velocity: .zero, rise: 0).normalForceN
        #expect(f10 - f5 > f5)
        // Breathing lifts the skin into the probe.
        #expect(contact.state(probe: probe(2), velocity: .zero, rise: 3).normalForceN > contact.state(probe: probe(2), velocity: .zero, rise: 0).normalForceN)
        // Sliding sideways meets friction against the motion.
        let sliding = contact.state(probe: probe(4), velocity: Vector3(0, 20, 0), rise: 0)
        #expect(sliding.forceOnPatient.y > 0 && sliding.sensorTorque.length > 0)
    }
}

@Suite struct TrainingPoseSamplerTests {
    @Test func drawsEveryViewAndHardNegativesDeterministically() {
        let patient = VirtualPatient(PatientParameters())
        let geometry = StandardViewGeometry(patient: patient)
        let sampler = TrainingPoseSampler(patient: patient, geometry: geometry)
        func labels(seed: UInt64) -> [StandardView] {
            var rng = SplitMix64(seed: seed)
            return (0..<400).map { _ in
                let draw = sampler.draw(&rng)
                return geometry.label(pose: draw.pose, contactForceN: draw.forceN, seconds: draw.seconds).view
            }
        }
        let drawn = labels(seed: 3)
        #expect(drawn == labels(seed: 3))
        for view in StandardView.allCases {
            let share = Double(drawn.filter { $0 == view }.count) / Double(drawn.count)
            #expect(share > 0.04, "\(view) is \(share * 100)% of the draws")
        }
    }
}
