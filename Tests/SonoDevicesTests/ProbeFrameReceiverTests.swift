@testable import SonoDevices
import Testing

/// The receiver's rules (firmware-protocol/USB-PROBE.md §4.3–§4.4) on transfers made here:
/// one frame per transfer, frames over several transfers, every rejection and its counter,
/// resynchronisation, and the frame-number accounting.
@Suite struct ProbeFrameReceiverTests {
    static let maxFrameBytes = 64 + 64 * 64
    /// A transfer length as the driver uses: room for the largest frame and its short packet.
    static let transferLength = (maxFrameBytes + 1 + 511) / 512 * 512

    static func frame(_ number: UInt64, width: Int = 32, height: Int = 32) -> [UInt8] {
        let header = ProbeFrameHeader(frameNumber: number, timestampMicros: 1_000_000 + number * 16_667, width: width,
                                      height: height, depthMM: 160, gainCentiDB: 0, rateCentiFPS: 6000,
                                      sectorCentiDeg: 8000)
        let pixels = (0..<width * height).map { UInt8(truncatingIfNeeded: $0 &+ Int(number)) }
        return (try? pixels.withUnsafeBytes { try header.encodeFrame(pixels: $0) }) ?? []
    }

    enum Seen: Equatable { case frame(UInt64), collecting, rejected(String), discarded, ignored }

    static func feed(_ receiver: ProbeFrameReceiver, _ bytes: [UInt8], requested: Int = transferLength) -> Seen {
        bytes.withUnsafeBytes { buffer in
            switch receiver.receive(buffer, requested: requested) {
            case .frame(let header, let frame):
                #expect(frame.count == header.frameLength)
                return .frame(header.frameNumber)
            case .collecting: return .collecting
            case .rejected(let error): return .rejected(error.counter)
            case .discarded: return .discarded
            case .ignored: return .ignored
            }
        }
    }

