import Foundation
import SonoCore
import SonoGeometry
import SonoSim
import Testing

/// The arm of hardware/arm.toml must reach every standard view of every shipped patient,
/// and some way around it (the search near a view), from its parking pose.
@Suite struct ArmReachTests {
    @Test func everyViewOfEveryShippedPatientIsReachable() throws {
        let robot = try RobotDescription.load(path: VirtualPatientTests.repository.appendingPathComponent("hardware/arm.toml").path)
        var unreachable: [String] = []
        for parameters in VirtualPatientTests.shippedPatients {
            let geometry = StandardViewGeometry(patient: VirtualPatient(parameters))
            for view in StandardView.standard {
                guard let canonical = geometry.canonical[view] else { continue }
                for (dx, tilt) in [(0.0, 0.0), (10, 0), (-10, 0), (0, 10), (0, -10)] {
                    var pose = canonical
                    pose.position += pose.rotation * Vector3(dx, 0, 0)
                    pose.rotation = pose.rotation * Rotation(axis: .unitY, angle: tilt * .pi / 180)
                    let result = robot.solveIK(target: pose, seed: robot.home)
                    if !result.converged {
                        unreachable.append("\(parameters.name) \(view) dx \(dx) tilt \(tilt): \(Int(result.positionErrorMM)) mm")
                    }
                }
            }
        }
        #expect(unreachable.isEmpty, "\(unreachable.count) unreachable: \(unreachable.prefix(8).joined(separator: "; "))")
    }
}
