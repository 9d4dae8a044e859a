// Long series reduced to what a plot of a given width can show, without losing what matters:
// a one-sample force spike must still reach its height on a 100 000-sample trace.

enum Decimation {
    /// The finite samples of `series` in time order (a recording's series should already be
    /// sorted; one that is not is sorted here rather than drawn as a scribble).
    static func finiteSorted(_ series: [TimedValue]) -> [TimedValue] {
        var finite = series.filter { $0.t.isFinite && $0.value.isFinite }
        if !isSorted(finite) { finite.sort { $0.t < $1.t } }
        return finite
    }

    static func finiteSorted(_ path: [TimedPoint]) -> [TimedPoint] {
        var finite = path.filter { $0.t.isFinite && $0.x.isFinite && $0.y.isFinite && $0.z.isFinite }
        var sorted = true
        for index in finite.indices.dropFirst() where finite[index].t < finite[index - 1].t {
            sorted = false
            break
        }
        if !sorted { finite.sort { $0.t < $1.t } }
        return finite
    }

    /// Per pixel column of the time axis, the column's first, lowest, highest and last sample in
    /// time order (the "M4" reduction): a polyline through them covers exactly the pixels the full
    /// series would, so spikes and dips keep their height. `series` must be finite and sorted;
    /// `t` outside `timeRange` falls into the first or last column. Series of at most 4 samples
    /// per column come back unchanged.
    static func minMaxPerColumn(_ series: [TimedValue], columns: Int, timeRange: ClosedRange<Double>) -> [TimedValue] {
        let columns = max(1, columns)
        guard series.count > 4 * columns else { return series }
        let span = timeRange.upperBound - timeRange.lowerBound
        func column(_ t: Double) -> Int {
            guard span > 0 else { return 0 }
            return min(columns - 1, max(0, Int((t - timeRange.lowerBound) / span * Double(columns))))
        }

        var result: [TimedValue] = []
        result.reserveCapacity(4 * columns)
        var start = 0
        while start < series.count {
            let current = column(series[start].t)
            var end = start + 1
            var low = start, high = start
            while end < series.count, column(series[end].t) == current {
                if series[end].value < series[low].value { low = end }
                if series[end].value > series[high].value { high = end }
                end += 1
            }
            // First, then the extremes in the order they happened, then last; each once.
            var kept = [start, min(low, high), max(low, high), end - 1]
            kept = kept.enumerated().filter { $0.offset == 0 || $0.element != kept[$0.offset - 1] }.map(\.element)
            for index in kept { result.append(series[index]) }
            start = end
        }
        return result
    }

    /// Thins a 2-D polyline (already in pixels) to the points at least `minimumDistance` pixels
    /// from the last one kept (the first and last are always kept), then, if still more than
    /// `maximumCount`, to every n-th: a path that wanders within one pixel draws the same.
    static func thinned(_ points: [(x: Double, y: Double, t: Double)], minimumDistance: Double = 0.75,
                        maximumCount: Int = 8000) -> [(x: Double, y: Double, t: Double)] {
        guard points.count > 2 else { return points }
        var kept: [(x: Double, y: Double, t: Double)] = [points[0]]
        let squared = minimumDistance * minimumDistance
        for point in points.dropFirst().dropLast() {
            let last = kept[kept.count - 1]
            let dx = point.x - last.x, dy = point.y - last.y
            if dx * dx + dy * dy >= squared { kept.append(point) }
        }
        kept.append(points[points.count - 1])
        guard kept.count > maximumCount, maximumCount >= 2 else { return kept }
        let stride = Double(kept.count - 1) / Double(maximumCount - 1)
        return (0..<maximumCount).map { kept[Int((Double($0) * stride).rounded())] }
    }

    private static func isSorted(_ series: [TimedValue]) -> Bool {
        for index in series.indices.dropFirst() where series[index].t < series[index - 1].t { return false }
        return true
    }
}
