public import SonoGeometry

/// The simulated arm is the arm of hardware/arm.toml: its kinematics place the probe and its
/// limits configure the arm board's firmware.
extension RobotDescription: ArmKinematics {
    public func probePose(jointAngles: [Double]) -> Pose { probePose(jointAngles) }
}

extension ArmBoardConfiguration {
    /// The board's limits from the robot description; the arm starts parked at home.
    public init(robot: RobotDescription) {
        self.init(jointCount: robot.jointCount)
        lowerLimits = robot.joints.map { Float($0.lower) }
        upperLimits = robot.joints.map { Float($0.upper) }
        maxVelocity = robot.joints.map { Float($0.maxVelocity) }
        maxAcceleration = robot.joints.map { Float($0.maxAcceleration) }
        maxCurrent = robot.joints.map { Float($0.maxCurrent) }
        initialPositions = robot.home.map { Float($0) }
        // The virtual patient's boards sit behind umockdev's relay thread, whose latency tail
        // under load passes 20 ms: the simulation's command deadline matches its stale-data
        // deadlines (40 ms, for the same reason) so that it catches a stalled
        // loop, not relay jitter. A hardware board keeps PROTOCOL.md's 20 ms.
        commandTimeoutMillis = 40
    }
}
