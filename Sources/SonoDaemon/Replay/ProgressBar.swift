import Foundation

/// A one-line progress bar on stderr for replays: `[#####.....]  42%  12.3 / 29.0 s recorded`.
public enum ProgressBar {
    public static func render(done: Double, total: Double, width: Int = 30) -> String {
        let fraction = total > 0 ? min(max(done / total, 0), 1) : 1
        let filled = Int((fraction * Double(width)).rounded())
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            + String(format: "%3.0f%%  %.1f / %.1f s recorded", fraction * 100, done, total)
    }

    /// Draws on stderr (only when it is a terminal or `force`).
    public static func printer(force: Bool = false) -> (@Sendable (Double, Double) -> Void)? {
        guard force || isatty(STDERR_FILENO) != 0 else { return nil }
        return { done, total in
            FileHandle.standardError.write(Data(("\r" + render(done: done, total: total)
                + (done >= total ? "\n" : "")).utf8))
        }
    }
}
