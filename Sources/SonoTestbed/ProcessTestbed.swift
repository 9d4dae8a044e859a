internal import CUMockdev
import Foundation
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
    /// trip to its relay thread (GLib's worker, "gmain"), under a per-node lock. At normal
    /// priority that thread waits behind whatever else the machine runs, and so do the
    /// real-time link readers waiting on it: beside a parallel build, whole scans ended in
    /// stale-data stops (issue 16, finding 15). Hardware has no such thread; here it gets
    /// SCHED_FIFO just above the link readers (70) and below the simulated boards (75) and the
    /// control loop (80). Without permission it stays as it is. Idempotent; called after each plug,
    /// since GLib starts the thread on first use.
    static func promoteRelayThread(priority: Int32 = 72) {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return }
        for task in tasks {
            guard let tid = Int32(task),
                  let name = try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8),
                  name.trimmingCharacters(in: .whitespacesAndNewlines) == "gmain" else { continue }
            var parameters = sched_param(sched_priority: priority)
            _ = sched_setscheduler(tid, Int32(SCHED_FIFO), &parameters)
        }
    }

    /// Runs `body` with the testbed, excluding every other change to it.
    func locked<Result, Failure: Error>(
        _ body: (UnsafeMutablePointer<UMockdevTestbed>) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(pointer)
    }
}
