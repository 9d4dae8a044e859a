import Foundation
import SonoCore
import SonoGeometry
import SonoProtocol
import SonoSim
import SonoSystem
import SonoTestbed

/// The virtual patient standing in for the hardware in `sonod --simulate`. The simulated arm
/// and force/torque boards run their firmware on emulated USB CDC-ACM devices (umockdev), so
/// the daemon reaches them through the same libserialport driver, link layer and real-time
/// path as real boards; the simulated probe renders what the probe sees at the arm's pose.
final class SimulatedHardware {
    let patient: VirtualPatient
    let geometry: StandardViewGeometry
    let patientPath: String
    private let scanner: SimulatedScanner
    private let armBoard: BenchBoard
    private let forceBoard: BenchBoard
    private var plugged = true

    var armDevice: String { armBoard.devnode }
    var forceDevice: String { forceBoard.devnode }

    init(patientPath: String, robot: RobotDescription) throws(StartupError) {
        let bench: EmulatedSerialBench
        do { bench = try EmulatedSerialBench.shared() } catch {
            throw .simulation("\(error) (sonod --simulate re-executes itself under umockdev-wrapper; is umockdev installed?)")
        }
        do { patient = VirtualPatient(try PatientParameters.load(path: patientPath)) } catch {
            throw .simulation("\(error)")
        }
        self.patientPath = patientPath
        geometry = StandardViewGeometry(patient: patient)
        scanner = SimulatedScanner(patient: patient, kinematics: robot, arm: ArmBoardConfiguration(robot: robot),
                                   sensorOffsetMM: robot.tool.position.z)
        do {
            armBoard = try BenchBoard(firmware: scanner.arm, device: .arm(serial: "ARM-SIM-1"), bench: bench)
            forceBoard = try BenchBoard(firmware: scanner.forceSensor, device: .forceSensor(serial: "FT-SIM-1"), bench: bench)
        } catch {
            throw .simulation("cannot plug in the simulated boards: \(error)")
        }
    }

    /// The simulated probe: frames at 30 fps on the monotonic clock, rendered at the pose the
    /// arm really has (the simulator's truth, as a real probe would image).
    func makeProbe() -> SimulatedProbe {
        SimulatedProbe(patient: patient, settings: ImagingSettings(), state: scanner.state,
                       clock: { MonotonicClock.nowMicros() },
                       sleep: { micros in usleep(useconds_t(min(micros, 1_000_000))) })
    }

    /// The simulator's truth about the probe now.
    var truth: ScannerState.Value { scanner.state.current }

    func unplug() {
        guard plugged else { return }
        plugged = false
        armBoard.unplug()
        forceBoard.unplug()
    }
}
