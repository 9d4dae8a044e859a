import Foundation
import SonoGeometry
@testable import SonoMotion
import Testing

/// Frames are tagged with where the probe was when the image was acquired (issue 16, finding 2):
/// the history answers with the control cycle nearest to a time, and with nothing when it has
/// no cycle close enough to say.
@Suite struct ProbeHistoryTests {
    private static func pose(x: Double) -> Pose {
        var pose = Pose.identity
        pose.position = Vector3(x, 0, 0)
        return pose
    }

    @Test func answersWithTheCycleNearestToTheAcquisition() {
        let history = ProbeHistory(capacity: 256)
        // A probe moving 0.1 mm per 1 ms cycle, from t = 1 s for 200 cycles.
        for cycle in 0..<200 {
            history.record(ProbeSample(micros: 1_000_000 + UInt64(cycle) * 1_000, probe: Self.pose(x: Double(cycle) * 0.1),
                                       forceN: 8))
        }
        // A frame acquired at 1.0504 s, classified 100 cycles later: the pose is the one at 1.050 s.
        let sample = history.sample(at: 1_050_400)
        #expect(sample?.micros == 1_050_000)
        #expect(abs((sample?.probe.position.x ?? -1) - 5.0) < 1e-9)
        // The newest cycle, and a time just past it within the tolerance.
        #expect(history.sample(at: 1_199_000)?.micros == 1_199_000)
        #expect(history.sample(at: 1_199_000 + ProbeHistory.toleranceMicros)?.micros == 1_199_000)
    }

    @Test func saysNothingOutsideWhatItKept() {
        let history = ProbeHistory(capacity: 64)
        #expect(history.sample(at: 5_000_000) == nil, "an empty history has no pose to give")
        for cycle in 0..<200 {
            history.record(ProbeSample(micros: UInt64(cycle) * 1_000, probe: .identity, forceN: 0))
        }
        // The queue kept the first 64 (the consumer had not drained), so later ones were dropped.
        #expect(history.dropped == 136)
        #expect(history.sample(at: 63_000)?.micros == 63_000)
        // Older than the kept cycles by more than the tolerance, or far in the future: nothing.
        #expect(history.sample(at: 190_000) == nil)
        history.record(ProbeSample(micros: 500_000, probe: .identity, forceN: 0))
        #expect(history.sample(at: 500_000)?.micros == 500_000)
        #expect(history.sample(at: 400_000) == nil)
    }
}
