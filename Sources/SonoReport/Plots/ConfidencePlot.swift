// The classifier's smoothed score of each view over the session, one line per view, with the
// line a view must hold and the moments each view was acquired (or given up). The score is the
// predicted diagnostic quality when the recording has it, else the probability.

enum ConfidencePlot {
    private static let labelRows = 2

    /// What the plot draws: the series per view and their line.
    struct Score {
        var series: [String: [TimedValue]]
        var threshold: Double?
        var thresholdLabel: String
        var axisTitle: String
        var title: String
        var clipID: String
    }

    /// The predicted quality with the diagnostic line when the data has quality, else the
    /// probability with the hold threshold.
    static func score(_ data: SessionReportData) -> Score {
        if showsQuality(data) {
            return Score(series: data.quality, threshold: data.qualityThreshold, thresholdLabel: "diagnostic",
                         axisTitle: "predicted quality", title: "Predicted diagnostic quality per view over time",
                         clipID: "clip-quality")
        }
        return Score(series: data.confidence, threshold: data.confidenceThreshold, thresholdLabel: "hold threshold",
                     axisTitle: "view probability", title: "Classifier confidence per view over time", clipID: "clip-confidence")
    }

    /// Whether the report plots the predicted quality (any quality sample) rather than the probability.
    static func showsQuality(_ data: SessionReportData) -> Bool {
        data.quality.values.contains { !$0.isEmpty }
    }

    /// The view labels in the order the report draws and lists them: the known ones first, then
    /// the others alphabetically.
    static func orderedViews(_ names: some Collection<String>) -> [String] {
        let unique = Set(names)
        let known = Palette.viewOrder.flatMap { label in unique.filter { $0.uppercased() == label }.sorted() }
        let others = unique.filter { !Palette.viewOrder.contains($0.uppercased()) }.sorted()
        return known + others
    }

    /// Each view label's colour (unknown labels numbered in `orderedViews` order).
    static func colors(_ names: [String]) -> [String: String] {
        var result: [String: String] = [:]
        var unknown = 0
        for name in names {
            let isKnown = Palette.viewOrder.contains(name.uppercased())
            result[name] = Palette.view(name, unknownIndex: unknown)
            if !isKnown { unknown += 1 }
        }
        return result
    }

    static func svg(_ data: SessionReportData, axis: TimeAxis) -> String {
        let score = score(data)
        let markerViews = data.markers.compactMap(\.view)
        let names = orderedViews(Set(score.series.keys).union(markerViews).union(data.views.map(\.name)))
        let color = colors(names)
        let series = score.series.mapValues(Decimation.finiteSorted)
        let drawn = names.filter { !(series[$0] ?? []).isEmpty }

        var svg = SVG(width: TimeAxis.width, height: 0)
        let legendY = 16.0
        var legend = drawn.map { LegendItem(label: $0, symbol: .line(color: color[$0] ?? Palette.muted, dash: nil)) }
        if let threshold = score.threshold, threshold.isFinite {
            legend.append(LegendItem(label: "\(score.thresholdLabel) \(NumberText.fixed(threshold, 2))",
                                     symbol: .line(color: Palette.threshold, dash: "5 4")))
        }
        legend += [LegendItem(label: "acquired", symbol: .dot(color: Palette.text, filled: true)),
                   LegendItem(label: "given up", symbol: .dot(color: Palette.failed, filled: false))]
        let legendBottom = Legend.draw(on: &svg, legend, x: TimeAxis.left, y: legendY, maxX: TimeAxis.width - TimeAxis.right)
        let labelTop = legendBottom + 8
        let top = labelTop + Double(labelRows) * 14 + 10
        let bottom = top + 200
        svg.height = bottom + 42

        let y = LinearScale(domain: 0...1, range: (bottom, top))
        TimeAxis.drawY(on: &svg, scale: y, title: score.axisTitle, top: top, bottom: bottom)
        axis.draw(on: &svg, top: top, bottom: bottom)
        TimeAxis.clip(on: &svg, id: score.clipID, top: top, bottom: bottom)
        svg.raw("<g clip-path=\"url(#\(score.clipID))\">\n")
        if let threshold = score.threshold, threshold.isFinite {
            svg.line(TimeAxis.left, y(threshold), TimeAxis.left + TimeAxis.plotWidth, y(threshold),
                     stroke: Palette.threshold, width: 1.2, dash: "5 4")
        }
        for name in drawn {
            let reduced = Decimation.minMaxPerColumn(series[name] ?? [], columns: TimeAxis.columns, timeRange: axis.domain)
            svg.polyline(reduced.lazy.map { (axis.x($0.t), y(min(1.02, max(-0.02, $0.value)))) },
                         stroke: color[name] ?? Palette.muted, width: 1.6)
        }
        svg.raw("</g>\n")
        if drawn.isEmpty {
            TimeAxis.noData(on: &svg, "No classifier output recorded", top: top, bottom: bottom)
        }

        // Acquisitions and give-ups: a line in the view's colour, a dot on its curve, a label.
        var rows = LabelRows(rows: labelRows, minX: TimeAxis.left, maxX: TimeAxis.width - 4)
        let moments = data.markers.filter { ($0.kind == .viewAcquired || $0.kind == .viewFailed) && $0.t.isFinite }
        for marker in moments.sorted(by: { $0.t < $1.t }) {
            let px = axis.x(marker.t)
            guard px >= TimeAxis.left - 0.5, px <= TimeAxis.left + TimeAxis.plotWidth + 0.5 else { continue }
            let viewName = marker.view ?? marker.text
            let c = marker.kind == .viewAcquired ? (color[viewName] ?? Palette.acquired) : Palette.failed
            let full = "\(viewName) \(marker.kind == .viewAcquired ? "acquired" : "given up") at "
                + "\(NumberText.fixed(marker.t, 1)) s" + (marker.text.isEmpty || marker.text == viewName ? "" : ": \(marker.text)")
            svg.line(px, top, px, bottom, stroke: c, width: 1.2, dash: "4 3", tooltip: full)
            if let value = value(of: series[viewName] ?? [], at: marker.t) {
                let py = y(min(1, max(0, value)))
                if marker.kind == .viewAcquired {
                    svg.circle(px, py, r: 5, fill: c, stroke: "#ffffff", tooltip: full)
                } else {
                    svg.circle(px, py, r: 4.5, fill: "#ffffff", stroke: c, tooltip: full)
                }
            }
            let label = HTMLText.truncated(viewName + (marker.kind == .viewAcquired ? " ✓" : " ✗"), to: 24)
            if let place = rows.place(x: px, text: label) {
                svg.text(place.x, labelTop + 12 + Double(place.row) * 14, label, anchor: place.anchor, fill: c,
                         weight: "bold", tooltip: full)
            }
        }
        return svg.element(title: score.title)
    }

    /// The sample of a sorted series nearest before or at `t` (the first one if none is).
    static func value(of series: [TimedValue], at t: Double) -> Double? {
        guard !series.isEmpty else { return nil }
        var low = 0, high = series.count - 1
        if series[0].t >= t { return series[0].value }
        while low < high {
            let mid = (low + high + 1) / 2
            if series[mid].t <= t { low = mid } else { high = mid - 1 }
        }
        return series[low].value
    }
}
