// The report's text parts: the key facts, the table of views and their key frames, the force
// summary, the events and the recording's counters. Every recorded string is escaped.

enum ReportTables {
    /// Subtitle keys shown first, in this order; other keys follow alphabetically.
    static let factOrder = ["patient", "started", "duration", "model", "sono version", "outcome"]
    /// Rows of the events table at most; a longer session says how many are left out.
    static let maximumEventRows = 1000

    static func facts(_ subtitle: [String: String]) -> String {
        guard !subtitle.isEmpty else { return "" }
        let keys = subtitle.keys.sorted { a, b in
            let ia = factOrder.firstIndex(of: a.lowercased()) ?? factOrder.count
            let ib = factOrder.firstIndex(of: b.lowercased()) ?? factOrder.count
            return ia != ib ? ia < ib : a < b
        }
        let items = keys.map { "<div><dt>\(HTMLText.escape($0))</dt><dd>\(HTMLText.escape(subtitle[$0] ?? ""))</dd></div>" }
        return "<dl class=\"facts\">\n" + items.joined(separator: "\n") + "\n</dl>"
    }

    /// The views table. Quality columns only when a view has one: the predicted quality (with a
    /// model that predicts it) and the true quality (simulation), an acquired view whose true
    /// quality is below the diagnostic line marked as not diagnostic.
    static func views(_ views: [ReportView]) -> String {
        guard !views.isEmpty else { return "<p class=\"note\">No target views in this session.</p>\n" }
        let predicted = views.contains { $0.predictedQuality != nil }, truth = views.contains { $0.trueQuality != nil }
        var html = "<table class=\"views\">\n<thead><tr><th>View</th><th>Acquired</th><th>Time to acquire</th>"
            + "<th>Confidence</th>" + (predicted ? "<th>Predicted quality</th>" : "") + (truth ? "<th>True quality</th>" : "")
            + "<th>Pose error</th><th>Reason / note</th></tr></thead>\n<tbody>\n"
        for view in views {
            let acquired = view.acquired ? "<span class=\"yes\">yes</span>" : "<span class=\"no\">no</span>"
            let seconds = view.secondsToAcquire.map { "\(NumberText.fixed($0, 1)) s" } ?? "–"
            let confidence = view.confidence.map { NumberText.fixed($0, 2) } ?? "–"
            html += "<tr><td class=\"text\"><b>\(HTMLText.escape(view.name))</b></td><td>\(acquired)</td>"
                + "<td class=\"num\">\(seconds)</td><td class=\"num\">\(confidence)</td>"
            if predicted { html += "<td class=\"num\">\(view.predictedQuality.map { NumberText.fixed($0, 2) } ?? "–")</td>" }
            if truth { html += "<td class=\"num\">\(trueQuality(view))</td>" }
            html += "<td class=\"text\">\(HTMLText.escape(view.poseError ?? "–"))</td>"
                + "<td class=\"text\">\(HTMLText.escape(view.reason ?? ""))</td></tr>\n"
        }
        return html + "</tbody>\n</table>\n"
    }

    /// The true quality, marked when an acquired view is below the diagnostic line.
    static func trueQuality(_ view: ReportView) -> String {
        guard let q = view.trueQuality else { return "–" }
        guard view.acquired, q.isFinite, q < SessionReportData.diagnosticQuality else { return NumberText.fixed(q, 2) }
        return "<span class=\"no\">\(NumberText.fixed(q, 2)) not diagnostic</span>"
    }

