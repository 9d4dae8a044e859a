import SonoDevices
import Synchronization

/// Hands the USB probe's events (from the driver's supervisor thread) to the runtime's event
/// stream and log. The destinations are attached before the driver starts.
final class ProbeEventRelay: Sendable {
    private let destinations = Mutex<(publish: (@Sendable (USBProbeEvent) -> Void)?, log: (@Sendable (String) -> Void)?)>(
        (nil, nil))

    func attach(publish: @escaping @Sendable (USBProbeEvent) -> Void) { destinations.withLock { $0.publish = publish } }

    func attach(log: @escaping @Sendable (String) -> Void) { destinations.withLock { $0.log = log } }

    func deliver(_ event: USBProbeEvent) {
        let (publish, log) = destinations.withLock { ($0.publish, $0.log) }
        publish?(event)
        log?(event.description)
    }
}

/// Data of the `probe` event (docs/control-api.yaml): what happened to the USB probe's link.
struct ProbeEventJSON: Codable, Sendable {
    var kind: String
    var message: String

    init(_ event: USBProbeEvent) {
        kind = switch event {
        case .connected: "connected"
        case .streaming: "streaming"
        case .openFailed: "open_failed"
        case .streamStalled: "stream_stalled"
        case .streamRestarted: "stream_restarted"
        case .faulted: "faulted"
        case .recovered: "recovered"
        case .disconnected: "disconnected"
        }
        message = event.description
    }
}

/// The driver's counters in one line, for status and the log.
struct ProbeStatisticsText: CustomStringConvertible {
    let statistics: USBProbeStatistics
    init(_ statistics: USBProbeStatistics) { self.statistics = statistics }

    var description: String {
        let s = statistics, r = s.receiver
        var parts = ["\(s.link)", "\(r.framesDelivered) frames", "\(r.droppedFrames) dropped"]
        if r.rejected > 0 { parts.append("\(r.rejected) rejected (\(r.crcMismatch) CRC)") }
        if s.hostOverruns > 0 { parts.append("\(s.hostOverruns) overrun") }
        if s.disconnects > 0 { parts.append("\(s.disconnects) disconnects") }
        if s.faults + s.stallsRecovered > 0 { parts.append("\(s.faults + s.stallsRecovered) halts") }
        if s.streamRestarts > 0 { parts.append("\(s.streamRestarts) restarts") }
        return parts.joined(separator: ", ")
    }
}
