import Foundation
public import SonoCore
public import SonoGeometry
import SonoMotion
public import SonoPlanner
import SonoSystem
public import SonoVision
import Synchronization

/// Frames in order, from the pipeline thread to one consumer (the planner), with a wait.
/// Bounded: when the consumer lags, the oldest frames go (it wants the newest).
final class FrameQueue: @unchecked Sendable {
    // @unchecked: `frames` is touched only with `condition` locked.
    private let condition = MonotonicCondition()
    private var frames: [ViewObservation] = []
    private let capacity = 64
    /// When the newest frame handed to the planner was acquired (monotonic, µs; 0: none yet):
    /// the planner's contact lease is renewed only while fresh frames keep coming.
    private let lastAcquired = Atomic<UInt64>(0)

    var lastAcquiredMicros: UInt64 { lastAcquired.load(ordering: .relaxed) }

    /// `acquiredMicros`: when the probe took the image (monotonic).
    func push(_ observation: ViewObservation, acquiredMicros: UInt64) {
        lastAcquired.store(acquiredMicros, ordering: .relaxed)
        condition.withLock {
            if frames.count == capacity { frames.removeFirst() }
            frames.append(observation)
        }
        condition.signal()
    }

    /// The next frame, waiting up to `seconds` (monotonic).
    func next(within seconds: Double) -> ViewObservation? {
        let deadline = MonotonicClock.nowNanos() &+ UInt64(max(0, seconds) * 1e9)
        return condition.withLock {
            _ = condition.wait(untilNanos: deadline) { frames.isEmpty }
            return frames.isEmpty ? nil : frames.removeFirst()
        }
    }

    func clear() {
        condition.withLock { frames.removeAll() }
    }
}

/// The probe's frames through the view classifier: every frame is classified and smoothed
/// over a cardiac cycle; the result, tagged with the probe pose and force at the moment the
/// image was acquired (the controller's `ProbeHistory`), goes to the planner's queue and to the
/// status. A frame older than the age limit when it is classified (the pipeline or the probe
/// fell behind) is recorded but not handed to the planner: the planner must not steer by, nor
/// hold contact on, what the probe saw a while ago. Runs on its own thread, off the control loop.
final class FramePipeline: @unchecked Sendable {
    // @unchecked: its stored properties are immutable or thread-safe (`latest` a Mutex, `running` an atomic, `queue` locked); `source` is read only by the pipeline thread.
    struct Latest: Sendable {
        var observation: ViewObservation?
        var frameNumber: UInt64 = 0
        var frames: UInt64 = 0
        var dropped: UInt64 = 0
        /// Frames older than the age limit once classified (not handed to the planner).
        var stale: UInt64 = 0
        /// Frames tagged with the pose at classification because the history had none for
        /// their acquisition (the control loop not running).
        var untagged: UInt64 = 0
        /// The latest frame's age when classified (acquisition to hand-over), µs.
        var ageMicros: UInt64 = 0
        var failure: String?
        var pixels: [UInt8] = []
        /// When the probe acquired `pixels` (monotonic, µs): the console's image latency.
        var acquiredMicros: UInt64 = 0
        var width = 0
        var height = 0
    }

    let source: any ProbeFrameSource
    let classifier: ViewClassifier
    let queue = FrameQueue()
    /// The pipeline thread's nice value.
    static let nice: Int32 = 5
    private let measured: @Sendable () -> (probe: Pose, forceN: Double)
    /// The controller's pose history, read by the pipeline thread alone.
    private let history: ProbeHistory?
    /// Frames older than this when classified are not handed to the planner, µs.
    let frameAgeLimitMicros: UInt64
    /// Receives every classified frame (the session recording).
    private let recorder: (any FrameRecorder)?
    /// Told when the smoothed view changes (the `view` event).
    private let onViewChange: @Sendable (ViewObservation) -> Void
    private let latest = Mutex(Latest())
    private let running = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    /// `history`: where the probe was at each control cycle (the frame's pose is looked up at its
    /// acquisition time); `measured`: the pose now, for frames the history does not cover.
    init(source: any ProbeFrameSource, classifier: ViewClassifier, recorder: (any FrameRecorder)?,
         history: ProbeHistory?, frameAgeLimitMicros: UInt64,
         measured: @escaping @Sendable () -> (probe: Pose, forceN: Double),
         onViewChange: @escaping @Sendable (ViewObservation) -> Void) {
        self.history = history
        self.frameAgeLimitMicros = frameAgeLimitMicros
        self.source = source
        self.classifier = classifier
        self.recorder = recorder
        self.measured = measured
        self.onViewChange = onViewChange
    }

    var snapshot: Latest { latest.withLock { $0 } }

