// The page as a whole, without a browser: its parts are there, every plot is well-formed SVG
// whatever the data (none, one sample, 100 000, NaN), recorded text cannot add markup, and a
// long session stays a reasonable size.

import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import SonoReport
import Testing

@Suite struct SessionReportTests {
    static let fixtureHTML = SessionReport.html(ReportFixture.session())

    /// Every `<svg …>…</svg>` of the page.
    static func svgs(_ html: String) -> [String] {
        var result: [String] = []
        var rest = html[...]
        while let start = rest.range(of: "<svg "), let end = rest[start.lowerBound...].range(of: "</svg>") {
            result.append(String(rest[start.lowerBound..<end.upperBound]))
            rest = rest[end.upperBound...]
        }
        return result
    }

    /// Whether `svg` parses as XML (the report's SVG is written to be both HTML and XML).
    static func isWellFormed(_ svg: String) -> Bool {
        XMLParser(data: Data(svg.utf8)).parse()
    }

    /// No coordinate or number in the plots printed as Swift prints NaN or infinity.
    static func printsNoNonFinite(_ html: String) -> Bool {
        svgs(html).allSatisfy { svg in
            !["nan", "\"inf", ",inf", " inf", "-inf"].contains { svg.lowercased().contains($0) }
        }
    }

    static func count(_ needle: String, in html: String) -> Int { html.components(separatedBy: needle).count - 1 }

