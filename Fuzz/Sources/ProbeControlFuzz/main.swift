// libFuzzer target: the USB probe's control replies (USB-PROBE.md §3), GET_INFO's ProbeInfo and
// GET_STATUS's ProbeStatus, as a faulty or hostile device could return them. The first byte picks
// the reply; the rest is what the control transfer returned.
//
// Invariants: no crash (ASan, no trap on any length or value); a ProbeInfo that is accepted is
// bounded as the host relies on (geometry sides within maxSide, max_frame_bytes exactly a header
// plus the largest geometry, so every buffer sized from it is bounded, non-empty ranges); its
// transfer length holds a frame and the short packet; every setting it announces as valid is
// accepted by `problem(with:)`. SET_IMAGING's data stage round-trips.

import FuzzSupport
import SonoDevices

@_cdecl("LLVMFuzzerTestOneInput")
public func probeControlFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(UnsafeRawBufferPointer(start: data, count: size))
    let which = input.byte()
    let reply = Array(input.rest())
    switch which % 3 {
    case 0:
        guard let info = try? ProbeInfo.decode(reply) else { return 0 }
        invariant(!info.geometries.isEmpty && info.geometries.count <= 8, "accepted \(info.geometries.count) geometries")
        for geometry in info.geometries {
            invariant((1...ProbeInfo.maxSide).contains(geometry.width) && (1...ProbeInfo.maxSide).contains(geometry.height),
                      "accepted a \(geometry.width)×\(geometry.height) geometry")
        }
        let largest = info.geometries.map { $0.width * $0.height }.max()!
        invariant(info.maxFrameBytes == ProbeFrameHeader.length + largest, "max_frame_bytes \(info.maxFrameBytes) not bounded by the geometries")
        invariant(info.transferLength > info.maxFrameBytes && info.transferLength % 512 == 0,
                  "transfer length \(info.transferLength) for frames of \(info.maxFrameBytes)")
        let geometry = info.geometries[0]
        let settings = ProbeImagingSettings(depthMM: info.depthRangeMM.lowerBound, gainCentiDB: info.gainRangeCentiDB.upperBound,
                                            rateCentiFPS: info.rateRangeCentiFPS.lowerBound,
                                            width: geometry.width, height: geometry.height)
        invariant(info.problem(with: settings) == nil, "a setting inside every announced range was refused: \(info.problem(with: settings)!)")
        invariant(settings.frameLength <= info.maxFrameBytes, "a geometry's frame exceeds max_frame_bytes")
        invariant(info.serial.utf8.count <= 16, "serial of \(info.serial.utf8.count) bytes")
    case 1:
        guard let status = try? ProbeStatus.decode(reply) else { return 0 }
        _ = status.reason
        if let temperature = status.temperatureC { invariant(abs(temperature) <= 327.68, "temperature \(temperature)") }
    default:
        guard reply.count >= 12 else { return 0 }
        let settings = reply.withUnsafeBytes { ProbeImagingSettings(decoding: $0) }
        let again = settings.encoded.withUnsafeBytes { ProbeImagingSettings(decoding: $0) }
        invariant(settings == again && settings.encoded == Array(reply[0..<12]), "SET_IMAGING data does not round-trip")
        _ = settings.description
    }
    return 0
}

@_cdecl("ProbeControlFuzz_main")
func ProbeControlFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, probeControlFuzz)
}
