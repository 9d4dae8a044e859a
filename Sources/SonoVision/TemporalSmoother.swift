/// Views are stable over a cardiac cycle, single frames are not: the smoother averages the
/// probability vectors of the last `window` frames (one cardiac cycle by default) and reports
/// the smoothed view, its mean probability and for how many frames it has been the same. It
/// averages the model's predicted quality per label over the same frames (when the model has a
/// quality output): the planner acquires a view when its smoothed quality stays diagnostic for
/// a whole cycle. Preallocated ring buffers: `add` allocates nothing.
public struct TemporalSmoother: Sendable {
    public let labels: [String]
    public let window: Int
    private var history: [Float]
    private var sums: [Float]
    private var qualityHistory: [Float]
    private var qualitySums: [Float]
    /// Whether the frames added so far carried a quality vector.
    public private(set) var hasQuality = false
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
        qualityHistory = history
        qualitySums = sums
    }

    /// Adds one frame's probabilities and, if the model predicts it, its quality per label (both
    /// in label order; a missing or non-finite value counts as 0) and returns the smoothed prediction.
    @discardableResult
    public mutating func add(_ probabilities: UnsafeBufferPointer<Float>,
                             quality: UnsafeBufferPointer<Float>? = nil) -> ViewPrediction {
        let count = labels.count
        let base = next * count
        if quality != nil { hasQuality = true }
        for index in 0..<count {
            let value = index < probabilities.count && probabilities[index].isFinite ? probabilities[index] : 0
            if filled == window {
                sums[index] -= history[base + index]
                qualitySums[index] -= qualityHistory[base + index]
            }
            history[base + index] = value
            sums[index] += value
            var q: Float = 0
            if let quality, index < quality.count, quality[index].isFinite { q = min(1, max(0, quality[index])) }
            qualityHistory[base + index] = q
            qualitySums[index] += q
        }
        next = (next + 1) % window
        filled = min(filled + 1, window)
        if next == 0 {
            // Once per window, re-add from the history so float rounding cannot accumulate.
            for index in 0..<count {
                var sum: Float = 0
                var qualitySum: Float = 0
                for frame in 0..<filled {
                    sum += history[frame * count + index]
                    qualitySum += qualityHistory[frame * count + index]
                }
                sums[index] = sum
                qualitySums[index] = qualitySum
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
        for index in history.indices { history[index] = 0; qualityHistory[index] = 0 }
        for index in sums.indices { sums[index] = 0; qualitySums[index] = 0 }
        hasQuality = false
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

    /// The smoothed predicted quality of each label (0 when the model has no quality output).
    public func quality(of labelIndex: Int) -> Float {
        guard filled > 0, labelIndex >= 0, labelIndex < labels.count else { return 0 }
        return min(1, max(0, qualitySums[labelIndex] / Float(filled)))
    }
}
