import SonoDevices
import SonoProtocol
import Testing

/// The probe's bulk-IN frame header (firmware-protocol/USB-PROBE.md §4.2–4.3).
@Suite struct ProbeFrameHeaderTests {
    static let maxFrameBytes = 64 + 512 * 512

    static func header(frameNumber: UInt64 = 41, width: Int = 32, height: Int = 24) -> ProbeFrameHeader {
        ProbeFrameHeader(frameNumber: frameNumber, timestampMicros: 1_234_567_890_123, width: width, height: height,
                         settingsSequence: 7, depthMM: 160, gainCentiDB: -250, rateCentiFPS: 6000,
                         sectorCentiDeg: 8000, flags: [.settingsChanged], deviceFramesDropped: 3)
    }

    static func frame(_ header: ProbeFrameHeader = ProbeFrameHeaderTests.header()) throws -> [UInt8] {
        let pixels = (0..<header.width * header.height).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        return try pixels.withUnsafeBytes { try header.encodeFrame(pixels: $0) }
    }

    static func validate(_ bytes: [UInt8]) throws -> ProbeFrameHeader {
        try bytes.withUnsafeBytes { try ProbeFrameHeader.validateFrame($0, maxFrameBytes: maxFrameBytes) }
    }

    @Test func encodedFrameHasTheSpecifiedLayout() throws {
        let bytes = try Self.frame()
        #expect(bytes.count == 64 + 32 * 24)
        #expect(Array(bytes[0..<6]) == [0x53, 0x4E, 0x50, 0x46, 1, 64])       // "SNPF", version, header length
        #expect(Array(bytes[6..<8]) == [1, 0])                                // flags: settings_changed
        #expect(Array(bytes[8..<16]) == [41, 0, 0, 0, 0, 0, 0, 0])           // frame number
        #expect(Array(bytes[24..<30]) == [32, 0, 24, 0, 8, 1])                // 32×24, 8 bit, grey
        #expect(Array(bytes[32..<36]) == [0x00, 0x03, 0, 0])                 // payload 768
        #expect(Array(bytes[38..<40]) == [0x06, 0xFF])                       // gain −2.50 dB
        #expect(bytes[48..<60].allSatisfy { $0 == 0 })                        // reserved
        // The CRC, computed independently over the frame without bytes 60–63.
        let crc = CRC32C.checksum(Array(bytes[0..<60]) + Array(bytes[64...]))
        #expect(Array(bytes[60..<64]) == [UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24)])
    }

    /// Frame 41 (4×2 pixels) as the C emulator of Tests/usb-emulation-probe makes it
    /// (`probe_make_frame`): two implementations of USB-PROBE.md agree byte for byte.
    static let emulatorFrame: [UInt8] = [
        0x53, 0x4e, 0x50, 0x46, 0x01, 0x40, 0x00, 0x00, 0x29, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x85, 0xaf, 0x19, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x02, 0x00, 0x08, 0x01, 0x07, 0x00,
        0x08, 0x00, 0x00, 0x00, 0xa0, 0x00, 0x06, 0xff, 0x70, 0x17, 0x40, 0x1f, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xee, 0x20, 0x33, 0x19,
        0x29, 0x2a, 0x2b, 0x2c, 0x2a, 0x2b, 0x2c, 0x2d,
    ]

    @Test func agreesWithTheCEmulator() throws {
        let header = ProbeFrameHeader(frameNumber: 41, timestampMicros: 1_683_333, width: 4, height: 2,
                                      settingsSequence: 7, depthMM: 160, gainCentiDB: -250, rateCentiFPS: 6000,
                                      sectorCentiDeg: 8000)
        let pixels: [UInt8] = [0x29, 0x2A, 0x2B, 0x2C, 0x2A, 0x2B, 0x2C, 0x2D]
        #expect(try pixels.withUnsafeBytes { try header.encodeFrame(pixels: $0) } == Self.emulatorFrame)
        let decoded = try Self.validate(Self.emulatorFrame)
        #expect(decoded.frameNumber == 41 && decoded.crc == 0x1933_20EE)
    }

