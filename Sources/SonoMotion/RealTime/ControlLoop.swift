import Foundation
import Histogram
import SonoProtocol
import SonoSystem
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How the loop thread got scheduled; reported once at start, never from the hot path.
public struct RealTimeReport: Sendable, Equatable, CustomStringConvertible {
    public var fifoPriority: Int32?
    public var memoryLocked: Bool
    public var fifoError: String?
    public var lockError: String?

    public var description: String {
        let scheduling = fifoPriority.map { "SCHED_FIFO priority \($0)" }
            ?? "SCHED_OTHER (SCHED_FIFO not permitted: \(fifoError ?? "unknown"); grant CAP_SYS_NICE or run under sono.service)"
        let memory = memoryLocked ? "memory locked" : "memory not locked (mlockall: \(lockError ?? "unknown"))"
        return "\(scheduling), \(memory)"
    }
}

/// Period and jitter figures of the running loop, published by the loop thread once a second
/// through atomics (no lock between the loop and its readers).
public struct ControlLoopStatistics: Sendable, Equatable {
    public var cycles: UInt64
    public var overruns: UInt64
    /// The overruns of cycles whose body alone took longer than a period; the rest started so
    /// late (the scheduler, or on a VM the hypervisor) that a body of normal length ran past.
    /// The body's time is wall time, so a thread stalled mid-body counts here too: this bounds
    /// the loop's own share from above.
    public var overrunsLongBody: UInt64
    /// Measured period between cycle starts, µs.
    public var periodP50: UInt64
    public var periodP99: UInt64
    public var periodP999: UInt64
    public var periodMax: UInt64
    /// Lateness of cycle starts against their deadlines, µs.
    public var jitterP99: UInt64
    public var jitterMax: UInt64
    /// Time the cycle body took, µs.
    public var bodyP99: UInt64
    public var bodyMax: UInt64
}

/// A fixed-rate control thread (default 1 kHz): sleeps to absolute deadlines (no drift), runs
/// the cycle body, counts overruns (and which of them a long body caused) and records period,
/// start lateness and body time in HDR histograms. Asks for SCHED_FIFO and mlockall and runs
/// without them when not permitted, saying so once.
///
/// The body must not allocate, lock or log: it is the real-time path.
public final class ControlLoop: Sendable {
    public typealias Body = @Sendable (_ cycle: UInt64, _ deadlineNanos: UInt64) -> Void

    public let periodNanos: UInt64
    private let body: Body
    private let running = Atomic<Bool>(false)
    private let published = PublishedStatistics()
    private let finished = Atomic<Bool>(false)
    private let report = Mutex<RealTimeReport?>(nil)

    public init(rateHz: Double = 1_000, body: @escaping Body) {
        periodNanos = UInt64((1e9 / rateHz).rounded())
        self.body = body
    }

    public var statistics: ControlLoopStatistics { published.read() }
    public var realTime: RealTimeReport? { report.withLock { $0 } }

