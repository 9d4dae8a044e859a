import Foundation
import SonoGeometry
import SonoSim
import SonoTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private let repoRoot = Repository.root.path

private let shippedPatients = [
    "default", "lean-athlete", "obese", "elderly-horizontal-heart", "tachycardic-small",
]

/// The error parsing `toml` throws, nil when it parses.
private func parseError(_ toml: String, source: String = "hardware/patients/x.toml") -> PatientFileError? {
    do {
        _ = try PatientParameters.parse(toml: toml, source: source)
        return nil
    } catch {
        return error
    }
}

@Suite struct PatientFileTests {
    @Test(arguments: shippedPatients)
    func shippedFileLoads(stem: String) throws {
        let patient = try PatientParameters.load(path: "\(repoRoot)/hardware/patients/\(stem).toml")
        #expect(!patient.name.isEmpty)
    }

    @Test func shippedPatientsDiffer() throws {
        let patients = try shippedPatients.map { stem in
            try PatientParameters.load(path: "\(repoRoot)/hardware/patients/\(stem).toml")
        }
        #expect(Set(patients.map(\.seed)).count == patients.count, "every shipped patient has its own seed")
        let athlete = patients[1], obese = patients[2], elderly = patients[3], small = patients[4]
        #expect(athlete.heartRateBPM < 60 && athlete.imaging.windowQuality >= 0.9)
        #expect(obese.chest.skinToHeartMM >= 40 && obese.imaging.windowQuality < 0.5)
        #expect(elderly.heart.longAxisElevationDeg <= 15 && elderly.heart.scale > 1.1)
        #expect(small.heartRateBPM >= 110 && small.chest.ribSpacingMM <= 20 && small.heart.scale < 0.9)
    }

    @Test func defaultFileIsTheStructDefaults() throws {
        let loaded = try PatientParameters.load(path: "\(repoRoot)/hardware/patients/default.toml")
        #expect(loaded == PatientParameters())
    }

    @Test func omittedKeysTakeDefaults() throws {
        let empty = try PatientParameters.parse(toml: "", source: "patients/empty.toml")
        var expected = PatientParameters()
        expected.name = "empty"  // the file's stem
        #expect(empty == expected)

        let partial = try PatientParameters.parse(toml: """
            heart_rate_bpm = 90
            [chest]
            rib_spacing_mm = 30
            """, source: "partial.toml")
        expected = PatientParameters()
        expected.name = "partial"
        expected.heartRateBPM = 90
        expected.chest.ribSpacingMM = 30
        #expect(partial == expected)
    }

    @Test func everyKeyIsRead() throws {
        let patient = try PatientParameters.parse(toml: """
            name = "Test Patient"
            seed = 12345
            heart_rate_bpm = 65.5
            [heart]
            center_mm = [30, -10.5, -90]
            long_axis_deg = [35, 20]
            rotation_deg = -12
            scale = 1.2
            [chest]
            rib_spacing_mm = 22
            skin_to_heart_mm = 30
            stiffness_n_per_mm = 1.5
            breathing_amplitude_mm = 6
            breathing_rate_bpm = 12
            radius_mm = 200
            [imaging]
            noise = 0.1
            window_quality = 0.9
            """, source: "all.toml")
        #expect(patient.name == "Test Patient")
        #expect(patient.seed == 12345)
        #expect(patient.heartRateBPM == 65.5)
        #expect(patient.heart.centerMM == Vector3(30, -10.5, -90))
        #expect(patient.heart.longAxisAzimuthDeg == 35)
        #expect(patient.heart.longAxisElevationDeg == 20)
        #expect(patient.heart.rotationDeg == -12)
        #expect(patient.heart.scale == 1.2)
        #expect(patient.chest.ribSpacingMM == 22)
        #expect(patient.chest.skinToHeartMM == 30)
        #expect(patient.chest.stiffnessNPerMM == 1.5)
        #expect(patient.chest.breathingAmplitudeMM == 6)
        #expect(patient.chest.breathingRateBPM == 12)
        #expect(patient.chest.radiusMM == 200)
        #expect(patient.imaging.noise == 0.1)
        #expect(patient.imaging.windowQuality == 0.9)
    }

    @Test func unknownKeyNamesKeyAndFile() throws {
        let error = try #require(parseError("[chest]\nrib_spacng_mm = 24\n"))
        #expect(error.key == "chest.rib_spacng_mm")
        #expect(error.source == "hardware/patients/x.toml")
        #expect(error.suggestion == "chest.rib_spacing_mm")
        #expect(error.description
            == "hardware/patients/x.toml: unknown key chest.rib_spacng_mm; did you mean chest.rib_spacing_mm?")

