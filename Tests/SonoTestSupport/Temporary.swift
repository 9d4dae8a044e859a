import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Fresh paths for a test's files. Under /tmp, short: Unix socket paths must stay under 108
/// bytes. Each name is unique per process and call, since suites run in parallel and the MCAP
/// writer (like sonod's recorder) never overwrites.
public enum Temporary {
    /// A path that does not exist yet: `/tmp/<prefix>-<pid>-<random>-<name>`.
    public static func path(_ name: String, prefix: String = "sono-test") -> String {
        "/tmp/\(prefix)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(name)"
    }

    /// A new, empty directory (created with its parents).
    public static func directory(_ name: String = "dir", prefix: String = "sono-test") throws -> String {
        let path = path(name, prefix: prefix)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Removes files or directories, ignoring those already gone.
    public static func remove(_ paths: String...) {
        for path in paths { try? FileManager.default.removeItem(atPath: path) }
    }
}
