import Foundation
import SonoImaging
import Synchronization

/// Sessions on disk: one folder per session under the recording directory, holding the event
/// log (`events.jsonl`, one daemon event per line), the scan summary (`summary.json`) and a key
/// frame of each acquired view (`VIEW.png`). (MCAP recordings of the full data streams join
/// these folders with the recording issue.)
final class SessionStore: Sendable {
    struct Active: Sendable {
        var name: String
        var path: String
        var started: Date
        var handle: FileHandle
    }

    let directory: String
    private let active = Mutex<Active?>(nil)

    init(directory: String) throws(StartupError) {
        self.directory = directory
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .file("recording directory \(directory): \(error.localizedDescription)")
        }
        guard FileManager.default.isWritableFile(atPath: directory) else {
            throw .file("recording directory \(directory) is not writable by this user")
        }
    }

    var status: RecordingStatusJSON {
        active.withLock { a in
            RecordingStatusJSON(active: a != nil, session: a?.name, path: a?.path, startedAt: a.map { rfc3339($0.started) })
        }
    }

    var activePath: String? { active.withLock { $0?.path } }

    enum RecordingError: Error, CustomStringConvertible {
        case alreadyActive(String)
        case badName(String)
        /// A session of that name is on disk already (sessions are never overwritten).
        case exists(String)
        case io(String)
        var description: String {
            switch self {
            case .alreadyActive(let name): "session \(name) is already recording; stop it first"
            case .badName(let name): "session name '\(name)' must be 1–64 characters of A–Z, a–z, 0–9, '-', '_' or '.', not starting with '.'"
            case .exists(let name): "a session named \(name) exists already; choose another name"
            case .io(let reason): reason
            }
        }
    }

    @discardableResult
    func start(name requested: String?) throws(RecordingError) -> RecordingStatusJSON {
        let stamp = Self.stamp(Date())
        let name = requested ?? "session-\(stamp)"
        let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
        guard (1...64).contains(name.count), name.unicodeScalars.allSatisfy(allowed.contains), !name.hasPrefix(".") else {
            throw .badName(name)
        }
        let result: Result<Void, RecordingError> = active.withLock { a in
            if let a { return .failure(.alreadyActive(a.name)) }
            let path = "\(directory)/\(name)"
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            } catch {
                // The folder is never reused: one that is there already is a name clash, not an
                // I/O failure (whoever made it, and whenever).
                if FileManager.default.fileExists(atPath: path) { return .failure(.exists(name)) }
                return .failure(.io("cannot create session \(path): \(error.localizedDescription)"))
            }
            let log = "\(path)/events.jsonl"
            guard FileManager.default.createFile(atPath: log, contents: nil) else {
                return .failure(.io("cannot create \(log)"))
            }
            do {
                a = Active(name: name, path: path, started: Date(), handle: try FileHandle(forWritingTo: URL(fileURLWithPath: log)))
            } catch {
                return .failure(.io("cannot open \(log): \(error.localizedDescription)"))
            }
            return .success(())
        }
        try result.get()
        return status
    }

    @discardableResult
    func stop() -> RecordingStatusJSON {
        let stopped = active.withLock { a -> Active? in defer { a = nil }; return a }
        if let stopped { try? stopped.handle.close() }
        return status
    }

    /// Appends an event to the active session's log (nothing when none records).
    func record(_ event: DaemonEvent) {
        active.withLock { a in
            guard let a else { return }
            var line = Data("{\"at\":\"\(rfc3339(event.date))\",\"event\":\"\(event.name)\",\"data\":".utf8)
            line.append(event.data)
            line.append(Data("}\n".utf8))
            try? a.handle.write(contentsOf: line)
        }
    }

    func write(_ data: Data, named file: String) {
        guard let path = activePath else { return }
        try? data.write(to: URL(fileURLWithPath: "\(path)/\(file)"))
    }

    func writeFrame(_ pixels: [UInt8], width: Int, height: Int, named file: String) {
        guard let path = activePath, pixels.count == width * height, width > 0 else { return }
        try? PNG.write(path: "\(path)/\(file)", width: width, height: height, pixels: pixels)
    }

    func list() -> SessionsJSON {
        let fm = FileManager.default
        let names = ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        var sessions: [SessionJSON] = []
        for name in names {
            let path = "\(directory)/\(name)"
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            let files = (try? fm.contentsOfDirectory(atPath: path)) ?? []
            let bytes = files.reduce(0) { $0 + (((try? fm.attributesOfItem(atPath: "\(path)/\($1)"))?[.size] as? Int) ?? 0) }
            let attributes = try? fm.attributesOfItem(atPath: path)
            let started = attributes?[.creationDate] as? Date ?? attributes?[.modificationDate] as? Date
            let views = files.filter { $0.hasSuffix(".png") }.map { String($0.dropLast(4)) }.sorted()
            sessions.append(SessionJSON(name: name, path: path, startedAt: rfc3339(started ?? Date(timeIntervalSince1970: 0)), bytes: bytes, viewsAcquired: views))
        }
        return SessionsJSON(sessions: sessions)
    }

    static func stamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return formatter.string(from: date)
    }
}
