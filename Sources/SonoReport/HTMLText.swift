// Text from recordings into HTML and SVG: every string the report did not write itself goes
// through `HTMLText.escape`, so a view name or reason can never add markup to the page.

enum HTMLText {
    /// `text` as HTML character data or a double- or single-quoted attribute value: & < > " '
    /// become references, and characters HTML does not allow in a document (C0/C1 controls other
    /// than tab, line feed and carriage return, DEL, noncharacters) become U+FFFD.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                if isAllowed(scalar) { out.unicodeScalars.append(scalar) } else { out += "\u{FFFD}" }
            }
        }
        return out
    }

    /// At most `limit` characters of `text`, with an ellipsis when cut (before escaping).
    static func truncated(_ text: String, to limit: Int) -> String {
        guard text.count > limit, limit > 1 else { return text }
        return String(text.prefix(limit - 1)) + "…"
    }

    private static func isAllowed(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        if value == 0x09 || value == 0x0A || value == 0x0D { return true }
        if value < 0x20 || (0x7F...0x9F).contains(value) { return false }
        if (0xFDD0...0xFDEF).contains(value) || value & 0xFFFE == 0xFFFE { return false }
        return true
    }
}

/// Numbers as the report prints them: fixed decimals, no locale, no exponent for ordinary values.
enum NumberText {
    /// `value` rounded to `decimals` places ("-0" printed as "0"); "–" when not finite.
    static func fixed(_ value: Double, _ decimals: Int) -> String {
        guard value.isFinite else { return "–" }
        let decimals = max(0, min(decimals, 9))
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (value * scale).rounded()
        // Past 2^53 the digits are not exact anyway; Swift's own shortest form is as good.
        guard abs(scaled) < 9.0e15 else { return "\(value)" }
        let integer = Int(scaled)
        let magnitude = integer.magnitude
        let sign = integer < 0 ? "-" : ""
        guard decimals > 0 else { return sign + String(magnitude) }
        let unit = UInt(scale)
        var fraction = String(magnitude % unit)
        while fraction.count < decimals { fraction = "0" + fraction }
        return sign + String(magnitude / unit) + "." + fraction
    }

    /// Seconds as m:ss (or h:mm:ss), for time axes and durations over two minutes.
    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "–" }
        let total = Int(seconds.rounded())
        let sign = total < 0 ? "-" : ""
        let s = abs(total)
        let pad: (Int) -> String = { $0 < 10 ? "0\($0)" : "\($0)" }
        if s >= 3600 { return "\(sign)\(s / 3600):\(pad(s / 60 % 60)):\(pad(s % 60))" }
        return "\(sign)\(s / 60):\(pad(s % 60))"
    }
}
