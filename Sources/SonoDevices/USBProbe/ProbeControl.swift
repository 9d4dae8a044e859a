import SonoProtocol

/// The probe's vendor control requests and their structures (firmware-protocol/USB-PROBE.md §2–§3),
/// little-endian. Decoding checks what §3 requires of a probe and names the offending field.

/// Vendor requests on endpoint 0, addressed to interface 0 (USB-PROBE.md §2).
public enum ProbeRequest: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case getInfo = 0x01
    case setImaging = 0x02
    case startStreaming = 0x03
    case stopStreaming = 0x04
    case getStatus = 0x05

    /// bmRequestType: device-to-host (0xC1) for reads, host-to-device (0x41) for writes.
    public var requestType: UInt8 {
        switch self {
        case .getInfo, .getStatus: 0xC1
        case .setImaging, .startStreaming, .stopStreaming: 0x41
        }
    }

    public var description: String {
        switch self {
        case .getInfo: "GET_INFO"
        case .setImaging: "SET_IMAGING"
        case .startStreaming: "START_STREAMING"
        case .stopStreaming: "STOP_STREAMING"
        case .getStatus: "GET_STATUS"
        }
    }
}

/// `ProbeInfo` (GET_INFO), version 1: what the probe is and what it can do.
public struct ProbeInfo: Sendable, Equatable {
    public static let length = 80
    /// wLength the host asks with: room for later versions' appended fields.
    public static let requestLength = 255

    public var protocolVersion: UInt8
    public var firmware: (major: UInt8, minor: UInt8, patch: UInt8)
    public var serial: String
    public var capabilities: UInt32
    public var maxFrameBytes: Int
    public var depthRangeMM: ClosedRange<UInt16>
    public var gainRangeCentiDB: ClosedRange<Int16>
    public var rateRangeCentiFPS: ClosedRange<UInt16>
    public var sectorCentiDeg: UInt16
    public var geometries: [(width: Int, height: Int)]

    public var firmwareVersion: String { "\(firmware.major).\(firmware.minor).\(firmware.patch)" }

    public static func == (a: ProbeInfo, b: ProbeInfo) -> Bool {
        a.protocolVersion == b.protocolVersion && a.firmware == b.firmware && a.serial == b.serial
            && a.capabilities == b.capabilities && a.maxFrameBytes == b.maxFrameBytes
            && a.depthRangeMM == b.depthRangeMM && a.gainRangeCentiDB == b.gainRangeCentiDB
            && a.rateRangeCentiFPS == b.rateRangeCentiFPS && a.sectorCentiDeg == b.sectorCentiDeg
            && a.geometries.elementsEqual(b.geometries, by: { $0 == $1 })
    }

    /// The largest image side this host takes: every buffer for a probe is sized from its
    /// ProbeInfo, so what a device announces is bounded before anything is allocated (a 4096²
    /// frame is 16 MiB, 60× the shipped probe's largest).
    public static let maxSide = 4096

