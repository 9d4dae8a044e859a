import Foundation
public import SonoCore
import SonoSim
import SonoSystem
import Synchronization

/// A failure of the probe's image path to inject once the probe is on the patient
/// (`sonod-sim --inject-probe-fault`, the daemon-level rows of `make test-faults`).
public enum ProbeFault: String, Sendable, CaseIterable {
    /// The probe is pulled out: every read from then on fails as a gone USB probe's does.
    case unplug
    /// The image path falls behind: frames keep coming, each 400 ms old when it arrives (a
    /// stalled probe or pipeline catching up), older than any frame age limit.
    case stall
}

/// What the injection saw, for the row that reports it.
public struct ProbeFaultReport: Sendable {
    public var injectedMicros: UInt64?
    /// When the probe was first off the skin again after the injection (simulator's truth).
    public var offSkinMicros: UInt64?
}

/// The report, shared by the probe (which injects), the watcher and the host (which reads it).
final class ProbeFaultState: Sendable {
    let report = Mutex(ProbeFaultReport())
}

/// Watches the simulator's truth after the injection, every 10 ms, for the moment the probe is
/// off the skin (below 0.5 N). Simulation only; runs for the life of the process.
func watchForRelease(_ shared: ProbeFaultState, contactForceN: @escaping @Sendable () -> Double) {
    let thread = Thread {
        ThreadScheduling.nameCurrentThread("sono-sim-fault-watch")
        while true {
            usleep(10_000)
            let force = contactForceN()
            let done = shared.report.withLock { report -> Bool in
                guard report.injectedMicros != nil else { return false }
                if report.offSkinMicros == nil, force < 0.5 { report.offSkinMicros = MonotonicClock.nowMicros() }
                return report.offSkinMicros != nil
            }
            if done { return }
        }
    }
    thread.start()
}

/// The simulated probe with a fault that strikes once the probe has pressed on the skin (truth
/// above 2 N) for `afterContactSeconds`. Before that it is the simulated probe unchanged.
final class FaultInjectingProbe: ProbeFrameSource {
    let format: ProbeFrameFormat
    private let base: any ProbeFrameSource
    private let fault: ProbeFault
    private let afterContactMicros: UInt64
    private let contactForceN: @Sendable () -> Double
    private let shared: ProbeFaultState
    private var contactSince: UInt64?
    static let stallMicros: UInt64 = 400_000

    init(base: any ProbeFrameSource, fault: ProbeFault, afterContactSeconds: Double,
         contactForceN: @escaping @Sendable () -> Double, shared: ProbeFaultState) {
        self.base = base
        format = base.format
        self.fault = fault
        afterContactMicros = UInt64(max(0, afterContactSeconds) * 1e6)
        self.contactForceN = contactForceN
        self.shared = shared
    }

    func nextFrame(into pixels: UnsafeMutableBufferPointer<UInt8>,
                   timeoutMicros: UInt64) throws(FrameSourceError) -> ProbeFrameInfo? {
        let now = MonotonicClock.nowMicros()
        let injected = shared.report.withLock { report -> Bool in
            if let at = report.injectedMicros { return at <= now }
            if contactForceN() > 2 {
                let since = contactSince ?? now
                contactSince = since
                if now - since >= afterContactMicros { report.injectedMicros = now }
            } else {
                contactSince = nil
            }
            return report.injectedMicros != nil
        }
        guard injected else { return try base.nextFrame(into: pixels, timeoutMicros: timeoutMicros) }
        switch fault {
        case .unplug:
            usleep(useconds_t(min(timeoutMicros, 100_000)))
            throw .disconnected("the simulated probe was unplugged (fault injection)")
        case .stall:
            usleep(useconds_t(Self.stallMicros))
            guard let info = try base.nextFrame(into: pixels, timeoutMicros: timeoutMicros) else { return nil }
            let acquired = info.timestampMicros > Self.stallMicros ? info.timestampMicros - Self.stallMicros : 0
            return ProbeFrameInfo(frameNumber: info.frameNumber, timestampMicros: acquired)
        }
    }
}
