import Foundation
public import SonoCore
import SonoProtocol

/// What libusb's event thread does with every completed bulk-IN transfer, and what the reader
/// takes out: the receiver's validation (USB-PROBE.md §4.3), the host's frame numbering and clock
/// mapping, and the hand-over ring. Owned by `USBProbeSource`; public so that a benchmark can run
/// exactly this path (`swift package benchmark --target USBProbeFramePath`). After `start`,
/// nothing here allocates.
public final class ProbeFrameIntake: @unchecked Sendable {
    // @unchecked: receiver and stream state are guarded by `lock`; the mailbox guards itself.
    let mailbox: FrameMailbox
    private let lock = NSLock()
    private var receiver: ProbeFrameReceiver?
    private var streamBase: UInt64 = 0          // host number of device frame 0 in this stream
    private var nextHostNumber: UInt64 = 0
    private var clockOffset: Int64?             // host µs − device µs
    private var counted = ProbeReceiverCounters()  // of the receivers before the current one

    /// Frames of `width`×`height`, `bufferedFrames` of them held for a slow reader.
    public init(width: Int, height: Int, bufferedFrames: Int) {
        mailbox = FrameMailbox(width: width, height: height, capacity: bufferedFrames)
    }

    /// A probe with frames up to `maxFrameBytes` starts streaming: a new device stream begins
    /// (numbers from 0, at a frame boundary). Allocates a receiver only for a new frame size.
    public func start(maxFrameBytes: Int) {
        lock.withLock {
            if let receiver, receiver.maxFrameBytes == maxFrameBytes {
                receiver.startStream()
            } else {
                counted = Self.total(counted, receiver?.counters)
                receiver = ProbeFrameReceiver(maxFrameBytes: maxFrameBytes)
            }
            streamBase = nextHostNumber
        }
    }

    /// The same probe restarts its stream (START_STREAMING again, after a halt or a silence).
    func restartStream() {
        lock.withLock {
            receiver?.startStream()
            streamBase = nextHostNumber
        }
    }

    /// One transfer completed with `bytes` of `requested`, seen at `arrivalMicros`
    /// (CLOCK_MONOTONIC). True when it completed a valid frame, now queued for the reader.
    @discardableResult
    public func completed(_ bytes: UnsafeRawBufferPointer, requested: Int, arrivalMicros: UInt64) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard let receiver, case .frame(let header, let frame) = receiver.receive(bytes, requested: requested) else {
            return false
        }
        var hostNumber = streamBase &+ header.frameNumber
        if hostNumber < nextHostNumber {  // the device restarted its numbering mid-stream
            streamBase = nextHostNumber &- header.frameNumber
            hostNumber = nextHostNumber
            clockOffset = nil
        }
        nextHostNumber = hostNumber &+ 1
        // The smallest arrival − acquisition difference is the best estimate of the clock offset
        // (the least-delayed frame). It may creep up by 2 µs per frame (120 ppm at 60 frames/s)
        // so that a device clock slower than the host's is followed too.
        let measured = Int64(bitPattern: arrivalMicros) &- Int64(bitPattern: header.timestampMicros)
        let offset = min(clockOffset.map { $0 + 2 } ?? measured, measured)
        clockOffset = offset
        let acquired = UInt64(max(0, Int64(bitPattern: header.timestampMicros) &+ offset))
        mailbox.publish(pixels: UnsafeRawBufferPointer(rebasing: frame[header.headerLength..<header.frameLength]),
                        info: ProbeFrameInfo(frameNumber: hostNumber, timestampMicros: acquired), arrivalMicros: arrivalMicros)
        return true
    }

    /// A transfer that did not complete: the frame it carried is lost.
    func failed() {
        lock.withLock { receiver?.transferFailed() }
    }

    /// The oldest unread frame, waiting up to `timeoutMicros`; throws while the link is down.
    public func take(into pixels: UnsafeMutableBufferPointer<UInt8>,
                     timeoutMicros: UInt64) throws(FrameSourceError) -> ProbeFrameInfo? {
        try mailbox.take(into: pixels, timeoutMicros: timeoutMicros)
    }

    /// Marks the link streaming (benchmarks and tests; `USBProbeSource` does it when it connects).
    public func markStreaming() { mailbox.setLink(.streaming) }

    /// Every receiver's counters since the intake was made.
    public var counters: ProbeReceiverCounters {
        lock.withLock { Self.total(counted, receiver?.counters) }
    }

    private static func total(_ a: ProbeReceiverCounters, _ b: ProbeReceiverCounters?) -> ProbeReceiverCounters {
        guard let b else { return a }
        var sum = a
        sum.transfers += b.transfers
        sum.bytes += b.bytes
        sum.framesDelivered += b.framesDelivered
        sum.droppedFrames += b.droppedFrames
        sum.deviceFramesDropped = b.deviceFramesDropped
        sum.resyncDiscards += b.resyncDiscards
        sum.truncated += b.truncated
        sum.badMagic += b.badMagic
        sum.unsupportedVersion += b.unsupportedVersion
        sum.badHeader += b.badHeader
        sum.oversized += b.oversized
        sum.crcMismatch += b.crcMismatch
        sum.transferErrors += b.transferErrors
        sum.sequenceResets += b.sequenceResets
        return sum
    }
}