    /// Parses GET_INFO's answer and checks it (USB-PROBE.md §3.1); a probe failing a check is refused.
    public static func decode(_ bytes: [UInt8]) throws(USBError) -> ProbeInfo {
        guard bytes.count >= length else {
            throw .refused("GET_INFO returned \(bytes.count) bytes, ProbeInfo version 1 has \(length)")
        }
        func u16(_ offset: Int) -> UInt16 { LittleEndian.load(from: bytes, at: offset) }
        func u32(_ offset: Int) -> UInt32 { LittleEndian.load(from: bytes, at: offset) }
        guard bytes[0] == 1 else { throw .refused("ProbeInfo.info_version is \(bytes[0]); this host reads version 1") }
        guard Int(bytes[1]) >= length else {
            throw .refused("ProbeInfo.info_length is \(bytes[1]), at least \(length) expected")
        }
        guard bytes[2] >= 1 else { throw .refused("ProbeInfo.protocol_version is 0; the frame stream needs version 1") }
        let serialBytes = bytes[8..<24].prefix { $0 != 0 }
        guard serialBytes.allSatisfy({ (0x20...0x7E).contains($0) }) else {
            throw .refused("ProbeInfo.serial (offset 8) is not printable ASCII")
        }
        let depth = (u16(32), u16(34))
        let gain = (Int16(bitPattern: u16(36)), Int16(bitPattern: u16(38)))
        let rate = (u16(40), u16(42))
        guard depth.0 <= depth.1 else { throw .refused("ProbeInfo depth range \(depth.0)…\(depth.1) mm is empty") }
        guard gain.0 <= gain.1 else { throw .refused("ProbeInfo gain range \(gain.0)…\(gain.1) cdB is empty") }
        guard rate.0 <= rate.1, rate.0 > 0 else {
            throw .refused("ProbeInfo frame-rate range \(rate.0)…\(rate.1) cfps is empty or starts at 0")
        }
        guard bytes[46] == 8 else { throw .refused("ProbeInfo.bits_per_pixel is \(bytes[46]); version 1 has only 8") }
        let count = Int(bytes[47])
        guard (1...8).contains(count) else { throw .refused("ProbeInfo.geometry_count is \(count), 1…8 expected") }
        var geometries: [(width: Int, height: Int)] = []
        for index in 0..<count {
            let width = Int(u16(48 + 4 * index)), height = Int(u16(50 + 4 * index))
            guard width > 0, height > 0 else {
                throw .refused("ProbeInfo.geometries[\(index)] is \(width)×\(height): a zero side")
            }
            guard width <= maxSide, height <= maxSide else {
                throw .refused("ProbeInfo.geometries[\(index)] is \(width)×\(height): this host takes sides up to \(maxSide)")
            }
            geometries.append((width, height))
        }
        let maxFrameBytes = Int(u32(28))
        let largest = geometries.map { $0.width * $0.height }.max() ?? 0
        guard maxFrameBytes >= ProbeFrameHeader.length + largest else {
            throw .refused("ProbeInfo.max_frame_bytes \(maxFrameBytes) is smaller than a header and the largest "
                + "geometry's \(largest) pixels")
        }
        // max_frame_bytes is the largest frame over the geometries (§3.1): a larger one would
        // only size buffers (and transfers) for frames the probe cannot send.
        guard maxFrameBytes <= ProbeFrameHeader.length + largest else {
            throw .refused("ProbeInfo.max_frame_bytes \(maxFrameBytes) is larger than a header and the largest "
                + "geometry's \(largest) pixels (\(ProbeFrameHeader.length + largest))")
        }
        return ProbeInfo(protocolVersion: bytes[2], firmware: (bytes[4], bytes[5], bytes[6]),
                         serial: String(decoding: serialBytes, as: UTF8.self), capabilities: u32(24),
                         maxFrameBytes: maxFrameBytes, depthRangeMM: depth.0...depth.1,
                         gainRangeCentiDB: gain.0...gain.1, rateRangeCentiFPS: rate.0...rate.1,
                         sectorCentiDeg: u16(44), geometries: geometries)
    }

    /// Bytes of one bulk-IN transfer that always holds a whole frame and its short packet
    /// (USB-PROBE.md §4.1: round_up(max_frame_bytes + 1, 512)).
    public var transferLength: Int { (maxFrameBytes + 1 + 511) / 512 * 512 }

    /// Why `settings` cannot be sent to this probe, or nil (the probe rejects, never clamps).
    public func problem(with settings: ProbeImagingSettings) -> String? {
        if !depthRangeMM.contains(settings.depthMM) {
            return "depth \(settings.depthMM) mm is outside the probe's \(depthRangeMM.lowerBound)…\(depthRangeMM.upperBound) mm"
        }
        if !gainRangeCentiDB.contains(settings.gainCentiDB) {
            return "gain \(Double(settings.gainCentiDB) / 100) dB is outside the probe's "
                + "\(Double(gainRangeCentiDB.lowerBound) / 100)…\(Double(gainRangeCentiDB.upperBound) / 100) dB"
        }
        if !rateRangeCentiFPS.contains(settings.rateCentiFPS) {
            return "frame rate \(Double(settings.rateCentiFPS) / 100) frames/s is outside the probe's "
                + "\(Double(rateRangeCentiFPS.lowerBound) / 100)…\(Double(rateRangeCentiFPS.upperBound) / 100)"
        }
        if !geometries.contains(where: { $0.width == settings.width && $0.height == settings.height }) {
            return "geometry \(settings.width)×\(settings.height) is not one of the probe's "
                + geometries.map { "\($0.width)×\($0.height)" }.joined(separator: ", ")
        }
        return nil
    }
}

/// `ImagingSettings` (SET_IMAGING), 12 bytes.
public struct ProbeImagingSettings: Sendable, Equatable, Codable, CustomStringConvertible {
    public var depthMM: UInt16
    public var gainCentiDB: Int16
    public var rateCentiFPS: UInt16
    public var width: Int
    public var height: Int
    /// Echoed in every frame made with these settings; the host increments it per SET_IMAGING.
    public var sequence: UInt16

