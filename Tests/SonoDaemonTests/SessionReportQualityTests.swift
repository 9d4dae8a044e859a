import Foundation
@testable import SonoDaemon
import SonoPlanner
import SonoRecord
import SonoReport
import SonoTestSupport
import Testing

/// The session report built from a recording with and without the model's predicted quality.
struct SessionReportQualityTests {
    /// A recording of a short scan as the daemon writes the channels the report reads: 60
    /// classifier messages at 30 fps (PLAX rising; with `quality`, its smoothed quality too),
    /// the scan's planner call (`scan`, JSON), and PLAX acquired.
    static func recording(quality: Bool, scanCall: String) throws -> String {
        let path = Temporary.path("quality.mcap")
        let writer = try MCAPWriter(path: path)
        let classifier = try writer.addChannel(topic: "/classifier", messageEncoding: "json", schemaID: 0)
        let planner = try writer.addChannel(topic: "/planner/io", messageEncoding: "json", schemaID: 0)
        let events = try writer.addChannel(topic: "/events", messageEncoding: "json", schemaID: 0)
        var sequence: UInt32 = 0
        func write(_ channel: UInt16, _ t: Double, _ text: String) throws {
            sequence += 1
            let time = 1_000_000_000 + UInt64(t * 1e9)
            try writer.write(channel: channel, sequence: sequence, logTime: time, publishTime: time, data: Array(text.utf8))
        }
        try write(planner, 0, scanCall)
        for frame in 0..<60 {
            let p = Double(frame) / 60
            var text = "{\"frame\":\(frame),\"t_us\":\(frame * 33_333),\"probabilities\":{\"PLAX\":\(p),\"PSAX\":0.05,\"OTHER\":\(0.95 - p)},"
                + "\"smoothed_label\":\"PLAX\",\"smoothed_confidence\":\(p),\"stable_frames\":\(frame)"
            if quality {
                text += ",\"quality\":{\"PLAX\":\(p),\"PSAX\":0.02,\"OTHER\":0},\"smoothed_quality\":{\"PLAX\":\(p * 0.9),\"PSAX\":0.02,\"OTHER\":0}"
            }
            try write(classifier, Double(frame) / 30, text + "}")
        }
        let result = ViewResultJSON(view: "PLAX", acquired: true, seconds: 2, confidence: 0.88, maxForceN: 6,
                                    predictedQuality: quality ? 0.78 : nil, trueQuality: quality ? 0.61 : nil,
                                    reason: nil, pose: nil, poseError: nil)
        try write(events, 2, DaemonEventJSON.text(DaemonEvent("view_acquired", result)))
        try writer.close()
        return path
    }

    @Test func theReportPlotsTheRecordedSmoothedQualityAgainstTheRecordedLine() throws {
        var settings = PlannerSettings()
        settings.acquireQuality = 0.75
        let path = try Self.recording(quality: true, scanCall: PlannerTapeCoding.encode(PlannerCall(call: .scan, views: ["PLAX"], settings: settings)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let data = try SessionReportBuilder.build(path: path)
        #expect(Set(data.quality.keys) == ["PLAX", "PSAX"], "OTHER has no quality: \(data.quality.keys)")
        #expect(data.quality["PLAX"]?.count == 60 && abs((data.quality["PLAX"]?.last?.value ?? 0) - 59.0 / 60 * 0.9) < 1e-6)
        #expect(data.qualityThreshold == 0.75 && data.confidenceThreshold.map { abs($0 - 0.8) < 1e-6 } == true)
        #expect(data.views.first?.predictedQuality == 0.78 && data.views.first?.trueQuality == 0.61)
        let html = SessionReport.html(data)
        #expect(html.contains("<h2>View quality</h2>") && html.contains("diagnostic 0.75") && !html.contains("<h2>View confidence</h2>"))
        #expect(html.contains("0.61 not diagnostic"))
    }

    /// Settings recorded before `acquireQuality` existed, and a model without quality: the
    /// probability chart with the recorded hold threshold, as before.
    @Test func aRecordingWithoutQualityKeepsTheProbabilityChart() throws {
        let path = try Self.recording(quality: false, scanCall: "{\"call\":\"scan\",\"views\":[\"PLAX\"],"
                                          + "\"settings\":{\"contactForceN\":7.5,\"acquireConfidence\":0.85}}")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let data = try SessionReportBuilder.build(path: path)
        #expect(data.quality.isEmpty && data.qualityThreshold == nil)
        #expect(data.confidenceThreshold == 0.85 && data.forceTargetN == 7.5)
        #expect(data.views.first?.predictedQuality == nil && data.views.first?.trueQuality == nil)
        let html = SessionReport.html(data)
        #expect(html.contains("<h2>View confidence</h2>") && html.contains("hold threshold 0.85") && !html.contains("View quality"))
        #expect(!html.contains("Predicted quality"))
    }

    /// Quality recorded, but no planner settings (a session without a scan): the planner's
    /// default line.
    @Test func withoutRecordedSettingsTheLineIsThePlannersDefault() throws {
        let path = try Self.recording(quality: true, scanCall: "{\"call\":\"measured\"}")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let data = try SessionReportBuilder.build(path: path)
        #expect(data.qualityThreshold.map { abs($0 - 0.7) < 1e-6 } == true)
        #expect(SessionReport.html(data).contains("diagnostic 0.70"))
    }
}
