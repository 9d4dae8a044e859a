public import Foundation
import Synchronization

/// One event for the control socket's stream and the session log: an SSE event name and its
/// JSON data.
public struct DaemonEvent: Sendable {
    public var name: String
    public var data: Data
    public var date: Date

    public init(_ name: String, _ payload: some Encodable) {
        self.name = name
        data = APICoding.encode(payload)
        date = Date()
    }
}

/// Fans daemon events out to subscribers (event streams, the session recorder, sonod's
/// --exit-when-done). Subscribers are called on the publishing thread and must not block.
public final class EventBus: Sendable {
    public typealias Subscriber = @Sendable (DaemonEvent) -> Void
    private let subscribers = Mutex<[UInt64: Subscriber]>([:])
    private let nextID = Atomic<UInt64>(1)

    public init() {}

    @discardableResult
    public func subscribe(_ subscriber: @escaping Subscriber) -> UInt64 {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        subscribers.withLock { $0[id] = subscriber }
        return id
    }

    public func unsubscribe(_ id: UInt64) {
        _ = subscribers.withLock { $0.removeValue(forKey: id) }
    }

    public func publish(_ event: DaemonEvent) {
        let current = subscribers.withLock { Array($0.values) }
        for subscriber in current { subscriber(event) }
    }
}
