// libFuzzer target: MCAPRecovery (`sonoctl session recover`), given a foreign or damaged file.
//
// Invariants: no crash or out-of-bounds access (ASan); failure is a thrown RecordError; bounded
// allocation (-malloc_limit_mb); what it writes is a complete recording: MCAPReader opens it and
// reads it strictly with its summary checked, with exactly the reported number of messages; and
// recovery is idempotent: recovering the output finds it complete, loses nothing and keeps every
// message.

import FuzzSupport
import SonoRecord

let scratch = ScratchFile("recovery.mcap")

@_cdecl("LLVMFuzzerTestOneInput")
public func mcapRecoveryFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    scratch.write(UnsafeRawBufferPointer(start: data, count: size))
    let output = scratch.sibling(".recovered")
    let report: MCAPRecoveryReport
    do { report = try MCAPRecovery.recover(from: scratch.path, to: output) } catch {
        _ = error.description
        return 0
    }
    _ = report.description
    invariant(report.bytesLost <= report.inputBytes, "lost \(report.bytesLost) of \(report.inputBytes) bytes")
    do {
        let reader = try MCAPReader(path: output)
        let result = try reader.forEachMessage { _ in }
        invariant(result.complete, "the recovered file's summary does not check")
        invariant(result.messages == report.messages, "recovered \(report.messages) messages, the output holds \(result.messages)")
        let again = try MCAPRecovery.recover(from: output, to: scratch.sibling(".again"))
        invariant(again.inputWasComplete && again.bytesLost == 0 && again.messages == report.messages,
                  "recovering a recovered file is not a no-op: \(again)")
    } catch {
        invariant(false, "the recovered file does not read back: \(error)")
    }
    return 0
}

@_cdecl("MCAPRecoveryFuzz_main")
func MCAPRecoveryFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, mcapRecoveryFuzz)
}
