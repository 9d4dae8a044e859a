public import SonoCore
import SonoGeometry

/// The virtual patient's ultrasound probe: frames rendered from the scanner's current probe
/// pose and contact force, delivered through the same interface as the USB probe.
///
/// Frames are due every 1/fps of the scanner's clock. In real time (`clock` = monotonic) the
/// call waits until a frame is due; in a stepped simulation the caller advances the clock and
/// frames come as soon as they are due. A caller that comes later than a frame period gets the
/// newest due frame: the ones in between are skipped (their numbers show the gap), as a real
/// probe's are when nobody reads them.
public final class SimulatedProbe: ProbeFrameSource {
    public let format: ProbeFrameFormat
    private let renderer: UltrasoundRenderer
    private let state: ScannerState
    private let clock: @Sendable () -> UInt64
    private let sleep: @Sendable (UInt64) -> Void
    private var frameNumber: UInt64 = 0
    private var startMicros: UInt64?

    /// - Parameters:
    ///   - clock: the scanner's time in µs.
    ///   - sleep: waits the given µs (real time) or returns at once (stepped simulation).
    public init(patient: VirtualPatient, settings: ImagingSettings, state: ScannerState,
                clock: @escaping @Sendable () -> UInt64, sleep: @escaping @Sendable (UInt64) -> Void) {
        renderer = UltrasoundRenderer(patient: patient, settings: settings)
        format = ProbeFrameFormat(width: settings.width, height: settings.height, depthMM: settings.depthMM,
                                  sectorDeg: settings.sectorDeg, framesPerSecond: settings.framesPerSecond)
        self.state = state
        self.clock = clock
        self.sleep = sleep
    }

    public func nextFrame(into pixels: UnsafeMutableBufferPointer<UInt8>,
                          timeoutMicros: UInt64) throws(FrameSourceError) -> ProbeFrameInfo? {
        guard pixels.count >= format.pixelCount else {
            throw .bufferTooSmall(needed: format.pixelCount, available: pixels.count)
        }
        let now = clock()
        let start = startMicros ?? now
        startMicros = start
        let periodMicros = 1e6 / format.framesPerSecond
        let missed = Double(now - min(now, start)) / periodMicros - Double(frameNumber)
        if missed >= 1 {
            // The probe images at its own rate whether or not the host keeps up: slots the
            // reader came too late for were never delivered (the USB probe's mailbox keeps only
            // the newest frame), so a late reader gets the newest slot, imaged now, never a
            // backlog stamped in the past at today's pose. The skipped numbers count as dropped.
            frameNumber += UInt64(missed)
        }
        let due = start + UInt64((Double(frameNumber) * periodMicros).rounded())
        if due > now {
            guard due - now <= timeoutMicros else {
                sleep(timeoutMicros)
                return nil
            }
            sleep(due - now)
        }
        let scene = state.current
        let force = scene.valid ? scene.contact.normalForceN : 0
        renderer.render(probe: scene.probe, contactForceN: force, seconds: Double(due) / 1e6,
                        frameIndex: frameNumber, into: pixels)
        defer { frameNumber += 1 }
        return ProbeFrameInfo(frameNumber: frameNumber, timestampMicros: due)
    }
}
