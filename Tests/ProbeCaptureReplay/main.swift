// Runs under `umockdev-run -d probe.umockdev -p SYSPATH=probe.pcap -- probe-capture-replay ...`
// (ProbeCaptureTests starts it): does, with plain libusb calls, exactly the sequence a capture
// from `ProbeCapture.write` holds, and checks what comes back. Prints one line per check
// ("ok ..." or "FAIL ...") and exits 1 if any failed.
//
//   probe-capture-replay FRAMES TRANSFER_LENGTH IN_FLIGHT SETTINGS_HEX SERIAL
//
// Like a streaming driver it resubmits every completed transfer until FRAMES frames arrived,
// then cancels the surplus and sends STOP_STREAMING, which the capture does not answer.
import CLibUSB
import Foundation
import SonoDevices

nonisolated(unsafe) var failures = 0  // one thread: libusb calls back on it, inside handle_events

func check(_ condition: Bool, _ message: String) {
    print((condition ? "ok    " : "FAIL  ") + message)
    if !condition { failures += 1 }
}

/// A step the rest depends on: when it fails, so would everything after it (the replay is stuck).
func require(_ condition: Bool, _ message: String) {
    check(condition, message)
    if !condition {
        print("probe-capture-replay: stopped at a failed step")
        exit(1)
    }
}

func errorName(_ code: Int32) -> String { String(cString: libusb_error_name(code)) }

func hexBytes(_ text: String) -> [UInt8]? {
    let digits = Array(text.utf8)
    guard digits.count % 2 == 0 else { return nil }
    return stride(from: 0, to: digits.count, by: 2).map { index -> UInt8? in
        UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16)
    }.reduce(into: [UInt8]?([])) { result, byte in
        if let byte { result?.append(byte) } else { result = nil }
    }
}

let arguments = CommandLine.arguments
guard arguments.count == 6, let frames = Int(arguments[1]), let transferLength = Int(arguments[2]),
      let inFlight = Int(arguments[3]), let settings = hexBytes(arguments[4]), settings.count == 12 else {
    print("usage: probe-capture-replay FRAMES TRANSFER_LENGTH IN_FLIGHT SETTINGS_HEX(24 digits) SERIAL")
    exit(2)
}
let serial = arguments[5]

var contextPointer: OpaquePointer?
guard libusb_init(&contextPointer) == 0, let context = contextPointer else {
    print("FAIL  libusb_init")
    exit(1)
}

// Enumeration from the record.
var list: UnsafeMutablePointer<OpaquePointer?>?
let count = libusb_get_device_list(context, &list)
var probe: OpaquePointer?
for index in 0..<max(count, 0) {
    guard let device = list?[index] else { continue }
    var descriptor = libusb_device_descriptor()
    if libusb_get_device_descriptor(device, &descriptor) == 0, descriptor.idVendor == 0x1209, descriptor.idProduct == 0x5310 {
        probe = device
    }
}
guard let probe else {
    print("FAIL  no 1209:5310 among \(count) devices")
    exit(1)
}
check(libusb_get_bus_number(probe) == 2 && libusb_get_device_address(probe) == 2
          && libusb_get_device_speed(probe) == Int32(LIBUSB_SPEED_HIGH.rawValue),
      "enumerated 1209:5310 at bus \(libusb_get_bus_number(probe)) address \(libusb_get_device_address(probe)), high speed")
var handlePointer: OpaquePointer?
let opened = libusb_open(probe, &handlePointer)
if let list { libusb_free_device_list(list, 1) }
guard opened == 0, let handle = handlePointer else {
    print("FAIL  libusb_open: \(errorName(opened))")
    exit(1)
}
require(libusb_claim_interface(handle, 0) == 0, "claimed interface 0")

// GET_INFO, SET_IMAGING, START_STREAMING.
var info = [UInt8](repeating: 0, count: 255)
let infoLength = libusb_control_transfer(handle, 0xC1, 0x01, 0, 0, &info, 255, 1_000)
let infoSerial = String(decoding: info[8..<24].prefix { $0 != 0 }, as: UTF8.self)
require(infoLength == 80 && info[0] == 1 && infoSerial == serial, "GET_INFO: \(infoLength) bytes, serial \(infoSerial)")
let maxFrameBytes = Int(info[28]) | Int(info[29]) << 8 | Int(info[30]) << 16 | Int(info[31]) << 24
var settingsBytes = settings
let set = libusb_control_transfer(handle, 0x41, 0x02, 0, 0, &settingsBytes, 12, 1_000)
require(set == 12, "SET_IMAGING: \(set < 0 ? errorName(set) : "\(set) bytes")")
let start = libusb_control_transfer(handle, 0x41, 0x03, 0, 0, nil, 0, 1_000)
require(start == 0, "START_STREAMING: \(start == 0 ? "accepted" : errorName(start))")