    @Test func inPlaceEncodingMakesTheSameFrameInAReusedBuffer() throws {
        let expected = try Self.frame()
        var buffer = [UInt8](repeating: 0xEE, count: expected.count + 100)  // room to spare, stale bytes
        let length = try buffer.withUnsafeMutableBytes { out in
            for index in 0..<(32 * 24) { out[64 + index] = UInt8(truncatingIfNeeded: index &* 7) }
            return try Self.header().encodeFrame(inPlace: out)
        }
        #expect(length == expected.count)
        #expect(Array(buffer[0..<length]) == expected)
        #expect(buffer[length...].allSatisfy { $0 == 0xEE })  // nothing written past the frame
        var small = [UInt8](repeating: 0, count: 100)
        #expect(throws: ProbeFrameError.badHeader(field: "payload_length", offset: 32,
                                                  reason: "a 32×24 frame of 832 bytes does not fit a 100-byte buffer")) {
            try small.withUnsafeMutableBytes { try Self.header().encodeFrame(inPlace: $0) }
        }
    }

    @Test func validFrameDecodesToTheHeaderItWasMadeFrom() throws {
        let bytes = try Self.frame()
        var decoded = try Self.validate(bytes)
        #expect(decoded.crc != 0)
        decoded.crc = 0
        #expect(decoded == Self.header())
        #expect(decoded.frameLength == bytes.count)
    }

    @Test func headerErrorsAreReportedInProtocolOrder() throws {
        let good = try Self.frame()
        #expect(throws: ProbeFrameError.truncated(received: 10, needed: 64)) { try Self.validate(Array(good[0..<10])) }

        var wrongMagic = good
        wrongMagic[0] = 0x00
        #expect(throws: ProbeFrameError.badMagic(found: 0x4650_4E00)) { try Self.validate(wrongMagic) }

        var version2 = good
        version2[4] = 2
        version2[0] = 0  // magic is checked first
        #expect(throws: ProbeFrameError.badMagic(found: 0x4650_4E00)) { try Self.validate(version2) }
        version2[0] = 0x53
        #expect(throws: ProbeFrameError.unsupportedVersion(2)) { try Self.validate(version2) }

        var shortHeader = good
        shortHeader[5] = 60
        #expect(throws: ProbeFrameError.badHeader(field: "header_length", offset: 5,
                                                  reason: "60 is not a multiple of 4 of at least 64")) {
            try Self.validate(shortHeader)
        }

        var wrongWidth = good
        wrongWidth[24] = 33
        #expect(throws: ProbeFrameError.badHeader(field: "payload_length", offset: 32, reason: "768 ≠ 33×24×8/8")) {
            try Self.validate(wrongWidth)
        }
    }

    @Test func aLengthBeyondTheProbesLimitNeverSizesABuffer() throws {
        let huge = try Self.frame(Self.header(width: 1024, height: 1024))
        #expect(throws: ProbeFrameError.badHeader(
            field: "payload_length", offset: 32,
            reason: "frame of 1048640 bytes exceeds the probe's max_frame_bytes \(Self.maxFrameBytes)")) {
            try Self.validate(Array(huge[0..<64]))
        }
    }

    @Test func frameLengthMustMatchTheHeader() throws {
        let good = try Self.frame()
        #expect(throws: ProbeFrameError.truncated(received: good.count - 1, needed: good.count)) {
            try Self.validate(Array(good.dropLast()))
        }
        #expect(throws: ProbeFrameError.oversized(received: good.count + 1, expected: good.count)) {
            try Self.validate(good + [0])
        }
    }

    @Test func anyFlippedBitIsRejected() throws {
        let good = try Self.frame()
        // Every header byte and a sample of pixel bytes: none may decode as a valid frame.
        for offset in Array(0..<64) + [64, 65, 300, good.count - 1] {
            var bad = good
            bad[offset] ^= 0x10
            #expect(throws: ProbeFrameError.self, "bit flip at offset \(offset) accepted") { try Self.validate(bad) }
        }
        var pixel = good
        pixel[100] ^= 0x01
        let error = try #require(throws: ProbeFrameError.self) { try Self.validate(pixel) }
        guard case .crcMismatch(let stored, let computed) = error else {
            Issue.record("expected a CRC mismatch, got \(error)")
            return
        }
        #expect(stored != computed)
        #expect(error.counter == "crc_mismatch")
        #expect(error.description.contains("offset 60"))
    }

    @Test func pixelCountMustMatchTheGeometryWhenEncoding() {
        let pixels = [UInt8](repeating: 0, count: 10)
        #expect(throws: ProbeFrameError.badHeader(field: "payload_length", offset: 32,
                                                  reason: "10 pixel bytes given for a 32×24 frame of 768")) {
            try pixels.withUnsafeBytes { try Self.header().encodeFrame(pixels: $0) }
        }
    }
}
