// The session report: one self-contained HTML5 page (inline CSS, inline SVG plots, key frames as
// data URIs; no script, no network) that a clinician or engineer opens to see what happened.

public enum SessionReport {
    /// The whole page. Never fails: missing data gives a "no data" note where its plot would be,
    /// a damaged key frame a note in its place.
    public static func html(_ data: SessionReportData) -> String {
        let axis = TimeAxis(domain: timeDomain(data))
        let title = HTMLText.escape(data.title.isEmpty ? "Sono session" : data.title)
        var page = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
            <meta name="generator" content="Sono session report">
            <title>\(title)</title>
            <style>\(ReportStyle.css)</style>
            </head>
            <body>
            <header>
            <h1>\(title)</h1>
            \(ReportTables.facts(data.subtitle))
            </header>
            <main>

            """
        page += section("views", "Views", ReportTables.views(data.views) + ReportTables.keyFrames(data.views))
        page += section("timeline", "Timeline", figure(TimelinePlot.svg(data, axis: axis),
                                                       "States (bands) and events over the session. Hover a symbol for its full text."))
        page += section("force", "Contact force", ReportTables.forceSummary(data)
                        + figure(ForcePlot.svg(data, axis: axis), "Force along the probe axis, with the target and limits; dashed vertical lines are stops and faults."))
        if ConfidencePlot.showsQuality(data) {
            page += section("quality", "View quality", figure(ConfidencePlot.svg(data, axis: axis),
                                                              "Smoothed predicted diagnostic quality of each view; a view is acquired when it "
                                                                + "stays at or above the dashed diagnostic line for the hold. The marks are the "
                                                                + "moments each view was acquired or given up."))
        } else {
            page += section("confidence", "View confidence", figure(ConfidencePlot.svg(data, axis: axis),
                                                                    "Smoothed classifier probability of each view; the marks are the moments each view was acquired or given up."))
        }
        page += section("path", "Probe path", "<div class=\"pair\">\n" + ProbePathPlot.svgs(data).joined(separator: "\n")
                        + "\n</div>\n<p class=\"caption\">Probe tip in the robot base frame, the same scale on every axis, coloured from dark (start) to yellow (end).</p>\n")
        page += section("events", "Events", ReportTables.events(data.markers))
        page += section("counters", "Recording", ReportTables.counters(data.counters))
        page += """
            </main>
            <footer>Sono session report. Times are seconds from the start of the session.</footer>
            </body>
            </html>

            """
        return page
    }

    /// From the session's start (0, or the earliest sample if one is earlier) to its last sample
    /// or marker; one second when there is nothing.
    static func timeDomain(_ data: SessionReportData) -> ClosedRange<Double> {
        var low = 0.0, high = -Double.infinity
        func include(_ t: Double) {
            guard t.isFinite else { return }
            low = min(low, t)
            high = max(high, t)
        }
        for sample in data.forceN { include(sample.t) }
        for series in data.confidence.values { for sample in series { include(sample.t) } }
        for series in data.quality.values { for sample in series { include(sample.t) } }
        for point in data.probePathMM { include(point.t) }
        for marker in data.markers { include(marker.t) }
        return high > low ? low...high : low...(low + 1)
    }

    private static func section(_ id: String, _ heading: String, _ content: String) -> String {
        "<section id=\"\(id)\">\n<h2>\(heading)</h2>\n\(content)</section>\n\n"
    }

    private static func figure(_ svg: String, _ caption: String) -> String {
        "<figure>\n\(svg)\n<figcaption>\(HTMLText.escape(caption))</figcaption>\n</figure>\n"
    }
}
