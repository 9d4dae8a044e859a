import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Which thread may use an object, for debug-build checks in the manner of swift-nio's
/// `preconditionInEventLoop`: `assert(owner.isOwnedByCurrentThread())` at the entry points that
/// only the owner may call, `assert(owner.isNotOwnedByCurrentThread())` at those it must not
/// (a call that would wait for the owner itself). The first thread that asks becomes the owner
/// unless one claimed it; `release()` frees it when the owning thread ends. The checks sit
/// inside `assert`, so release builds do not evaluate them; in debug builds each is an atomic
/// load (and, once, a compare-exchange): no allocation, no lock, safe on the real-time path.
public final class ThreadOwner: Sendable {
    private let owner = Atomic<UInt>(0)
    /// What owns it, for the assertion's message ("the control loop").
    public let role: String

    public init(_ role: String) { self.role = role }

    private static var current: UInt { UInt(pthread_self()) }

    /// Makes the calling thread the owner (a thread that starts its job claims it first).
    public func claim() { owner.store(Self.current, ordering: .releasing) }

    /// Frees it: the owning thread has ended, the next to ask becomes the owner.
    public func release() { owner.store(0, ordering: .releasing) }

    /// True when the calling thread owns it; claims it when nobody does yet.
    public func isOwnedByCurrentThread() -> Bool {
        let me = Self.current
        let (exchanged, original) = owner.compareExchange(expected: 0, desired: me, ordering: .acquiringAndReleasing)
        return exchanged || original == me
    }

    /// True unless the calling thread is the owner.
    public func isNotOwnedByCurrentThread() -> Bool { owner.load(ordering: .acquiring) != Self.current }
}