    func start() {
        guard !running.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let thread = Thread { [self] in
            ThreadScheduling.nameCurrentThread("sono-frames")
            // The classifier (and in simulation the probe's renderer) is the daemon's heaviest
            // CPU user. Niced, it yields to what the real-time path waits on at normal priority:
            // the kernel's delivery of serial bytes (tty flip work in kworkers) and the event
            // pump that answers commands. oneDNN's helper threads are created from this one
            // and inherit it.
            ThreadScheduling.setNice(Self.nice)
            run()
            history?.releaseConsumer()
            finished.signal()
        }
        thread.qualityOfService = .userInitiated
        thread.start()
    }

    func stop() {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        finished.wait()
    }

    private func run() {
        let format = source.format
        var pixels = [UInt8](repeating: 0, count: format.pixelCount)
        var frameClassifier = FrameClassifier(classifier: classifier, framesPerSecond: format.framesPerSecond)
        var lastNumber: UInt64?
        var lastLabel: String?
        while running.load(ordering: .acquiring) {
            let info: ProbeFrameInfo?
            do {
                info = try pixels.withUnsafeMutableBufferPointer { buffer throws(FrameSourceError) in
                    try source.nextFrame(into: buffer, timeoutMicros: 200_000)
                }
            } catch {
                latest.withLock { $0.failure = "\(error)" }
                Thread.sleep(forTimeInterval: 0.1)
                continue
            }
            guard let info else { continue }
            let acquired = history?.sample(at: info.timestampMicros)
            let pose = acquired.map { (probe: $0.probe, forceN: $0.forceN) } ?? measured()
            let observation: ViewObservation
            do {
                observation = try pixels.withUnsafeBufferPointer { buffer throws(ModelError) in
                    try frameClassifier.observe(buffer, width: format.width, height: format.height, info: info,
                                                probe: pose.probe, forceN: pose.forceN)
                }
            } catch {
                latest.withLock { $0.failure = "classifier: \(error)" }
                continue
            }
            recorder?.frame(pixels, width: format.width, height: format.height, info: info, observation: observation)
            let gap = lastNumber.map { info.frameNumber > $0 + 1 ? info.frameNumber - $0 - 1 : 0 } ?? 0
            lastNumber = info.frameNumber
            let now = MonotonicClock.nowMicros()
            let age = now > info.timestampMicros ? now - info.timestampMicros : 0
            let fresh = age <= frameAgeLimitMicros
            latest.withLock {
                $0.observation = observation
                $0.frameNumber = info.frameNumber
                $0.frames += 1
                $0.dropped += gap
                $0.ageMicros = age
                if !fresh { $0.stale += 1 }
                if acquired == nil { $0.untagged += 1 }
                $0.failure = nil
                $0.pixels = pixels
                $0.acquiredMicros = info.timestampMicros
                $0.width = format.width
                $0.height = format.height
            }
            if fresh { queue.push(observation, acquiredMicros: info.timestampMicros) }
            if observation.smoothedLabel != lastLabel {
                lastLabel = observation.smoothedLabel
                onViewChange(observation)
            }
        }
    }
}

/// Where the pipeline hands every frame and its classification (a session recording).
protocol FrameRecorder: Sendable {
    func frame(_ pixels: [UInt8], width: Int, height: Int, info: ProbeFrameInfo, observation: ViewObservation)
}

/// The view classifier and its temporal smoother over a stream of frames: what the pipeline
/// runs live, a replay runs on recorded frames and the stepped simulation (`sonoctl sim eval`,
/// SonoEvaluation) runs on the frames it renders, so that all three decide alike.
public struct FrameClassifier {
    public let classifier: ViewClassifier
    private var smoother: TemporalSmoother

    public init(classifier: ViewClassifier, framesPerSecond: Double) {
        self.classifier = classifier
        smoother = TemporalSmoother(labels: classifier.labels, window: max(1, Int(framesPerSecond.rounded())))
    }

    public mutating func observe(_ pixels: UnsafeBufferPointer<UInt8>, width: Int, height: Int, info: ProbeFrameInfo,
                                 probe: Pose, forceN: Double) throws(ModelError) -> ViewObservation {
        _ = try classifier.classify(pixels, width: width, height: height)
        let prediction = smoother.add(classifier.probabilities, quality: classifier.hasQuality ? classifier.quality : nil)
        var observation = ViewObservation(
            seconds: Double(info.timestampMicros) / 1e6, probabilities: Array(classifier.probabilities),
            smoothedLabel: prediction.label, smoothedConfidence: prediction.confidence,
            stableFrames: smoother.stableFrames, probe: probe, forceN: forceN, frame: info.frameNumber)
        if classifier.hasQuality {
            observation.quality = Array(classifier.quality)
            observation.smoothedQuality = (0..<classifier.labels.count).map { smoother.quality(of: $0) }
        }
        return observation
    }
}
