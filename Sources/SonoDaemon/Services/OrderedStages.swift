import Dispatch
public import Logging
public import ServiceLifecycle
import Synchronization

/// One part of the daemon with a start and a stop. The daemon's parts run as services of one
/// `ServiceGroup`, declared in the order whose reverse is the safe shutdown; `OrderedStages`
/// makes each start only once the part before it is up, and ServiceGroup stops them in reverse.
public protocol DaemonStage: Sendable {
    /// What the logs call it.
    var name: String { get }
    /// Brings the part up. Throws when it cannot: the parts already up are then stopped in
    /// reverse order, and the later ones never start.
    func start() async throws(StartupError)
    /// Runs once every stage is up, until the group shuts down. The default waits for the
    /// shutdown; only the last stage may return earlier, which ends the run (the stages are
    /// then stopped in reverse order).
    func run() async
    /// Takes the part down. Called once, only after `start` succeeded and every later part
    /// is down; it must not throw: each failure it meets is logged and it carries on.
    func stop() async
}

extension DaemonStage {
    public func run() async { try? await gracefulShutdown() }
}

/// The daemon's stages as ServiceGroup services, chained so that each starts after the one
/// before it is up (ServiceGroup itself starts every service at once and only orders the
/// shutdown).
public enum OrderedStages {
    /// `stages` in start order; the returned services go to a ServiceGroup in the same order.
    public static func services(_ stages: [any DaemonStage], logger: Logger)
        -> [ServiceGroupConfiguration.ServiceConfiguration]
    {
        var previous: StartGate? = nil
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        for stage in stages {
            let gate = StartGate()
            let service = StageService(stage: stage, after: previous, gate: gate, logger: logger)
            // A stage that fails to start shuts the group down gracefully (reverse order) rather
            // than cancelling it: the stages already up must still stop in order.
            services.append(.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup,
                                  failureTerminationBehavior: .gracefullyShutdownGroup))
            previous = gate
        }
        return services
    }
}

/// Runs one stage: waits for the previous stage, starts, then holds until ServiceGroup asks it
/// to shut down (reverse order), and stops.
struct StageService: Service, CustomStringConvertible {
    let stage: any DaemonStage
    let after: StartGate?
    let gate: StartGate
    let logger: Logger

    var description: String { stage.name }

    func run() async throws {
        if let after {
            // A shutdown while waiting (a signal, or an earlier stage that failed) means this
            // stage never starts.
            let ready = await withGracefulShutdownHandler {
                await after.wait()
            } onGracefulShutdown: {
                after.abandon()
            }
            guard ready else {
                gate.open(false)
                try? await gracefulShutdown()
                return
            }
        }
        do {
            try await stage.start()
        } catch {
            logger.critical("\(stage.name): cannot start: \(error)")
            gate.open(false)
            throw error
        }
        logger.debug("\(stage.name): up")
        gate.open(true)
        // Returning before ServiceGroup asks would end the group out of order: `run` holds
        // until then (the last stage's may end the run).
        await stage.run()
        await stage.stop()
        logger.debug("\(stage.name): down")
    }
}

/// A one-shot "the previous stage is up (or never will be)" signal between two stages.
final class StartGate: Sendable {
    private enum State {
        case waiting([CheckedContinuation<Bool, Never>])
        case resolved(Bool)
    }
    private let state = Mutex(State.waiting([]))

    /// True once the stage before is up; false if it failed or the wait was abandoned.
    func wait() async -> Bool {
        await withCheckedContinuation { continuation in
            let resolved = state.withLock { state -> Bool? in
                switch state {
                case .resolved(let up): return up
                case .waiting(var waiting):
                    waiting.append(continuation)
                    state = .waiting(waiting)
                    return nil
                }
            }
            if let resolved { continuation.resume(returning: resolved) }
        }
    }

    func open(_ up: Bool) { resolve(up) }

    /// Ends every wait with false (the group is shutting down).
    func abandon() { resolve(false) }

    private func resolve(_ up: Bool) {
        let waiting = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            guard case .waiting(let waiting) = state else { return [] }
            state = .resolved(up)
            return waiting
        }
        for continuation in waiting { continuation.resume(returning: up) }
    }
}

/// Runs blocking work (thread joins, device waits with deadlines) off Swift's small cooperative
/// pool, which on a 2-core machine has two threads that the signal handling also needs.
func offloaded<T: Sendable, E: Error>(_ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
    let result: Result<T, E> = await withCheckedContinuation { continuation in
        DispatchQueue.global().async {
            do throws(E) { continuation.resume(returning: .success(try body())) } catch {
                continuation.resume(returning: .failure(error))
            }
        }
    }
    return try result.get()
}
