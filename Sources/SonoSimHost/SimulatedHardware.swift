import Foundation
public import SonoCore
public import SonoDaemon
public import SonoDevices
public import SonoGeometry
import SonoProtocol
import SonoSim
import SonoSystem
import SonoTestbed
import Synchronization

/// The virtual patient standing in for the scanner's hardware (`sonod-sim`). The simulated arm
/// and force/torque boards run their firmware on emulated USB CDC-ACM devices (umockdev), so
/// the daemon finds them by USB identity and reaches them through the same libserialport
/// driver, link layer and real-time path as real boards; the simulated probe renders what the
/// probe sees at the arm's actual pose. Ground truth (which view the probe really shows, how
/// far it is from the canonical pose) is computed here and handed to the daemon only through
/// `SimulationHost.groundTruth`.
public final class SimulatedHardware: SimulationHost, @unchecked Sendable {
    // @unchecked: `scanner` holds the boards' firmware, which only their BenchBoard runner
    // threads drive once plugged in; from other threads this type reads only `scanner.state`
    // (ScannerState, safe from any thread) and its own immutable values, and `boards` is a Mutex.
    public let patientPath: String
    public let armPort: SerialPortSelector
    public let forceSensorPort: SerialPortSelector
    private let patient: VirtualPatient
    private let geometry: StandardViewGeometry
    private let scanner: SimulatedScanner
    private let bench: EmulatedSerialBench
    private let armDevice = EmulatedUSBSerialDevice.arm(serial: "ARM-SIM-1")
    private let forceDevice = EmulatedUSBSerialDevice.forceSensor(serial: "FT-SIM-1")
    /// The boards while they are plugged in.
    private let boards = Mutex<(arm: BenchBoard, force: BenchBoard)?>(nil)
    /// A probe fault to inject once the probe is on the patient (`--inject-probe-fault`).
    private let probeFault: (fault: ProbeFault, afterContactSeconds: Double)?
    private let faultState = ProbeFaultState()

    /// Loads the patient and readies the emulated-device bench; plugs nothing in yet.
    /// - Throws: `StartupError.simulation` when umockdev is not preloaded or the patient file
    ///   is unreadable or invalid (the message names the file and what is wrong).
    public init(patientPath: String, robotPath: String,
                probeFault: (fault: ProbeFault, afterContactSeconds: Double)? = nil) throws(StartupError) {
        self.probeFault = probeFault
        do { bench = try EmulatedSerialBench.shared() } catch {
            throw .simulation("\(error) (sonod-sim re-executes itself under umockdev-wrapper; is umockdev installed?)")
        }
        let robot: RobotDescription
        do { robot = try RobotDescription.load(path: robotPath) } catch {
            throw .file("robot description \(robotPath): \(error)")
        }
        do { patient = VirtualPatient(try PatientParameters.load(path: patientPath)) } catch {
            throw .simulation("\(error)")
        }
        self.patientPath = patientPath
        geometry = StandardViewGeometry(patient: patient)
        scanner = SimulatedScanner(patient: patient, kinematics: robot, arm: ArmBoardConfiguration(robot: robot),
                                   sensorOffsetMM: robot.tool.position.z)
        armPort = .usb(vendorID: armDevice.vendorID, productID: armDevice.productID, serial: armDevice.serial)
        forceSensorPort = .usb(vendorID: forceDevice.vendorID, productID: forceDevice.productID, serial: forceDevice.serial)
    }

    /// Frames at 30 fps on the monotonic clock, rendered at the pose the arm really has (the
    /// simulator's truth, as a real probe would image).
    public func makeProbe() -> any ProbeFrameSource {
        let probe = SimulatedProbe(patient: patient, settings: .virtualProbe, state: scanner.state,
                                   clock: { MonotonicClock.nowMicros() },
                                   sleep: { micros in usleep(useconds_t(min(micros, 1_000_000))) })
        guard let probeFault else { return probe }
        let state = scanner.state
        watchForRelease(faultState, contactForceN: { state.current.contact.normalForceN })
        return FaultInjectingProbe(base: probe, fault: probeFault.fault, afterContactSeconds: probeFault.afterContactSeconds,
                                   contactForceN: { state.current.contact.normalForceN }, shared: faultState)
    }

    /// The simulator's truth now: the probe's normal contact force on the skin, N.
    public var contactForceN: Double { scanner.state.current.contact.normalForceN }

    /// When the injected probe fault struck and when the probe was next off the skin.
    public var probeFaultReport: ProbeFaultReport { faultState.report.withLock { $0 } }

    public func plugIn() throws(StartupError) {
        do {
            let arm = try BenchBoard(firmware: scanner.arm, device: armDevice, bench: bench)
            let force: BenchBoard
            do { force = try BenchBoard(firmware: scanner.forceSensor, device: forceDevice, bench: bench) } catch {
                arm.unplug()
                throw error
            }
            boards.withLock { $0 = (arm, force) }
        } catch {
            throw .simulation("cannot plug in the simulated boards: \(error)")
        }
    }

    public func unplug() {
        guard let plugged = boards.withLock({ boards in defer { boards = nil }; return boards }) else { return }
        plugged.arm.unplug()
        plugged.force.unplug()
    }

    public func trueQuality(of view: StandardView, pose: Pose, forceN: Double, seconds: Double) -> Double {
        geometry.quality(of: view, pose: pose, contactForceN: forceN, seconds: seconds)
    }

    public func groundTruth(view: StandardView, pose: Pose) -> ViewGroundTruth? {
        guard let distance = geometry.distance(from: pose, to: view) else { return nil }
        let truth = scanner.state.current
        let label = geometry.label(pose: truth.probe, contactForceN: truth.contact.normalForceN,
                                   seconds: Double(truth.micros) / 1e6)
        return ViewGroundTruth(positionMM: distance.positionMM, beamAngleDeg: distance.beamAngleDeg,
                               planeRotationDeg: distance.planeRotationDeg, truthView: label.view.rawValue)
    }
}
