public import SonoGeometry
public import SonoSim

/// A one-joint stand-in for the arm's kinematics, for tests of the contact loop: joint 0 pushes
/// the probe along its beam from `start`, 20 mm per radian, beginning 10 mm above it at 0 rad.
/// The other joints move nothing.
public struct PlungerKinematics: ArmKinematics {
    public let start: Pose

    public init(start: Pose) { self.start = start }

    public func probePose(jointAngles: [Double]) -> Pose {
        var pose = start
        pose.position += start.rotation.z * ((jointAngles.first ?? 0) * 20 - 10)
        return pose
    }
}
