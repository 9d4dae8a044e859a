import ArgumentParser
import Foundation
import SonoGeometry
import SonoSim

/// `sonoctl sim dataset`: labelled frames for training the view classifier.
struct SimDataset: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset",
        abstract: "Write labelled frames (PNG + labels.csv) rendered from the patients in a folder.")

    @Option(help: "Folder of patient files (*.toml).")
    var patients: String

    @Option(help: "Frames per patient.")
    var count: Int = 200

    @Option(help: "Output folder (created).")
    var out: String

    @Option(help: "Image size in pixels (square).")
    var size: Int = 128

    @Option(help: "Imaging depth, mm.")
    var depth: Double = 160

    @Option(help: "Seed of the pose sampling (the patients' seeds drive speckle and noise).")
    var seed: UInt64 = 1

    func run() throws {
        guard count > 0 else { throw ValidationError("--count must be positive") }
        let files = try patientFiles()
        let imaging: ImagingSettings
        do { imaging = try ImagingSettings(width: size, height: size, depthMM: depth).validated() } catch {
            throw ValidationError("\(error)")
        }
        let images = URL(fileURLWithPath: out).appendingPathComponent("images")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)

        var csv = "file,patient,view,time_s,force_n,px,py,pz,rx_deg,ry_deg,rz_deg"
        for view in StandardView.standard {
            csv += ",\(view.rawValue.lowercased())_mm,\(view.rawValue.lowercased())_beam_deg,\(view.rawValue.lowercased())_plane_deg"
        }
        csv += "\n"
        var counts: [StandardView: Int] = [:]
        var rng = SplitMix64(seed: seed)
        var pixels = [UInt8](repeating: 0, count: size * size)
        for file in files {
            let parameters: PatientParameters
            do { parameters = try PatientParameters.load(path: file.path) } catch { throw ValidationError("\(error)") }
            let patient = VirtualPatient(parameters)
            let geometry = StandardViewGeometry(patient: patient)
            let renderer = UltrasoundRenderer(patient: patient, settings: imaging)
            let sampler = PoseSampler(patient: patient, geometry: geometry)
            for index in 0..<count {
                let draw = sampler.draw(&rng)
                pixels.withUnsafeMutableBufferPointer {
                    renderer.render(probe: draw.pose, contactForceN: draw.forceN, seconds: draw.seconds,
                                    frameIndex: UInt64(index), into: $0)
                }
                let label = geometry.label(pose: draw.pose, contactForceN: draw.forceN, seconds: draw.seconds)
                counts[label.view, default: 0] += 1
                let name = "\(parameters.name)_\(String(format: "%05d", index)).png"
                do {
                    try PNG.write(path: images.appendingPathComponent(name).path, width: size, height: size, pixels: pixels)
                } catch { throw ValidationError("\(error)") }
                let r = draw.pose.rotation.rotationVector * (180 / .pi)
                var row = String(format: "images/%@,%@,%@,%.4f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f",
                                 name, parameters.name, label.view.rawValue, draw.seconds, draw.forceN,
                                 draw.pose.position.x, draw.pose.position.y, draw.pose.position.z, r.x, r.y, r.z)
                for view in StandardView.standard {
                    let d = label.distances[view] ?? PoseDistance(positionMM: .nan, beamAngleDeg: .nan, planeRotationDeg: .nan)
                    row += String(format: ",%.2f,%.2f,%.2f", d.positionMM, d.beamAngleDeg, d.planeRotationDeg)
                }
                csv += row + "\n"
            }
            print("\(parameters.name): \(count) frames")
        }
        try csv.write(toFile: URL(fileURLWithPath: out).appendingPathComponent("labels.csv").path,
                      atomically: true, encoding: .utf8)
        let summary = StandardView.allCases.map { "\($0.rawValue) \(counts[$0, default: 0])" }.joined(separator: ", ")
        print("wrote \(files.count * count) frames to \(out) (\(summary))")
    }

    func patientFiles() throws -> [URL] {
        let folder = URL(fileURLWithPath: patients)
        guard let entries = try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil) else {
            throw ValidationError("cannot read patient folder \(patients)")
        }
        let files = entries.filter { $0.pathExtension == "toml" }.sorted { $0.path < $1.path }
        guard !files.isEmpty else { throw ValidationError("no patient files (*.toml) in \(patients)") }
        return files
    }
}

/// Draws probe poses for training data: most near a standard view (inside its tolerance),
/// some near but outside it (the hard negatives), some anywhere on the chest, at random
/// cardiac and breathing phases and contact forces.
struct PoseSampler {
    let patient: VirtualPatient
    let geometry: StandardViewGeometry

    struct Draw {
        var pose: Pose
        var forceN: Double
        var seconds: Double
    }

    func draw(_ rng: inout SplitMix64) -> Draw {
        let seconds = rng.unit() * 20
        var force = 3 + rng.unit() * 7
        if rng.unit() < 0.05 { force = rng.unit() * 1.5 }
        let kind = rng.unit()
        let view = StandardView.standard[Int(rng.next() % UInt64(StandardView.standard.count))]
        guard kind < 0.85, let canonical = geometry.canonical[view] else {
            return Draw(pose: randomChestPose(&rng), forceN: force, seconds: seconds)
        }
        // Near: within about two thirds of the tolerance. Far: 1.3–3× the tolerance.
        let near = kind < 0.6
        let positionScale = near ? 7.0 : 16 + rng.unit() * 20
        let angleScale = (near ? 7.0 : 16 + rng.unit() * 25) * .pi / 180
        var pose = canonical
        pose.position += pose.rotation * (unitVector(&rng, planar: true) * (rng.unit() * positionScale))
        let tilt = Rotation(axis: unitVector(&rng, planar: true), angle: rng.unit() * angleScale)
        let spin = Rotation(axis: .unitZ, angle: (rng.unit() * 2 - 1) * (near ? 10 : 40) * .pi / 180)
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
