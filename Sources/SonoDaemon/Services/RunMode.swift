public import SonoCore
public import SonoDevices
public import SonoGeometry

/// What the daemon runs against.
public enum RunMode: Sendable {
    /// The devices of the configuration.
    case hardware
    /// The stand-ins a simulation host provides (the virtual patient on emulated devices).
    case simulation(any SimulationHost)

    /// As the status, the summary and the recording's metadata name it.
    public var name: String {
        switch self {
        case .hardware: "hardware"
        case .simulation: "simulation"
        }
    }

    public var simulation: (any SimulationHost)? {
        if case .simulation(let host) = self { host } else { nil }
    }
}

/// What a simulation host provides in place of the scanner's hardware, and all the daemon
/// knows of it: devices that its real drivers open, a probe, and the simulator's verdict on an
/// acquired view. The daemon's decisions never use the verdict; it is reported beside them.
public protocol SimulationHost: AnyObject, Sendable {
    /// The patient file the simulation runs (reported, and attached to the recording).
    var patientPath: String { get }
    /// Where the daemon's board links find the simulated boards once they are plugged in.
    var armPort: SerialPortSelector { get }
    var forceSensorPort: SerialPortSelector { get }
    /// The simulated probe: frames of what the probe sees at the arm's actual pose.
    func makeProbe() -> any ProbeFrameSource
    /// Plugs the simulated boards in: their firmware starts and their devices appear.
    func plugIn() throws(StartupError)
    /// Pulls them out again (the boards stop, their devices hang up and disappear).
    func unplug()
    /// The simulator's ground truth for `view` acquired at `pose`, judged now (nil when the
    /// simulator does not know the view).
    func groundTruth(view: StandardView, pose: Pose) -> ViewGroundTruth?
    /// The simulator's true diagnostic quality of `view` for a probe at `pose` pressing
    /// `forceN` at `seconds` on the probe's clock (SonoSim's `ViewQuality`).
    func trueQuality(of view: StandardView, pose: Pose, forceN: Double, seconds: Double) -> Double
}

/// How an acquisition compares with the simulator's truth.
public struct ViewGroundTruth: Sendable, Equatable {
    /// Distance across the beam from the view's canonical pose, mm.
    public var positionMM: Double
    /// Angle between the beam and the canonical one, degrees.
    public var beamAngleDeg: Double
    /// Rotation about the beam from the canonical imaging plane, degrees.
    public var planeRotationDeg: Double
    /// The view the simulator labels the probe's current image with.
    public var truthView: String

    public init(positionMM: Double, beamAngleDeg: Double, planeRotationDeg: Double, truthView: String) {
        self.positionMM = positionMM
        self.beamAngleDeg = beamAngleDeg
        self.planeRotationDeg = planeRotationDeg
        self.truthView = truthView
    }
}