        let topLevel = try #require(parseError("heartrate = 70\n"))
        #expect(topLevel.key == "heartrate")
        #expect(topLevel.suggestion == "heart_rate_bpm")

        let noUnit = try #require(parseError("[chest]\nrib_spacing = 24\n"))
        #expect(noUnit.suggestion == "chest.rib_spacing_mm")

        let unrelated = try #require(parseError("[imaging]\nfrequency_mhz = 3.5\n"))
        #expect(unrelated.suggestion == nil)
        #expect(unrelated.description == "hardware/patients/x.toml: unknown key imaging.frequency_mhz; "
            + "known keys here: imaging.noise, imaging.window_quality")
    }

    @Test func unknownTableIsAnError() throws {
        let error = try #require(parseError("[lungs]\nvolume_ml = 5000\n"))
        #expect(error.key == "lungs")
        #expect(error.description.contains("unknown key lungs"))
        let nested = try #require(parseError("[heart.valves]\nmitral = 1\n"))
        #expect(nested.key == "heart.valves")
    }

    @Test func outOfRangeNamesKeyValueRangeAndUnit() throws {
        let error = try #require(parseError("[chest]\nrib_spacing_mm = 50\n"))
        #expect(error == .outOfRange(source: "hardware/patients/x.toml", key: "chest.rib_spacing_mm",
                                     value: 50, range: 15...40, unit: "mm"))
        #expect(error.description == "hardware/patients/x.toml: chest.rib_spacing_mm = 50 is outside 15…40 mm")

        let component = try #require(parseError("[heart]\ncenter_mm = [35, -15, 20]\n"))
        #expect(component.key == "heart.center_mm[2] (z)")
        #expect(component.description.contains("= 20 is outside -200…-40 mm"))

        let unitless = try #require(parseError("[imaging]\nnoise = 1.5\n"))
        #expect(unitless.description == "hardware/patients/x.toml: imaging.noise = 1.5 is outside 0…1")
    }

    @Test func seedMustBeANonNegativeInteger() throws {
        let negative = try #require(parseError("seed = -1\n"))
        #expect(negative.key == "seed")
        if case .outOfRange = negative {} else { Issue.record("expected outOfRange, got \(negative)") }
        let fractional = try #require(parseError("seed = 1.5\n"))
        if case .wrongType(_, "seed", let expected, _) = fractional {
            #expect(expected.contains("integer"))
        } else {
            Issue.record("expected wrongType, got \(fractional)")
        }
        let big = try PatientParameters.parse(toml: "seed = 9007199254740991\n", source: "s.toml")
        #expect(big.seed == 9_007_199_254_740_991)
    }

    @Test func wrongType() throws {
        let string = try #require(parseError("heart_rate_bpm = \"fast\"\n"))
        #expect(string == .wrongType(source: "hardware/patients/x.toml", key: "heart_rate_bpm",
                                     expected: "a number", found: "a string"))
        #expect(string.description == "hardware/patients/x.toml: heart_rate_bpm must be a number, not a string")

        let shortVector = try #require(parseError("[heart]\ncenter_mm = [1, 2]\n"))
        #expect(shortVector.key == "heart.center_mm")
        #expect(shortVector.description.contains("an array of 3 numbers [x, y, z]"))
        #expect(shortVector.description.contains("not an array of 2 integers"))

        let stringInVector = try #require(parseError("[heart]\nlong_axis_deg = [40, \"up\"]\n"))
        #expect(stringInVector.key == "heart.long_axis_deg")

        let scalarTable = try #require(parseError("heart = 3\n"))
        #expect(scalarTable.key == "heart")
        let name = try #require(parseError("name = 7\n"))
        #expect(name.key == "name")
    }

    @Test func integersAreAcceptedAsNumbers() throws {
        let patient = try PatientParameters.parse(toml: "[heart]\nscale = 1\n[imaging]\nnoise = 0\n",
                                                  source: "i.toml")
        #expect(patient.heart.scale == 1)
        #expect(patient.imaging.noise == 0)
    }

    @Test func badSyntaxGivesLine() throws {
        let error = try #require(parseError("heart_rate_bpm = 70\n[chest\nrib_spacing_mm = 24\n"))
        guard case .syntax(let source, let line, _, let message) = error else {
            Issue.record("expected a syntax error, got \(error)")
            return
        }
        #expect(source == "hardware/patients/x.toml")
        #expect(line == 2)
        #expect(!message.isEmpty)
        #expect(error.description.hasPrefix("hardware/patients/x.toml:2"))

        let duplicate = try #require(parseError("seed = 1\nseed = 2\n"))
        if case .syntax = duplicate {} else { Issue.record("duplicate key: expected syntax, got \(duplicate)") }
    }

    /// The patient-toml fuzz target's inputs (Fuzz/regressions/patient-toml): mutated shipped
    /// patients that aborted the TOML parser (toml++ 3.4.0's parse_key and parse_value
    /// preconditions) are a syntax error naming the file, line and column.
    @Test func whatAbortedTheTOMLParserIsASyntaxError() throws {
        let cases: [(file: String, line: Int, column: Int, says: String)] = [
            ("patient-toml-tomlpp-parse_key-assert", 13, 2, "a table header must start with a key"),
            ("patient-toml-tomlpp-parse_array-close-brace", 9, 18, "'}' closes no inline table"),
        ]
        for (file, line, column, says) in cases {
            let bytes = try #require(FileManager.default.contents(atPath: Repository.url("Fuzz/regressions/patient-toml/\(file)").path))
            let error = try #require(parseError(String(decoding: bytes, as: UTF8.self)), "\(file) accepted")
            #expect(error.description.hasPrefix("hardware/patients/x.toml:\(line):\(column): not valid TOML: \(says)"), "\(file): \(error)")
        }
        let header = try #require(parseError("seed = 1\n[[[heart]]]\n"))
        #expect(header.description == "hardware/patients/x.toml:2:3: not valid TOML: a table header must start with a key (bare: A-Z a-z 0-9 _ -, or quoted), not '['")
    }

    @Test func heartInsideTheChestWallIsInconsistent() throws {
        // Centre 60 mm deep, radius 45 mm: the front of the heart is 15 mm deep, inside a 25 mm wall.
        let error = try #require(parseError("[heart]\ncenter_mm = [35, -15, -60]\n"))
        guard case .inconsistent(let source, let key, let reason) = error else {
            Issue.record("expected inconsistent, got \(error)")
            return
        }
        #expect(source == "hardware/patients/x.toml")
        #expect(key == "heart.center_mm")
        #expect(reason.contains("chest.skin_to_heart_mm = 25"))
        #expect(reason.contains("z ≤ -70"))

        // The same heart is fine under a thinner wall, or smaller.
        _ = try PatientParameters.parse(toml: "[heart]\ncenter_mm = [35, -15, -60]\n[chest]\nskin_to_heart_mm = 15\n",
                                        source: "ok.toml")
        _ = try PatientParameters.parse(toml: "[heart]\ncenter_mm = [35, -15, -60]\nscale = 0.7\n", source: "ok.toml")
        // A thick wall pushes the default heart into it.
        let thick = try #require(parseError("[chest]\nskin_to_heart_mm = 50\n"))
        #expect(thick.key == "heart.center_mm")
    }

    @Test(arguments: ["nan", "inf", "-inf", "+nan"])
    func nonFiniteRejected(literal: String) throws {
        let error = try #require(parseError("[chest]\nradius_mm = \(literal)\n"))
        #expect(error.key == "chest.radius_mm")
        if case .notFinite = error {} else { Issue.record("expected notFinite, got \(error)") }
        let inVector = try #require(parseError("[heart]\ncenter_mm = [35, \(literal), -85]\n"))
        #expect(inVector.key == "heart.center_mm[1] (y)")
    }

    @Test func unreadableFile() throws {
        let path = "\(repoRoot)/hardware/patients/does-not-exist.toml"
        do {
            _ = try PatientParameters.load(path: path)
            Issue.record("loaded a missing file")
        } catch {
            #expect(error.source == path)
            if case .unreadable(_, let reason) = error {
                #expect(reason.contains("No such file"))
            } else {
                Issue.record("expected unreadable, got \(error)")
            }
        }
    }

    @Test func nameDefaultsToFileStem() throws {
        let path = "/tmp/sono-patient-\(getpid()).toml"
        let text = "heart_rate_bpm = 75\n"
        let file = try #require(fopen(path, "w"))
        fputs(text, file)
        fclose(file)
        defer { unlink(path) }
        let patient = try PatientParameters.load(path: path)
        #expect(patient.name == "sono-patient-\(getpid())")
        #expect(patient.heartRateBPM == 75)
    }

    @Test func docListsEveryKey() throws {
        let path = "\(repoRoot)/docs/VIRTUAL-PATIENT.md"
        let file = try #require(fopen(path, "r"), "docs/VIRTUAL-PATIENT.md missing")
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count == 0 { break }
            bytes += buffer[0..<count]
        }
        let text = String(decoding: bytes, as: UTF8.self)
        for key in PatientKey.all.map(\.path) + ["name"] {
            #expect(text.contains("`\(key)`"), "docs/VIRTUAL-PATIENT.md does not list \(key)")
        }
    }
}
