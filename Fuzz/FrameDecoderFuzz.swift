// libFuzzer target for the frame decoder (PROTOCOL.md §1.3). Built together with the
// SonoProtocol sources as one module by `make fuzz` (see README: Fuzzing).
//
// Invariants checked on every input:
// - the stream decoder never crashes or reads out of bounds (AddressSanitizer watches);
// - every callback is counted exactly once in the decoder's statistics;
// - every frame that decodes re-encodes canonically: encode(decode(x)) is a fixed point.

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
            precondition(wire == again, "re-encoding a decoded frame is not canonical")
        } catch {
            preconditionFailure("a decoded frame failed to re-encode: \(error)")
        }
    }
    precondition(callbacks == decoder.statistics.frames + decoder.statistics.droppedFrames,
                 "decoder statistics disagree with its callbacks")
    return 0
}
