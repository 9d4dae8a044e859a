import SonoProtocol
import SonoTestSupport
import Testing

@Suite struct CRCAndCOBSTests {
    @Test func crc32cCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    @Test func crc32cContinuesOverPartsAsOverTheWhole() {
        let bytes = Array("123456789".utf8)
        for split in 0...bytes.count {
            let head = bytes[..<split].withUnsafeBytes { CRC32C.checksum($0) }
            let whole = bytes[split...].withUnsafeBytes { CRC32C.checksum($0, continuing: head) }
            #expect(whole == 0xE306_9283, "split at \(split)")
        }
    }

    /// The eight-bytes-per-step path agrees with the definition (bit by bit) at every length and
    /// starting offset, so every tail and alignment is covered.
    @Test func crc32cSlicingAgreesWithTheBitwiseDefinition() {
        func bitwise(_ bytes: ArraySlice<UInt8>) -> UInt32 {
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in bytes {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
            }
            return crc ^ 0xFFFF_FFFF
        }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let bytes = (0..<300).map { _ -> UInt8 in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        for start in 0..<9 {
            for length in 0...(bytes.count - start) where length < 40 || length % 37 == 0 {
                let slice = bytes[start..<(start + length)]
                #expect(slice.withUnsafeBytes { CRC32C.checksum($0) } == bitwise(slice), "offset \(start), length \(length)")
            }
        }
    }

    static let cobsCases: [(String, [UInt8], [UInt8])] = [
        ("empty", [], [0x01]),
        ("single zero", [0x00], [0x01, 0x01]),
        ("two zeros", [0x00, 0x00], [0x01, 0x01, 0x01]),
        ("zero inside", [0x11, 0x22, 0x00, 0x33], [0x03, 0x11, 0x22, 0x02, 0x33]),
        ("no zero", [0x11, 0x22, 0x33, 0x44], [0x05, 0x11, 0x22, 0x33, 0x44]),
        ("254 non-zero", Array(repeating: 0x01, count: 254), [0xFF] + Array(repeating: 0x01, count: 254)),
        ("254 non-zero then zero", Array(repeating: 0x01, count: 254) + [0],
         [0xFF] + Array(repeating: 0x01, count: 254) + [0x01, 0x01]),
        ("255 non-zero", Array(repeating: 0x02, count: 255),
         [0xFF] + Array(repeating: 0x02, count: 254) + [0x02, 0x02]),
    ]

    @Test(arguments: 0..<cobsCases.count)
    func cobsKnownEncodings(_ index: Int) {
        let (name, plain, encoded) = Self.cobsCases[index]
        #expect(cobsEncode(plain) == encoded, "encode \(name)")
        #expect(cobsDecode(encoded) == plain, "decode \(name)")
    }

    @Test func cobsRoundTripsRandomBuffers() {
        var rng = TestRandom(seed: 7)
        for _ in 0..<2_000 {
            let plain = (0..<Int(rng.next() % 600)).map { _ in UInt8(truncatingIfNeeded: rng.next() % 3 == 0 ? 0 : rng.next()) }
            let encoded = cobsEncode(plain)
            #expect(!encoded.contains(0))
            #expect(encoded.count <= COBS.maxEncodedCount(plain.count))
            #expect(cobsDecode(encoded) == plain)
        }
    }

    @Test func cobsRejectsACodePastTheEnd() {
        #expect(cobsDecode([0x05, 0x11, 0x22]) == nil)
    }
}

@Suite struct FrameCodecTests {
    static let sample = Frame(seq: 42, timestampMicros: 1_000_123,
                              message: .forceTorqueSample(ForceTorqueSample(fx: 0.5, fy: -1.25, fz: 8, tx: 0, ty: 0.125, tz: -0.0625)))

    @Test func roundTripsEveryMessageKind() throws {
        let joints = JointArray((0..<6).map { JointReading(position: Float($0) * 0.1, velocity: -0.5, current: 1.5) },
                                filler: .zero)
        let targets = JointArray((0..<6).map { JointTarget(position: Float($0), maxVelocity: 1, maxCurrent: 4) },
                                 filler: .zero)
        let messages: [Message] = [
            .hello(DeviceInfo(kind: .arm, firmwareMajor: 1, firmwareMinor: 2, firmwarePatch: 3,
                              serial: SerialNumber("ARM-0042"), capabilities: [.jointPositionControl, .hostWatchdog],
                              jointCount: 6, sampleRateHz: 1000, heartbeatPeriodMs: 50)),
            .heartbeat(Heartbeat(state: .active, rxCRCErrors: 3, rxSequenceGaps: 1)),
            .getInfo, .clearFaults, .tare,
            Self.sample.message,
            .jointState(JointState(status: [.drivesEnabled, .homed], joints: joints)),
            .estopState(EStopState(engaged: true, source: EStopSource.pendantButton.rawValue)),
            .faultReport(FaultReport(code: .overCurrent, axis: 2, severity: 2, value: 7.5, limit: 6)),
            .ack(Acknowledgement(ackedSeq: 9, ackedType: MessageType.stop.rawValue)),
            .nack(Acknowledgement(ackedSeq: 10, ackedType: MessageType.setDrives.rawValue), reason: .estopEngaged),
            .jointCommand(JointCommand(joints: targets)),
            .setDrives(enable: true), .stop(category: 1),
        ]
        for (index, message) in messages.enumerated() {
            let frame = Frame(seq: UInt16(index) &* 4099, timestampMicros: UInt64(index) << 33, message: message)
            let wire = try FrameCodec.encode(frame)
            #expect(wire.last == 0)
            #expect(!wire.dropLast().contains(0))
            #expect(try FrameCodec.decode(wire: wire) == frame)
        }
    }

