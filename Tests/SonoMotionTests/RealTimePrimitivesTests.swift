import Foundation
import SonoGeometry
@testable import SonoMotion
import SonoProtocol
import SonoTestSupport
import Testing

@Suite struct SPSCQueueTests {
    @Test func keepsOrderAndLosesNothingAcrossThreads() async {
        let queue = SPSCQueue<UInt64>(capacity: 64)
        let total: UInt64 = 300_000
        let producer = Thread {
            var next: UInt64 = 0
            while next < total { if queue.push(next) { next += 1 } }
        }
        producer.start()
        var expected: UInt64 = 0
        var outOfOrder = 0
        while expected < total {
            if let value = queue.pop() {
                if value != expected { outOfOrder += 1 }
                expected = value + 1
            }
        }
        #expect(outOfOrder == 0)
        #expect(queue.pop() == nil)
    }

    @Test func refusesAndCountsWhenFull() {
        let queue = SPSCQueue<Int>(capacity: 3)  // rounded up to 4
        #expect(queue.capacity == 4)
        for value in 0..<4 { #expect(queue.push(value)) }
        #expect(!queue.push(4))
        #expect(queue.overflowCount == 1)
        #expect(queue.pop() == 0)
        #expect(queue.push(5))
        #expect((0..<4).compactMap { _ in queue.pop() } == [1, 2, 3, 5])
    }

    @Test func releasesWhatItStillHolds() {
        final class Token: Sendable {}
        weak var held: Token?
        do {
            let queue = SPSCQueue<Token>(capacity: 4)
            let token = Token()
            held = token
            queue.push(token)
        }
        #expect(held == nil)
    }
}

@Suite struct TripleBufferTests {
    struct Pair: Sendable, Equatable { var a: UInt64; var b: UInt64 }

    @Test func readersSeeWholeValuesInOrder() {
        let buffer = TripleBuffer(Pair(a: 0, b: 0))
        let total: UInt64 = 200_000
        let writer = Thread {
            for value in 1...total { buffer.write(Pair(a: value, b: value)) }
        }
        writer.start()
        var last: UInt64 = 0
        var torn = 0, backwards = 0
        while last < total {
            let value = buffer.read()
            if value.a != value.b { torn += 1 }
            if value.a < last { backwards += 1 }
            last = max(last, value.a)
        }
        #expect(torn == 0)
        #expect(backwards == 0)
        #expect(buffer.read() == Pair(a: total, b: total))
    }
}

@Suite struct ArmModelTests {
    static let robot: RobotDescription = {
        let path = Repository.path("hardware/arm.toml")
        return try! RobotDescription.load(path: path)  // the repo's own file; a failure is a test failure
    }()

    @Test func matchesTheReferenceKinematics() throws {
        let model = try ArmModel(Self.robot)
        var q = Self.robot.home
        for step in 0..<20 {
            for index in q.indices { q[index] += 0.05 * sin(Double(step * (index + 1))) }
            let (pose, jacobian) = model.probePoseAndJacobian(JointArray(q, filler: 0))
            let reference = Self.robot.probePose(q)
            #expect((pose.position - reference.position).length < 1e-9)
            #expect(pose.rotation.angle(to: reference.rotation) < 1e-7)  // acos near 1 resolves ~1e-8 rad
            let columns = Self.robot.jacobian(q)
            for joint in 0..<6 {
                let linear = Vector3(columns[joint * 6], columns[joint * 6 + 1], columns[joint * 6 + 2])
                let angular = Vector3(columns[joint * 6 + 3], columns[joint * 6 + 4], columns[joint * 6 + 5])
                #expect((jacobian.linear[joint] - linear).length < 1e-9)
                #expect((jacobian.angular[joint] - angular).length < 1e-12)
            }
        }
    }

    @Test func tracksSmallMovesWithinACycleAndRespectsJointLimits() throws {
        let model = try ArmModel(Self.robot)
        let q = JointArray(Self.robot.home, filler: 0)
        var target = model.probePose(q)
        target.position += Vector3(0.05, -0.03, 0.04)  // a 1 kHz step at 50 mm/s
        target.rotation = target.rotation * Rotation(axis: .unitY, angle: 5e-4)
        let tracking = model.track(target, from: q)
        #expect(tracking.positionErrorMM < 0.005)
        #expect(tracking.orientationErrorRad < 1e-4)
        // Far beyond the reach: the answer stays within limits and reports its error.
        var far = target
        far.position.z += 2_000
        let unreachable = model.track(far, from: q, iterations: 50)
        #expect(unreachable.positionErrorMM > 500)
        for index in 0..<6 {
            #expect(unreachable.joints[index] >= model.lower[index] && unreachable.joints[index] <= model.upper[index])
        }
    }
}