    public init(depthMM: UInt16 = 160, gainCentiDB: Int16 = 0, rateCentiFPS: UInt16 = 6000, width: Int = 128,
                height: Int = 128, sequence: UInt16 = 0) {
        self.depthMM = depthMM
        self.gainCentiDB = gainCentiDB
        self.rateCentiFPS = rateCentiFPS
        self.width = width
        self.height = height
        self.sequence = sequence
    }

    public var framesPerSecond: Double { Double(rateCentiFPS) / 100 }

    /// Decodes SET_IMAGING's data stage (`bytes` holds at least 12 bytes).
    public init(decoding bytes: UnsafeRawBufferPointer) {
        func u16(_ offset: Int) -> UInt16 { LittleEndian.load(from: bytes, at: offset) }
        self.init(depthMM: u16(0), gainCentiDB: Int16(bitPattern: u16(2)), rateCentiFPS: u16(4), width: Int(u16(6)),
                  height: Int(u16(8)), sequence: u16(10))
    }

    /// Frame length (header + pixels) with these settings.
    public var frameLength: Int { ProbeFrameHeader.length + width * height }

    public var encoded: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(12)
        for value in [depthMM, UInt16(bitPattern: gainCentiDB), rateCentiFPS, UInt16(truncatingIfNeeded: width),
                      UInt16(truncatingIfNeeded: height), sequence] {
            LittleEndian.append(value, to: &bytes)
        }
        return bytes
    }
}

extension ProbeImagingSettings {
    public var description: String {
        "\(depthMM) mm, \(Double(gainCentiDB) / 100) dB, \(framesPerSecond) frames/s, \(width)×\(height), "
            + "settings_seq \(sequence)"
    }
}

/// `ProbeStatus` (GET_STATUS), version 1, 32 bytes.
public struct ProbeStatus: Sendable, Equatable {
    public static let length = 32
    public static let requestLength = 64

    public enum State: UInt8, Sendable {
        case idle = 0
        case streaming = 1
        /// The bulk endpoint is halted (USB-PROBE.md §5.2).
        case fault = 2
    }

    public var state: State
    /// Why the last request was stalled or the endpoint halted; 0 none. See `reason`.
    public var lastError: UInt8
    public var settingsSequence: UInt16
    /// Probe-face temperature, °C; nil when the probe does not know it.
    public var temperatureC: Double?
    public var framesAcquired: UInt64
    public var framesSent: UInt64
    public var framesDropped: UInt32

    public static func decode(_ bytes: [UInt8]) throws(USBError) -> ProbeStatus {
        guard bytes.count >= length else {
            throw .refused("GET_STATUS returned \(bytes.count) bytes, ProbeStatus version 1 has \(length)")
        }
        guard bytes[0] == 1 else { throw .refused("ProbeStatus.status_version is \(bytes[0]); this host reads version 1") }
        guard let state = State(rawValue: bytes[2]) else { throw .refused("ProbeStatus.state is \(bytes[2]), 0…2 expected") }
        func u16(_ offset: Int) -> UInt16 { LittleEndian.load(from: bytes, at: offset) }
        func u32(_ offset: Int) -> UInt32 { LittleEndian.load(from: bytes, at: offset) }
        func u64(_ offset: Int) -> UInt64 { LittleEndian.load(from: bytes, at: offset) }
        let temperature = Int16(bitPattern: u16(6))
        return ProbeStatus(state: state, lastError: bytes[3], settingsSequence: u16(4),
                           temperatureC: temperature == 0x7FFF ? nil : Double(temperature) / 100,
                           framesAcquired: u64(8), framesSent: u64(16), framesDropped: u32(24))
    }

    /// `last_error` in words (USB-PROBE.md §2, §5.2).
    public var reason: String { Self.reason(lastError) }

    public static func reason(_ code: UInt8) -> String {
        switch code {
        case 0: "no error"
        case 1: "unknown_request (1)"
        case 2: "bad_length (2)"
        case 3: "out_of_range (3): a setting outside the probe's limits"
        case 4: "unsupported_geometry (4)"
        case 5: "wrong_state (5): the probe is in fault"
        case 6: "beamformer_fault (6)"
        case 7: "over_temperature (7): the probe face is over its temperature limit"
        default: "last_error \(code)"
        }
    }
}
