// libFuzzer target: board frames as a serial port delivers them, cut at arbitrary points. The
// input's first byte gives a count n (0…15) of chunk sizes that follow as 16-bit values; the rest
// is the byte stream, fed to one decoder in chunks of those sizes (cycled; 0 is an empty read) and
// to another at once.
//
// Invariants: no crash or out-of-bounds access (ASan); the chunked decoder delivers exactly the
// same frames and errors, in the same order, with the same statistics, as the one-shot decoder —
// a frame never depends on where read() happened to split the stream.

import FuzzSupport
import SonoProtocol

@_cdecl("LLVMFuzzerTestOneInput")
public func streamChunksFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(UnsafeRawBufferPointer(start: data, count: size))
    let count = Int(input.byte() & 0x0F)
    var sizes: [Int] = []
    for _ in 0..<count { sizes.append(Int(input.u16() % 600)) }  // a frame is at most 2 + 1024 + 2 + 4 bytes; cuts inside it matter
    if sizes.allSatisfy({ $0 == 0 }) { sizes = [1] }
    let stream = input.rest()

    var whole = StreamDecoder()
    var expected: [Result<Frame, FrameError>] = []
    whole.feed(stream) { expected.append($0) }

    var chunked = StreamDecoder()
    var got: [Result<Frame, FrameError>] = []
    var offset = 0, index = 0
    while offset < stream.count {
        let length = min(sizes[index % sizes.count], stream.count - offset)
        index += 1
        chunked.feed(UnsafeRawBufferPointer(rebasing: stream[offset..<offset + length])) { got.append($0) }
        offset += length
    }
    invariant(got == expected, "chunked decoding gave \(got.count) results, one-shot \(expected.count), or they differ")
    invariant(chunked.statistics == whole.statistics, "statistics differ: \(chunked.statistics) vs \(whole.statistics)")
    invariant(whole.statistics.frames + whole.statistics.droppedFrames == UInt64(expected.count),
              "statistics do not count every result once")
    return 0
}

@_cdecl("StreamChunksFuzz_main")
func StreamChunksFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, streamChunksFuzz)
}
