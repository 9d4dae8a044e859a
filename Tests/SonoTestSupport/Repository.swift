public import Foundation

/// The repository the tests run in: its root, found from this file's place in it
/// (Tests/SonoTestSupport/Repository.swift), so the tests read the shipped files (hardware/,
/// models/, docs/, tools/) and the built products wherever the checkout is.
public enum Repository {
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// A file or folder of the repository by its path from the root (`hardware/arm.toml`).
    public static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    public static func path(_ relative: String) -> String { url(relative).path }

    /// A product of the debug build (`.build/debug/sonod`), which `swift build --build-tests` makes.
    public static func debugProduct(_ name: String) -> String { path(".build/debug/\(name)") }
}