    /// Each acquired view's key frame as an inline PNG, or a note why there is none.
    static func keyFrames(_ views: [ReportView]) -> String {
        let acquired = views.filter(\.acquired)
        guard !acquired.isEmpty else { return "" }
        var html = "<div class=\"keyframes\">\n"
        for view in acquired {
            let name = HTMLText.escape(view.name)
            let caption = [view.secondsToAcquire.map { "\(NumberText.fixed($0, 1)) s" },
                           view.confidence.map { "confidence \(NumberText.fixed($0, 2))" },
                           view.predictedQuality.map { "quality \(NumberText.fixed($0, 2))" },
                           view.trueQuality.map { "true quality \(NumberText.fixed($0, 2))" }].compactMap { $0 }.joined(separator: ", ")
            let label = "<figcaption><b>\(name)</b>\(caption.isEmpty ? "" : " — " + caption)</figcaption>"
            guard let frame = view.keyFrame else {
                html += "<figure><p class=\"note\">No key frame recorded.</p>\(label)</figure>\n"
                continue
            }
            switch KeyFrameImage.dataURI(frame) {
            case .success(let uri):
                html += "<figure><img src=\"\(uri)\" width=\"\(frame.width)\" height=\"\(frame.height)\" "
                    + "alt=\"Key frame of \(name)\">\(label)</figure>\n"
            case .failure(let error):
                html += "<figure><p class=\"note\">Key frame not shown: \(HTMLText.escape(error.description)).</p>\(label)</figure>\n"
            }
        }
        return html + "</div>\n"
    }

    /// Peak force, time above the soft limit, samples above the hard cap.
    static func forceSummary(_ data: SessionReportData) -> String {
        let samples = Decimation.finiteSorted(data.forceN)
        guard let peak = samples.max(by: { $0.value < $1.value }) else { return "" }
        var aboveSoft = 0.0, overCap = 0
        for (index, sample) in samples.enumerated() {
            if sample.value > data.forceHardCapN { overCap += 1 }
            // Each sample holds until the next one.
            if sample.value > data.forceSoftLimitN, index + 1 < samples.count { aboveSoft += samples[index + 1].t - sample.t }
        }
        var parts = ["Peak \(NumberText.fixed(peak.value, 1)) N at \(NumberText.fixed(peak.t, 1)) s",
                     "above the soft limit for \(NumberText.fixed(aboveSoft, 2)) s"]
        parts.append(overCap == 0 ? "never above the hard cap" : "<b>\(overCap) samples above the hard cap</b>")
        parts.append("\(samples.count) samples")
        return "<p class=\"summary\">" + parts.joined(separator: "; ") + ".</p>\n"
    }

    static func events(_ markers: [ReportMarker]) -> String {
        guard !markers.isEmpty else { return "<p class=\"note\">No events recorded.</p>\n" }
        let sorted = markers.enumerated().sorted { a, b in
            // Non-finite times last; equal times keep their recorded order.
            let (ta, tb) = (a.element.t.isFinite ? a.element.t : .infinity, b.element.t.isFinite ? b.element.t : .infinity)
            return ta != tb ? ta < tb : a.offset < b.offset
        }.map(\.element)
        var html = "<table class=\"events\">\n<thead><tr><th>Time</th><th>Kind</th><th>View</th><th>Text</th></tr></thead>\n<tbody>\n"
        for marker in sorted.prefix(maximumEventRows) {
            html += "<tr><td class=\"num\">\(NumberText.fixed(marker.t, 2)) s</td><td>\(MarkerSymbol.label(marker.kind))</td>"
                + "<td class=\"text\">\(HTMLText.escape(marker.view ?? ""))</td><td class=\"text\">\(HTMLText.escape(marker.text))</td></tr>\n"
        }
        html += "</tbody>\n</table>\n"
        if sorted.count > maximumEventRows {
            html += "<p class=\"note\">\(sorted.count - maximumEventRows) later events not listed (first \(maximumEventRows) shown).</p>\n"
        }
        return html
    }

    static func counters(_ counters: [String: String]) -> String {
        guard !counters.isEmpty else { return "<p class=\"note\">No recording counters.</p>\n" }
        let rows = counters.keys.sorted().map {
            "<tr><th scope=\"row\">\(HTMLText.escape($0))</th><td class=\"text\">\(HTMLText.escape(counters[$0] ?? ""))</td></tr>"
        }
        return "<table class=\"counters\">\n<tbody>\n" + rows.joined(separator: "\n") + "\n</tbody>\n</table>\n"
    }
}
