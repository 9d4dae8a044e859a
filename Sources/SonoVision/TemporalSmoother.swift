/// Views are stable over a cardiac cycle, single frames are not: the smoother averages the
/// probability vectors of the last `window` frames (one cardiac cycle by default) and reports
/// the smoothed view, its mean probability and for how many frames it has been the same. The
/// planner holds a view when the smoothed confidence stays high for a whole cycle.
/// Preallocated ring buffer: `add` allocates nothing.
public struct TemporalSmoother: Sendable {
    public let labels: [String]
    public let window: Int
    private var history: [Float]
    private var sums: [Float]
    private var next = 0
    public private(set) var filled = 0
    public private(set) var current: ViewPrediction?
    /// Consecutive frames for which the smoothed label has not changed.
    public private(set) var stableFrames = 0

    public init(labels: [String], window: Int = 30) {
        precondition(window > 0 && !labels.isEmpty, "a smoother needs a window and labels")
        self.labels = labels
        self.window = window
        history = [Float](repeating: 0, count: window * labels.count)
        sums = [Float](repeating: 0, count: labels.count)
    }

    /// Adds one frame's probabilities (label order) and returns the smoothed prediction.
    @discardableResult
    public mutating func add(_ probabilities: UnsafeBufferPointer<Float>) -> ViewPrediction {
        let count = labels.count
        let base = next * count
        for index in 0..<count {
            let value = index < probabilities.count && probabilities[index].isFinite ? probabilities[index] : 0
            if filled == window { sums[index] -= history[base + index] }
            history[base + index] = value
            sums[index] += value
        }
        next = (next + 1) % window
        filled = min(filled + 1, window)
        if next == 0 {
            // Once per window, re-add from the history so float rounding cannot accumulate.
            for index in 0..<count {
                var sum: Float = 0
                for frame in 0..<filled { sum += history[frame * count + index] }
                sums[index] = sum
            }
        }
        var best = 0
        for index in 1..<count where sums[index] > sums[best] { best = index }
        let prediction = ViewPrediction(labelIndex: best, label: labels[best], confidence: max(0, sums[best]) / Float(filled))
        stableFrames = current?.labelIndex == best ? stableFrames + 1 : 1
        current = prediction
        return prediction
    }

    public mutating func reset() {
        for index in history.indices { history[index] = 0 }
        for index in sums.indices { sums[index] = 0 }
        next = 0
        filled = 0
        current = nil
        stableFrames = 0
    }

    /// The smoothed probability of each label.
    public func probability(of labelIndex: Int) -> Float {
        guard filled > 0, labelIndex >= 0, labelIndex < labels.count else { return 0 }
        return max(0, sums[labelIndex]) / Float(filled)
    }
}
