import ArgumentParser
import Foundation
import SonoCore
import SonoGeometry
import SonoImaging
import SonoSim

/// `sonoctl sim dataset`: labelled frames for training the view classifier.
struct SimDataset: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset",
        abstract: "Write labelled frames (PNG + labels.csv: view, pose, distances and true quality per view) rendered from the patients in a folder.")

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
        // True quality per view (ViewQuality), then its two view-independent factors.
        for view in StandardView.standard { csv += ",\(view.rawValue.lowercased())_q" }
        csv += ",window,coupling"
        csv += "\n"
        var counts: [StandardView: Int] = [:]
        var rng = SplitMix64(seed: seed)
        var pixels = [UInt8](repeating: 0, count: size * size)
        for file in files {
            let parameters: PatientParameters
            do { parameters = try PatientParameters.load(path: file.path) } catch { throw ValidationError("\(error)") }
            // Files and the CSV's patient column use the file's stem: names may hold spaces and commas.
            let patientID = file.deletingPathExtension().lastPathComponent
            let patient = VirtualPatient(parameters)
            let geometry = StandardViewGeometry(patient: patient)
            let renderer = UltrasoundRenderer(patient: patient, settings: imaging)
            let sampler = TrainingPoseSampler(patient: patient, geometry: geometry)
            for index in 0..<count {
                let draw = sampler.draw(&rng)
                pixels.withUnsafeMutableBufferPointer {
                    renderer.render(probe: draw.pose, contactForceN: draw.forceN, seconds: draw.seconds,
                                    frameIndex: UInt64(index), into: $0)
                }
                let label = geometry.label(pose: draw.pose, contactForceN: draw.forceN, seconds: draw.seconds)
                counts[label.view, default: 0] += 1
                let name = "\(patientID)_\(String(format: "%05d", index)).png"
                do {
                    try PNG.write(path: images.appendingPathComponent(name).path, width: size, height: size, pixels: pixels)
                } catch { throw ValidationError("\(error)") }
                let r = draw.pose.rotation.rotationVector * (180 / .pi)
                var row = String(format: "images/%@,%@,%@,%.4f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f",
                                 name, patientID, label.view.rawValue, draw.seconds, draw.forceN,
                                 draw.pose.position.x, draw.pose.position.y, draw.pose.position.z, r.x, r.y, r.z)
                for view in StandardView.standard {
                    let d = label.distances[view] ?? PoseDistance(positionMM: .nan, beamAngleDeg: .nan, planeRotationDeg: .nan)
                    row += String(format: ",%.2f,%.2f,%.2f", d.positionMM, d.beamAngleDeg, d.planeRotationDeg)
                }
                for view in StandardView.standard { row += String(format: ",%.4f", label.quality[view] ?? 0) }
                row += String(format: ",%.4f,%.4f", label.window, label.coupling)
                csv += row + "\n"
            }
            print("\(patientID) (\(parameters.name)): \(count) frames")
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
