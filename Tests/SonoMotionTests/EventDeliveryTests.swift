import Foundation
import SonoGeometry
@testable import SonoMotion
import SonoProtocol
import SonoTestSupport
import Synchronization
import Testing

/// A reader of the controller's status may see a stop before the stop's event has been handled
/// (the event thread drains its queue between sleeps). `waitForEventDelivery` closes that gap:
/// the scan's summary relies on it to name the stop that ended the scan.
@Suite struct EventDeliveryTests {
    private struct SilentArm: ArmCommandOutput {
        func send(_ message: Message) -> Bool { true }
    }

    private final class Handled: Sendable {
        private let events = Mutex<[MotionEvent]>([])
        func append(_ event: MotionEvent) { events.withLock { $0.append(event) } }
        var stops: Int { events.withLock { $0.filter { if case .stop = $0 { true } else { false } }.count } }
    }

    @Test func aStopTheStatusShowsHasBeenHandledOnceDeliveryIsWaitedFor() throws {
        let robot = try RobotDescription.load(path: Repository.path("hardware/arm.toml"))
        let handled = Handled()
        // A slow handler (the daemon's writes the session and publishes the event) holds the
        // stop's delivery 300 ms behind the status.
        let controller = MotionController(arm: try ArmModel(robot), configuration: MotionControllerConfiguration(),
                                          inputs: MotionInputs(), output: SilentArm(), onEvent: { event in
                                              if case .stop = event { usleep(300_000) }
                                              handled.append(event)
                                          })
        controller.start(priority: 0, lockMemory: false)
        defer { controller.stop() }

        let stopper = Thread { _ = try? controller.perform(.safety(.emergencyStop)) }
        stopper.start()
        let deadline = Date().addingTimeInterval(2)
        while controller.status.state != .emergencyStop, Date() < deadline { usleep(100) }
        try #require(controller.status.state == .emergencyStop, "the e-stop was not taken")
        #expect(handled.stops == 0, "the handler is still sleeping on the stop: the status was ahead of it")
        #expect(controller.waitForEventDelivery(timeoutMillis: 2_000))
        #expect(handled.stops == 1, "waited for delivery, yet the stop was not handled")
    }

    @Test func waitingWithoutAnEventThreadReportsIt() throws {
        let robot = try RobotDescription.load(path: Repository.path("hardware/arm.toml"))
        let controller = MotionController(arm: try ArmModel(robot), configuration: MotionControllerConfiguration(),
                                          inputs: MotionInputs(), output: SilentArm())
        #expect(!controller.waitForEventDelivery(timeoutMillis: 10))
    }
}
