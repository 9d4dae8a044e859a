import ArgumentParser
import Foundation
import SonoCore
import SonoDevices
import SonoGeometry
import SonoImaging
import SonoProtocol
import SonoSim
import SonoSystem
import SonoTestbed
import Synchronization

/// `sono-devlab patient`: the virtual patient behind the real serial drivers. The simulated arm
/// and force sensor boards run on emulated USB devices; the host drives the arm to each standard
/// view's window, presses to the contact force, grabs a frame from the simulated probe and
/// prints the simulator's ground truth for it. A device-lab walk-through of the world the
/// daemon will scan in, not the daemon's planner or motion controller.
struct PatientDemo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "patient",
        abstract: "Drive the simulated scanner through the real serial links to every standard view.")

    @Option(help: "Patient file.")
    var patient = "hardware/patients/default.toml"

    @Option(help: "Robot description.")
    var robot = "hardware/arm.toml"

    @Option(help: "Contact force to press with, N.")
    var force: Double = 6

    @Option(help: "Folder for the frames (PNG).")
    var out = "/tmp/sono-demo"

    func run() throws {
        let bench = try requireBench()
        let arm: RobotDescription
        let parameters: PatientParameters
        do {
            arm = try RobotDescription.load(path: robot)
            parameters = try PatientParameters.load(path: patient)
        } catch { throw ValidationError("\(error)") }
        let world = VirtualPatient(parameters)
        let scanner = SimulatedScanner(patient: world, kinematics: arm, arm: ArmBoardConfiguration(robot: arm),
                                       sensorOffsetMM: arm.tool.position.z)
        let armBoard = try BenchBoard(firmware: scanner.arm, device: .arm(serial: "ARM-VP-1"), bench: bench)
        let forceBoard = try BenchBoard(firmware: scanner.forceSensor, device: .forceSensor(serial: "FT-VP-1"), bench: bench)
        defer {
            armBoard.unplug()
            forceBoard.unplug()
        }
        let latest = LatestState()
        let armLink = BoardLink(BoardLinkConfiguration(name: "arm", port: .path(armBoard.devnode), expectedKind: .arm),
                                onFrame: latest.record)
        let forceLink = BoardLink(BoardLinkConfiguration(name: "force sensor", port: .path(forceBoard.devnode),
                                                         expectedKind: .forceTorque), onFrame: latest.record)
        armLink.start()
        forceLink.start()
        defer {
            armLink.stop()
            forceLink.stop()
        }
        guard armLink.waitUntilConnected(timeoutMillis: 3_000) != nil,
              forceLink.waitUntilConnected(timeoutMillis: 3_000) != nil else {
            throw ValidationError("simulated boards did not connect")
        }
        print("Virtual patient '\(parameters.name)' (HR \(Int(parameters.heartRateBPM)) bpm), arm '\(arm.name)', "
              + "boards on \(armBoard.devnode) and \(forceBoard.devnode)")
        _ = try forceLink.request(.tare)
        _ = try armLink.request(.setDrives(enable: true))
        Thread.sleep(forTimeInterval: 0.2)

        let driver = ArmDriver(link: armLink, robot: arm, latest: latest)
        let geometry = StandardViewGeometry(patient: world)
        let probe = SimulatedProbe(patient: world, settings: ImagingSettings(width: 256, height: 256),
                                   state: scanner.state, clock: { MonotonicClock.nowMicros() },
                                   sleep: { usleep(UInt32(min($0, 1_000_000))) })
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var pixels = [UInt8](repeating: 0, count: probe.format.pixelCount)

        for view in StandardView.standard {
            guard let canonical = geometry.canonical[view] else { continue }
            let start = MonotonicClock.nowMicros()
            var hover = canonical
            hover.position -= canonical.rotation.z * 40
            try driver.moveLinear(to: hover, speedMMs: 150)
            let pressed = try driver.press(along: canonical, targetForceN: force)
            _ = try pixels.withUnsafeMutableBufferPointer { try probe.nextFrame(into: $0, timeoutMicros: 200_000) }
            let path = "\(out)/\(view.rawValue.lowercased()).png"
            do { try PNG.write(path: path, width: probe.format.width, height: probe.format.height, pixels: pixels) } catch {
                throw ValidationError("\(error)")
            }
            let state = scanner.state.current
            let label = geometry.label(pose: state.probe, contactForceN: state.contact.normalForceN,
                                       seconds: Double(state.micros) / 1e6)
            let distance = label.distances[view]
            print(String(format: "  %-4@ → truth %-5@ %5.1f N axial (normal force %4.1f N), %4.1f mm / %4.1f° from canonical, %4.1f s  %@",
                         view.rawValue as NSString, label.view.rawValue as NSString, pressed, state.contact.normalForceN,
                         distance?.positionMM ?? .nan, distance?.beamAngleDeg ?? .nan,
                         Double(MonotonicClock.nowMicros() - start) / 1e6, path as NSString))
            try driver.moveLinear(to: hover, speedMMs: 150)
        }
        _ = try armLink.request(.stop(category: StopCategory.controlledThenPowerOff.rawValue))
        let stats = forceLink.statistics
        print("  force samples \(stats.receive.frames), lost \(stats.lostFrames); joint states \(armLink.statistics.receive.frames)")
    }
}

