public import SonoGeometry
import Synchronization

/// The simulated scanner's shared physical state: where the probe is and how it touches the
/// patient. The arm writes the pose, the contact model the contact, the probe and the force
/// sensor read them; each may run on its own thread.
public final class ScannerState: Sendable {
    public struct Value: Sendable {
        /// Simulated time, µs.
        public var micros: UInt64 = 0
        /// Probe face centre and orientation, chest frame.
        public var probe = Pose.identity
        /// Probe face velocity, mm/s.
        public var velocity = Vector3.zero
        public var contact = ContactModel.State.free
        /// Whether a real probe pose has been set (before the arm's first tick it has not).
        public var valid = false
    }

    private let value = Mutex(Value())

    public init() {}

    public var current: Value { value.withLock { $0 } }

    public func update(_ body: (inout Value) -> Void) { value.withLock { body(&$0) } }
}
