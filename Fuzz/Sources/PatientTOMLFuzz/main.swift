// libFuzzer target: patient files (hardware/patients/*.toml, `sonod-sim --patient`,
// `sonoctl sim … --patient`), text from anyone.
//
// Invariants: no crash (ASan; TOMLKit's C++ parser included); a bad file is a thrown
// PatientFileError with a message; an accepted patient passed validation (parse validates), and
// its description and error texts are total.

import FuzzSupport
import SonoSim

@_cdecl("LLVMFuzzerTestOneInput")
public func patientTOMLFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        let patient = try PatientParameters.parse(toml: text, source: "fuzz.toml")
        let again = try PatientParameters.parse(toml: text, source: "fuzz.toml")
        invariant(patient.name == again.name, "parsing the same text twice gives different patients")
    } catch {
        invariant(!error.description.isEmpty, "an error without a message")
        _ = (error.key, error.suggestion, error.source)
    }
    return 0
}

@_cdecl("PatientTOMLFuzz_main")
func PatientTOMLFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, patientTOMLFuzz)
}
