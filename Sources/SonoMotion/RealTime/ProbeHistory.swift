public import SonoGeometry
import SonoSystem

/// Where the probe was, and how hard it pressed, at one control cycle.
public struct ProbeSample: Sendable, Equatable {
    /// The cycle's monotonic time, µs.
    public var micros: UInt64
    public var probe: Pose
    /// Axial contact force, N.
    public var forceN: Double

    public init(micros: UInt64, probe: Pose, forceN: Double) {
        self.micros = micros
        self.probe = probe
        self.forceN = forceN
    }
}

/// The probe's recent poses, for tagging an image with where the probe was when the image was
/// acquired rather than when it was classified (issue 16, finding 2: at 30 fps and a
/// classifier's latency the two differ by tens of ms, millimetres at scanning speed).
///
/// The control loop records every cycle through a wait-free queue (no lock, no allocation);
/// one consumer thread (the frame pipeline) drains it into its own ring of the last
/// `capacity` cycles and looks samples up by time.
public final class ProbeHistory: @unchecked Sendable {
    // @unchecked: `ring`, `count` and `next` are touched only by the one consumer thread
    // (checked by `consumer` in debug builds); the queue is the SPSC hand-over.
    private let incoming: SPSCQueue<ProbeSample>
    private var ring: [ProbeSample]
    private var count = 0
    private var next = 0
    private let consumer = ThreadOwner("the frame pipeline")
    /// The farthest a sample may be from the time asked for, µs: a few cycles of the 1 kHz loop.
    public static let toleranceMicros: UInt64 = 5_000

    /// `capacity`: cycles kept (the default, 512 at 1 kHz, covers a frame's age limit).
    public init(capacity: Int = 512) {
        incoming = SPSCQueue(capacity: capacity)
        ring = Array(repeating: ProbeSample(micros: 0, probe: .identity, forceN: 0), count: capacity)
    }

    /// Records one cycle. The control loop only; wait-free, no allocation. A full queue (the
    /// consumer stopped draining) drops the sample, counted.
    @inline(__always)
    func record(_ sample: ProbeSample) { incoming.push(sample) }

    /// Cycles dropped because the consumer did not drain.
    public var dropped: UInt64 { incoming.overflowCount }

    /// The recorded cycle nearest to `micros`, within `toleranceMicros`; nil when there is none
    /// (the loop is not running, or the time is older than the kept history). One consumer thread.
    public func sample(at micros: UInt64) -> ProbeSample? {
        assert(consumer.isOwnedByCurrentThread(), "ProbeHistory.sample: only \(consumer.role)'s thread may read it")
        while let sample = incoming.pop() {
            ring[next] = sample
            next = (next + 1) % ring.count
            count = min(count + 1, ring.count)
        }
        var best: ProbeSample?
        var bestDistance = UInt64.max
        // Newest first: the pipeline asks about recent frames.
        for offset in 0..<count {
            let sample = ring[(next - 1 - offset + ring.count) % ring.count]
            let distance = sample.micros > micros ? sample.micros - micros : micros - sample.micros
            if distance < bestDistance {
                best = sample
                bestDistance = distance
            } else if sample.micros < micros {
                break  // older samples only get farther away
            }
        }
        return bestDistance <= Self.toleranceMicros ? best : nil
    }

    /// Frees the consumer role when its thread ends (a new pipeline thread may take it).
    public func releaseConsumer() { consumer.release() }
}
