// Where the probe tip went: the path seen from above (x–y) and from the side (x–z), both at the
// same scale with equal axes (a millimetre is as long across as up), coloured by time.

enum ProbePathPlot {
    enum Projection {
        case top, side

        var title: String { self == .top ? "Top view (x–y)" : "Side view (x–z)" }
        var verticalAxis: String { self == .top ? "y (mm)" : "z (mm)" }
        var id: String { self == .top ? "xy" : "xz" }

        func vertical(_ point: TimedPoint) -> Double { self == .top ? point.y : point.z }
    }

    static let width = 540.0
    static let height = 440.0
    static let left = 60.0, right = 16.0, top = 44.0, bottom = 44.0
    static var plotWidth: Double { width - left - right }
    static var plotHeight: Double { height - top - bottom }
    /// Colour steps along the path.
    static let segments = 64

    /// Both projections, in that order.
    static func svgs(_ data: SessionReportData) -> [String] {
        let path = Decimation.finiteSorted(data.probePathMM)
        let scale = millimetresPerPixel(path)
        return [Projection.top, .side].map { svg(path, projection: $0, mmPerPixel: scale) }
    }

    /// One scale for both projections: the largest that fits x, y and z with a margin.
    static func millimetresPerPixel(_ path: [TimedPoint]) -> Double {
        func span(_ values: [Double]) -> Double { (values.max() ?? 0) - (values.min() ?? 0) }
        let spans = (x: span(path.map(\.x)), y: span(path.map(\.y)), z: span(path.map(\.z)))
        // 10 mm at least, so a probe that stood still is a dot in a readable frame, not a zoom on noise.
        let fit = max(spans.x / plotWidth, spans.y / plotHeight, spans.z / plotHeight, 10 / plotHeight)
        return fit * 1.1
    }

    static func svg(_ path: [TimedPoint], projection: Projection, mmPerPixel: Double) -> String {
        var svg = SVG(width: width, height: height)
        svg.text(left, 18, projection.title, size: 13, weight: "bold")
        let (plotLeft, plotTop) = (left, top)
        let (plotRight, plotBottom) = (left + plotWidth, top + plotHeight)

        guard let first = path.first, let last = path.last else {
            svg.rect(plotLeft, plotTop, plotWidth, plotHeight, fill: "#f7f7f7", stroke: Palette.grid)
            svg.text(plotLeft + plotWidth / 2, plotTop + plotHeight / 2 + 5, "No probe positions recorded",
                     anchor: .middle, fill: Palette.muted, size: 14)
            return svg.element(title: "Probe path, \(projection.title.lowercased()): no data")
        }
        let horizontal = path.map(\.x), vertical = path.map(projection.vertical)
        let centre = (((horizontal.min() ?? 0) + (horizontal.max() ?? 0)) / 2,
                      ((vertical.min() ?? 0) + (vertical.max() ?? 0)) / 2)
        let halfWidth = plotWidth / 2 * mmPerPixel, halfHeight = plotHeight / 2 * mmPerPixel
        let x = LinearScale(domain: (centre.0 - halfWidth)...(centre.0 + halfWidth), range: (plotLeft, plotRight))
        let y = LinearScale(domain: (centre.1 - halfHeight)...(centre.1 + halfHeight), range: (plotBottom, plotTop))

        // Axes: the grid at round millimetres, the same step both ways (equal aspect).
        let ticksX = Ticks.nice(x.domain.lowerBound, x.domain.upperBound, target: 6)
        let ticksY = Ticks.nice(y.domain.lowerBound, y.domain.upperBound, target: 5)
        svg.rect(plotLeft, plotTop, plotWidth, plotHeight, fill: "none", stroke: Palette.axis)
        for value in ticksX.values {
            svg.line(x(value), plotTop, x(value), plotBottom, stroke: Palette.grid)
            svg.line(x(value), plotBottom, x(value), plotBottom + 5, stroke: Palette.axis)
            svg.text(x(value), plotBottom + 17, NumberText.fixed(value, ticksX.decimals), anchor: .middle)
        }
        for value in ticksY.values {
            svg.line(plotLeft, y(value), plotRight, y(value), stroke: Palette.grid)
            svg.line(plotLeft - 5, y(value), plotLeft, y(value), stroke: Palette.axis)
            svg.text(plotLeft - 8, y(value) + 4, NumberText.fixed(value, ticksY.decimals), anchor: .end)
        }
        svg.text(plotLeft + plotWidth / 2, plotBottom + 34, "x (mm)", anchor: .middle, fill: Palette.muted)
        svg.text(16, plotTop + plotHeight / 2, projection.verticalAxis, anchor: .middle, fill: Palette.muted, rotate: -90)

        // The path in colour steps by time.
        let duration = last.t - first.t
        let pixels = Decimation.thinned(path.map { (x: x($0.x), y: y(projection.vertical($0)), t: $0.t) })
        let count = min(segments, max(1, pixels.count - 1))
        for segment in 0..<count {
            let from = segment * (pixels.count - 1) / count
            let to = (segment + 1) * (pixels.count - 1) / count
            guard to > from else { continue }
            let middle = (pixels[from].t + pixels[to].t) / 2
            let color = Palette.viridis(duration > 0 ? (middle - first.t) / duration : 0)
            svg.polyline(pixels[from...to].lazy.map { ($0.x, $0.y) }, stroke: color, width: 2)
        }

        // Start and end.
        let start = (x(first.x), y(projection.vertical(first)))
        let end = (x(last.x), y(projection.vertical(last)))
        let where_ = { (p: TimedPoint) in
            "(\(NumberText.fixed(p.x, 1)), \(NumberText.fixed(p.y, 1)), \(NumberText.fixed(p.z, 1))) mm"
        }
        svg.circle(start.0, start.1, r: 6, fill: "#ffffff", stroke: "#111111", tooltip: "start \(where_(first)) at \(NumberText.fixed(first.t, 1)) s")
        svg.rect(end.0 - 5, end.1 - 5, 10, 10, fill: "#111111", tooltip: "end \(where_(last)) at \(NumberText.fixed(last.t, 1)) s")

        // Legend: start, end, and the time ramp.
        let legendY = 18.0
        var cursor = width - right - 290
        svg.circle(cursor + 6, legendY - 4, r: 5, fill: "#ffffff", stroke: "#111111")
        svg.text(cursor + 15, legendY, "start")
        cursor += 52
        svg.rect(cursor + 1, legendY - 9, 9, 9, fill: "#111111")
        svg.text(cursor + 15, legendY, "end")
        cursor += 48
        let gradient = "time-\(projection.id)"
        svg.raw("<linearGradient id=\"\(gradient)\">" + (0...8).map { step in
            let f = Double(step) / 8
            return "<stop offset=\"\(NumberText.fixed(f, 3))\" stop-color=\"\(Palette.viridis(f))\"/>"
        }.joined() + "</linearGradient>\n")
        svg.text(cursor, legendY, NumberText.clock(first.t))
        svg.rect(cursor + 34, legendY - 10, 90, 10, fill: "url(#\(gradient))")
        svg.text(cursor + 130, legendY, NumberText.clock(last.t))
        return svg.element(title: "Probe path, \(projection.title.lowercased()), coloured by time")
    }
}
