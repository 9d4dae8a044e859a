// A minimal SVG writer: the few elements the report's plots use, coordinates printed with one
// decimal (a tenth of a pixel), every text escaped.

struct SVG {
    var width: Double
    /// May be set after drawing, once the content's extent is known.
    var height: Double
    private(set) var body = ""

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    /// The finished `<svg>` element, sized in CSS pixels and scalable (viewBox), with `title` as
    /// its accessible name.
    func element(title: String, cssClass: String = "plot") -> String {
        let w = NumberText.fixed(width, 0), h = NumberText.fixed(height, 0)
        return "<svg class=\"\(cssClass)\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(w) \(h)\" "
            + "width=\"\(w)\" height=\"\(h)\" role=\"img\" font-family=\"'Liberation Sans', Arial, sans-serif\" "
            + "font-size=\"11\"><title>\(HTMLText.escape(title))</title>\n\(body)</svg>"
    }

    mutating func raw(_ markup: String) { body += markup }

    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String,
                       width: Double = 1, dash: String? = nil, tooltip: String? = nil) {
        body += "<line x1=\"\(n(x1))\" y1=\"\(n(y1))\" x2=\"\(n(x2))\" y2=\"\(n(y2))\" stroke=\"\(stroke)\" "
            + "stroke-width=\"\(n(width))\"" + (dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")
        if let tooltip { body += "><title>\(HTMLText.escape(tooltip))</title></line>\n" } else { body += "/>\n" }
    }

    mutating func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String, stroke: String? = nil,
                       tooltip: String? = nil) {
        body += "<rect x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(max(0, w)))\" height=\"\(n(max(0, h)))\" fill=\"\(fill)\""
            + (stroke.map { " stroke=\"\($0)\"" } ?? "")
        if let tooltip { body += "><title>\(HTMLText.escape(tooltip))</title></rect>\n" } else { body += "/>\n" }
    }

    mutating func circle(_ cx: Double, _ cy: Double, r: Double, fill: String, stroke: String? = nil, tooltip: String? = nil) {
        body += "<circle cx=\"\(n(cx))\" cy=\"\(n(cy))\" r=\"\(n(r))\" fill=\"\(fill)\""
            + (stroke.map { " stroke=\"\($0)\" stroke-width=\"1.5\"" } ?? "")
        if let tooltip { body += "><title>\(HTMLText.escape(tooltip))</title></circle>\n" } else { body += "/>\n" }
    }

    /// A closed polygon (marker symbols).
    mutating func polygon(_ points: [(Double, Double)], fill: String, stroke: String? = nil, tooltip: String? = nil) {
        body += "<polygon points=\"" + points.map { "\(n($0.0)),\(n($0.1))" }.joined(separator: " ")
            + "\" fill=\"\(fill)\"" + (stroke.map { " stroke=\"\($0)\" stroke-width=\"1.5\"" } ?? "")
        if let tooltip { body += "><title>\(HTMLText.escape(tooltip))</title></polygon>\n" } else { body += "/>\n" }
    }

    /// An open polyline; a dot for a single point (a one-point polyline draws nothing), nothing
    /// for none.
    mutating func polyline<S: Sequence>(_ points: S, stroke: String, width: Double = 1.5, dash: String? = nil)
    where S.Element == (Double, Double) {
        var text = ""
        var count = 0
        var only = (0.0, 0.0)
        for (x, y) in points {
            if !text.isEmpty { text += " " }
            text += n(x) + "," + n(y)
            count += 1
            only = (x, y)
        }
        guard count > 1 else {
            if count == 1 { circle(only.0, only.1, r: max(2.5, width * 1.5), fill: stroke) }
            return
        }
        body += "<polyline points=\"\(text)\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"\(n(width))\" "
            + "stroke-linejoin=\"round\" stroke-linecap=\"round\"" + (dash.map { " stroke-dasharray=\"\($0)\"" } ?? "") + "/>\n"
    }

    enum Anchor: String { case start, middle, end }

    mutating func text(_ x: Double, _ y: Double, _ content: String, anchor: Anchor = .start, fill: String = Palette.text,
                       size: Double? = nil, weight: String? = nil, rotate: Double? = nil, tooltip: String? = nil) {
        body += "<text x=\"\(n(x))\" y=\"\(n(y))\" fill=\"\(fill)\""
        if anchor != .start { body += " text-anchor=\"\(anchor.rawValue)\"" }
        if let size { body += " font-size=\"\(n(size))\"" }
        if let weight { body += " font-weight=\"\(weight)\"" }
        if let rotate { body += " transform=\"rotate(\(n(rotate)) \(n(x)) \(n(y)))\"" }
        body += ">" + HTMLText.escape(content)
        if let tooltip { body += "<title>\(HTMLText.escape(tooltip))</title>" }
        body += "</text>\n"
    }

    /// A coordinate: one decimal, enough for a tenth of a pixel.
    private func n(_ value: Double) -> String { NumberText.fixed(value, 1) }

    /// Estimated width in pixels of `text` at `size` (Liberation Sans averages about 0.55 em per
    /// character; 0.6 leaves room), for placing labels without measuring them.
    static func textWidth(_ text: String, size: Double = 11) -> Double { Double(text.count) * size * 0.6 }
}
