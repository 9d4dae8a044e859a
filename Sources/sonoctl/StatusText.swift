import Foundation
import SonoDaemon

/// sonod's answers for people.
enum StatusText {
    static func render(_ s: StatusJSON, compact: Bool = false) -> String {
        var lines: [String] = []
        lines.append("sonod \(s.version) (\(s.mode)), up \(Int(s.uptimeS)) s — state \(s.state.uppercased())"
            + (s.latched.map { ", latched \($0.cause) (\(f($0.value)) against \(f($0.limit)))" } ?? ""))
        let force = String(format: "%.2f N along the beam (x %.2f, y %.2f)", s.forceN.z, s.forceN.x, s.forceN.y)
        lines.append("force    \(force)" + (s.contactTargetN.map { String(format: ", holding %.1f N", $0) } ?? "")
            + (s.forceLimited ? ", SOFT LIMIT" : ""))
        lines.append("probe    at [\(s.probe.positionMM.map { f($0) }.joined(separator: ", "))] mm"
            + (s.moving ? ", moving" : "") + (s.retracting ? ", retracting" : "")
            + (s.liftingOff ? ", LIFTING OFF" : "") + (s.releasing ? ", RELEASING" : "")
            + (s.contact.inContact ? ", in contact (lease \(Int(s.contact.leaseRemainingMs)) ms)" : ""))
        lines += view(s.view, scan: s.scan)
        if !compact {
            for (name, device) in [("arm", s.devices.arm), ("force", s.devices.forceSensor), ("probe", s.devices.probe)] {
                lines.append("\(name.padding(toLength: 8, withPad: " ", startingAt: 0)) \(device.connected ? "connected" : "NOT CONNECTED")  \(device.source)"
                    + (device.detail.map { "  (\($0))" } ?? ""))
            }
            lines.append("loop     \(s.loop.cycles) cycles, \(s.loop.overruns) overruns (\(s.loop.overrunsLongBody) a long body), "
                + "period p50 \(Int(s.loop.periodP50Us)) µs p99 \(Int(s.loop.periodP99Us)) µs max \(Int(s.loop.periodMaxUs)) µs, "
                + "start late p99 \(Int(s.loop.startLatenessP99Us)) µs max \(Int(s.loop.startLatenessMaxUs)) µs, "
                + "body p99 \(Int(s.loop.bodyP99Us)) µs max \(Int(s.loop.bodyMaxUs)) µs; \(s.loop.realtime.scheduler)"
                + (s.loop.realtime.priority > 0 ? " \(s.loop.realtime.priority)" : "")
                + (s.loop.realtime.memoryLocked ? ", memory locked" : "") + (s.loop.realtime.note.map { " (\($0))" } ?? ""))
            lines.append("record   " + (s.recording.active ? "\(s.recording.session ?? "") in \(s.recording.path ?? "")" : "off"))
            if let run = s.runRecording {
                lines.append("mcap     \(run.path)" + (run.active ? "" : "  STOPPED: \(run.error ?? "unknown")"))
            }
            lines.append("safety   profile \(s.safetyProfile.name)" + (s.safetyProfile.path.map { " (\($0))" } ?? "")
                + (s.safetyProfile.simulation ? ", simulation only" : ""))
        }
        lines.append(render(scan: s.scan))
        return lines.joined(separator: "\n")
    }

    /// The classifier's view and, with a model that predicts quality, a meter of its smoothed
    /// quality against the diagnostic line; during a scan whose target is another view, that
    /// view's meter too (the quality the planner climbs):
    ///
    ///     view     PLAX 92% · quality 0.81 ████████░░ diagnostic  (stable 9 frames, frame 8841)
    ///              A4C (scan target) · quality 0.42 ████░░░░░░ below 0.70
    static func view(_ view: ViewJSON?, scan: ScanStatusJSON) -> [String] {
        guard let view else { return ["view     -"] }
        let stable = "(stable \(view.stableFrames) frames, frame \(view.frame))"
        let head = "view     \(view.label) \(percent(view.confidence))"
        guard let quality = view.quality else { return [head + " " + stable] }
        var lines = [head + " · " + (view.labelQuality.map { meter($0, line: view.diagnosticQuality) } ?? "no view quality") + "  " + stable]
        if scan.running, let target = scan.currentView, target != view.label, let q = quality[target] {
            lines.append("         \(target) (scan target) · " + meter(q, line: view.diagnosticQuality))
        }
        return lines
    }

    /// `quality 0.81 ████████░░ diagnostic`: ten cells, and whether the quality is at or above
    /// the diagnostic line.
    static func meter(_ quality: Double, line: Double) -> String {
        let q = quality.isFinite ? min(1, max(0, quality)) : 0
        let filled = Int((q * 10).rounded())
        return String(format: "quality %.2f ", q) + String(repeating: "█", count: filled) + String(repeating: "░", count: 10 - filled)
            + (q >= line ? " diagnostic" : String(format: " below %.2f", line))
    }

    static func render(scan: ScanStatusJSON) -> String {
        guard !scan.views.isEmpty else { return "scan     none yet" }
        var lines = ["scan     \(scan.running ? "RUNNING" : "done"): \(scan.views.joined(separator: ", "))"
            + (scan.currentView.map { " — now \($0)" } ?? "") + (scan.step.map { " (\($0))" } ?? "")]
        for r in scan.results {
            // One line of outcome, quality and force; the pose error and the reason below it.
            var line = "  \(r.view.padding(toLength: 5, withPad: " ", startingAt: 0)) \(r.acquired ? "acquired" : "NOT acquired") "
                + "in \(f(r.seconds)) s"
            if let predicted = r.predictedQuality { line += String(format: ", quality %.2f", predicted) }
            if let truth = r.trueQuality {
                // In simulation: an acquisition whose true quality is below the line is false.
                line += String(format: r.predictedQuality == nil ? ", true quality %.2f" : " (true %.2f", truth)
                    + (r.acquired && truth < diagnosticQuality ? ", NOT DIAGNOSTIC" : "") + (r.predictedQuality == nil ? "" : ")")
            }
            // The quality is what the planner acquires on when the model has one; else the confidence.
            if r.predictedQuality == nil { line += String(format: ", confidence %.2f", r.confidence) }
            line += String(format: ", max force %.1f N", r.maxForceN)
            lines.append(line)
            if let e = r.poseError {
                lines.append("         off the canonical pose \(f(e.positionMM)) mm / \(f(e.beamDeg))° / \(f(e.rotationDeg))° (truth \(e.truthView))")
            }
            if let reason = r.reason { lines.append("         \(reason)") }
        }
        return lines.joined(separator: "\n")
    }

    /// The true quality at or above which a view is diagnostic: an acquired view below it is a
    /// false acquisition (as `sonoctl scan summarize` counts them).
    static let diagnosticQuality = 0.7

    static func percent(_ value: Double) -> String { "\(Int((value * 100).rounded()))%" }

    static func f(_ value: Double) -> String { String(format: "%.1f", value) }
}
