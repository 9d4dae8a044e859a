import Foundation
import SonoCore

/// The hand-over between libusb's event thread (which validates frames) and the frame source's
/// reader: a ring of preallocated frame slots under one condition variable. The newest frames
/// win: when the reader falls behind by the whole ring, the oldest frame is overwritten and
/// counted as a host overrun (the reader sees it as a gap in the frame numbers). Nothing is
/// allocated after init.
final class FrameMailbox: @unchecked Sendable {
    // @unchecked: every field is guarded by `condition`.
    enum Link: Sendable, Equatable {
        /// Not connected yet, or lost: the reason (the last open error, or why the link went).
        case disconnected(String)
        case streaming
        /// The probe halted its endpoint (USB-PROBE.md §5.2); recovery in progress.
        case faulted(String)
        case closed
    }

    private let condition = NSCondition()
    private let slotBytes: Int
    private let storage: UnsafeMutableBufferPointer<UInt8>
    private var infos: [ProbeFrameInfo]
    private var head = 0  // oldest unread slot
    private var count = 0
    private var link: Link = .disconnected("not opened yet")
    private(set) var hostOverruns: UInt64 = 0
    private(set) var geometryMismatches: UInt64 = 0
    /// CLOCK_MONOTONIC µs of the last frame published; 0 before the first.
    private var lastFrameMicros: UInt64 = 0

    init(width: Int, height: Int, capacity: Int) {
        slotBytes = width * height
        storage = .allocate(capacity: slotBytes * capacity)
        storage.initialize(repeating: 0)
        infos = Array(repeating: ProbeFrameInfo(frameNumber: 0, timestampMicros: 0), count: capacity)
    }

    deinit { storage.deallocate() }

    /// Publishes one frame's pixels (event thread). Pixels of another size are not this stream's
    /// geometry (someone changed the probe's settings): counted, not delivered.
    func publish(pixels: UnsafeRawBufferPointer, info: ProbeFrameInfo, arrivalMicros: UInt64) {
        condition.lock()
        defer { condition.unlock() }
        // A transfer libusb completes after the link went down is from a probe that is gone:
        // a lost or faulted link delivers nothing more.
        guard link == .streaming else { return }
        guard pixels.count == slotBytes else {
            geometryMismatches += 1
            return
        }
        if count == infos.count {  // the reader is a whole ring behind: the oldest frame goes
            head = (head + 1) % infos.count
            count -= 1
            hostOverruns += 1
        }
        let slot = (head + count) % infos.count
        if let base = storage.baseAddress, let source = pixels.baseAddress {
            (UnsafeMutableRawPointer(base) + slot * slotBytes).copyMemory(from: source, byteCount: slotBytes)
        }
        infos[slot] = info
        count += 1
        lastFrameMicros = arrivalMicros
        condition.signal()
    }

    func setLink(_ newLink: Link) {
        condition.lock()
        defer { condition.unlock() }
        if link == .closed { return }
        if newLink != .streaming {  // a lost or faulted link delivers nothing more, not even what is queued
            head = 0
            count = 0
        }
        link = newLink
        condition.broadcast()
    }

    var state: Link {
        condition.lock()
        defer { condition.unlock() }
        return link
    }

    var lastFrameArrival: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return lastFrameMicros
    }

    /// The oldest unread frame, waiting up to `timeoutMicros`; throws while the link is down.
    func take(into pixels: UnsafeMutableBufferPointer<UInt8>, timeoutMicros: UInt64) throws(FrameSourceError) -> ProbeFrameInfo? {
        guard pixels.count >= slotBytes else { throw .bufferTooSmall(needed: slotBytes, available: pixels.count) }
        let deadline = Date(timeIntervalSinceNow: Double(timeoutMicros) / 1e6)
        condition.lock()
        defer { condition.unlock() }
        while count == 0 {
            switch link {
            case .disconnected(let reason): throw .disconnected(reason)
            case .faulted(let reason): throw .failed(reason)
            case .closed: throw .disconnected("the probe's frame source is closed")
            case .streaming: break
            }
            if !condition.wait(until: deadline) { return nil }
        }
        if let target = pixels.baseAddress, let base = storage.baseAddress {
            target.update(from: base + head * slotBytes, count: slotBytes)
        }
        let info = infos[head]
        head = (head + 1) % infos.count
        count -= 1
        return info
    }
}