    /// Starts the loop thread; returns once it runs, with how it is scheduled. `lockMemory`
    /// (mlockall) belongs to the daemon; a test process need not pin all its pages.
    @discardableResult
    public func start(priority: Int32 = 80, lockMemory: Bool = true) -> RealTimeReport {
        guard !running.exchange(true, ordering: .acquiringAndReleasing) else { return realTime ?? .init(memoryLocked: false) }
        finished.store(false, ordering: .releasing)
        let ready = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            ThreadScheduling.nameCurrentThread("sono-control")
            let scheduling = Self.requestRealTime(priority: priority, lockMemory: lockMemory)
            report.withLock { $0 = scheduling }
            ready.signal()
            run()
            finished.store(true, ordering: .releasing)
        }
        thread.stackSize = 1 << 20
        thread.start()
        ready.wait()
        return realTime ?? .init(memoryLocked: false)
    }

    /// Stops the loop after its current cycle and waits for it.
    public func stop() {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        while !finished.load(ordering: .acquiring) { usleep(500) }
    }

    private static func requestRealTime(priority: Int32, lockMemory: Bool) -> RealTimeReport {
        var result = RealTimeReport(memoryLocked: false)
        if !lockMemory {
            result.lockError = "not requested"
        } else if mlockall(Int32(MCL_CURRENT | MCL_FUTURE)) == 0 {
            result.memoryLocked = true
        } else {
            result.lockError = Errno.current.description
        }
        if let refusal = ThreadScheduling.useFIFO(priority: priority) { result.fifoError = refusal } else { result.fifoPriority = priority }
        return result
    }

    private func run() {
        // Everything the hot path touches is allocated here, before the first cycle.
        var period = Histogram<UInt64>(highestTrackableValue: 10_000_000, numberOfSignificantValueDigits: .three)
        var jitter = Histogram<UInt64>(highestTrackableValue: 10_000_000, numberOfSignificantValueDigits: .three)
        var bodyTime = Histogram<UInt64>(highestTrackableValue: 10_000_000, numberOfSignificantValueDigits: .three)
        var cycle: UInt64 = 0
        var overruns: UInt64 = 0
        var overrunsLongBody: UInt64 = 0
        var deadline = MonotonicClock.nowNanos() + periodNanos
        var previousStart: UInt64 = 0
        while running.load(ordering: .relaxed) {
            MonotonicClock.sleep(untilNanos: deadline)
            let start = MonotonicClock.nowNanos()
            if previousStart > 0 { period.record((start - previousStart) / 1_000) }
            jitter.record(start > deadline ? (start - deadline) / 1_000 : 0)
            previousStart = start
            body(cycle, deadline)
            cycle += 1
            deadline += periodNanos
            let end = MonotonicClock.nowNanos()
            bodyTime.record((end - start) / 1_000)
            if end > deadline {
                // The body ran past the next deadline: count it and re-phase rather than burst.
                let missed = (end - deadline) / periodNanos + 1
                overruns += missed
                if end - start > periodNanos { overrunsLongBody += missed }
                deadline = end - (end - deadline) % periodNanos + periodNanos
            }
            if cycle % 1_000 == 0 {
                published.write(cycles: cycle, overruns: overruns, overrunsLongBody: overrunsLongBody, period: period, jitter: jitter, body: bodyTime)
            }
        }
        published.write(cycles: cycle, overruns: overruns, overrunsLongBody: overrunsLongBody, period: period, jitter: jitter, body: bodyTime)
    }
}

/// Loop statistics behind atomics: written by the loop thread only, read by anyone. A reader
/// may see fields from two consecutive publications, which is harmless for figures.
final class PublishedStatistics: Sendable {
    private let cycles = Atomic<UInt64>(0)
    private let overruns = Atomic<UInt64>(0)
    private let overrunsLongBody = Atomic<UInt64>(0)
    private let p50 = Atomic<UInt64>(0)
    private let p99 = Atomic<UInt64>(0)
    private let p999 = Atomic<UInt64>(0)
    private let max = Atomic<UInt64>(0)
    private let jitter99 = Atomic<UInt64>(0)
    private let jitterMax = Atomic<UInt64>(0)
    private let body99 = Atomic<UInt64>(0)
    private let bodyMax = Atomic<UInt64>(0)

    func write(cycles: UInt64, overruns: UInt64, overrunsLongBody: UInt64, period: Histogram<UInt64>, jitter: Histogram<UInt64>,
               body: Histogram<UInt64>) {
        self.cycles.store(cycles, ordering: .relaxed)
        self.overruns.store(overruns, ordering: .relaxed)
        self.overrunsLongBody.store(overrunsLongBody, ordering: .relaxed)
        p50.store(period.valueAtPercentile(50), ordering: .relaxed)
        p99.store(period.valueAtPercentile(99), ordering: .relaxed)
        p999.store(period.valueAtPercentile(99.9), ordering: .relaxed)
        max.store(period.max, ordering: .relaxed)
        jitter99.store(jitter.valueAtPercentile(99), ordering: .relaxed)
        jitterMax.store(jitter.max, ordering: .relaxed)
        body99.store(body.valueAtPercentile(99), ordering: .relaxed)
        bodyMax.store(body.max, ordering: .relaxed)
    }

    func read() -> ControlLoopStatistics {
        ControlLoopStatistics(cycles: cycles.load(ordering: .relaxed), overruns: overruns.load(ordering: .relaxed),
                              overrunsLongBody: overrunsLongBody.load(ordering: .relaxed),
                              periodP50: p50.load(ordering: .relaxed), periodP99: p99.load(ordering: .relaxed),
                              periodP999: p999.load(ordering: .relaxed), periodMax: max.load(ordering: .relaxed),
                              jitterP99: jitter99.load(ordering: .relaxed), jitterMax: jitterMax.load(ordering: .relaxed),
                              bodyP99: body99.load(ordering: .relaxed), bodyMax: bodyMax.load(ordering: .relaxed))
    }
}
