import SonoDevices

/// Makes the probe's frames (USB-PROBE.md §4.2) in place, in a buffer the caller owns: the
/// pixels from the frame content at offset 64, then the header and its CRC in front of them
/// (`ProbeFrameHeader.encodeFrame(inPlace:)`). Nothing is allocated per frame.
struct ProbeFrameMaker: Sendable {
    let content: EmulatedUSBProbe.FrameContent?

    /// The C emulator's test pattern: pixel (x, y) of frame n is (x + y + n) mod 256.
    static func testPattern(frameNumber: UInt64, width: Int, height: Int, pixels: UnsafeMutableBufferPointer<UInt8>) {
        guard let base = pixels.baseAddress else { return }
        for y in 0..<height {
            var value = UInt8(truncatingIfNeeded: UInt64(truncatingIfNeeded: y) &+ frameNumber)
            let row = base + y * width
            for x in 0..<width {
                row[x] = value
                value &+= 1
            }
        }
    }

    struct Frame {
        var number: UInt64
        var timestampMicros: UInt64
        var imaging: EmulatedUSBProbe.Imaging
        var flags: ProbeFrameHeader.Flags
        var framesDropped: UInt32
    }

    /// Writes `frame` into `buffer` and returns its length; nil when the buffer is too small
    /// for it (or the geometry is not one a frame can have, which validated settings exclude).
    func make(_ frame: Frame, into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        let imaging = frame.imaging
        let length = imaging.frameLength
        guard buffer.count >= length, let base = buffer.baseAddress else { return nil }
        let pixels = UnsafeMutableBufferPointer(start: (base + ProbeFrameHeader.length).assumingMemoryBound(to: UInt8.self),
                                                count: imaging.width * imaging.height)
        if let content {
            content(frame.number, imaging.width, imaging.height, pixels)
        } else {
            Self.testPattern(frameNumber: frame.number, width: imaging.width, height: imaging.height, pixels: pixels)
        }
        let header = ProbeFrameHeader(frameNumber: frame.number, timestampMicros: frame.timestampMicros,
                                      width: imaging.width, height: imaging.height,
                                      settingsSequence: imaging.sequence, depthMM: imaging.depthMM,
                                      gainCentiDB: imaging.gainCentiDB, rateCentiFPS: imaging.rateCentiFPS,
                                      sectorCentiDeg: EmulatedProbeModel.sectorCentiDeg, flags: frame.flags,
                                      deviceFramesDropped: frame.framesDropped)
        return try? header.encodeFrame(inPlace: buffer)
    }
}
