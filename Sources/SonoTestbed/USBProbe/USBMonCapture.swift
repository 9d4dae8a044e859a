import Foundation
public import SonoDevices
import SonoProtocol

/// Why a probe capture could not be written.
public enum ProbeCaptureError: Error, Equatable, CustomStringConvertible {
    case invalidArgument(String)
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case .invalidArgument(let reason): "probe capture: \(reason)"
        case .cannotWrite(let path, let reason): "probe capture: cannot write \(path): \(reason)"
        }
    }
}

/// A usbmon capture of the probe (firmware-protocol/USB-EMULATION.md §2.2) for umockdev's
/// replayer: `umockdev-run -d probe.umockdev -p SYSPATH=probe.pcap -- program` answers the
/// usbfs ioctls of the device at SYSPATH from the capture, record by record, instead of an
/// emulator. A golden capture pins the driver's exact request sequence and replays it in any
/// process without the Swift emulator (for instance under a debugger or in another language).
///
/// What it holds is exactly what a driver does when it starts a stream:
///   1. GET_INFO: 'S' with setup C1 01 0000 0000 FF00 (urb_len 255), 'C' with the 80-byte ProbeInfo;
///   2. SET_IMAGING: 'S' with setup 41 02 0000 0000 0C00 and the 12 settings bytes as data (umockdev
///      compares them with what the driver sends), 'C' with urb_len 12;
///   3. START_STREAMING: 'S' and 'C', no data;
///   4. `inFlight` bulk-IN 'S' on 0x81, `transferLength` each (every URB the driver submits
///      before it first reaps);
///   5. for each frame: its 'C' (the frame's bytes, urb_len = frame length, status 0) and then one
///      new bulk 'S' (the driver resubmits the completed transfer) — except after the last
///      `inFlight` frames.
///
/// umockdev replays strictly in order and lazily, when the host reaps: a submitted URB must match
/// the next 'S' (type, endpoint for bulk, length, setup, OUT data), and the replay stops at the
/// first record nothing matches. Hence what a replayed run can and cannot do:
/// - it can deliver exactly these frames, in this order, to a driver with exactly this submission
///   pattern (one more or one fewer transfer in flight, or another transfer length, stalls it);
/// - the resubmissions after the last `inFlight` frames are left out on purpose: the driver makes
///   them, but a trailing 'S' that the replay has matched would wait for a 'C' forever, while
///   unmatched URBs just stay pending and are cancelled (DISCARDURB, status -ENOENT) when the
///   driver closes;
/// - the driver's closing STOP_STREAMING has no answer in the capture: it times out (libusb
///   cancels it after its timeout), so a driver test on a replay must tolerate that;
/// - it cannot unplug or replug (that needs `umockdev_testbed_remove_device` and uevents from a
///   test process): unplug, real-time pacing and device drops are `EmulatedUSBProbe`'s job.
///
/// Alongside the capture it writes the probe's sysfs record (umockdev-record format, the same
/// device `EmulatedUSBProbe` adds: bus 2, address 2, `syspath`).
public enum ProbeCapture {
    /// The capture's device: port 2-1 of bus 2, address 2 (the pcap's bus and device numbers).
    public static let syspath = EmulatedProbeModel.syspath(port: 1)
    public static let deviceAddress = 2
    /// The transfer length USB-PROBE.md §4.1 prescribes for this probe (262,656 bytes).
    public static let recommendedTransferLength = EmulatedProbeModel.transferLength

    /// The files written, and the umockdev-run arguments that replay them.
    public struct Files: Sendable, Equatable {
        /// The sysfs record (umockdev-record format).
        public let record: String
        /// The usbmon capture (classic pcap, link type 220).
        public let capture: String
        public let syspath: String

        /// `umockdev-run` arguments before `--` and the program to run.
        public var umockdevRunArguments: [String] { ["-d", record, "-p", "\(syspath)=\(capture)"] }
    }

