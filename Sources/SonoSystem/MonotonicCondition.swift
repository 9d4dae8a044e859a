#if canImport(Glibc)
import Glibc
#endif

/// A mutex and condition variable whose timed waits run on CLOCK_MONOTONIC, so a step of the
/// wall clock (NTP, an operator setting the date) neither shortens nor stretches a deadline.
/// Foundation's `NSCondition.wait(until:)` takes a wall-clock `Date`.
public final class MonotonicCondition: @unchecked Sendable {
    // @unchecked: the pthread objects are used only through pthread calls, which synchronise.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    /// Runs `body` with the mutex held.
    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Wakes one waiter; call with or without the lock held.
    public func signal() { pthread_cond_signal(condition) }
    public func broadcast() { pthread_cond_broadcast(condition) }

    /// With the lock held: waits until signalled or `nanoseconds` have passed (nil: no limit;
    /// at most an hour). A spurious wake-up returns early: callers re-check their condition.
    public func wait(nanoseconds: UInt64?) {
        guard let nanoseconds else {
            pthread_cond_wait(condition, mutex)
            return
        }
        var deadline = Self.timespec(MonotonicClock.nowNanos() &+ min(nanoseconds, 3_600_000_000_000))
        pthread_cond_timedwait(condition, mutex, &deadline)
    }

    private static func timespec(_ nanos: UInt64) -> Glibc.timespec {
        Glibc.timespec(tv_sec: Int(nanos / 1_000_000_000), tv_nsec: Int(nanos % 1_000_000_000))
    }

    /// With the lock held (inside `withLock`): waits until `ready()` holds or the monotonic
    /// deadline (`MonotonicClock.nowNanos()` scale) passes; returns `ready()` at the end.
    /// Spurious wake-ups and EINTR are absorbed here.
    public func wait(untilNanos deadline: UInt64, while notReady: () -> Bool) -> Bool {
        var time = Self.timespec(deadline)
        while notReady() {
            if MonotonicClock.nowNanos() >= deadline { return false }
            let result = pthread_cond_timedwait(condition, mutex, &time)
            if result == ETIMEDOUT { return !notReady() }
        }
        return true
    }
}