/// The latest joint angles and force reading, as the links deliver them.
final class LatestState: Sendable {
    private let joints = Mutex<[Double]>([])
    private let forceZ = Mutex<Double>(0)

    func record(_ frame: Frame, _ receivedAt: UInt64) {
        switch frame.message {
        case .jointState(let state): joints.withLock { $0 = state.joints.map { Double($0.position) } }
        case .forceTorqueSample(let sample): forceZ.withLock { $0 = Double(sample.fz) }
        default: break
        }
    }

    var jointAngles: [Double] { joints.withLock { $0 } }
    var force: Double { forceZ.withLock { $0 } }
}

/// Streams joint targets for straight-line probe moves and a force-guided press.
struct ArmDriver {
    let link: BoardLink
    let robot: RobotDescription
    let latest: LatestState

    enum Failure: Error, CustomStringConvertible {
        case unreachable(Pose, Double)
        var description: String {
            switch self {
            case .unreachable(let pose, let error): "cannot reach \(pose.position) (IK error \(Int(error)) mm)"
            }
        }
    }

    func command(_ q: [Double]) throws {
        let targets = JointArray(zip(q, robot.joints).map {
            JointTarget(position: Float($0), maxVelocity: Float($1.maxVelocity), maxCurrent: Float($1.maxCurrent))
        }, filler: .zero)
        try link.send(.jointCommand(JointCommand(joints: targets)))
    }

    /// Moves the probe along a straight line (and a proportional rotation) at `speedMMs`.
    func moveLinear(to target: Pose, speedMMs: Double) throws {
        var q = latest.jointAngles
        let start = robot.probePose(q)
        let twist = (start.rotation.transposed * target.rotation).rotationVector
        let duration = max((target.position - start.position).length / speedMMs, twist.length / 1.0, 0.2)
        let steps = Int(duration * 500)
        for step in 1...steps {
            let s = Double(step) / Double(steps)
            let blend = s * s * (3 - 2 * s)
            let angle = twist.length * blend
            let pose = Pose(rotation: start.rotation * (angle > 0 ? Rotation(axis: twist, angle: angle) : .identity),
                            position: start.position + (target.position - start.position) * blend)
            let solution = robot.solveIK(target: pose, seed: q, maxIterations: 50)
            guard solution.converged else { throw Failure.unreachable(pose, solution.positionErrorMM) }
            q = solution.joints
            try command(q)
            usleep(2_000)
        }
        for _ in 0..<150 {  // let the servos settle on the last target
            try command(q)
            usleep(2_000)
        }
    }

    /// Advances the probe along its beam through `canonical` until the force sensor reads
    /// `targetForceN` steadily; returns the force measured at the end.
    func press(along canonical: Pose, targetForceN: Double) throws -> Double {
        var q = latest.jointAngles
        var depth = -40.0
        var steady = 0
        // Breathing moves the chest under the probe, so "steady" allows ±1 N for 0.2 s.
        for _ in 0..<2_500 {
            let error = targetForceN - latest.force
            steady = abs(error) < 1 ? steady + 1 : 0
            if steady > 100 { break }
            // Admittance-like: advance quickly in the air, gently in contact.
            depth += max(-0.05, min(0.08, 0.01 * error))
            var pose = canonical
            pose.position += canonical.rotation.z * depth
            let solution = robot.solveIK(target: pose, seed: q, maxIterations: 20)
            guard solution.converged else { throw Failure.unreachable(pose, solution.positionErrorMM) }
            q = solution.joints
            try command(q)
            usleep(2_000)
        }
        return latest.force
    }
}
