// libFuzzer target: the USB probe's bulk-IN stream (USB-PROBE.md §4): frame headers and the
// per-transfer intake (ProbeFrameIntake, what libusb's event thread runs for every completed
// transfer). The input is a sequence of transfers, each `[flags][length u16][bytes…]`: flags bit 0
// repairs the CRC of a frame that starts in this transfer (so mutations reach the numbering and
// the hand-over, past the CRC), bit 1 makes the transfer short (it ends a frame), bit 2 restarts
// the stream. Frames are up to 32×16 pixels (max_frame_bytes 64 + 512) and the transfer size is
// 256 bytes, so frames span transfers.
//
// Invariants: no crash or out-of-bounds access (ASan) whatever the header claims; counters add
// up (one per transfer, bytes, delivered = completions reported = frames the reader can take,
// less ring overruns); every frame the reader takes has the stream's geometry and host frame
// numbers that only increase; a header that decodes alone re-encodes to the same 64 bytes.

import FuzzSupport
import SonoCore
import SonoDevices

let width = 32, height = 16
let maxFrameBytes = ProbeFrameHeader.length + width * height
let transferSize = 256

@_cdecl("LLVMFuzzerTestOneInput")
public func probeFrameFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(UnsafeRawBufferPointer(start: data, count: size))
    let intake = ProbeFrameIntake(width: width, height: height, bufferedFrames: 4)
    intake.start(maxFrameBytes: maxFrameBytes)
    intake.markStreaming()
    var transfers: UInt64 = 0, bytes: UInt64 = 0, completions: UInt64 = 0, taken: UInt64 = 0
    var lastNumber: UInt64?
    var pixels = [UInt8](repeating: 0, count: width * height)
    var clock: UInt64 = 1_000_000
    while input.remaining > 0 {
        let flags = input.byte()
        // A full transfer, or a short one of the next 16-bit value's length (mod the transfer size).
        let wanted = flags & 2 != 0 ? Int(input.u16()) % transferSize : transferSize
        let length = min(wanted, input.remaining)
        var transfer = Array(UnsafeRawBufferPointer(rebasing: input.bytes[input.offset..<input.offset + length]))
        for _ in 0..<length { _ = input.byte() }
        if flags & 4 != 0 { intake.start(maxFrameBytes: maxFrameBytes) }
        if flags & 1 != 0 { repairCRC(&transfer) }
        checkHeaderRoundTrip(transfer)
        clock += 16_667
        let completed = transfer.withUnsafeBytes { intake.completed($0, requested: transferSize, arrivalMicros: clock) }
        transfers += 1
        bytes += UInt64(transfer.count)
        if completed { completions += 1 }
        // The reader takes a frame now and then (flags bit 3), so the ring both fills and drains.
        if flags & 8 != 0 { takeAll(intake, &pixels, &taken, &lastNumber) }
    }
    takeAll(intake, &pixels, &taken, &lastNumber)
    let counters = intake.counters
    invariant(counters.transfers == transfers, "\(counters.transfers) transfers counted, \(transfers) made")
    invariant(counters.bytes == bytes, "\(counters.bytes) bytes counted, \(bytes) received")
    invariant(counters.framesDelivered == completions, "\(counters.framesDelivered) frames counted, \(completions) reported")
    invariant(taken <= completions, "the reader took \(taken) frames of \(completions) delivered")
    return 0
}

func takeAll(_ intake: ProbeFrameIntake, _ pixels: inout [UInt8], _ taken: inout UInt64, _ lastNumber: inout UInt64?) {
    while true {
        let info: ProbeFrameInfo?
        do { info = try pixels.withUnsafeMutableBufferPointer { buffer throws(FrameSourceError) in try intake.take(into: buffer, timeoutMicros: 0) } } catch {
            invariant(false, "take threw while streaming: \(error)")
            return
        }
        guard let info else { return }
        if let lastNumber { invariant(info.frameNumber > lastNumber, "frame number \(info.frameNumber) after \(lastNumber)") }
        lastNumber = info.frameNumber
        taken += 1
    }
}

/// If the transfer holds a header and the frame it announces, make its CRC right.
func repairCRC(_ transfer: inout [UInt8]) {
    guard transfer.count >= ProbeFrameHeader.length else { return }
    let payload = Int(transfer[32]) | Int(transfer[33]) << 8 | Int(transfer[34]) << 16 | Int(transfer[35]) << 24
    let headerLength = Int(transfer[5])
    guard headerLength == ProbeFrameHeader.length, payload == transfer.count - headerLength,
          let header = transfer.withUnsafeBytes({ try? ProbeFrameHeader.decode($0, maxFrameBytes: maxFrameBytes) }),
          let frame = try? Array(transfer[headerLength...]).withUnsafeBytes({ try header.encodeFrame(pixels: $0) }) else { return }
    transfer = frame
}

/// A header that decodes re-encodes (with its own length and no CRC change) to the same fields.
func checkHeaderRoundTrip(_ transfer: [UInt8]) {
    guard transfer.count >= ProbeFrameHeader.length,
          let header = transfer.withUnsafeBytes({ try? ProbeFrameHeader.decode($0, maxFrameBytes: maxFrameBytes) }) else { return }
    invariant(header.frameLength <= maxFrameBytes && header.width * header.height == header.payloadLength,
              "accepted a header for \(header.width)×\(header.height), \(header.payloadLength) bytes")
    let pixels = [UInt8](repeating: 0, count: header.payloadLength)
    guard let frame = try? pixels.withUnsafeBytes({ try header.encodeFrame(pixels: $0) }) else {
        invariant(false, "a header that decodes does not encode")
        return
    }
    let again = frame.withUnsafeBytes { try? ProbeFrameHeader.decode($0, maxFrameBytes: maxFrameBytes) }
    var expected = header
    expected.headerLength = ProbeFrameHeader.length
    expected.crc = again?.crc ?? 0
    invariant(again == expected, "a decoded header does not round-trip")
}

@_cdecl("ProbeFrameFuzz_main")
func ProbeFrameFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, probeFrameFuzz)
}
