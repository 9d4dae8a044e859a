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

    /// Overruns are told apart: a body that takes longer than the period (sonod's own work) is
    /// counted as such; a body of normal length that ran past because its cycle started late
    /// (the scheduler, the hypervisor) is not.
    @Test func overrunsOfALongBodyAreCountedApart() {
        // Every 50th cycle works 3 periods (3 ms at 1 kHz); the rest do nothing.
        let loop = ControlLoop(rateHz: 1_000) { cycle, _ in
            if cycle % 50 == 49 { usleep(3_000) }
        }
        loop.start(lockMemory: false)
        Thread.sleep(forTimeInterval: 0.6)
        loop.stop()
        let stats = loop.statistics
        // ≈ 11 long bodies of 3 ms, each ≥ 3 missed periods.
        #expect(stats.overrunsLongBody >= 3 * 5, "\(stats)")
        #expect(stats.overrunsLongBody <= stats.overruns)
        #expect(stats.bodyMax >= 3_000, "the body histogram saw the 3 ms cycles: \(stats.bodyMax) µs")
        #expect(stats.bodyP99 >= 3_000, "2 % of cycles are long, so p99 is one of them: \(stats.bodyP99) µs")
    }

    @Test func shortBodiesNeverCountAsLong() {
        let loop = ControlLoop(rateHz: 1_000) { _, _ in }
        loop.start(lockMemory: false)
        Thread.sleep(forTimeInterval: 0.3)
        loop.stop()
        // Overruns may still happen here (a busy machine wakes the thread late); none are the body's.
        #expect(loop.statistics.overrunsLongBody == 0, "\(loop.statistics)")
        #expect(loop.statistics.bodyMax < 1_000)
    }
}
