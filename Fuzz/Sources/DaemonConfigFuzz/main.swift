// libFuzzer target: the daemon's configuration (/etc/sono/sono.toml, systemd/sono.toml.example).
//
// Invariants: no crash (ASan; TOMLKit's C++ parser included); a bad file is a thrown
// ConfigurationError with a message naming the file; parsing is deterministic.

import FuzzSupport
import SonoDaemon

@_cdecl("LLVMFuzzerTestOneInput")
public func daemonConfigFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        let configuration = try DaemonConfiguration.parse(text, path: "fuzz.toml")
        let again = try DaemonConfiguration.parse(text, path: "fuzz.toml")
        invariant(configuration.modelPath == again.modelPath && configuration.safetyProfilePath(simulated: true) == again.safetyProfilePath(simulated: true),
                  "parsing the same text twice gives different configurations")
        _ = configuration.requiresRealTime(simulated: false)
    } catch {
        invariant(error.description.contains("fuzz.toml"), "an error that does not name the file: \(error)")
    }
    return 0
}

@_cdecl("DaemonConfigFuzz_main")
func DaemonConfigFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, daemonConfigFuzz)
}
