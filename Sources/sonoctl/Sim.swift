import ArgumentParser
import Foundation
import SonoCore
import SonoGeometry
import SonoImaging
import SonoSim

/// `sonoctl sim …`: the virtual patient, for people and for training data.
struct Sim: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render frames, contact sheets and training data from the virtual patient; evaluate whole scans in simulated time.",
        subcommands: [SimRender.self, SimDataset.self, SimBench.self, SimPriors.self, SimEval.self])
}

/// Options every sim command shares: which patient and how the probe images.
struct PatientOptions: ParsableArguments {
    @Option(name: .long, help: "Patient file (TOML). Default: hardware/patients/default.toml.")
    var patient: String = "hardware/patients/default.toml"

    @Option(help: "Image size in pixels (square).")
    var size: Int = 256

    @Option(help: "Imaging depth, mm.")
    var depth: Double = 160

    @Option(help: "Sector angle, degrees.")
    var sector: Double = 80

    func load() throws -> VirtualPatient {
        do {
            return VirtualPatient(try PatientParameters.load(path: patient))
        } catch {
            throw ValidationError("\(error)")
        }
    }

    func imaging() throws -> ImagingSettings {
        do {
            return try ImagingSettings(width: size, height: size, depthMM: depth, sectorDeg: sector).validated()
        } catch {
            throw ValidationError("\(error)")
        }
    }
}

struct SimRender: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render",
        abstract: "Write the frame a probe would see as PNG, or a contact sheet of all standard views.")

    @OptionGroup var options: PatientOptions

    @Option(help: "Standard view whose canonical pose to use (PLAX, PSAX, A4C, A2C, SC4C).")
    var view: String?

    @Option(help: "Explicit probe pose: x,y,z (mm, chest frame) and rotation vector rx,ry,rz (degrees).")
    var pose: String?

    @Option(help: "Offset from the view's pose, in the probe frame: dx,dy,dz mm.")
    var offset: String?

    @Option(help: "Extra rotation in the probe frame: rotation vector rx,ry,rz degrees.")
    var rotate: String?

    @Option(help: "Contact force, N.")
    var force: Double = 6

    @Option(help: "Time, seconds (sets the cardiac and breathing phase).")
    var time: Double = 0.1

    @Flag(help: "Write a contact sheet of every standard view (and two off-view poses) instead.")
    var sheet = false

    @Option(help: "Output PNG path.")
    var out: String

    func run() throws {
        let patient = try options.load()
        let imaging = try options.imaging()
        let geometry = StandardViewGeometry(patient: patient)
        let renderer = UltrasoundRenderer(patient: patient, settings: imaging)
        if sheet {
            let sheet = ContactSheet.render(patient: patient, geometry: geometry, renderer: renderer,
                                            forceN: force, seconds: time)
            try writePNG(sheet.pixels, width: sheet.width, height: sheet.height)
            print("wrote \(out): \(sheet.width)×\(sheet.height), \(sheet.captions.joined(separator: " | "))")
            return
        }
        var probe: Pose
        if let pose {
            let values = try numbers(pose, count: 6, option: "--pose")
            probe = Pose(rotation: rotation(degrees: Vector3(values[3], values[4], values[5])),
                         position: Vector3(values[0], values[1], values[2]))
        } else {
            guard let name = view, let standard = StandardView(name: name), standard != .other,
                  let canonical = geometry.canonical[standard] else {
                throw ValidationError("give --view PLAX|PSAX|A4C|A2C|SC4C, --pose, or --sheet")
            }
            probe = canonical
        }
        if let offset {
            let d = try numbers(offset, count: 3, option: "--offset")
            probe.position += probe.rotation * Vector3(d[0], d[1], d[2])
        }
        if let rotate {
            let r = try numbers(rotate, count: 3, option: "--rotate")
            probe.rotation = probe.rotation * rotation(degrees: Vector3(r[0], r[1], r[2]))
        }
        var pixels = [UInt8](repeating: 0, count: renderer.pixelCount)
        pixels.withUnsafeMutableBufferPointer {
            renderer.render(probe: probe, contactForceN: force, seconds: time, frameIndex: 0, into: $0)
        }
        try writePNG(pixels, width: imaging.width, height: imaging.height)
        let label = geometry.label(pose: probe, contactForceN: force, seconds: time)
        print("wrote \(out): view \(label.view)" + String(format: " (window %.2f, coupling %.2f; diagnostic at q ≥ %.1f)",
                                                           label.window, label.coupling, ViewQuality.diagnostic))
        for standard in StandardView.standard {
            if let d = label.distances[standard] {
                print(String(format: "  %-5@ q %.3f %7.1f mm %6.1f° beam %6.1f° plane", standard.rawValue as NSString,
                             label.quality[standard] ?? 0, d.positionMM, d.beamAngleDeg, d.planeRotationDeg))
            }
        }
    }

    func writePNG(_ pixels: [UInt8], width: Int, height: Int) throws {
        do {
            try PNG.write(path: out, width: width, height: height, pixels: pixels)
        } catch {
            throw ValidationError("\(error)")
        }
    }
}

func numbers(_ text: String, count: Int, option: String) throws -> [Double] {
    let values = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
    guard values.count == count, values.allSatisfy({ $0?.isFinite == true }) else {
        throw ValidationError("\(option) takes \(count) comma-separated numbers, got '\(text)'")
    }
    return values.compactMap { $0 }
}

func rotation(degrees vector: Vector3) -> Rotation {
    let angle = vector.length * .pi / 180
    return angle > 0 ? Rotation(axis: vector, angle: angle) : .identity
}
