// Linear mapping from data to pixels, and the "nice" tick values a person reads an axis by.

/// Maps `domain` linearly onto `range` (pixels; range may run backwards, as a y axis does).
struct LinearScale {
    var domain: ClosedRange<Double>
    var range: (Double, Double)

    init(domain: ClosedRange<Double>, range: (Double, Double)) {
        // A single value gets a unit-wide domain around it, so the mapping stays finite.
        self.domain = domain.lowerBound < domain.upperBound
            ? domain : (domain.lowerBound - 0.5)...(domain.lowerBound + 0.5)
        self.range = range
    }

    func callAsFunction(_ value: Double) -> Double {
        let span = domain.upperBound - domain.lowerBound
        return range.0 + (value - domain.lowerBound) / span * (range.1 - range.0)
    }
}

/// Axis ticks: round numbers spaced so that about `target` of them cover the domain.
enum Ticks {
    /// Multiples of 1, 2 or 5 × 10ⁿ from the first at or above `lower` to the last at or below
    /// `upper`, and the step's decimals (for labels).
    static func nice(_ lower: Double, _ upper: Double, target: Int = 6) -> (values: [Double], decimals: Int) {
        let step = niceStep(span: upper - lower, target: target)
        var decimals = 0
        var check = step
        while check.rounded() != check, decimals < 9 { check *= 10; decimals += 1 }
        return (values(lower, upper, step: step), decimals)
    }

    /// Time ticks (seconds): 1, 2, 5, 10, 15, 30 s, then 1, 2, 5, 10, 15, 30 min, 1 h…; with
    /// whether the labels are better read as m:ss (spans over two minutes).
    static func time(_ lower: Double, _ upper: Double, target: Int = 8) -> (values: [Double], clock: Bool) {
        let span = upper - lower
        guard span >= 10 else { return (nice(lower, upper, target: target).values, false) }
        let steps: [Double] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400]
        let step = steps.first { span / $0 <= Double(target) } ?? niceStep(span: span, target: target)
        return (values(lower, upper, step: step), span > 120)
    }

    /// Extends `lower`…`upper` outwards to whole multiples of its nice step, so the axis ends on
    /// a tick; returns a unit span around a single value.
    static func niceDomain(_ lower: Double, _ upper: Double, target: Int = 6) -> ClosedRange<Double> {
        guard lower < upper else { return (lower - 1)...(lower + 1) }
        let step = niceStep(span: upper - lower, target: target)
        return ((lower / step).rounded(.down) * step)...((upper / step).rounded(.up) * step)
    }

    private static func niceStep(span: Double, target: Int) -> Double {
        guard span > 0, span.isFinite else { return 1 }
        let raw = span / Double(max(1, target))
        var magnitude = 1.0
        while magnitude * 10 <= raw { magnitude *= 10 }
        while magnitude > raw { magnitude /= 10 }
        // The candidate nearest the raw step by ratio, so the count lands near `target`.
        return [1.0, 2, 5, 10].map { magnitude * $0 }.min { max($0 / raw, raw / $0) < max($1 / raw, raw / $1) } ?? magnitude
    }

    private static func values(_ lower: Double, _ upper: Double, step: Double) -> [Double] {
        guard step > 0, lower <= upper, (upper - lower) / step < 1000 else { return [] }
        var result: [Double] = []
        var index = (lower / step).rounded(.up)
        // Tolerance for values like 0.30000000000000004 that are meant to sit on the bound.
        let epsilon = step * 1e-9
        while index * step <= upper + epsilon {
            let value = index * step
            result.append(abs(value) < epsilon ? 0 : value)
            index += 1
        }
        return result
    }
}
