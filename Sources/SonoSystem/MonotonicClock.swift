#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// CLOCK_MONOTONIC: the time base of frame timestamps (PROTOCOL.md §1.1), deadlines and
/// latency figures. Never steps with wall-clock changes. Simulated boards stamp their frames
/// with it too, so host-side latency is a plain difference.
public enum MonotonicClock {
    @inline(__always)
    public static func nowMicros() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000 + UInt64(time.tv_nsec) / 1_000
    }

    @inline(__always)
    public static func nowNanos() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// Sleeps until the absolute monotonic time `deadlineNanos` (no drift across periods). A
    /// signal does not cut the sleep short: the same absolute deadline is slept to again.
    public static func sleep(untilNanos deadlineNanos: UInt64) {
        var deadline = timespec(tv_sec: Int(deadlineNanos / 1_000_000_000),
                                tv_nsec: Int(deadlineNanos % 1_000_000_000))
        _ = Errno.errorRetryingInterrupts { clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, nil) }
    }
}