    @Test func framesInOrderAreDeliveredAndCounted() {
        let receiver = ProbeFrameReceiver(maxFrameBytes: Self.maxFrameBytes)
        for number in 0..<5 { #expect(Self.feed(receiver, Self.frame(UInt64(number))) == .frame(UInt64(number))) }
        #expect(receiver.counters.framesDelivered == 5)
        #expect(receiver.counters.droppedFrames == 0)
        #expect(receiver.counters.rejected == 0)
    }

    @Test func aGapCountsTheMissingFramesAndAStepBackIsASequenceReset() {
        let receiver = ProbeFrameReceiver(maxFrameBytes: Self.maxFrameBytes)
        _ = Self.feed(receiver, Self.frame(0))
        _ = Self.feed(receiver, Self.frame(4))  // 1, 2, 3 lost
        #expect(receiver.counters.droppedFrames == 3)
        // delivered + dropped = last number + 1 (§4.4)
        #expect(receiver.counters.framesDelivered + receiver.counters.droppedFrames == 5)
        _ = Self.feed(receiver, Self.frame(2))
        #expect(receiver.counters.sequenceResets == 1)
        receiver.startStream()  // a new stream restarts at 0 without a reset
        _ = Self.feed(receiver, Self.frame(0))
        #expect(receiver.counters.sequenceResets == 1)
    }

    @Test func aCorruptedFrameIsRejectedAndItsNumberCountedAtTheNextGoodFrame() {
        let receiver = ProbeFrameReceiver(maxFrameBytes: Self.maxFrameBytes)
        _ = Self.feed(receiver, Self.frame(0))
        var corrupted = Self.frame(1)
        corrupted[100] ^= 0x01
        #expect(Self.feed(receiver, corrupted) == .rejected("crc_mismatch"))
        #expect(Self.feed(receiver, Self.frame(2)) == .frame(2))
        #expect(receiver.counters.crcMismatch == 1)
        #expect(receiver.counters.droppedFrames == 1)
        #expect(receiver.counters.framesDelivered + receiver.counters.droppedFrames == 3)
    }

    @Test func everyHeaderErrorHasItsCounter() {
        let receiver = ProbeFrameReceiver(maxFrameBytes: Self.maxFrameBytes)
        var badMagic = Self.frame(0)
        badMagic[0] = 0
        #expect(Self.feed(receiver, badMagic) == .rejected("bad_magic"))
        var badVersion = Self.frame(0)
        badVersion[4] = 2
        #expect(Self.feed(receiver, badVersion) == .rejected("unsupported_version"))
        var badLength = Self.frame(0)
        badLength[5] = 62
        #expect(Self.feed(receiver, badLength) == .rejected("bad_header"))
        #expect(Self.feed(receiver, Array(Self.frame(0).prefix(40))) == .rejected("truncated"))
        #expect(Self.feed(receiver, Array(Self.frame(0).dropLast(10))) == .rejected("truncated"))
        // A header announcing more than the probe's max_frame_bytes never sizes anything.
        var huge = Self.frame(0)
        huge[24] = 0xFF; huge[25] = 0xFF; huge[26] = 0xFF; huge[27] = 0xFF
        huge[32] = 0x01; huge[33] = 0x00; huge[34] = 0xFE; huge[35] = 0xFF
        #expect(Self.feed(receiver, huge) == .rejected("bad_header"))
        let c = receiver.counters
        #expect((c.badMagic, c.unsupportedVersion, c.badHeader, c.truncated) == (1, 1, 2, 2))
        #expect(c.framesDelivered == 0)
    }

    @Test func aFrameOverSeveralTransfersIsAssembled() {
        let receiver = ProbeFrameReceiver(maxFrameBytes: Self.maxFrameBytes)
        let frame = Self.frame(0, width: 64, height: 64)  // 4160 bytes over 1024-byte transfers
        var seen: [Seen] = []
        var offset = 0
        while offset < frame.count {
            let chunk = Array(frame[offset..<min(offset + 1024, frame.count)])
            seen.append(Self.feed(receiver, chunk, requested: 1024))
            offset += 1024
        }
        #expect(seen == [.collecting, .collecting, .collecting, .collecting, .frame(0)])
        // Exactly a multiple of the transfer length: the zero-length packet ends the frame.
        let exact = Self.frame(1, width: 32, height: 30)  // 64 + 960 = 1024
        #expect(Self.feed(receiver, exact, requested: 1024) == .collecting)
        #expect(Self.feed(receiver, [], requested: 1024) == .frame(1))
    }

    @Test func afterAFailedTransferTheContinuationIsDiscardedUntilAShortPacket() {
        let receiver = ProbeFrameReceiver(maxFrameBytes: Self.maxFrameBytes)
        let frame = Self.frame(0, width: 64, height: 64)
        #expect(Self.feed(receiver, Array(frame[0..<1024]), requested: 1024) == .collecting)
        receiver.transferFailed()  // the frame's end is unknown now
        #expect(Self.feed(receiver, Array(frame[2048..<3072]), requested: 1024) == .discarded)
        #expect(Self.feed(receiver, Array(frame[3072..<4096]), requested: 1024) == .discarded)
        #expect(Self.feed(receiver, Array(frame[4096...]), requested: 1024) == .discarded)  // short: boundary again
        #expect(Self.feed(receiver, Self.frame(1)) == .frame(1))
        #expect(receiver.counters.resyncDiscards == 3)
        #expect(receiver.counters.transferErrors == 1)
        #expect(receiver.counters.droppedFrames == 1)
    }

    @Test func moreBytesThanTheHeaderAnnouncesIsOversized() {
        let receiver = ProbeFrameReceiver(maxFrameBytes: Self.maxFrameBytes)
        #expect(Self.feed(receiver, Self.frame(0) + [0, 0, 0]) == .rejected("oversized"))
        // Over several transfers: the extra bytes arrive in a later transfer.
        let frame = Self.frame(1, width: 40, height: 40)  // 1664 bytes
        #expect(Self.feed(receiver, Array(frame[0..<1024]), requested: 1024) == .collecting)
        #expect(Self.feed(receiver, Array(frame[1024...]) + [UInt8](repeating: 0, count: 400), requested: 1024)
            == .rejected("oversized"))
        #expect(receiver.counters.oversized == 2)
    }

    @Test func zeroLengthTransfersBetweenFramesAreIgnored() {
        let receiver = ProbeFrameReceiver(maxFrameBytes: Self.maxFrameBytes)
        #expect(Self.feed(receiver, []) == .ignored)
        #expect(Self.feed(receiver, Self.frame(0)) == .frame(0))
    }
}

