import SonoProtocol

/// The 64-byte header in front of every frame the probe sends on its bulk-IN endpoint
/// (firmware-protocol/USB-PROBE.md §4.2), little-endian. `encodeFrame` builds a frame (header
/// with its CRC, then the pixels) as the probe firmware and the emulator send it;
/// `validateFrame` checks one received frame in the order §4.3 prescribes.
public struct ProbeFrameHeader: Sendable, Equatable {
    public static let magic: UInt32 = 0x4650_4E53  // "SNPF"
    public static let version: UInt8 = 1
    /// Length of the version-1 header; `headerLength` may be larger in later versions.
    public static let length = 64
    static let crcOffset = 60

    public struct Flags: OptionSet, Sendable, Equatable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        /// First frame made with a new `settingsSequence`.
        public static let settingsChanged = Flags(rawValue: 1 << 0)
        public static let testPattern = Flags(rawValue: 1 << 1)
        /// The device dropped frames just before this one.
        public static let deviceDropped = Flags(rawValue: 1 << 2)
    }

    public var headerLength: Int
    public var flags: Flags
    /// 0 for the first frame after START_STREAMING, +1 per frame acquired (sent or not).
    public var frameNumber: UInt64
    /// Device monotonic clock at the first scan line, µs since the probe booted.
    public var timestampMicros: UInt64
    public var width: Int
    public var height: Int
    public var bitsPerPixel: Int
    public var pixelFormat: UInt8
    /// `settings_seq` of the SET_IMAGING the frame was made with.
    public var settingsSequence: UInt16
    public var payloadLength: Int
    public var depthMM: UInt16
    public var gainCentiDB: Int16
    public var rateCentiFPS: UInt16
    public var sectorCentiDeg: UInt16
    /// The device's running count of frames it discarded for lack of host transfers.
    public var deviceFramesDropped: UInt32
    /// CRC-32C over the frame without this field; filled in by `encodeFrame` and `decode`.
    public var crc: UInt32

    public init(frameNumber: UInt64, timestampMicros: UInt64, width: Int, height: Int, settingsSequence: UInt16 = 0,
                depthMM: UInt16, gainCentiDB: Int16, rateCentiFPS: UInt16, sectorCentiDeg: UInt16,
                flags: Flags = [], deviceFramesDropped: UInt32 = 0) {
        headerLength = Self.length
        self.flags = flags
        self.frameNumber = frameNumber
        self.timestampMicros = timestampMicros
        self.width = width
        self.height = height
        bitsPerPixel = 8
        pixelFormat = 1
        self.settingsSequence = settingsSequence
        payloadLength = width * height
        self.depthMM = depthMM
        self.gainCentiDB = gainCentiDB
        self.rateCentiFPS = rateCentiFPS
        self.sectorCentiDeg = sectorCentiDeg
        self.deviceFramesDropped = deviceFramesDropped
        crc = 0
    }

    /// Header bytes plus payload bytes: the frame's length on the wire.
    public var frameLength: Int { headerLength + payloadLength }

    // MARK: encoding

    /// The frame as the probe sends it: this header (version 1 layout, `crc` computed) and
    /// `pixels`, which must hold exactly `width × height` bytes.
    public func encodeFrame(pixels: UnsafeRawBufferPointer) throws(ProbeFrameError) -> [UInt8] {
        try checkGeometry()
        guard pixels.count == payloadLength else {
            throw .badHeader(field: "payload_length", offset: 32,
                             reason: "\(pixels.count) pixel bytes given for a \(width)×\(height) frame of \(payloadLength)")
        }
        var frame = [UInt8](repeating: 0, count: Self.length + pixels.count)
        let encoded = frame.withUnsafeMutableBytes { out -> Result<Int, ProbeFrameError> in
            if let base = out.baseAddress, let source = pixels.baseAddress, !pixels.isEmpty {
                (base + Self.length).copyMemory(from: source, byteCount: pixels.count)
            }
            do throws(ProbeFrameError) { return .success(try encodeFrame(inPlace: out)) } catch { return .failure(error) }
        }
        _ = try encoded.get()
        return frame
    }

    /// `encodeFrame(pixels:)` without the allocation and the copy, for a sender that makes its
    /// frames in a buffer it reuses: `frame[64 ..< 64 + width × height]` already holds the
    /// pixels; this writes the header (version 1 layout) and the CRC in front of them and
    /// returns the frame length.
    @discardableResult
    public func encodeFrame(inPlace frame: UnsafeMutableRawBufferPointer) throws(ProbeFrameError) -> Int {
        try checkGeometry()
        let total = Self.length + payloadLength
        guard frame.count >= total else {
            throw .badHeader(field: "payload_length", offset: 32,
                             reason: "a \(width)×\(height) frame of \(total) bytes does not fit a \(frame.count)-byte buffer")
        }
        let out = UnsafeMutableRawBufferPointer(rebasing: frame[0..<total])
        // The reserved bytes are 0 (and under the CRC): clear what a reused buffer left there.
        UnsafeMutableRawBufferPointer(rebasing: out[0..<Self.length]).initializeMemory(as: UInt8.self, repeating: 0)
        var header = self
        header.headerLength = Self.length
        header.write(into: out)
        LittleEndian.store(Self.checksum(frame: UnsafeRawBufferPointer(out)), into: out, at: Self.crcOffset)
        return total
    }

    private func write(into out: UnsafeMutableRawBufferPointer) {
        LittleEndian.store(Self.magic, into: out, at: 0)
        out[4] = Self.version
        out[5] = UInt8(truncatingIfNeeded: headerLength)
        LittleEndian.store(flags.rawValue, into: out, at: 6)
        LittleEndian.store(frameNumber, into: out, at: 8)
        LittleEndian.store(timestampMicros, into: out, at: 16)
        LittleEndian.store(UInt16(truncatingIfNeeded: width), into: out, at: 24)
        LittleEndian.store(UInt16(truncatingIfNeeded: height), into: out, at: 26)
        out[28] = UInt8(truncatingIfNeeded: bitsPerPixel)
        out[29] = pixelFormat
        LittleEndian.store(settingsSequence, into: out, at: 30)
        LittleEndian.store(UInt32(truncatingIfNeeded: payloadLength), into: out, at: 32)
        LittleEndian.store(depthMM, into: out, at: 36)
        LittleEndian.store(UInt16(bitPattern: gainCentiDB), into: out, at: 38)
        LittleEndian.store(rateCentiFPS, into: out, at: 40)
        LittleEndian.store(sectorCentiDeg, into: out, at: 42)
        LittleEndian.store(deviceFramesDropped, into: out, at: 44)
        LittleEndian.store(crc, into: out, at: Self.crcOffset)
    }

    // MARK: decoding

    /// Parses and checks the header at the start of `bytes` (USB-PROBE.md §4.3 step 2): magic,
    /// version, header length, geometry, and that the frame fits in `maxFrameBytes` (the
    /// probe's GET_INFO value), so a corrupted length never sizes a buffer. Does not look at
    /// the payload or the CRC: see `validateFrame`.
    public static func decode(_ bytes: UnsafeRawBufferPointer, maxFrameBytes: Int) throws(ProbeFrameError) -> ProbeFrameHeader {
        guard bytes.count >= length else { throw .truncated(received: bytes.count, needed: length) }
        func field<T: FixedWidthInteger>(_ offset: Int) -> T { LittleEndian.load(from: bytes, at: offset) }
        let magic: UInt32 = field(0)
        guard magic == Self.magic else { throw .badMagic(found: magic) }
        guard bytes[4] == version else { throw .unsupportedVersion(bytes[4]) }
        var header = ProbeFrameHeader(frameNumber: field(8), timestampMicros: field(16),
                                      width: Int(field(24) as UInt16), height: Int(field(26) as UInt16),
                                      settingsSequence: field(30), depthMM: field(36),
                                      gainCentiDB: Int16(bitPattern: field(38)), rateCentiFPS: field(40),
                                      sectorCentiDeg: field(42), flags: Flags(rawValue: field(6)),
                                      deviceFramesDropped: field(44))
        header.headerLength = Int(bytes[5])
        header.bitsPerPixel = Int(bytes[28])
        header.pixelFormat = bytes[29]
        header.payloadLength = Int(field(32) as UInt32)
        header.crc = field(crcOffset)
        guard header.headerLength >= length, header.headerLength % 4 == 0 else {
            throw .badHeader(field: "header_length", offset: 5,
                             reason: "\(header.headerLength) is not a multiple of 4 of at least \(length)")
        }
        try header.checkGeometry()
        guard header.frameLength <= maxFrameBytes else {
            throw .badHeader(field: "payload_length", offset: 32,
                             reason: "frame of \(header.frameLength) bytes exceeds the probe's max_frame_bytes \(maxFrameBytes)")
        }
        return header
    }

    /// Checks one complete received frame (header, length, CRC) and returns its header; the
    /// pixels are `bytes[headerLength ..< frameLength]`.
    public static func validateFrame(_ bytes: UnsafeRawBufferPointer,
                                     maxFrameBytes: Int) throws(ProbeFrameError) -> ProbeFrameHeader {
        let header = try decode(bytes, maxFrameBytes: maxFrameBytes)
        guard bytes.count >= header.frameLength else {
            throw .truncated(received: bytes.count, needed: header.frameLength)
        }
        guard bytes.count == header.frameLength else {
            throw .oversized(received: bytes.count, expected: header.frameLength)
        }
        let computed = checksum(frame: bytes)
        guard computed == header.crc else { throw .crcMismatch(stored: header.crc, computed: computed) }
        return header
    }

    private func checkGeometry() throws(ProbeFrameError) {
        guard bitsPerPixel == 8 else {
            throw .badHeader(field: "bits_per_pixel", offset: 28, reason: "\(bitsPerPixel), version 1 has only 8")
        }
        guard pixelFormat == 1 else {
            throw .badHeader(field: "pixel_format", offset: 29, reason: "\(pixelFormat), version 1 has only 1 (grey)")
        }
        guard (1...0xFFFF).contains(width), (1...0xFFFF).contains(height) else {
            throw .badHeader(field: "width/height", offset: 24, reason: "\(width)×\(height) has a zero or oversized side")
        }
        guard payloadLength == width * height * bitsPerPixel / 8 else {
            throw .badHeader(field: "payload_length", offset: 32,
                             reason: "\(payloadLength) ≠ \(width)×\(height)×\(bitsPerPixel)/8")
        }
    }

    /// CRC-32C of every frame byte except the CRC field: header bytes 0–59, the header's
    /// extension (64 ..< headerLength), then the payload.
    static func checksum(frame: UnsafeRawBufferPointer) -> UInt32 {
        let head = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: frame[0..<crcOffset]))
        return CRC32C.checksum(UnsafeRawBufferPointer(rebasing: frame[(crcOffset + 4)...]), continuing: head)
    }
}
