import ArgumentParser
import Foundation
import SonoCore
import SonoGeometry
import SonoSim
import SonoTestbed

/// `sono-devlab usb-capture`: a usbmon capture of the USB probe streaming the virtual patient,
/// for `umockdev-run --pcap` (the way libfprint tests its drivers): GET_INFO, SET_IMAGING,
/// START_STREAMING and the frames, each as the driver's bulk transfers receive them. The frames
/// are rendered by the simulator with the probe held on one standard view, so the heart beats
/// through the capture. Replay: `make test-usb-replay`.
struct USBCapture: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usb-capture",
        abstract: "Write a usbmon capture (pcap) of the USB probe streaming the virtual patient.")

    @Option(help: "Folder for probe.umockdev, probe.pcap and syspath.")
    var out = ".build/usb-capture"

    @Option(help: "Frames in the capture.")
    var frames = 300

    @Option(help: "Frame width and height (128, 256 or 512).")
    var side = 128

    @Option(help: "Frame rate, frames/s.")
    var rate = 60.0

    @Option(help: "Imaging depth, mm.")
    var depth = 160

    @Option(help: "Bulk-IN transfers the driver keeps in flight (sonoctl probe stream --transfers).")
    var transfers = 8

    @Option(help: "Virtual patient.")
    var patient = "hardware/patients/default.toml"

    @Option(help: "The standard view the probe is held on.")
    var view = "PLAX"

    func run() throws {
        let parameters: PatientParameters
        do { parameters = try PatientParameters.load(path: patient) } catch { throw ValidationError("\(error)") }
        guard let standard = StandardView(rawValue: view.uppercased()) else {
            throw ValidationError("--view \(view): one of " + StandardView.allCases.map(\.rawValue).joined(separator: ", "))
        }
        let world = VirtualPatient(parameters)
        guard let pose = StandardViewGeometry(patient: world).canonical[standard] else {
            throw ValidationError("the patient has no canonical \(standard.rawValue) pose")
        }
        let settings: ImagingSettings
        do { settings = try ImagingSettings(width: side, height: side, depthMM: Double(depth), framesPerSecond: rate).validated() } catch {
            throw ValidationError("\(error)")
        }
        let renderer = RendererBox(UltrasoundRenderer(patient: world, settings: settings))
        // The driver's first SET_IMAGING carries settings_seq 1 (USB-PROBE.md §3.2).
        let imaging = EmulatedUSBProbe.Imaging(depthMM: UInt16(clamping: depth), gainCentiDB: 0,
                                               rateCentiFPS: UInt16(clamping: Int((rate * 100).rounded())),
                                               width: side, height: side, sequence: 1)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let files: ProbeCapture.Files
        do {
            files = try ProbeCapture.write(directory: out, frames: frames, inFlight: transfers, imaging: imaging) {
                number, _, _, pixels in
                renderer.render(probe: pose, contactForceN: 8, seconds: Double(number) / rate, frameIndex: number, into: pixels)
            }
        } catch {
            throw ValidationError("\(error)")
        }
        try files.syspath.write(toFile: (out as NSString).appendingPathComponent("syspath"), atomically: true, encoding: .utf8)
        let bytes = (try? FileManager.default.attributesOfItem(atPath: files.capture)[.size] as? Int) ?? 0
        print("\(files.capture): \(frames) frames of \(parameters.name) on \(standard.rawValue), \(side)×\(side) at \(rate) frames/s, "
            + "\(bytes / 1_000_000) MB; device record \(files.record)")
        print("replay: umockdev-run \(files.umockdevRunArguments.joined(separator: " ")) -- "
            + "sonoctl probe stream --frames \(frames) --side \(side) --rate \(rate) --depth \(depth) --transfers \(transfers) --expect-intact")
    }
}

/// The simulator's renderer behind a lock: the capture writer calls it as a @Sendable closure.
final class RendererBox: @unchecked Sendable {
    // @unchecked: `renderer` is used only under `lock`.
    private let renderer: UltrasoundRenderer
    private let lock = NSLock()
    init(_ renderer: UltrasoundRenderer) { self.renderer = renderer }

    func render(probe: Pose, contactForceN: Double, seconds: Double, frameIndex: UInt64,
                into pixels: UnsafeMutableBufferPointer<UInt8>) {
        lock.withLock {
            renderer.render(probe: probe, contactForceN: contactForceN, seconds: seconds, frameIndex: frameIndex, into: pixels)
        }
    }
}
