// What every plot over session time shares: the same width and margins (so force, confidence
// and the timeline line up one above the other), the time axis, a legend row, labels for
// moments placed in rows so they do not overlap, and the "no data" note.

struct TimeAxis {
    static let width = 1100.0
    static let left = 64.0
    static let right = 28.0
    static var plotWidth: Double { width - left - right }
    /// Pixel columns of the plot area: the resolution long series are reduced to.
    static var columns: Int { Int(plotWidth) }

    let domain: ClosedRange<Double>
    let x: LinearScale

    /// `domain`: seconds from the session's start, the same for every plot of the report.
    init(domain: ClosedRange<Double>) {
        self.domain = domain
        x = LinearScale(domain: domain, range: (Self.left, Self.left + Self.plotWidth))
    }

    /// Ticks, vertical grid lines from `top` to `bottom` and the axis title under the ticks.
    func draw(on svg: inout SVG, top: Double, bottom: Double, grid: Bool = true) {
        let ticks = Ticks.time(domain.lowerBound, domain.upperBound)
        svg.line(Self.left, bottom, Self.left + Self.plotWidth, bottom, stroke: Palette.axis)
        for value in ticks.values {
            let px = x(value)
            if grid { svg.line(px, top, px, bottom, stroke: Palette.grid) }
            svg.line(px, bottom, px, bottom + 5, stroke: Palette.axis)
            let label = ticks.clock ? NumberText.clock(value) : NumberText.fixed(value, value.rounded() == value ? 0 : 1)
            svg.text(px, bottom + 17, label, anchor: .middle)
        }
        svg.text(Self.left + Self.plotWidth / 2, bottom + 33,
                 ticks.clock ? "time since start (min:s)" : "time since start (s)", anchor: .middle, fill: Palette.muted)
    }

    /// A y axis at the left of the plot area: ticks, horizontal grid lines, the rotated title.
    static func drawY(on svg: inout SVG, scale: LinearScale, title: String, top: Double, bottom: Double) {
        let ticks = Ticks.nice(scale.domain.lowerBound, scale.domain.upperBound, target: 5)
        svg.line(left, top, left, bottom, stroke: Palette.axis)
        for value in ticks.values {
            let py = scale(value)
            svg.line(left, py, left + plotWidth, py, stroke: Palette.grid)
            svg.line(left - 5, py, left, py, stroke: Palette.axis)
            svg.text(left - 8, py + 4, NumberText.fixed(value, ticks.decimals), anchor: .end)
        }
        svg.text(16, (top + bottom) / 2, title, anchor: .middle, fill: Palette.muted, rotate: -90)
    }

    /// A clip path for the plot area, so a line or a value out of range cannot draw over the
    /// axes; use as `clip-path="url(#id)"`.
    static func clip(on svg: inout SVG, id: String, top: Double, bottom: Double) {
        svg.raw("<clipPath id=\"\(id)\"><rect x=\"\(NumberText.fixed(left, 1))\" y=\"\(NumberText.fixed(top - 2, 1))\" "
                + "width=\"\(NumberText.fixed(plotWidth, 1))\" height=\"\(NumberText.fixed(bottom - top + 4, 1))\"/></clipPath>\n")
    }

    /// The note a plot without data shows in the middle of its plot area, in a box drawn over
    /// whatever lines (limits, grid) the plot still has.
    static func noData(on svg: inout SVG, _ message: String, top: Double, bottom: Double) {
        let width = SVG.textWidth(message, size: 14) + 32, middle = (top + bottom) / 2
        svg.rect(left + (plotWidth - width) / 2, middle - 16, width, 32, fill: "#f7f7f7", stroke: "#cccccc")
        svg.text(left + plotWidth / 2, middle + 5, message, anchor: .middle, fill: Palette.muted, size: 14)
    }
}

/// One entry of a plot's legend.
struct LegendItem {
    enum Symbol {
        case line(color: String, dash: String?)
        case swatch(color: String)
        case marker(ReportMarker.Kind)
        /// A dot, filled or hollow (the confidence plot's acquired / given-up marks).
        case dot(color: String, filled: Bool)
    }

    var label: String
    var symbol: Symbol
}

