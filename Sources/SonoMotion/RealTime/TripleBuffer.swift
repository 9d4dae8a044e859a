import Synchronization

/// The latest value of something the control loop publishes (its status), handed to readers
/// without a lock on the writer's side: three slots, the writer fills its back slot and swaps
/// it into the middle in one atomic exchange; the reader swaps the middle out when it is
/// fresh. Writer and reader never touch the same slot, so neither waits for the other.
///
/// One writer thread. Readers are serialised by a mutex among themselves, which the writer
/// never takes.
public final class TripleBuffer<Value: Sendable>: @unchecked Sendable {
    // @unchecked: each slot is owned by one side at a time, handed over by the atomic `middle`; `back` is the one writer's, `front` is under its Mutex.
    private let slots: UnsafeMutablePointer<Value>
    /// Index of the middle slot, plus `fresh` when the writer has put a value there since the
    /// reader last took one.
    private let middle = Atomic<Int>(1)
    private static var fresh: Int { 4 }
    private var back = 0
    private let front = Mutex(2)

    public init(_ initial: Value) {
        slots = .allocate(capacity: 3)
        slots.initialize(repeating: initial, count: 3)
    }

    deinit {
        slots.deinitialize(count: 3)
        slots.deallocate()
    }

    /// Publishes `value`. Writer thread only; wait-free, no allocation.
    public func write(_ value: Value) {
        slots[back] = value
        let previous = middle.exchange(back | Self.fresh, ordering: .acquiringAndReleasing)
        back = previous & 3
    }

    /// The most recently published value.
    public func read() -> Value {
        front.withLock { front in
            if middle.load(ordering: .acquiring) & Self.fresh != 0 {
                let previous = middle.exchange(front, ordering: .acquiringAndReleasing)
                front = previous & 3
            }
            return slots[front]
        }
    }
}
