/// What the receiver has counted since the probe was opened (USB-PROBE.md §4.3–§4.4). The
/// names are the protocol's counter names.
public struct ProbeReceiverCounters: Sendable, Equatable {
    public var transfers: UInt64 = 0
    public var bytes: UInt64 = 0
    public var framesDelivered: UInt64 = 0
    /// Frames missing from the sequence (frame-number gaps): dropped by the device, lost in transfer
    /// or rejected here.
    public var droppedFrames: UInt64 = 0
    /// The device's own running count of frames it discarded (the last header's `frames_dropped`).
    public var deviceFramesDropped: UInt32 = 0
    public var resyncDiscards: UInt64 = 0
    public var truncated: UInt64 = 0
    public var badMagic: UInt64 = 0
    public var unsupportedVersion: UInt64 = 0
    public var badHeader: UInt64 = 0
    public var oversized: UInt64 = 0
    public var crcMismatch: UInt64 = 0
    public var transferErrors: UInt64 = 0
    public var sequenceResets: UInt64 = 0

    public init() {}

    /// Frames that arrived but failed validation.
    public var rejected: UInt64 { truncated + badMagic + unsupportedVersion + badHeader + oversized + crcMismatch }

    mutating func count(_ error: ProbeFrameError) {
        switch error {
        case .truncated: truncated += 1
        case .badMagic: badMagic += 1
        case .unsupportedVersion: unsupportedVersion += 1
        case .badHeader: badHeader += 1
        case .oversized: oversized += 1
        case .crcMismatch: crcMismatch += 1
        }
    }
}

/// Turns completed bulk-IN transfers into validated frames (USB-PROBE.md §4.3): one frame per
/// transfer ended by a short packet, or — with transfers smaller than a frame — a frame over
/// several full transfers and a short one. Resynchronises at the first transfer after a short
/// packet that starts with the magic; never reads or writes beyond `maxFrameBytes`, whatever the
/// header claims. Not thread-safe: one receiver per stream, fed from libusb's event thread.
/// Allocates only its assembly buffer, once.
final class ProbeFrameReceiver {
    enum Outcome {
        /// A valid frame; `frame` (header and payload) is valid until the next call.
        case frame(ProbeFrameHeader, frame: UnsafeRawBufferPointer)
        /// The transfer continues a frame not yet complete.
        case collecting
        case rejected(ProbeFrameError)
        /// The continuation of a frame whose start was lost (`resync_discard`).
        case discarded
        /// A zero-length transfer between frames.
        case ignored
    }

    let maxFrameBytes: Int
    private(set) var counters = ProbeReceiverCounters()
    private var atBoundary = true
    private var expectedNumber: UInt64 = 0
    /// Bytes of the frame being collected over several transfers (0: none); `frameLength` its size.
    private var assembled = 0
    private var frameLength = 0
    private let assembly: UnsafeMutableRawBufferPointer

    init(maxFrameBytes: Int) {
        self.maxFrameBytes = maxFrameBytes
        assembly = .allocate(byteCount: max(maxFrameBytes, ProbeFrameHeader.length), alignment: 16)
    }

    deinit { assembly.deallocate() }

    /// A new stream starts (START_STREAMING, a clear-halt, a re-opened probe): at a frame boundary,
    /// frame numbers from 0. Not a `sequence_reset`.
    func startStream() {
        atBoundary = true
        expectedNumber = 0
        assembled = 0
    }

    /// A transfer that did not complete (timeout, error, cancelled): the frame's end is unknown.
    func transferFailed() {
        counters.transferErrors += 1
        assembled = 0
        atBoundary = false
    }

    /// One completed transfer: `bytes` received of `requested`.
    func receive(_ bytes: UnsafeRawBufferPointer, requested: Int) -> Outcome {
        counters.transfers += 1
        counters.bytes += UInt64(bytes.count)
        let short = bytes.count < requested
        defer { atBoundary = short }

        if assembled > 0 { return collect(bytes, short: short) }
        if bytes.isEmpty { return .ignored }
        guard atBoundary else {
            counters.resyncDiscards += 1
            return .discarded
        }
        if short {  // the whole frame in one transfer: validated where it lies, no copy
            do throws(ProbeFrameError) {
                let header = try ProbeFrameHeader.validateFrame(bytes, maxFrameBytes: maxFrameBytes)
                return delivered(header, frame: bytes)
            } catch {
                return reject(error)
            }
        }
        // A full transfer starts a frame that goes on in the next ones.
        let header: ProbeFrameHeader
        do throws(ProbeFrameError) {
            header = try ProbeFrameHeader.decode(bytes, maxFrameBytes: maxFrameBytes)
        } catch {
            return reject(error)
        }
        guard bytes.count <= header.frameLength else {
            return reject(.oversized(received: bytes.count, expected: header.frameLength))
        }
        frameLength = header.frameLength
        append(bytes)
        return .collecting
    }

    private func collect(_ bytes: UnsafeRawBufferPointer, short: Bool) -> Outcome {
        guard assembled + bytes.count <= frameLength else {
            let received = assembled + bytes.count
            assembled = 0
            return reject(.oversized(received: received, expected: frameLength))
        }
        append(bytes)
        guard short else { return .collecting }
        let frame = UnsafeRawBufferPointer(rebasing: assembly[0..<assembled])
        assembled = 0
        do throws(ProbeFrameError) {
            return delivered(try ProbeFrameHeader.validateFrame(frame, maxFrameBytes: maxFrameBytes), frame: frame)
        } catch {
            return reject(error)
        }
    }

    private func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, let target = assembly.baseAddress, !bytes.isEmpty else { return }
        (target + assembled).copyMemory(from: source, byteCount: bytes.count)
        assembled += bytes.count
    }

    private func reject(_ error: ProbeFrameError) -> Outcome {
        counters.count(error)
        return .rejected(error)
    }

    /// §4.4: a gap in the frame numbers counts the frames it stands for; a step back is a restart.
    private func delivered(_ header: ProbeFrameHeader, frame: UnsafeRawBufferPointer) -> Outcome {
        let number = header.frameNumber
        if number > expectedNumber {
            counters.droppedFrames += number - expectedNumber
        } else if number < expectedNumber {
            counters.sequenceResets += 1
        }
        expectedNumber = number &+ 1
        counters.framesDelivered += 1
        counters.deviceFramesDropped = header.deviceFramesDropped
        return .frame(header, frame: frame)
    }
}
