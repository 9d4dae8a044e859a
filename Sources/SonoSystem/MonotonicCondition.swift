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

    /// Runs `body` with the mutex held.
    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Wakes one waiter; call with or without the lock held.
    public func signal() { pthread_cond_signal(condition) }
    public func broadcast() { pthread_cond_broadcast(condition) }

    /// With the lock held (inside `withLock`): waits until `ready()` holds or the monotonic
    /// deadline (`MonotonicClock.nowNanos()` scale) passes; returns `ready()` at the end.
    /// Spurious wake-ups and EINTR are absorbed here.
    public func wait(untilNanos deadline: UInt64, while notReady: () -> Bool) -> Bool {
        var time = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while notReady() {
            if MonotonicClock.nowNanos() >= deadline { return false }
            let result = pthread_cond_timedwait(condition, mutex, &time)
            if result == ETIMEDOUT { return !notReady() }
        }
        return true
    }
}