    /// Writes `directory`/probe.umockdev and `directory`/probe.pcap: a stream of `frames` frames
    /// made with `imaging` (frame n's pixels from `content`, default the test pattern), received
    /// in transfers of `transferLength` bytes with `inFlight` of them submitted at a time.
    /// `outDataInSubmit` false leaves SET_IMAGING's data out of its 'S' record (matched then by
    /// setup and length only; see USB-EMULATION.md §2.2).
    @discardableResult
    public static func write(directory: String, frames: Int, transferLength: Int = recommendedTransferLength,
                             inFlight: Int = 4, imaging: EmulatedUSBProbe.Imaging, serial: String = "PRB-0001",
                             outDataInSubmit: Bool = true,
                             content: EmulatedUSBProbe.FrameContent? = nil) throws(ProbeCaptureError) -> Files {
        if let refusal = imaging.refusal {
            throw .invalidArgument("the probe refuses imaging settings \(imaging) (last_error \(refusal))")
        }
        if let problem = EmulatedProbeModel.problem(withSerial: serial) { throw .invalidArgument(problem) }
        guard frames >= inFlight, inFlight >= 1 else {
            throw .invalidArgument("\(frames) frames with \(inFlight) transfers in flight: need 1 ≤ in flight ≤ frames")
        }
        guard transferLength >= imaging.frameLength, transferLength % 512 == 0 else {
            throw .invalidArgument("transfer length \(transferLength) must be a multiple of 512 of at least the "
                                   + "\(imaging.frameLength)-byte frame (one frame per transfer, USB-PROBE.md §4.1)")
        }
        let files = Files(record: (directory as NSString).appendingPathComponent("probe.umockdev"),
                          capture: (directory as NSString).appendingPathComponent("probe.pcap"), syspath: syspath)
        let record = EmulatedProbeModel.sysfsRecord(syspath: syspath, deviceAddress: deviceAddress, serial: serial)
        guard FileManager.default.createFile(atPath: files.record, contents: Data(record.utf8)) else {
            throw .cannotWrite(path: files.record, reason: String(cString: strerror(errno)))
        }

        var pcap = USBMonWriter(bus: UInt16(EmulatedProbeModel.bus), device: UInt8(deviceAddress))
        var id: UInt64 = 0
        func nextID() -> UInt64 {
            id += 1
            return id
        }
        let bulk = USBMonWriter.Transfer.bulk, control = USBMonWriter.Transfer.control
        let inEndpoint = EmulatedProbeModel.bulkEndpoint

        let info = EmulatedProbeModel.info(serial: serial)
        let getInfo = nextID()
        pcap.submit(id: getInfo, transfer: control, endpoint: 0x80, setup: [0xC1, EmulatedProbeModel.getInfo, 0, 0, 0, 0, 0xFF, 0],
                    length: 255)
        pcap.complete(id: getInfo, transfer: control, endpoint: 0x80, length: info.count, data: info)

        let settings = imaging.encoded
        let setImaging = nextID()
        pcap.submit(id: setImaging, transfer: control, endpoint: 0x00,
                    setup: [0x41, EmulatedProbeModel.setImaging, 0, 0, 0, 0, UInt8(settings.count), 0],
                    length: settings.count, data: outDataInSubmit ? settings : [])
        pcap.complete(id: setImaging, transfer: control, endpoint: 0x00, length: settings.count)

        let start = nextID()
        pcap.submit(id: start, transfer: control, endpoint: 0x00, setup: [0x41, EmulatedProbeModel.startStreaming, 0, 0, 0, 0, 0, 0],
                    length: 0)
        pcap.complete(id: start, transfer: control, endpoint: 0x00, length: 0)

        // The bulk URBs in submission order; each frame completes the oldest one.
        var inFlightIDs: [UInt64] = []
        for _ in 0..<inFlight {
            let urb = nextID()
            pcap.submit(id: urb, transfer: bulk, endpoint: inEndpoint, length: transferLength)
            inFlightIDs.append(urb)
        }
        let maker = ProbeFrameMaker(content: content)
        var frame = [UInt8](repeating: 0, count: imaging.frameLength)  // one buffer for every frame
        let period = 100_000_000 / UInt64(imaging.rateCentiFPS)
        let firstFrameMicros = pcap.clockMicros
        for number in 0..<UInt64(frames) {
            // As EmulatedUSBProbe makes them: the first frame of a new settings_seq says so;
            // timestamps on the device's clock at the frame rate.
            let flags: ProbeFrameHeader.Flags =
                number == 0 && imaging.sequence != EmulatedUSBProbe.Imaging.emulatorDefaults.sequence ? [.settingsChanged] : []
            let made = ProbeFrameMaker.Frame(number: number, timestampMicros: 1_000_000 + number * period, imaging: imaging,
                                             flags: flags, framesDropped: 0)
            guard let length = frame.withUnsafeMutableBytes({ maker.make(made, into: $0) }) else {
                throw .invalidArgument("cannot make a \(imaging.width)×\(imaging.height) frame")
            }
            pcap.clockMicros = max(pcap.clockMicros, firstFrameMicros + number * period)
            pcap.complete(id: inFlightIDs.removeFirst(), transfer: bulk, endpoint: inEndpoint, length: length, data: frame)
            if number < UInt64(frames - inFlight) {
                let urb = nextID()
                pcap.submit(id: urb, transfer: bulk, endpoint: inEndpoint, length: transferLength)
                inFlightIDs.append(urb)
            }
        }
        guard FileManager.default.createFile(atPath: files.capture, contents: pcap.bytes) else {
            throw .cannotWrite(path: files.capture, reason: String(cString: strerror(errno)))
        }
        return files
    }
}

