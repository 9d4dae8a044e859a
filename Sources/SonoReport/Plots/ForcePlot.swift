// Contact force over the session, against the target and the two limits, with every stop,
// fault and e-stop drawn where it happened.

enum ForcePlot {
    static let kinds: Set<ReportMarker.Kind> = [.stop, .fault, .estop]
    private static let labelRows = 3

    /// The plot area's top and bottom (under the legend and the marker labels' rows).
    static let legendY = 16.0
    static let top = legendY + 12 + Double(labelRows) * 14 + 6
    static let bottom = top + 230

    static func svg(_ data: SessionReportData, axis: TimeAxis) -> String {
        let (legendY, top, bottom) = (Self.legendY, Self.top, Self.bottom)
        var svg = SVG(width: TimeAxis.width, height: bottom + 42)

        let samples = Decimation.finiteSorted(data.forceN)
        let limits = [data.forceTargetN, data.forceSoftLimitN, data.forceHardCapN].compactMap { $0 }.filter(\.isFinite)
        let values = samples.map(\.value)
        let low = min(0, values.min() ?? 0, limits.min() ?? 0)
        let high = max(values.max() ?? 1, limits.max() ?? 1)
        let y = LinearScale(domain: Ticks.niceDomain(low, high * 1.05, target: 5), range: (bottom, top))

        var legend = [LegendItem(label: "contact force", symbol: .line(color: Palette.force, dash: nil))]
        if let target = data.forceTargetN, target.isFinite {
            legend.append(LegendItem(label: "target \(NumberText.fixed(target, 1)) N", symbol: .line(color: Palette.target, dash: "6 4")))
        }
        if data.forceSoftLimitN.isFinite {
            legend.append(LegendItem(label: "soft limit \(NumberText.fixed(data.forceSoftLimitN, 1)) N",
                                     symbol: .line(color: Palette.softLimit, dash: "10 4")))
        }
        if data.forceHardCapN.isFinite {
            legend.append(LegendItem(label: "hard cap \(NumberText.fixed(data.forceHardCapN, 1)) N",
                                     symbol: .line(color: Palette.hardCap, dash: nil)))
        }
        legend += [LegendItem(label: "stop", symbol: .line(color: Palette.stop, dash: "2 2")),
                   LegendItem(label: "fault / e-stop", symbol: .line(color: Palette.fault, dash: "2 2"))]
        Legend.draw(on: &svg, legend, x: TimeAxis.left, y: legendY, maxX: TimeAxis.width - TimeAxis.right)

        TimeAxis.drawY(on: &svg, scale: y, title: "force along probe axis (N)", top: top, bottom: bottom)
        axis.draw(on: &svg, top: top, bottom: bottom)
        TimeAxis.clip(on: &svg, id: "clip-force", top: top, bottom: bottom)

        svg.raw("<g clip-path=\"url(#clip-force)\">\n")
        if let target = data.forceTargetN, target.isFinite {
            svg.line(TimeAxis.left, y(target), TimeAxis.left + TimeAxis.plotWidth, y(target), stroke: Palette.target, width: 1.5, dash: "6 4")
        }
        if data.forceSoftLimitN.isFinite {
            let py = y(data.forceSoftLimitN)
            svg.line(TimeAxis.left, py, TimeAxis.left + TimeAxis.plotWidth, py, stroke: Palette.softLimit, width: 1.5, dash: "10 4")
        }
        if data.forceHardCapN.isFinite {
            let py = y(data.forceHardCapN)
            svg.line(TimeAxis.left, py, TimeAxis.left + TimeAxis.plotWidth, py, stroke: Palette.hardCap, width: 1.5)
        }
        let reduced = Decimation.minMaxPerColumn(samples, columns: TimeAxis.columns, timeRange: axis.domain)
        svg.polyline(reduced.lazy.map { (axis.x($0.t), y($0.value)) }, stroke: Palette.force, width: 1.2)
        svg.raw("</g>\n")
        if samples.isEmpty {
            TimeAxis.noData(on: &svg, "No force samples recorded", top: top, bottom: bottom)
        }

        drawMarkers(on: &svg, data.markers, axis: axis, top: top, bottom: bottom, labelTop: legendY + 12)
        return svg.element(title: "Contact force over time")
    }

    /// Stops, faults and e-stops: a vertical line through the plot, a label above it.
    private static func drawMarkers(on svg: inout SVG, _ markers: [ReportMarker], axis: TimeAxis,
                                    top: Double, bottom: Double, labelTop: Double) {
        var rows = LabelRows(rows: labelRows, minX: TimeAxis.left, maxX: TimeAxis.width - 4)
        for marker in markers.filter({ kinds.contains($0.kind) && $0.t.isFinite }).sorted(by: { $0.t < $1.t }) {
            let px = axis.x(marker.t)
            guard px >= TimeAxis.left - 0.5, px <= TimeAxis.left + TimeAxis.plotWidth + 0.5 else { continue }
            let color = MarkerSymbol.color(marker.kind)
            let full = "\(MarkerSymbol.label(marker.kind)) at \(NumberText.fixed(marker.t, 1)) s: \(marker.text)"
            svg.line(px, top, px, bottom, stroke: color, width: 1.5, dash: "2 2", tooltip: full)
            let label = HTMLText.truncated(marker.text.isEmpty ? MarkerSymbol.label(marker.kind) : marker.text, to: 32)
            if let place = rows.place(x: px, text: label) {
                let baseline = labelTop + 12 + Double(place.row) * 14
                svg.line(px, baseline - 4, px, top, stroke: color, width: 0.75, dash: "1 2")
                svg.text(place.x, baseline, label, anchor: place.anchor, fill: color, tooltip: full)
            }
        }
    }
}