    @Test func fixtureHasEveryPart() {
        let html = Self.fixtureHTML
        #expect(html.hasPrefix("<!DOCTYPE html>\n<html lang=\"en\">"))
        #expect(html.hasSuffix("</html>\n"))
        let svgs = Self.svgs(html)
        #expect(svgs.count == 5, "timeline, force, confidence, two path projections")
        #expect(svgs.allSatisfy(Self.isWellFormed))
        #expect(Self.count("<img ", in: html) == 3, "one key frame per acquired view")
        #expect(Self.count("src=\"data:image/png;base64,iVBORw0KGgo", in: html) == 3)
        for part in ["Scan of default.toml (simulation)", "3 of 4 views acquired", "gave up after 35 s: best smoothed confidence 0.62 &lt; 0.80",
                     "force above soft limit (21.3 N &gt; 15.0 N)", "session-20260511-091403.mcap", "Peak 21."] {
            #expect(html.contains(part), "\(part)")
        }
        #expect(!html.contains("<script"), "no script")
        #expect(!html.contains("http://") || html.components(separatedBy: "http://").dropFirst().allSatisfy { $0.hasPrefix("www.w3.org/2000/svg") },
                "no link but the SVG namespace")
        #expect(Self.printsNoNonFinite(html))
    }

    /// Without quality (a logits-only model): the probability chart, no quality columns.
    @Test func withoutQualityThePageShowsTheProbability() {
        let html = Self.fixtureHTML
        #expect(html.contains("<section id=\"confidence\">") && html.contains("Classifier confidence per view over time"))
        #expect(html.contains("hold threshold 0.80"))
        #expect(!html.contains("<section id=\"quality\">") && !html.contains("Predicted quality") && !html.contains("True quality"))
    }

    /// With quality: the smoothed predicted quality per view against the diagnostic line instead
    /// of the probability, the views' predicted and true quality, and a false acquisition marked.
    @Test func withQualityThePagePlotsItAgainstTheDiagnosticLine() throws {
        let data = ReportFixture.qualitySession()
        let html = SessionReport.html(data)
        let svgs = Self.svgs(html)
        #expect(svgs.count == 5, "timeline, force, quality, two path projections")
        #expect(svgs.allSatisfy(Self.isWellFormed))
        #expect(Self.printsNoNonFinite(html))
        #expect(html.contains("<section id=\"quality\">\n<h2>View quality</h2>"))
        #expect(!html.contains("<section id=\"confidence\">") && !html.contains("hold threshold"))
        let plot = try #require(svgs.first { $0.contains("Predicted diagnostic quality per view over time") })
        #expect(plot.contains("diagnostic 0.70") && plot.contains("predicted quality"))
        #expect(plot.contains("clip-quality") && !plot.contains("clip-confidence"))
        // One line per view with quality (OTHER has none), and the dashed diagnostic line.
        #expect(Self.count("<polyline", in: plot) == 5)
        #expect(!plot.contains(">OTHER<"))
        #expect(plot.contains("stroke-dasharray=\"5 4\""))
        // The views table: predicted and true quality; PSAX acquired below the line is flagged,
        // A2C (given up) is not.
        #expect(html.contains("<th>Predicted quality</th><th>True quality</th>"))
        #expect(html.contains("<td class=\"num\">0.78</td><td class=\"num\"><span class=\"no\">0.58 not diagnostic</span></td>"))
        #expect(html.contains("<td class=\"num\">0.84</td><td class=\"num\">0.81</td>"))
        #expect(html.contains("<td class=\"num\">0.55</td><td class=\"num\">0.49</td>"))
        #expect(Self.count("not diagnostic", in: html) == 1)
        #expect(html.contains("quality 0.84, true quality 0.81"), "the key frame's caption")
    }

    /// The line sits where the recording's threshold says, and none is drawn without one.
    @Test func theDiagnosticLineIsTheRecordedThreshold() throws {
        var data = ReportFixture.qualitySession()
        data.qualityThreshold = 0.75
        let plot = try #require(Self.svgs(SessionReport.html(data)).first { $0.contains("Predicted diagnostic quality") })
        #expect(plot.contains("diagnostic 0.75"))
        data.qualityThreshold = nil
        let bare = try #require(Self.svgs(SessionReport.html(data)).first { $0.contains("Predicted diagnostic quality") })
        #expect(!bare.contains("diagnostic 0.") && !bare.contains("stroke-dasharray=\"5 4\""))
    }

    @Test func keyFactsComeInTheirOrder() throws {
        let html = Self.fixtureHTML
        let positions = try ["patient", "started", "duration", "model", "sono version", "outcome"].map {
            try #require(html.range(of: "<dt>\($0)</dt>")).lowerBound
        }
        #expect(positions == positions.sorted())
    }

    @Test func emptySessionSaysNoDataInWellFormedPlots() {
        let html = SessionReport.html(SessionReportData(title: "", forceSoftLimitN: 15, forceHardCapN: 25))
        let svgs = Self.svgs(html)
        #expect(svgs.count == 5)
        #expect(svgs.allSatisfy(Self.isWellFormed))
        for note in ["No force samples recorded", "No classifier output recorded", "No probe positions recorded",
                     "No state changes or events recorded", "No target views in this session", "No events recorded"] {
            #expect(html.contains(note), "\(note)")
        }
        #expect(Self.count("<polyline", in: html) == 0)
        #expect(Self.printsNoNonFinite(html))
    }

    @Test func oneSampleAndNonFiniteSamples() {
        var data = SessionReportData(title: "one", forceSoftLimitN: 15, forceHardCapN: .nan)
        data.forceN = [TimedValue(t: 3, value: 7), TimedValue(t: .nan, value: 1), TimedValue(t: 4, value: .infinity)]
        data.confidence = ["PLAX": [TimedValue(t: 3, value: 0.5)], "OTHER": [TimedValue(t: 1, value: .nan)]]
        data.probePathMM = [TimedPoint(t: 3, x: 400, y: 0, z: 200), TimedPoint(t: 4, x: .infinity, y: 0, z: 0)]
        data.markers = [ReportMarker(t: .nan, kind: .stop, text: "lost time"), ReportMarker(t: 3, kind: .stop, text: "stop")]
        let html = SessionReport.html(data)
        let svgs = Self.svgs(html)
        #expect(svgs.count == 5)
        #expect(svgs.allSatisfy(Self.isWellFormed))
        #expect(Self.printsNoNonFinite(html))
        #expect(!html.contains("No force samples recorded") && !html.contains("No probe positions recorded"))
        #expect(html.contains("lost time"), "an event without a valid time is still listed")
    }

    @Test func recordedTextCannotAddMarkup() {
        var data = ReportFixture.session()
        let evil = "<img src=x onerror=alert(1)>\"'&</svg><script>x</script>"
        data.title = evil
        data.subtitle[evil] = evil
        data.counters[evil] = evil
        data.views[0].name = evil
        data.views[3].reason = evil
        data.views[1].poseError = evil
        data.confidence[evil] = data.confidence["SC4C"]
        data.markers += [ReportMarker(t: 50, kind: .operator, text: evil), ReportMarker(t: 60, kind: .stateChange, text: evil),
                         ReportMarker(t: 70, kind: .viewAcquired, text: evil, view: evil)]
        let html = SessionReport.html(data)
        #expect(!html.contains("<script"))
        #expect(!html.contains("onerror=alert(1)>"))
        #expect(Self.count("<img ", in: html) == 3, "only the key frames are images")
        #expect(Self.svgs(html).count == 5)
        #expect(Self.svgs(html).allSatisfy(Self.isWellFormed))
        #expect(html.contains("&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;&lt;/svg&gt;&lt;script&gt;x&lt;/script&gt;"))
    }

    @Test func damagedKeyFrameIsANoteNotACrash() {
        var data = ReportFixture.session()
        data.views[0].keyFrame = ReportImage(width: 64, height: 64, pixels: [1, 2, 3])
        data.views[1].keyFrame = ReportImage(width: 0, height: -1, pixels: [])
        data.views[2].keyFrame = nil
        let html = SessionReport.html(data)
        #expect(Self.count("<img ", in: html) == 0)
        #expect(html.contains("Key frame not shown: PNG: 64×64 image needs 4096 pixels, got 3."))
        #expect(html.contains("Key frame not shown: PNG: invalid image size 0×-1"))
        #expect(html.contains("No key frame recorded."))
    }

    /// 100 000 samples per series: the page stays small (decimated to the plot's pixel columns)
    /// and the single-sample spike is still drawn at its height.
    @Test func longSeriesAreDecimatedAndKeepTheirSpike() throws {
        var data = SessionReportData(title: "long", forceSoftLimitN: 15, forceHardCapN: 25)
        data.forceN = DecimationTests.spiky()
        data.confidence = ["PLAX": DecimationTests.spiky().map { TimedValue(t: $0.t, value: min(1, $0.value / 50)) }]
        data.probePathMM = (0..<100_000).map { TimedPoint(t: Double($0) / 1000, x: Double($0 % 1000) / 10, y: 0, z: 0) }
        let html = SessionReport.html(data)
        #expect(html.utf8.count < 1_000_000, "\(html.utf8.count) bytes")
        let force = try #require(Self.svgs(html).first { $0.contains("Contact force over time") })
        let polyline = try #require(force.range(of: "<polyline points=\"")).upperBound
        let points = force[polyline...].prefix { $0 != "\"" }.split(separator: " ")
        #expect(points.count <= 4 * TimeAxis.columns)
        // The y axis tops out at a nice value above the spike; the spike's point is the highest drawn.
        let ys = points.compactMap { Double($0.split(separator: ",").last ?? "") }
        let top = try #require(ys.min())
        let domain = Ticks.niceDomain(-30, 50 * 1.05, target: 5)
        let expected = LinearScale(domain: domain, range: (ForcePlot.bottom, ForcePlot.top))(50)
        #expect(abs(top - expected) < 0.1, "spike drawn at y \(top), expected \(expected)")
    }

    @Test func generationTime() {
        let data = ReportFixture.session()
        let clock = ContinuousClock()
        var html = ""
        let elapsed = clock.measure { html = SessionReport.html(data) }
        print("SessionReport.html: \(data.forceN.count) force samples, 6 × \(data.confidence["PLAX"]?.count ?? 0) confidence, "
              + "\(data.probePathMM.count) path points: \(elapsed), \(html.utf8.count) bytes")
        #expect(elapsed < .seconds(30))
    }
}
