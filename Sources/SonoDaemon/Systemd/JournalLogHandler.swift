import Foundation
public import Logging
import Synchronization

/// swift-log to stderr. Under systemd (JOURNAL_STREAM set) each line starts with the syslog
/// priority in journald's "<N>" form, so `journalctl -p warning` filters properly; on a
/// terminal it reads "sonod[info] message".
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let label: String
    private let journal: Bool
    private static let output = Mutex<Void>(())

    /// `journal`: prefix priorities (default: when systemd connected stderr to the journal).
    public init(label: String, journal: Bool? = nil) {
        self.label = label
        self.journal = journal ?? (ProcessInfo.processInfo.environment["JOURNAL_STREAM"] != nil)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    public func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let extra = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        // One write per line, and no newlines inside it: journald splits on them.
        let text = "\(event.message)\(extra)".replacingOccurrences(of: "\n", with: " ⏎ ")
        let line = journal ? "<\(Self.priority(event.level))>\(text)\n" : "\(label)[\(event.level)] \(text)\n"
        Self.output.withLock { _ in FileHandle.standardError.write(Data(line.utf8)) }
    }
}
