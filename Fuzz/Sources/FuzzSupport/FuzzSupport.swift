// What the fuzz targets share: failing loudly when an invariant breaks, and a scratch file for
// the readers whose public entry point takes a path (MCAP, ONNX).

#if canImport(Glibc)
import Glibc
#endif

/// Stops the run with `message` when an invariant does not hold: libFuzzer sees the trap as a
/// crash and keeps the input. (`precondition` would do, but this names the target's invariant.)
public func invariant(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                      file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError("invariant broken: \(message())", file: file, line: line) }
}

/// A file that holds the current input, rewritten for each run, for parsers that read a path.
/// It lives in /dev/shm when there is one (no disk I/O per execution), named after the process
/// so that parallel fuzzers (-jobs) do not share it.
public final class ScratchFile: Sendable {
    public let path: String

    public init(_ name: String) {
        let directory = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        path = "\(directory)/sono-fuzz-\(getpid())-\(name)"
    }

    /// Replaces the file's contents with `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        invariant(fd >= 0, "cannot create the scratch file \(path) (errno \(errno))")
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            invariant(n > 0, "cannot write the scratch file \(path) (errno \(errno))")
            done += n
        }
        close(fd)
    }

    /// Writes `bytes` to the file and opens it with `open`; nil when `open` refuses it (its
    /// error's description is rendered too: that is input-driven code as well).
    public func opened<T, E: Error & CustomStringConvertible>(_ bytes: UnsafeRawBufferPointer,
                                                              _ open: (String) throws(E) -> T) -> T? {
        write(bytes)
        do { return try open(path) } catch {
            _ = error.description
            return nil
        }
    }

    /// A sibling path (for a reader's output), removed before it is returned.
    public func sibling(_ suffix: String) -> String {
        let other = path + suffix
        unlink(other)
        return other
    }
}

/// Reads an input's bytes front to back, for targets that draw choices (split points, sizes)
/// from the input itself. Reading past the end yields zeros.
public struct FuzzInput {
    public let bytes: UnsafeRawBufferPointer
    public private(set) var offset = 0

    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    public var remaining: Int { bytes.count - offset }

    public mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func u16() -> UInt16 { UInt16(byte()) | UInt16(byte()) << 8 }

    /// The rest of the input.
    public mutating func rest() -> UnsafeRawBufferPointer {
        defer { offset = bytes.count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset...])
    }
}

/// libFuzzer's driver (libclang_rt.fuzzer): runs `callback` as LLVMFuzzerTestOneInput would be.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

/// The process's entry point for a fuzz target. SwiftPM links an executable target with
/// `main = <Module>_main` (so that tests can import executables), which a target built with
/// -parse-as-library does not define: each target defines that symbol and calls this, which hands
/// the command line to libFuzzer's driver with the target's test function.
public func runFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                      _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, callback)
}
