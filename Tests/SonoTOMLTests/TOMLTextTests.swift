// TOMLText.check and TOMLDocument.parse: what the bundled toml++ 3.4.0 cannot parse safely (the
// preconditions of its parse_key(), parse_value() and parse_time(); the TOML fuzz targets' findings) is
// refused with a line and column before the parser sees it, nothing valid is refused, and NUL is
// refused.

import Foundation
import SonoTestSupport
import SonoTOML
import Testing

@Suite struct TOMLTextTests {
    func refusal(_ text: String) -> TOMLSyntaxError? {
        do { try TOMLText.check(text) } catch { return error }
        return nil
    }

    @Test func theFuzzersInputIsRefusedWithItsLine() throws {
        // A shipped patient file, mutated: its line 13 is the header `[`, four bytes that are not
        // UTF-8, `ing]`.
        let data = try Data(contentsOf: Repository.url("Fuzz/regressions/patient-toml/patient-toml-tomlpp-parse_key-assert"))
        let text = String(decoding: data, as: UTF8.self)
        let error = try #require(refusal(text))
        #expect(error.line == 13)
        #expect(error.column == 2)
        #expect(error.message.contains("a table header must start with a key"))
        #expect(throws: TOMLSyntaxError.self) { try TOMLDocument.parse(text) }
    }

    /// A shipped patient file, mutated: `center_mm = [32, }_n_per_mm-12, -75]` on line 9.
    @Test func theFuzzersArrayInputIsRefusedWithItsLine() throws {
        let data = try Data(contentsOf: Repository.url("Fuzz/regressions/patient-toml/patient-toml-tomlpp-parse_array-close-brace"))
        let error = try #require(refusal(String(decoding: data, as: UTF8.self)))
        #expect(error.line == 9 && error.column == 18)
        #expect(error.message == "'}' closes no inline table (an array is open)")
    }

    /// Each breaks parse_value()'s precondition in toml++ 3.4.0 (a value starts here) inside an
    /// array, or is a `}` or line break no valid text has there.
    @Test(arguments: ["a = [1, }]", "a = [}]", "a = [\n  1,\n  }\n]", "a = [\u{2028}]", "a = [1,\u{0085}2]",
                      "a = [\u{2029}]", "a = }", "[a}]", "b = {c = [}]}", "x = 1 \u{2028}"])
    func valuesThatCannotStartAreRefused(text: String) throws {
        let error = try #require(refusal(text), "accepted: \(text.debugDescription)")
        #expect(error.line != nil && error.column != nil)
        #expect(throws: TOMLSyntaxError.self) { try TOMLDocument.parse(text) }
    }

    /// The campaign's inputs that broke toml++'s preconditions in date-times: a mutated patient
    /// file, `name =1978-05-27T` then four 0xFF bytes, and a mutated sono.toml,
    /// `protocol =1979-05-27Tforce_sensor07:32:00Z` (toml++ skips the letters when it decides the
    /// value is a date-time; parse_time() expects a digit), and `seed =1978-05-27 0 #nf` and
    /// `seed =1` 0xA3 `78-05-27 0 #nf` (the scan after a space and one digit expects the value to
    /// go on).
    @Test(arguments: [("Fuzz/regressions/patient-toml/patient-toml-tomlpp-parse_time-after-T", 3),
                      ("Fuzz/regressions/daemon-config/sono-toml-date-T-then-letters", 4),
                      ("Fuzz/regressions/patient-toml/patient-toml-tomlpp-date-space-one-digit", 2),
                      ("Fuzz/regressions/patient-toml/patient-toml-tomlpp-date-like-space-one-digit", 2)])
    func theFuzzersDateTimeInputsAreRefused(path: String, line: Int) throws {
        let text = String(decoding: try Data(contentsOf: Repository.url(path)), as: UTF8.self)
        let error = try #require(refusal(text))
        #expect(error.line == line)
        #expect(error.message.contains("date-time") && error.message.contains("HH:MM:SS"))
        #expect(throws: TOMLSyntaxError.self) { try TOMLDocument.parse(text) }
    }

    /// A date's `T` not followed by the hour, or a value followed by a space and one digit,
    /// wherever a value starts: after `=`, in arrays (also on a later line), in inline tables.
    @Test(arguments: ["a = 1979-05-27Tx:00", "a = 1979-05-27tz:", "a = [1979-05-27T+:]", "a = [1, 1979-05-27T_7:]",
                      "a = [\n  1,\n  1979-05-27TZ:00\n]", "a = { b = 1979-05-27Tab:0 }", "a=1979-05-27T:",
                      "a = 1979-05-27 0 ", "a = 1979-05-27 0\n", "a = [1979-05-27 1]", "a = 1979-05-27 0:00:00",
                      "a = 1_979-05-27 0 ", "a = 1\u{A3}79-05-27 0,", "a = [1, 2 3]"])
    func aDateTimeWithoutItsTimeIsRefused(text: String) throws {
        let error = try #require(refusal(text), "accepted: \(text.debugDescription)")
        #expect(error.message.contains("date-time") && error.message.contains("HH:MM:SS"))
        #expect(throws: TOMLSyntaxError.self) { try TOMLDocument.parse(text) }
    }

