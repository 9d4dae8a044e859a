internal import CUMockdev
import Foundation
import SonoSystem
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The process's one umockdev testbed. umockdev keeps a testbed in process state
/// (`UMOCKDEV_DIR`, one uevent sender), so the serial bench and the emulated USB probe share
/// this one: a test binary can plug serial boards and a probe side by side.
///
/// Every change to the testbed (adding or removing devices, uevents, attaching handlers) goes
/// through `locked`: umockdev's testbed is not thread-safe (its file tree and tables are
/// updated without a lock; removing the last device of a subsystem deletes directories another
/// thread may be adding into), and plugging happens on test threads.
final class ProcessTestbed: @unchecked Sendable {
    // @unchecked: `pointer` is only used under `lock` (ioctl handlers never touch the testbed).
    let pointer: UnsafeMutablePointer<UMockdevTestbed>
    private let lock = NSLock()  // not Mutex: `locked` returns what `body` makes, which need not be Sendable

    nonisolated(unsafe) private static var instance: ProcessTestbed?
    private static let instanceLock = Mutex<Void>(())

    /// The testbed, created on first use; the process must run under umockdev's preload.
    static func shared() throws(BenchError) -> ProcessTestbed {
        guard EmulatedSerialBench.isPreloaded else { throw .notPreloaded }
        return try instanceLock.withLock { _ throws(BenchError) in
            if let instance { return instance }
            guard let testbed = umockdev_testbed_new() else { throw .umockdev("cannot create a testbed") }
            let created = ProcessTestbed(pointer: testbed)
            instance = created
            return created
        }
    }

    private init(pointer: UnsafeMutablePointer<UMockdevTestbed>) {
        self.pointer = pointer
    }

    /// umockdev answers every read, write and ioctl on an opened emulated node with a round
    /// trip to its testbed's worker thread (the relay), under a per-node lock. At normal
    /// priority the relay waits behind whatever else the machine runs, and so do the real-time
    /// link readers waiting on it (traced beside a parallel build: wake-up p99 1.9 ms, max 7 ms).
    /// Hardware has no such thread; here it gets SCHED_FIFO just above the link readers (70)
    /// and below the simulated boards (75) and the control loop (80).
    ///
    /// The relay cannot be found by name (a thread inherits its creator's name, and GLib's does
    /// not reach the kernel here), so it is found by what it does: this is called from the
    /// emulated devices' ioctl handlers (the serial nodes' and the USB probe's), which umockdev
    /// runs on the relay, and promotes the calling thread the first time it sees it. Without
    /// permission it stays as it is.
    static func promoteRelay() {
        let thread = pthread_self()
        guard promotedRelay.exchange(thread, ordering: .relaxed) != thread else { return }
        ThreadScheduling.nameCurrentThread("umockdev-relay")
        _ = ThreadScheduling.useFIFO(priority: relayPriority)
    }

    static let relayPriority: Int32 = 72
    private static let promotedRelay = Atomic<UInt>(0)

    /// Runs `body` with the testbed, excluding every other change to it.
    func locked<Result, Failure: Error>(
        _ body: (UnsafeMutablePointer<UMockdevTestbed>) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(pointer)
    }
}