/// GET_INFO and GET_STATUS decoding with the checks of USB-PROBE.md §3.
@Suite struct ProbeControlTests {
    /// The C emulator's ProbeInfo (Tests/usb-emulation-probe/emulated_probe.c, probe_make_info).
    static var info: [UInt8] {
        var b = [UInt8](repeating: 0, count: 80)
        b[0] = 1; b[1] = 80; b[2] = 1; b[4] = 1
        for (i, c) in "PRB-0001".utf8.enumerated() { b[8 + i] = c }
        func put16(_ o: Int, _ v: UInt16) { b[o] = UInt8(v & 0xFF); b[o + 1] = UInt8(v >> 8) }
        put16(24, 7)
        let maxFrame = UInt32(64 + 512 * 512)
        put16(28, UInt16(maxFrame & 0xFFFF)); put16(30, UInt16(maxFrame >> 16))
        put16(32, 40); put16(34, 300); put16(36, UInt16(bitPattern: -2000)); put16(38, 4000)
        put16(40, 100); put16(42, 12000); put16(44, 8000)
        b[46] = 8; b[47] = 3
        for (i, side) in [128, 256, 512].enumerated() { put16(48 + 4 * i, UInt16(side)); put16(50 + 4 * i, UInt16(side)) }
        return b
    }

    @Test func probeInfoDecodes() throws {
        let info = try ProbeInfo.decode(Self.info)
        #expect(info.serial == "PRB-0001")
        #expect(info.firmwareVersion == "1.0.0")
        #expect(info.maxFrameBytes == 64 + 512 * 512)
        #expect(info.transferLength == 262_656)  // USB-PROBE.md §4.1's example
        #expect(info.gainRangeCentiDB == -2000...4000)
        #expect(info.geometries.map { $0.width } == [128, 256, 512])
        #expect(info.problem(with: ProbeImagingSettings()) == nil)
        #expect(info.problem(with: ProbeImagingSettings(depthMM: 20))?.contains("depth 20 mm") == true)
        #expect(info.problem(with: ProbeImagingSettings(width: 100, height: 100))?.contains("100×100") == true)
    }

    @Test func aProbeInfoFailingTheChecksIsRefusedNamingTheField() {
        func refusal(_ change: (inout [UInt8]) -> Void) -> String {
            var bytes = Self.info
            change(&bytes)
            do { _ = try ProbeInfo.decode(bytes); return "accepted" } catch { return error.description }
        }
        #expect(refusal { $0 = Array($0.prefix(60)) }.contains("60 bytes"))
        #expect(refusal { $0[0] = 2 }.contains("info_version"))
        #expect(refusal { $0[47] = 0 }.contains("geometry_count"))
        #expect(refusal { $0[47] = 4 }.contains("geometries[3]"))
        #expect(refusal { $0[28] = 0; $0[29] = 0; $0[30] = 0 }.contains("max_frame_bytes"))
        // A device announcing a 4 GiB frame is refused before any buffer is sized from it.
        #expect(refusal { $0[28] = 0xFF; $0[29] = 0xFF; $0[30] = 0xFF; $0[31] = 0xFF }.contains("max_frame_bytes 4294967295 is larger"))
        #expect(refusal { $0[48] = 0xFF; $0[49] = 0xFF; $0[50] = 0xFF; $0[51] = 0xFF }.contains("sides up to 4096"))
        #expect(refusal { $0[32] = 0xFF; $0[33] = 0xFF }.contains("depth range"))
    }

    @Test func probeStatusDecodes() throws {
        var b = [UInt8](repeating: 0, count: 32)
        b[0] = 1; b[1] = 32; b[2] = 2; b[3] = 7; b[4] = 5; b[6] = 0xFF; b[7] = 0x7F; b[8] = 10; b[16] = 9; b[24] = 1
        let status = try ProbeStatus.decode(b)
        #expect(status.state == .fault)
        #expect(status.reason.contains("over_temperature"))
        #expect(status.temperatureC == nil)
        #expect((status.framesAcquired, status.framesSent, status.framesDropped) == (10, 9, 1))
        b[2] = 9
        #expect(throws: USBError.self) { try ProbeStatus.decode(b) }
    }

    @Test func imagingSettingsEncodeAsSpecified() {
        let settings = ProbeImagingSettings(depthMM: 160, gainCentiDB: -250, rateCentiFPS: 6000, width: 256, height: 128,
                                            sequence: 3)
        #expect(settings.encoded == [160, 0, 0x06, 0xFF, 0x70, 0x17, 0, 1, 128, 0, 3, 0])
    }
}