/// A classic pcap file (microsecond timestamps) of usbmon events with link type 220,
/// `DLT_USB_LINUX_MMAPPED`: each record is the 64-byte "mmapped" usbmon header, then
/// `data_len` bytes (Linux Documentation/usb/usbmon.rst; what umockdev's replayer reads,
/// src/umockdev-pcap.vala).
struct USBMonWriter {
    enum Transfer: UInt8 {
        case control = 2
        case bulk = 3
    }

    private(set) var bytes = Data()
    /// The capture's clock: each event 100 µs after the previous one unless moved on.
    var clockMicros: UInt64 = 1_000_000
    let bus: UInt16
    let device: UInt8

    private static let inProgress: Int32 = -115  // -EINPROGRESS: what usbmon logs for a submission

    init(bus: UInt16, device: UInt8) {
        self.bus = bus
        self.device = device
        var header = [UInt8](repeating: 0, count: 24)
        LittleEndian.store(UInt32(0xA1B2_C3D4), into: &header, at: 0)  // classic pcap, microsecond timestamps
        LittleEndian.store(UInt16(2), into: &header, at: 4)             // version 2.4
        LittleEndian.store(UInt16(4), into: &header, at: 6)
        LittleEndian.store(UInt32(1 << 20), into: &header, at: 16)      // snapshot length: enough for any frame
        LittleEndian.store(UInt32(220), into: &header, at: 20)          // DLT_USB_LINUX_MMAPPED
        bytes.append(contentsOf: header)
    }

    /// An 'S' event: `length` is urb_len (for control, the data stage without the setup packet);
    /// `data` the OUT data, if recorded.
    mutating func submit(id: UInt64, transfer: Transfer, endpoint: UInt8, setup: [UInt8]? = nil, length: Int,
                         data: [UInt8] = []) {
        event(id: id, type: "S", transfer: transfer, endpoint: endpoint, setup: setup, status: Self.inProgress,
              urbLength: length, data: data)
    }

    /// A 'C' event: `length` is the actual length, `data` the IN data.
    mutating func complete(id: UInt64, transfer: Transfer, endpoint: UInt8, status: Int32 = 0, length: Int,
                           data: [UInt8] = []) {
        event(id: id, type: "C", transfer: transfer, endpoint: endpoint, setup: nil, status: status, urbLength: length,
              data: Array(data.prefix(length)))
    }

    private mutating func event(id: UInt64, type: Character, transfer: Transfer, endpoint: UInt8, setup: [UInt8]?,
                                status: Int32, urbLength: Int, data: [UInt8]) {
        clockMicros += 100
        var header = [UInt8](repeating: 0, count: 64)
        LittleEndian.store(id, into: &header, at: 0)
        header[8] = type.asciiValue ?? 0
        header[9] = transfer.rawValue
        header[10] = endpoint                       // 0x80 set for IN
        header[11] = device
        LittleEndian.store(bus, into: &header, at: 12)
        header[14] = setup == nil ? UInt8(ascii: "-") : 0   // 0: setup packet present
        header[15] = data.isEmpty ? UInt8(ascii: "<") : 0   // 0: data present
        LittleEndian.store(clockMicros / 1_000_000, into: &header, at: 16)
        LittleEndian.store(UInt32(clockMicros % 1_000_000), into: &header, at: 24)
        LittleEndian.store(UInt32(bitPattern: status), into: &header, at: 28)
        LittleEndian.store(UInt32(urbLength), into: &header, at: 32)
        LittleEndian.store(UInt32(data.count), into: &header, at: 36)
        if let setup { header.replaceSubrange(40..<48, with: setup.prefix(8)) }
        // interval, start_frame, xfer_flags, ndesc (48–63): 0 for control and bulk.
        var record = [UInt8](repeating: 0, count: 16)
        LittleEndian.store(UInt32(clockMicros / 1_000_000), into: &record, at: 0)
        LittleEndian.store(UInt32(clockMicros % 1_000_000), into: &record, at: 4)
        LittleEndian.store(UInt32(64 + data.count), into: &record, at: 8)   // captured length
        LittleEndian.store(UInt32(64 + data.count), into: &record, at: 12)  // original length
        bytes.append(contentsOf: record)
        bytes.append(contentsOf: header)
        bytes.append(contentsOf: data)
    }
}