enum Legend {
    /// The items in a row from `x` at baseline `y`, wrapping before `maxX`; returns the last row's
    /// baseline.
    @discardableResult
    static func draw(on svg: inout SVG, _ items: [LegendItem], x: Double, y: Double, maxX: Double) -> Double {
        var cursor = x, baseline = y
        for item in items {
            let itemWidth = 28 + SVG.textWidth(item.label)
            if cursor + itemWidth > maxX, cursor > x {
                cursor = x
                baseline += 16
            }
            switch item.symbol {
            case .line(let color, let dash):
                svg.line(cursor, baseline - 4, cursor + 20, baseline - 4, stroke: color, width: 2.5, dash: dash)
            case .swatch(let color):
                svg.rect(cursor + 4, baseline - 10, 12, 12, fill: color)
            case .marker(let kind):
                MarkerSymbol.draw(on: &svg, kind, x: cursor + 10, y: baseline - 4)
            case .dot(let color, let filled):
                svg.circle(cursor + 10, baseline - 4, r: filled ? 5 : 4.5, fill: filled ? color : "#ffffff",
                           stroke: filled ? nil : color)
            }
            svg.text(cursor + 25, baseline, item.label)
            cursor += itemWidth + 14
        }
        return baseline
    }
}

/// Places labels of moments in time in a few rows, each label in the first row where it does not
/// overlap the one before it; a label that fits in no row is left out (its line keeps a tooltip).
struct LabelRows {
    private var rowEnds: [Double]
    let minX: Double
    let maxX: Double

    init(rows: Int, minX: Double, maxX: Double) {
        rowEnds = Array(repeating: -Double.infinity, count: rows)
        self.minX = minX
        self.maxX = maxX
    }

    /// Where a label for the moment at pixel `x` goes: its row, its anchor point and anchor side
    /// (right of the moment, or left of it near the plot's right end); nil when no row has room.
    mutating func place(x: Double, text: String) -> (row: Int, x: Double, anchor: SVG.Anchor)? {
        let width = SVG.textWidth(text)
        let rightward = x + 3 + width <= maxX
        let start = rightward ? x + 3 : max(minX, x - 3 - width)
        let end = start + width
        for row in rowEnds.indices where rowEnds[row] + 6 <= start {
            rowEnds[row] = end
            return (row, rightward ? x + 3 : x - 3, rightward ? .start : .end)
        }
        return nil
    }
}

/// The symbol of each kind of marker, the same in the timeline and in legends.
enum MarkerSymbol {
    static func color(_ kind: ReportMarker.Kind) -> String {
        switch kind {
        case .stop: Palette.stop
        case .fault: Palette.fault
        case .estop: Palette.estop
        case .viewAcquired: Palette.acquired
        case .viewFailed: Palette.failed
        case .stateChange: Palette.muted
        case .operator: Palette.operatorCommand
        }
    }

    static func label(_ kind: ReportMarker.Kind) -> String {
        switch kind {
        case .stop: "stop"
        case .fault: "fault"
        case .estop: "e-stop"
        case .viewAcquired: "view acquired"
        case .viewFailed: "view failed"
        case .stateChange: "state change"
        case .operator: "operator"
        }
    }

    static func draw(on svg: inout SVG, _ kind: ReportMarker.Kind, x: Double, y: Double, tooltip: String? = nil) {
        let c = color(kind)
        switch kind {
        case .stop: svg.polygon([(x - 6, y - 5), (x + 6, y - 5), (x, y + 6)], fill: c, tooltip: tooltip)
        case .fault: svg.polygon([(x, y - 7), (x + 6, y), (x, y + 7), (x - 6, y)], fill: c, tooltip: tooltip)
        case .estop:
            svg.polygon([(x - 3, y - 7), (x + 3, y - 7), (x + 7, y - 3), (x + 7, y + 3), (x + 3, y + 7),
                         (x - 3, y + 7), (x - 7, y + 3), (x - 7, y - 3)], fill: c, tooltip: tooltip)
        case .viewAcquired: svg.circle(x, y, r: 5, fill: c, tooltip: tooltip)
        case .viewFailed: svg.circle(x, y, r: 4.5, fill: "#ffffff", stroke: c, tooltip: tooltip)
        case .stateChange: svg.rect(x - 1, y - 6, 2, 12, fill: c, tooltip: tooltip)
        case .operator: svg.polygon([(x - 5, y + 5), (x + 5, y + 5), (x, y - 5)], fill: c, tooltip: tooltip)
        }
    }
}
