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
        lines.append("view     " + (s.view.map { "\($0.label) \(f($0.confidence * 100))% (stable \($0.stableFrames) frames, frame \($0.frame))" } ?? "-"))
        if !compact {
            for (name, device) in [("arm", s.devices.arm), ("force", s.devices.forceSensor), ("probe", s.devices.probe)] {
                lines.append("\(name.padding(toLength: 8, withPad: " ", startingAt: 0)) \(device.connected ? "connected" : "NOT CONNECTED")  \(device.source)"
                    + (device.detail.map { "  (\($0))" } ?? ""))
            }
            lines.append("loop     \(s.loop.cycles) cycles, \(s.loop.overruns) overruns, period p50 \(Int(s.loop.periodP50Us)) µs "
                + "p99 \(Int(s.loop.periodP99Us)) µs max \(Int(s.loop.periodMaxUs)) µs; \(s.loop.realtime.scheduler)"
                + (s.loop.realtime.priority > 0 ? " \(s.loop.realtime.priority)" : "")
                + (s.loop.realtime.memoryLocked ? ", memory locked" : "") + (s.loop.realtime.note.map { " (\($0))" } ?? ""))
            lines.append("record   " + (s.recording.active ? "\(s.recording.session ?? "") in \(s.recording.path ?? "")" : "off"))
            lines.append("safety   profile \(s.safetyProfile.name)" + (s.safetyProfile.path.map { " (\($0))" } ?? "")
                + (s.safetyProfile.simulation ? ", simulation only" : ""))
        }
        lines.append(render(scan: s.scan))
        return lines.joined(separator: "\n")
    }

    static func render(scan: ScanStatusJSON) -> String {
        guard !scan.views.isEmpty else { return "scan     none yet" }
        var lines = ["scan     \(scan.running ? "RUNNING" : "done"): \(scan.views.joined(separator: ", "))"
            + (scan.currentView.map { " — now \($0)" } ?? "") + (scan.step.map { " (\($0))" } ?? "")]
        for r in scan.results {
            var line = "  \(r.view.padding(toLength: 5, withPad: " ", startingAt: 0)) \(r.acquired ? "acquired" : "NOT acquired") "
                + "in \(f(r.seconds)) s, confidence \(f(r.confidence)), max force \(f(r.maxForceN)) N"
            if let e = r.poseError { line += ", off the canonical pose \(f(e.positionMM)) mm / \(f(e.beamDeg))° / \(f(e.rotationDeg))° (truth \(e.truthView))" }
            if let reason = r.reason { line += " — \(reason)" }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    static func f(_ value: Double) -> String { String(format: "%.1f", value) }
}
