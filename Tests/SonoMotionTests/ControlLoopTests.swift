import Foundation
@testable import SonoMotion
import Synchronization
import Testing

@Suite struct ControlLoopTests {
    @Test func runsTheBodyEveryPeriodAndStops() {
        let count = Atomic<UInt64>(0)
        let lastDeadline = Atomic<UInt64>(0)
        let loop = ControlLoop(rateHz: 500) { cycle, deadline in
            // Deadlines advance by whole periods: absolute, not relative, sleeping.
            let previous = lastDeadline.exchange(deadline, ordering: .relaxed)
            if previous > 0 { precondition((deadline - previous) % 2_000_000 == 0, "deadline off the period grid") }
            count.wrappingAdd(1, ordering: .relaxed)
        }
        let report = loop.start(lockMemory: false)
        #expect(report.fifoPriority != nil || report.fifoError != nil, "scheduling is reported either way")
        Thread.sleep(forTimeInterval: 0.5)
        loop.stop()
        let cycles = count.load(ordering: .relaxed)
        #expect(cycles > 100, "only \(cycles) cycles in 0.5 s at 500 Hz")
        let stats = loop.statistics
        #expect(stats.cycles == cycles)
        #expect(stats.periodP50 > 0)
        Thread.sleep(forTimeInterval: 0.05)
        #expect(count.load(ordering: .relaxed) == cycles, "the body ran after stop()")
    }
}