    /// Date-times, and keys that look like one (bare keys allow digits, `-` and letters),
    /// including an array-of-tables header's.
    @Test(arguments: ["a = 1979-05-27T07:32:00Z", "a = 1979-05-27t07:32:00.5+01:00", "a = 1979-05-27 07:32:00",
                      "a = [1979-05-27T07:32:00, 1979-05-28]", "1979-05-27Tab = 1",
                      "a = 1979-05-27 # 0 comment", "a = [1979-05-27 , 1]", "a = 1979-05-27 07:32:00Z", "[1979-05-27Tx]\nb = 1",
                      "[[1979-05-27Tx]]\nb = 1", "t = { 1979-05-27Tx = 1 }", "s = \"1979-05-27Tx:\""])
    func dateTimesAndDateLikeKeysAreAccepted(text: String) throws {
        #expect(refusal(text) == nil, "refused: \(text.debugDescription)")
        _ = try TOMLDocument.parse(text)
    }

    /// Each breaks parse_key()'s precondition in toml++ 3.4.0 (an abort in a debug build),
    /// among them the reports upstream: `[&` (toml++ #294), `[[[1]]]` (#301), `[[[testme]]`
    /// (TOMLKit #30).
    @Test(arguments: ["[&", "[[[1]]]", "[[[testme]]", "[[=", "[#]", "[\n", "[ \t.a]", "[[ [a]]", "[ [a]",
                      "[\u{FFFD}ing]", "[=]\nx = 1", "\u{FEFF}[&", "a = 1\n  [%]", "[a]\n\n[\u{00E9}]",
                      "x = [\n 1,\n]\n[!]", "s = \"\"\"\n[ok]\n\"\"\"\n[*]", "t = '[' # [\n[@]"])
    func headersThatStartNoKeyAreRefused(text: String) throws {
        let error = try #require(refusal(text), "accepted: \(text.debugDescription)")
        #expect(error.message.contains("table header"))
        #expect(error.line != nil && error.column != nil)
        #expect(throws: TOMLSyntaxError.self) { try TOMLDocument.parse(text) }
    }

    @Test func thePositionIsTheOffendingCharacters() throws {
        let error = try #require(refusal("name = \"x\"\n\n[heart]\nr = 1\n  [[ \u{00E9}]\n"))
        #expect(error.line == 5)
        #expect(error.column == 6)
        #expect(error.description == "line 5, column 6: a table header must start with a key (bare: A-Z a-z 0-9 _ -, or quoted), not byte 0xC3")
    }

    /// Brackets inside strings, comments and multi-line arrays are not headers.
    @Test(arguments: ["a = \"\"\"\n[&\n\"\"\"\n", "a = '''\n[#\n'''\n", "b = [\n  [+1, 2],\n  [-3],\n]\n",
                      "c = [\n  # [&\n  [[1]],\n]\n", "d = \"x\\\"[&\"\n", "e = 'x'\n[ \"quoted key\" ]\n[[ 'arr' ]]\n",
                      "[a.b]\n[[c]]\n[ d ]\n[-_0]\n", "h = { a = [1, { b = 2 }], c = {} }\n",
                      "i = \"\u{2028}}\" # \u{2029} }\n", "j = [ # }\n]\n", "f = \"\"\"x\\\n[&\"\"\"\n", "g = \"\"\"x\"\"\"\"\n[ok]\n"])
    func validTextIsAccepted(text: String) throws {
        #expect(refusal(text) == nil, "refused: \(text.debugDescription)")
        _ = try TOMLDocument.parse(text)
    }

    /// Every TOML file the repository ships passes the check and parses.
    @Test func theShippedFilesAreAccepted() throws {
        let paths = ["hardware/arm.toml", "hardware/safety.toml", "hardware/safety-simulation.toml",
                     "hardware/scan-prior.toml", "systemd/sono.toml.example"]
        let patients = try FileManager.default.contentsOfDirectory(atPath: Repository.url("hardware/patients").path)
            .filter { $0.hasSuffix(".toml") }.map { "hardware/patients/\($0)" }
        #expect(patients.count >= 5)
        for path in paths + patients {
            let text = try String(contentsOf: Repository.url(path), encoding: .utf8)
            #expect(refusal(text) == nil, "\(path) refused")
            _ = try TOMLDocument.parse(text)
        }
    }

    /// TOMLKit hands the text to the parser as a C string: without the check, everything after
    /// a NUL would be dropped without a word.
    @Test func nulIsRefused() throws {
        let error = try #require(refusal("seed = 1\nname = \"a\"\0\n[&\n"))
        #expect(error.line == 2 && error.column == 11)
        #expect(error.message.contains("NUL"))
        #expect(refusal("# comment \0\n") != nil)
        #expect(refusal("s = 'a\0'\n") != nil)
    }

    @Test func parseErrorsCarryTheirPosition() throws {
        let error = try #require(throws: TOMLSyntaxError.self) { try TOMLDocument.parse("a = 1\nb = \n") }
        #expect(error.line == 2)
        #expect(error.description.hasPrefix("line 2"))
    }
}