// The stream: IN_FLIGHT asynchronous transfers, each resubmitted when it completes.
final class Stream {
    var next: UInt64 = 0
    var received = 0
    var invalid: [String] = []
    var pending = 0
    var cancelled = 0
    var otherStatus: [String] = []
    var stopResubmitting = false
    let maxFrameBytes: Int

    init(maxFrameBytes: Int) { self.maxFrameBytes = maxFrameBytes }

    func completed(_ transfer: UnsafeMutablePointer<libusb_transfer>) {
        pending -= 1
        switch transfer.pointee.status {
        case LIBUSB_TRANSFER_COMPLETED:
            let bytes = UnsafeRawBufferPointer(start: transfer.pointee.buffer, count: Int(transfer.pointee.actual_length))
            do {
                let header = try ProbeFrameHeader.validateFrame(bytes, maxFrameBytes: maxFrameBytes)
                if header.frameNumber != next { invalid.append("frame \(header.frameNumber) where \(next) was due") }
                next = header.frameNumber + 1
            } catch {
                invalid.append("\(error)")
            }
            received += 1
        case LIBUSB_TRANSFER_CANCELLED:
            cancelled += 1
            return
        default:
            otherStatus.append("status \(transfer.pointee.status.rawValue)")
            return
        }
        if !stopResubmitting, libusb_submit_transfer(transfer) == 0 { pending += 1 }
    }
}

let stream = Stream(maxFrameBytes: maxFrameBytes)
let buffers = (0..<inFlight).map { _ in UnsafeMutablePointer<UInt8>.allocate(capacity: transferLength) }
let transfers = buffers.compactMap { buffer -> UnsafeMutablePointer<libusb_transfer>? in
    guard let transfer = libusb_alloc_transfer(0) else { return nil }
    libusb_fill_bulk_transfer(transfer, handle, 0x81, buffer, Int32(transferLength), { transfer in
        guard let transfer, let context = transfer.pointee.user_data else { return }
        Unmanaged<Stream>.fromOpaque(context).takeUnretainedValue().completed(transfer)
    }, Unmanaged.passUnretained(stream).toOpaque(), 0)
    return transfer
}
for transfer in transfers where libusb_submit_transfer(transfer) == 0 { stream.pending += 1 }
let deadline = Date().addingTimeInterval(20)
while stream.received < frames, stream.otherStatus.isEmpty, Date() < deadline {
    var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
    libusb_handle_events_timeout_completed(context, &timeout, nil)
}
check(stream.received == frames && stream.invalid.isEmpty && stream.otherStatus.isEmpty,
      "replayed \(stream.received) of \(frames) frames, numbered 0…\(frames - 1), valid (CRC-32C); "
          + "errors: \((stream.invalid + stream.otherStatus).prefix(3))")

// Closing like a driver: the transfers it resubmitted after the last frames match nothing in
// the capture and stay pending; cancelling them (DISCARDURB) completes them.
stream.stopResubmitting = true
let surplus = stream.pending
for transfer in transfers { _ = libusb_cancel_transfer(transfer) }
let cancelDeadline = Date().addingTimeInterval(5)
while stream.pending > 0, Date() < cancelDeadline {
    var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
    libusb_handle_events_timeout_completed(context, &timeout, nil)
}
check(surplus == inFlight && stream.cancelled == surplus && stream.pending == 0,
      "the \(surplus) transfers resubmitted after the last frame were cancelled (\(stream.cancelled))")
// STOP_STREAMING is not in the capture: the replay never answers it.
let stop = libusb_control_transfer(handle, 0x41, 0x04, 0, 0, nil, 0, 200)
check(stop == LIBUSB_ERROR_TIMEOUT.rawValue, "STOP_STREAMING (not in the capture): \(errorName(stop))")

for transfer in transfers { libusb_free_transfer(transfer) }
for buffer in buffers { buffer.deallocate() }
libusb_release_interface(handle, 0)
libusb_close(handle)
libusb_exit(context)
print(failures == 0 ? "probe-capture-replay: all checks passed" : "probe-capture-replay: \(failures) check(s) FAILED")
exit(failures == 0 ? 0 : 1)
