import Foundation
import SonoDaemon

/// The scan summary for people (the JSON is for programs).
enum ScanSummaryText {
    static func render(_ s: ScanSummaryJSON) -> String {
        var lines: [String] = []
        lines.append("Scan \(s.patient.map { "of \(URL(fileURLWithPath: $0).lastPathComponent) " } ?? "")(\(s.mode)): "
            + "\(s.acquired)/\(s.views.count) views acquired in \(String(format: "%.1f", s.scanSeconds)) s")
        lines.append("  view   acquired   time (s)   quality (predicted / true)   pose error (mm/beam°/rot°, truth)  max force (N)")
        for r in s.results {
            let error = r.poseError.map { String(format: "%5.1f / %4.1f / %4.1f  ", $0.positionMM, $0.beamDeg, $0.rotationDeg) + $0.truthView } ?? "       -        "
            let quality = (r.predictedQuality.map { String(format: "%.2f", $0) } ?? "-") + " / "
                + (r.trueQuality.map { String(format: "%.2f", $0) + ($0 < 0.7 && r.acquired ? " NOT DIAGNOSTIC" : "") } ?? "-")
            lines.append("  " + pad(r.view, 6) + " " + pad(r.acquired ? "yes" : "NO", 10)
                + String(format: " %8.1f   ", r.seconds) + pad(quality, 29) + pad(error, 33)
                + String(format: "%6.2f", r.maxForceN) + (r.reason.map { "   (\($0))" } ?? ""))
        }
        lines.append(String(format: "  max contact force %.2f N (soft limit %.0f N, hard cap %.0f N); %d stops, %d faults",
                            s.maxForceN, s.softLimitN, s.hardCapN, s.stops.count, s.faults.count))
        if let t = s.timing {
            lines.append(String(format: "  inputs at most %.1f ms (force) and %.1f ms (joints) old against %.0f / %.0f ms deadlines; "
                                + "loop %llu overruns in %llu cycles",
                                t.forceAgeMaxMs, t.jointAgeMaxMs, t.forceDeadlineMs, t.jointDeadlineMs, t.loopOverruns, t.loopCycles)
                         + (t.loopOverrunsLongBody.map { String(format: " (%llu of them a cycle body longer than the period)", $0) } ?? ""))
        }
        for stop in s.stops { lines.append("  stop: \(stop.kind), \(stop.cause)") }
        for fault in s.faults { lines.append("  fault: \(fault.board) \(fault.code) \(fault.detail)") }
        if let interruption = s.interruption { lines.append("  interrupted: \(interruption)") }
        if let session = s.session { lines.append("  session: \(session)") }
        return lines.joined(separator: "\n")
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}
