import Synchronization

/// A bounded single-producer, single-consumer queue: the way data crosses into and out of the
/// control loop. `push` and `pop` are wait-free, never allocate and never lock, so either end
/// may be the real-time thread. Exactly one thread may push and exactly one may pop; a side
/// with several threads must serialise them itself (off the real-time path).
public final class SPSCQueue<Element: Sendable>: @unchecked Sendable {
    // @unchecked: a slot is written only by the producer before it publishes `tail` and read only by the consumer after it sees it (acquire/release), one thread on each side.
    private let storage: UnsafeMutablePointer<Element>
    public let capacity: Int
    private let mask: Int
    /// Next slot to read; written by the consumer only.
    private let head = Atomic<Int>(0)
    /// Next slot to write; written by the producer only.
    private let tail = Atomic<Int>(0)
    /// Pushes refused because the queue was full (the consumer fell behind).
    private let overflows = Atomic<UInt64>(0)

    /// `capacity` is rounded up to a power of two.
    public init(capacity: Int) {
        precondition(capacity > 0, "queue capacity must be positive")
        var size = 1
        while size < capacity { size <<= 1 }
        self.capacity = size
        mask = size - 1
        storage = .allocate(capacity: size)
    }

    deinit {
        while pop() != nil {}
        storage.deallocate()
    }

    /// Appends `element`; false (and counted) when the queue is full.
    @discardableResult
    public func push(_ element: Element) -> Bool {
        let tail = self.tail.load(ordering: .relaxed)
        let head = self.head.load(ordering: .acquiring)
        guard tail &- head < capacity else {
            overflows.add(1, ordering: .relaxed)
            return false
        }
        (storage + (tail & mask)).initialize(to: element)
        self.tail.store(tail &+ 1, ordering: .releasing)
        return true
    }

    /// Removes the oldest element, or nil when the queue is empty.
    public func pop() -> Element? {
        let head = self.head.load(ordering: .relaxed)
        let tail = self.tail.load(ordering: .acquiring)
        guard head != tail else { return nil }
        let element = (storage + (head & mask)).move()
        self.head.store(head &+ 1, ordering: .releasing)
        return element
    }

    /// Elements waiting (approximate when read while the other side runs).
    public var count: Int { tail.load(ordering: .acquiring) &- head.load(ordering: .acquiring) }

    public var overflowCount: UInt64 { overflows.load(ordering: .relaxed) }
}
