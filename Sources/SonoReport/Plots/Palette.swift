// The report's colours: the Okabe–Ito set (distinguishable with the common colour-vision
// deficiencies), each view always in the same colour, and a perceptual ramp for time.

enum Palette {
    static let text = "#222222"
    static let muted = "#666666"
    static let axis = "#444444"
    static let grid = "#e3e3e3"
    static let force = "#0072b2"
    static let target = "#009e73"
    static let softLimit = "#e69f00"
    static let hardCap = "#c0001a"
    static let stop = "#d55e00"
    static let fault = "#c0001a"
    static let estop = "#7a0010"
    static let acquired = "#009e73"
    static let failed = "#888888"
    static let operatorCommand = "#0072b2"
    static let threshold = "#777777"

    /// The known view labels in the order the report lists them.
    static let viewOrder = ["PLAX", "PSAX", "A4C", "A2C", "SC4C", "OTHER"]

    private static let views: [String: String] = [
        "PLAX": "#0072b2", "PSAX": "#e69f00", "A4C": "#009e73", "A2C": "#cc79a7", "SC4C": "#56b4e9", "OTHER": "#999999",
    ]
    private static let extra = ["#d55e00", "#332288", "#117733", "#882255", "#44aa99", "#aa4499", "#999933", "#6699cc"]

    /// A view's colour: fixed for the known labels, else from an extra set by the label's position
    /// in the report (`index` among the unknown labels).
    static func view(_ name: String, unknownIndex index: Int) -> String {
        views[name.uppercased()] ?? extra[index % extra.count]
    }

    /// A state's band colour in the timeline: a light tint chosen by the state's name (the same
    /// name is always the same tint), with stopped / fault states in warm tints.
    static func state(_ name: String) -> String {
        let lower = name.lowercased()
        if lower.contains("estop") || lower.contains("e-stop") || lower.contains("emergency") { return "#f4a5a5" }
        if lower.contains("fault") || lower.contains("error") { return "#f8c4c4" }
        if lower.contains("stop") || lower.contains("paused") || lower.contains("hold") { return "#fde0b8" }
        let tints = ["#cfe3f3", "#d5efe4", "#e7dcef", "#f3f0c8", "#d9e8c9", "#e2e2e2", "#d3e9ef", "#efd9e4"]
        var hash: UInt32 = 2166136261
        for byte in lower.utf8 { hash = (hash ^ UInt32(byte)) &* 16777619 }
        return tints[Int(hash % UInt32(tints.count))]
    }

    /// Viridis at `fraction` 0…1 (dark blue → green → yellow), for colouring the probe path by time.
    static func viridis(_ fraction: Double) -> String {
        let stops: [(Double, Double, Double)] = [
            (68, 1, 84), (72, 40, 120), (62, 74, 137), (49, 104, 142), (38, 130, 142),
            (31, 158, 137), (53, 183, 121), (109, 205, 89), (180, 222, 44), (253, 231, 37),
        ]
        let f = max(0, min(1, fraction.isFinite ? fraction : 0)) * Double(stops.count - 1)
        let i = min(stops.count - 2, Int(f))
        let u = f - Double(i)
        let (a, b) = (stops[i], stops[i + 1])
        return hex(a.0 + (b.0 - a.0) * u, a.1 + (b.1 - a.1) * u, a.2 + (b.2 - a.2) * u)
    }

    private static func hex(_ r: Double, _ g: Double, _ b: Double) -> String {
        let digits = Array("0123456789abcdef")
        func byte(_ v: Double) -> String {
            let value = Int(max(0, min(255, v.rounded())))
            return String([digits[value >> 4], digits[value & 15]])
        }
        return "#" + byte(r) + byte(g) + byte(b)
    }
}
