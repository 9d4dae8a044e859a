// libFuzzer target: the MCAP reader (SonoRecord.MCAPReader), given a foreign or damaged recording
// as `sonoctl session info` / `replay` / `report` open one.
//
// Invariants: no crash or out-of-bounds access (ASan); a bad file is a thrown RecordError (typed,
// never a trap); allocation stays bounded whatever a record length claims (-malloc_limit_mb); a
// tolerant read never throws, delivers at least what a strict read delivered before it failed,
// and exactly what a strict read delivers when that succeeds; every message it delivers is on a
// channel with that id.

import FuzzSupport
import SonoRecord

let scratch = ScratchFile("reader.mcap")

@_cdecl("LLVMFuzzerTestOneInput")
public func mcapReaderFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let reader = scratch.opened(UnsafeRawBufferPointer(start: data, count: size), { path throws(RecordError) in try MCAPReader(path: path) }) else { return 0 }
    _ = reader.messageTimeRange
    var strictCount = 0
    var strict: MCAPReadResult?
    do {
        strict = try reader.forEachMessage { message in
            invariant(message.channel.topic == reader.channels[message.channel.id]?.topic || reader.channels[message.channel.id] == nil,
                      "a message's channel disagrees with the reader's channel \(message.channel.id)")
            strictCount += 1
        }
    } catch let error as RecordError {
        _ = error.description
    } catch {
        invariant(false, "the strict read threw an untyped error: \(error)")
    }
    let tolerant: MCAPReadResult
    var tolerantCount = 0
    do { tolerant = try reader.forEachMessage(tolerant: true) { _ in tolerantCount += 1 } } catch {
        invariant(false, "a tolerant read threw: \(error)")
        return 0
    }
    invariant(tolerant.messages == tolerantCount, "the tolerant read reports \(tolerant.messages) messages, delivered \(tolerantCount)")
    if let strict {
        invariant(strict.messages == strictCount && tolerant.messages == strictCount && tolerant.damage == nil
                  && tolerant.complete == strict.complete, "tolerant and strict reads of an intact file differ")
    } else {
        invariant(tolerantCount >= strictCount, "the tolerant read delivered \(tolerantCount), fewer than the strict read's \(strictCount)")
        invariant(tolerant.damage != nil, "the strict read failed but the tolerant read reports no damage")
    }
    return 0
}

@_cdecl("MCAPReaderFuzz_main")
func MCAPReaderFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, mcapReaderFuzz)
}
