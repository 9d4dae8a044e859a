// libFuzzer target: board frames (PROTOCOL.md §1.3), the whole input fed to the stream decoder at once.
//
// Invariants checked on every input:
// - the stream decoder never crashes or reads out of bounds (AddressSanitizer watches);
// - every callback is counted exactly once in the decoder's statistics;
// - every frame that decodes re-encodes canonically: encode(decode(x)) is a fixed point.

import FuzzSupport
import SonoProtocol

@_cdecl("LLVMFuzzerTestOneInput")
public func frameDecoderFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    var decoder = StreamDecoder()
    var callbacks: UInt64 = 0
    decoder.feed(input) { result in
        callbacks += 1
        guard case .success(let frame) = result else { return }
        do {
            let wire = try FrameCodec.encode(frame)
            let again = try FrameCodec.encode(try FrameCodec.decode(wire: wire))
            invariant(wire == again, "re-encoding a decoded frame is not canonical")
        } catch {
            invariant(false, "a decoded frame failed to re-encode: \(error)")
        }
    }
    invariant(callbacks == decoder.statistics.frames + decoder.statistics.droppedFrames,
              "decoder statistics disagree with its callbacks")
    return 0
}

@_cdecl("FrameDecoderFuzz_main")
func FrameDecoderFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, frameDecoderFuzz)
}