    @Test func everySingleBitFlipIsRejected() throws {
        let wire = try FrameCodec.encode(Self.sample)
        for byteIndex in 0..<(wire.count - 1) {
            for bit in 0..<8 {
                var damaged = wire
                damaged[byteIndex] ^= 1 << bit
                if damaged[byteIndex] == 0 { continue }  // would split the frame: covered by the stream tests
                #expect(throws: FrameError.self) { try FrameCodec.decode(wire: damaged) }
            }
        }
    }

    @Test func refusesToEncodeZeroOrNineJoints() {
        let none = Frame(seq: 0, timestampMicros: 0, message: .jointState(JointState(status: [], joints: JointArray(count: 0, filler: .zero))))
        #expect(throws: EncodeError.jointCount(0)) { try FrameCodec.encode(none) }
    }

    @Test func reportsATooSmallBuffer() {
        var small = [UInt8](repeating: 0, count: 10)
        #expect(throws: EncodeError.bufferTooSmall(needed: 46, available: 10)) {
            _ = try small.withUnsafeMutableBytes { buffer in
                try Result { () throws(EncodeError) -> Int in try FrameCodec.encode(Self.sample, into: buffer) }.get()
            }
        }
    }

    @Test func errorsNameWhatWasWrong() {
        let text = "\(FrameError.invalidPayload(.jointState, reason: .jointCount(9)))"
        #expect(text.contains("JOINT_STATE") && text.contains("joint_count 9"))
        #expect("\(FrameError.crcMismatch(expected: 0xDEADBEEF, computed: 1))".contains("0xDEADBEEF"))
    }
}

@Suite struct StreamDecoderTests {
    @Test func resynchronisesAfterGarbage() throws {
        let wire = try FrameCodec.encode(FrameCodecTests.sample)
        var rng = TestRandom(seed: 99)
        for _ in 0..<500 {
            let garbage = (0..<Int(rng.next() % 400)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            // A sender that restarts mid-stream prefixes a delimiter, so the valid frame stands alone.
            let stream = garbage + [0] + wire
            var decoder = StreamDecoder()
            var last: Result<Frame, FrameError>?
            stream.withUnsafeBytes { decoder.feed($0) { last = $0 } }
            #expect(try last?.get() == FrameCodecTests.sample)
        }
    }

    @Test func neverCrashesOnRandomBytesAndCountsEveryDrop() {
        var rng = TestRandom(seed: 3)
        var decoder = StreamDecoder()
        var failures: UInt64 = 0
        var successes: UInt64 = 0
        for _ in 0..<2_000 {
            let chunk = (0..<Int(rng.next() % 700)).map { _ in UInt8(truncatingIfNeeded: rng.next() % 5 == 0 ? 0 : rng.next()) }
            chunk.withUnsafeBytes {
                decoder.feed($0) { result in
                    if case .failure = result { failures += 1 } else { successes += 1 }
                }
            }
        }
        #expect(decoder.statistics.droppedFrames == failures)
        #expect(decoder.statistics.frames == successes)
        #expect(failures > 0)
    }

    @Test func oversizedRunIsReportedOnceAndTheNextFrameDecodes() throws {
        let wire = try FrameCodec.encode(FrameCodecTests.sample)
        var decoder = StreamDecoder()
        var outcomes: [String] = []
        (Array(repeating: UInt8(0x55), count: 1_000) + [0] + wire).withUnsafeBytes {
            decoder.feed($0) { result in
                switch result {
                case .success(let frame): outcomes.append("\(frame.message.type)")
                case .failure(let error): outcomes.append(error.kind)
                }
            }
        }
        #expect(outcomes == ["oversized", "FT_SAMPLE"])
    }
}

@Suite struct SequenceTrackerTests {
    @Test func countsGapsAcrossTheWrap() {
        var tracker = SequenceTracker()
        #expect(tracker.observe(65_534) == .first)
        #expect(tracker.observe(65_535) == .inOrder)
        #expect(tracker.observe(0) == .inOrder)
        #expect(tracker.observe(3) == .gap(count: 2))
        #expect(tracker.observe(3) == .reset)
        #expect(tracker.observe(4) == .inOrder)
        #expect(tracker.lostFrames == 2 && tracker.gaps == 1 && tracker.resets == 1)
        tracker.restart()
        #expect(tracker.observe(900) == .first)
    }
}

// MARK: - helpers

func cobsEncode(_ plain: [UInt8]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: COBS.maxEncodedCount(plain.count))
    let count = plain.withUnsafeBytes { source in out.withUnsafeMutableBytes { COBS.encode(source, into: $0) } }
    return Array(out.prefix(count ?? 0))
}

func cobsDecode(_ encoded: [UInt8]) -> [UInt8]? {
    var out = [UInt8](repeating: 0, count: encoded.count)
    let count = encoded.withUnsafeBytes { source in out.withUnsafeMutableBytes { COBS.decode(source, into: $0) } }
    return count.map { Array(out.prefix($0)) }
}

