// The session at a glance: the states it went through as coloured bands, and every other marker
// (stops, faults, views, operator commands) as a symbol on a second row, labelled where there
// is room (every symbol has its full text as a tooltip, and the events table lists them all).

enum TimelinePlot {
    private static let labelRows = 3

    static func svg(_ data: SessionReportData, axis: TimeAxis) -> String {
        let markers = data.markers.filter { $0.t.isFinite }.sorted { $0.t < $1.t }
        let states = markers.filter { $0.kind == .stateChange }
        let moments = markers.filter { $0.kind != .stateChange }

        var svg = SVG(width: TimeAxis.width, height: 0)
        let legend = ReportMarker.Kind.allCases.filter { $0 != .stateChange }
            .map { LegendItem(label: MarkerSymbol.label($0), symbol: .marker($0)) }
        let legendBottom = Legend.draw(on: &svg, legend, x: TimeAxis.left, y: 16, maxX: TimeAxis.width - TimeAxis.right)
        let bandTop = legendBottom + 12, bandHeight = 26.0
        let symbolY = bandTop + bandHeight + 16
        let labelTop = symbolY + 10
        let bottom = labelTop + Double(labelRows) * 14 + 6
        svg.height = bottom + 42

        svg.text(TimeAxis.left - 8, bandTop + bandHeight / 2 + 4, "state", anchor: .end, fill: Palette.muted)
        svg.text(TimeAxis.left - 8, symbolY + 4, "events", anchor: .end, fill: Palette.muted)
        axis.draw(on: &svg, top: bandTop, bottom: bottom)

        if markers.isEmpty {
            TimeAxis.noData(on: &svg, "No state changes or events recorded", top: bandTop, bottom: bottom)
            return svg.element(title: "Timeline of states and events: no data")
        }

        // States: from each change to the next (the last to the end of the session).
        let plotEnd = TimeAxis.left + TimeAxis.plotWidth
        for (index, state) in states.enumerated() {
            let from = max(TimeAxis.left, axis.x(state.t))
            let to = min(plotEnd, index + 1 < states.count ? axis.x(states[index + 1].t) : plotEnd)
            guard to > from else { continue }
            let until = index + 1 < states.count ? states[index + 1].t : axis.domain.upperBound
            let tooltip = "\(state.text): \(NumberText.fixed(state.t, 1))–\(NumberText.fixed(until, 1)) s"
            svg.rect(from, bandTop, to - from, bandHeight, fill: Palette.state(state.text), stroke: "#ffffff", tooltip: tooltip)
            // The name inside the band when it fits, shortened when that is enough.
            let room = to - from - 8
            var label = state.text
            while !label.isEmpty, SVG.textWidth(label) > room { label = label.count > 2 ? HTMLText.truncated(label, to: label.count - 1) : "" }
            if label.count >= min(3, state.text.count), !label.isEmpty {
                svg.text(from + 4, bandTop + bandHeight / 2 + 4, label, tooltip: tooltip)
            }
        }
        if states.isEmpty {
            svg.text(TimeAxis.left + 4, bandTop + bandHeight / 2 + 4, "no state changes recorded", fill: Palette.muted)
        }

        // Other markers: a symbol each, labels in rows beneath.
        var rows = LabelRows(rows: labelRows, minX: TimeAxis.left, maxX: TimeAxis.width - 4)
        for marker in moments {
            let px = axis.x(marker.t)
            guard px >= TimeAxis.left - 0.5, px <= plotEnd + 0.5 else { continue }
            let text = marker.text.isEmpty ? MarkerSymbol.label(marker.kind) : marker.text
            let full = "\(MarkerSymbol.label(marker.kind)) at \(NumberText.fixed(marker.t, 1)) s: \(text)"
            MarkerSymbol.draw(on: &svg, marker.kind, x: px, y: symbolY, tooltip: full)
            let label = HTMLText.truncated(text, to: 28)
            if let place = rows.place(x: px, text: label) {
                let baseline = labelTop + 12 + Double(place.row) * 14
                svg.line(px, symbolY + 7, px, baseline - 9, stroke: MarkerSymbol.color(marker.kind), width: 0.75)
                svg.text(place.x, baseline, label, anchor: place.anchor, fill: MarkerSymbol.color(marker.kind), tooltip: full)
            }
        }
        return svg.element(title: "Timeline of states and events")
    }
}
