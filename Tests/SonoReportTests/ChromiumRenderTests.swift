// The report as a browser shows it: headless Chromium loads the page from a file (no network),
// its DOM must hold every plot and key frame, and its screenshot must show a drawn page. Skipped
// with a printed reason when Chromium is not installed, unless SONO_REQUIRE_CHROMIUM=1
// (`make test-report`) makes that a failure.

import Foundation
import SonoReport
import SonoTestSupport
import Testing

let requireChromium = ProcessInfo.processInfo.environment["SONO_REQUIRE_CHROMIUM"] == "1"
let chromiumPath = ChildProcess.find(["chromium", "chromium-browser"])

@Suite(.serialized) struct ChromiumRenderTests {
    /// A fresh folder for this run's page, DOM, screenshot and browser profile.
    static func workDirectory() throws -> String {
        try Temporary.directory("chromium", prefix: "sono-report")
    }

    /// Chromium with the flags every run needs: headless, no sandbox (root), no GPU, its own
    /// profile; stdout to `output`. Fails with Chromium's log when it exits non-zero.
    static func runChromium(_ browser: String, _ arguments: [String], directory: String, output: String) throws {
        let log = output + ".log"
        let run = try ChildProcess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                        "--user-data-dir=\(directory)/profile"] + arguments,
                                       stdout: .file(output), stderr: .file(log), seconds: 120)
        if run.status != 0 { throw ChromiumFailure(status: run.status, log: run.stderr) }
    }

    @Test func rendersEveryPlotAndKeyFrame() throws {
        guard let browser = chromiumPath else {
            if requireChromium {
                Issue.record("SONO_REQUIRE_CHROMIUM=1 but no chromium on PATH (scripts/install-deps.sh installs it)")
            } else {
                print("ChromiumRenderTests: skipped, chromium is not installed (make test-report requires it)")
            }
            return
        }
        let directory = try Self.workDirectory()
        // The page and screenshot stay for a person to look at; the browser profile goes.
        defer { try? FileManager.default.removeItem(atPath: directory + "/profile") }
        let page = directory + "/report.html"
        try SessionReport.html(ReportFixture.session()).write(toFile: page, atomically: true, encoding: .utf8)
        print("ChromiumRenderTests: page \(page)")

        // The DOM Chromium built: every plot an SVG element, every acquired view's key frame an image.
        let dom = directory + "/dom.html"
        try Self.runChromium(browser, ["--dump-dom", "file://\(page)"], directory: directory, output: dom)
        let text = try String(contentsOfFile: dom, encoding: .utf8)
        let count = { (needle: String) in text.components(separatedBy: needle).count - 1 }
        #expect(count("<svg class=\"plot\"") == 5, "timeline, force, confidence, two path projections")
        #expect(count("<img ") == 3, "key frames of the three acquired views")
        #expect(count("<polyline") > 10)
        #expect(text.contains("force above soft limit (21.3 N &gt; 15.0 N)"))

        // The screenshot: the page's size, drawn (many colours, much not white), and with the
        // colours it should have (the timeline's state bands, the acquired badge).
        let screenshot = directory + "/screenshot.png"
        try Self.runChromium(browser, ["--screenshot=\(screenshot)", "--window-size=1280,2400", "file://\(page)"],
                          directory: directory, output: directory + "/screenshot.out")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: screenshot)))
        print("ChromiumRenderTests: screenshot \(screenshot), \(bytes.count) bytes")
        let image = try ScreenshotImage(png: bytes)
        #expect(image.width == 1280 && image.height == 2400)
        let histogram = image.histogram()
        let total = image.width * image.height
        let white = histogram[0xFFFFFF] ?? 0
        #expect(histogram.count > 500, "\(histogram.count) distinct colours: plots, text and key frames")
        #expect(Double(total - white) / Double(total) > 0.05, "\(total - white) of \(total) pixels not white")
        #expect((histogram[0xD7F0E4] ?? 0) > 200, "the green 'yes' badges of acquired views")
        let bandTints: [UInt32] = [0xCFE3F3, 0xD5EFE4, 0xE7DCEF, 0xF3F0C8, 0xD9E8C9, 0xE2E2E2, 0xD3E9EF, 0xEFD9E4, 0xFDE0B8]
        let bandPixels = bandTints.reduce(0) { $0 + (histogram[$1] ?? 0) }
        #expect(bandPixels > 5000, "the timeline's state bands")
    }

    /// A session from a model with quality: the browser builds the quality plot in place of the
    /// probability plot, with its diagnostic line, and the views' quality columns.
    @Test func rendersTheQualityPlot() throws {
        guard let browser = chromiumPath else {
            if requireChromium { Issue.record("SONO_REQUIRE_CHROMIUM=1 but no chromium on PATH") }
            return
        }
        let directory = try Self.workDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let page = directory + "/quality.html"
        try SessionReport.html(ReportFixture.qualitySession()).write(toFile: page, atomically: true, encoding: .utf8)
        let dom = directory + "/dom.html"
        try Self.runChromium(browser, ["--dump-dom", "file://\(page)"], directory: directory, output: dom)
        let text = try String(contentsOfFile: dom, encoding: .utf8)
        #expect(text.components(separatedBy: "<svg class=\"plot\"").count - 1 == 5)
        #expect(text.contains("<h2>View quality</h2>") && !text.contains("<h2>View confidence</h2>"))
        #expect(text.contains("Predicted diagnostic quality per view over time") && text.contains("diagnostic 0.70"))
        #expect(text.contains("<th>Predicted quality</th>") && text.contains("0.58 not diagnostic"))
    }

    /// A session with nothing recorded still renders: five plots, each with its "no data" note.
    @Test func rendersAnEmptySession() throws {
        guard let browser = chromiumPath else {
            if requireChromium { Issue.record("SONO_REQUIRE_CHROMIUM=1 but no chromium on PATH") }
            return
        }
        let directory = try Self.workDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let page = directory + "/empty.html"
        try SessionReport.html(SessionReportData(title: "Empty <session>", forceSoftLimitN: 15, forceHardCapN: 25))
            .write(toFile: page, atomically: true, encoding: .utf8)
        let dom = directory + "/dom.html"
        try Self.runChromium(browser, ["--dump-dom", "file://\(page)"], directory: directory, output: dom)
        let text = try String(contentsOfFile: dom, encoding: .utf8)
        #expect(text.components(separatedBy: "<svg class=\"plot\"").count - 1 == 5)
        #expect(text.contains("<h1>Empty &lt;session&gt;</h1>"))
        for note in ["No force samples recorded", "No classifier output recorded", "No probe positions recorded",
                     "No state changes or events recorded"] {
            #expect(text.contains(note), "\(note)")
        }
    }
}

/// Chromium ended with an error: its status and the end of its log.
struct ChromiumFailure: Error, CustomStringConvertible {
    let status: Int32
    let log: String
    var description: String { "chromium exited with \(status): \(log.suffix(2000))" }
}
