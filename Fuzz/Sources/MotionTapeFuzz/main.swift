// libFuzzer target: the motion tape (/motion/tape in a recording, docs/RECORDING.md), one entry
// per input, as `sonoctl session replay` reads it from a foreign or damaged file.
//
// Invariants: no crash (ASan); a bad entry is a thrown TapeDecodeError, never a trap; an entry
// that decodes re-encodes to bytes that decode to the same entry, and encoding is canonical
// (encode(decode(encode(e))) == encode(e)); doubles and floats keep their bits (checked by the
// byte comparison, which NaNs would fail under ==).

import FuzzSupport
import SonoMotion

@_cdecl("LLVMFuzzerTestOneInput")
public func motionTapeFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    let entry: TapeEntry
    do { entry = try MotionTapeCodec.decode(bytes) } catch {
        _ = error.description
        return 0
    }
    var encoded: [UInt8] = []
    MotionTapeCodec.encode(entry, into: &encoded)
    let again: TapeEntry
    do { again = try MotionTapeCodec.decode(encoded) } catch {
        invariant(false, "a decoded entry re-encodes to bytes that do not decode: \(error)")
        return 0
    }
    var reencoded: [UInt8] = []
    MotionTapeCodec.encode(again, into: &reencoded)
    invariant(encoded == reencoded, "tape encoding is not canonical")
    invariant(encoded.count <= bytes.count, "an entry re-encodes longer (\(encoded.count)) than it was read (\(bytes.count))")
    return 0
}

@_cdecl("MotionTapeFuzz_main")
func MotionTapeFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, motionTapeFuzz)
}
