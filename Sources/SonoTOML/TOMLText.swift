// What Sono checks in TOML text before TOMLKit's parser sees it. TOMLKit 0.6 bundles toml++
// 3.4.0, whose parser calls two of its functions without checking their precondition, which
// the patient-toml fuzz target broke with mutated patient files:
//
// - parse_table_header() calls parse_key() without checking that a key starts there: after a
//   header's `[` (or `[[`) and any spaces, a character that starts no key (`[&`, `[[[`, `[=`,
//   `[#`, `[` then a line break or a non-ASCII byte). Reported upstream as toml++ #294 and
//   TOMLKit #30; toml++ fixed it after 3.4.0 (#301), and no TOMLKit release bundles the fix.
// - parse_array() calls parse_value() on what is not whitespace, a comment, `,` or `]`, which
//   may still be a character that ends a value: `}` (`[1, }]`), or the Unicode line breaks
//   U+0085, U+2028 and U+2029 that toml++ counts as whitespace but does not skip.
// - parse_value() takes a value with digits, `-`, `:` and a `T` for a date-time, and
//   parse_date_time() then calls parse_time() after the date's `T` without checking that a digit
//   follows (`1979-05-27Tx:00`, or any letters toml++ ignores when it classifies the value).
//   For a date-time with a space instead of the `T` (any value of ten characters besides `_`
//   with `-` at the fifth and eighth), it reads the space and one digit, then scans on without
//   checking that the value goes on (`1979-05-27 0 `, `1_978-05-27 0 `).
//
// In a debug build a broken precondition is an assertion that aborts the process; in a release
// build it is a compiler assumption (TOML_ASSERT_ASSUME), so the parse is undefined behaviour.
//
// Every such text is invalid TOML (a header is `[` or `[[`, spaces or tabs, then a bare or quoted
// key; `}` only closes an inline table; lines end with LF or CRLF; a date's `T` is followed by
// the time's hour; no value is followed by a space and one digit, an hour having two), so
// refusing it refuses nothing valid. Finding them needs a lexer just good enough to know where a
// statement starts, where a value starts and which bracket is open: toml++ reads a header only at
// the start of the document or of a line at the top level, never inside a string, a comment or a
// multi-line array. Where the text is malformed before, the parser stops at that earlier error
// and never reaches them.
//
// The check also refuses NUL: TOMLKit passes the text on as a C string, which would end at the
// first NUL and parse only what came before it, silently dropping the rest of the file.

public enum TOMLText {
    /// Throws for the first table header that starts no key, `}` that closes no inline table,
    /// Unicode line break outside a string or comment, date-time value without a time after its
    /// `T`, value followed by a space and a single digit, or NUL byte.
    public static func check(_ text: String) throws(TOMLSyntaxError) {
        var scanner = Scanner(Array(text.utf8))
        try scanner.run()
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        var line = 1
        /// Index of the current line's first byte, for columns.
        var lineStart = 0
        /// Open `[` and `{` outside strings and comments, innermost last: arrays and inline
        /// tables, and the brackets of a header while it is read.
        var open: [UInt8] = []
        var atStatementStart = true
        /// The next token is a value: after `=`, and after an array's `[` or `,`.
        var expectsValue = false

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        /// 1-based column of `position` in Unicode scalars, as toml++ counts them.
        func column(_ position: Int) -> Int {
            1 + bytes[lineStart..<position].reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) }
        }

        func error(at position: Int, _ message: String) -> TOMLSyntaxError {
            TOMLSyntaxError(line: line, column: column(position), message: message)
        }

        /// TOMLKit hands the text on as a C string, which would end at the NUL.
        func nulByte() -> TOMLSyntaxError { error(at: index, "a NUL byte; TOML text cannot contain one") }

        mutating func newline() {
            line += 1
            lineStart = index + 1
        }

        mutating func run() throws(TOMLSyntaxError) {
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3; lineStart = 3 }  // the parser skips a BOM
            while index < bytes.count {
                let byte = bytes[index]
                switch byte {
                case 0:
                    throw nulByte()
                case UInt8(ascii: "\n"):
                    newline()
                    index += 1
                    if open.isEmpty { atStatementStart = true; expectsValue = false }
                    continue
                case UInt8(ascii: "#"):
                    while index < bytes.count, bytes[index] != UInt8(ascii: "\n") {
                        if bytes[index] == 0 { throw nulByte() }
                        index += 1
                    }
                    continue
                case UInt8(ascii: "\""), UInt8(ascii: "'"):
                    atStatementStart = false
                    expectsValue = false
                    guard try skipString(quote: byte) else { return }  // unterminated: the parser reports it
                    continue
                case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                    index += 1
                    continue
                default:
                    break
                }
                if atStatementStart {
                    atStatementStart = false
                    if byte == UInt8(ascii: "[") {
                        try openHeader()
                        continue
                    }
                }
                if expectsValue {
                    expectsValue = false
                    try checkValue()
                }
                switch byte {
                case UInt8(ascii: "["):
                    open.append(byte)
                    expectsValue = true
                case UInt8(ascii: "{"):
                    open.append(byte)
                case UInt8(ascii: "="):
                    expectsValue = true
                case UInt8(ascii: ","):
                    expectsValue = open.last == UInt8(ascii: "[")
                case UInt8(ascii: "]"):
                    _ = open.popLast()
                case UInt8(ascii: "}"):
                    guard open.last == UInt8(ascii: "{") else {
                        throw error(at: index, "'}' closes no inline table" + (open.last == UInt8(ascii: "[") ? " (an array is open)" : ""))
                    }
                    open.removeLast()
                case 0xC2 where index + 1 < bytes.count && bytes[index + 1] == 0x85:
                    throw error(at: index, "U+0085 (next line) outside a string or comment; TOML lines end with LF or CRLF")
                case 0xE2 where index + 2 < bytes.count && bytes[index + 1] == 0x80 && (bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9):
                    throw error(at: index, "U+\(bytes[index + 2] == 0xA8 ? "2028 (line separator)" : "2029 (paragraph separator)") outside a string or comment; TOML lines end with LF or CRLF")
                default:
                    break
                }
                index += 1
            }
        }

        /// At a header's `[`: what follows `[` or `[[` and any spaces or tabs must start a key
        /// (or be the `]` of an empty one, which the parser reports itself). Opens the header's
        /// brackets and moves to its key, so that a `[[` is not taken for an array.
        mutating func openHeader() throws(TOMLSyntaxError) {
            var position = index + 1
            open.append(UInt8(ascii: "["))
            func skipBlanks() -> Bool {
                let start = position
                while position < bytes.count, bytes[position] == UInt8(ascii: " ") || bytes[position] == UInt8(ascii: "\t") {
                    position += 1
                }
                return position > start
            }
            if !skipBlanks(), position < bytes.count, bytes[position] == UInt8(ascii: "[") {
                open.append(UInt8(ascii: "["))
                position += 1
                _ = skipBlanks()
            }
            index = position
            guard position < bytes.count else { return }  // end of text: the parser reports it
            let next = bytes[position]
            if next == UInt8(ascii: "]") || Self.startsKey(next) { return }
            throw error(at: position, "a table header must start with a key (bare: A-Z a-z 0-9 _ -, or quoted), not \(Self.describe(bytes, at: position))")
        }

        /// At the first byte of a value: a date (`YYYY-MM-DD`) followed by `T` or `t` must go on
        /// with the time's hour digits, and a value that starts with a digit and is followed by a
        /// space and a digit must go on with a second one.
        func checkValue() throws(TOMLSyntaxError) {
            func digit(at position: Int) -> Bool {
                position < bytes.count && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position])
            }
            func byte(at position: Int, is character: Character) -> Bool {
                position < bytes.count && bytes[position] == character.asciiValue
            }
            let start = index
            guard digit(at: start) else { return }
            if [0, 1, 2, 3, 5, 6, 8, 9].allSatisfy({ digit(at: start + $0) }), byte(at: start + 4, is: "-"), byte(at: start + 7, is: "-"),
               byte(at: start + 10, is: "T") || byte(at: start + 10, is: "t"), start + 11 < bytes.count, !digit(at: start + 11) {
                throw error(at: start + 11, "a date-time needs the time (HH:MM:SS) right after its '\(Character(Unicode.Scalar(bytes[start + 10])))', "
                            + "not \(Self.describe(bytes, at: start + 11))")
            }
            // Where the value ends for toml++ (at Unicode spaces too, which only make it shorter).
            var end = start
            while end < bytes.count, !Self.endsValue(bytes[end]) { end += 1 }
            if byte(at: end, is: " "), digit(at: end + 1), end + 2 < bytes.count, !digit(at: end + 2) {
                throw error(at: end + 2, "a value followed by a space and one digit: a date-time's time needs two hour digits "
                            + "(HH:MM:SS), not one and \(Self.describe(bytes, at: end + 2))")
            }
        }

        static func endsValue(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"),
                 UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}"), UInt8(ascii: "#"):
                true
            default:
                false
            }
        }

        static func startsKey(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"),
                 UInt8(ascii: "\""), UInt8(ascii: "'"):
                true
            default:
                false
            }
        }

        static func describe(_ bytes: [UInt8], at position: Int) -> String {
            switch bytes[position] {
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"): "the end of the line"
            case UInt8(ascii: " "): "a space"
            case 0x21...0x7E: "'\(Character(Unicode.Scalar(bytes[position])))'"
            default: "byte 0x\(String(bytes[position], radix: 16, uppercase: true))"
            }
        }

        /// Skips the string that starts at `index` (basic or literal, one line or multi-line).
        /// Returns false when the text ends inside it. A one-line string ends at the line's end
        /// at the latest (the parser rejects the line there).
        mutating func skipString(quote: UInt8) throws(TOMLSyntaxError) -> Bool {
            let escapes = quote == UInt8(ascii: "\"")
            let multiLine = index + 2 < bytes.count && bytes[index + 1] == quote && bytes[index + 2] == quote
            index += multiLine ? 3 : 1
            while index < bytes.count {
                let byte = bytes[index]
                if byte == 0 { throw nulByte() }
                if escapes, byte == UInt8(ascii: "\\") {
                    if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\n") {
                        index += 1
                        if !multiLine { return true }  // the line ends: the parser rejects it
                        newline()
                        index += 1
                        continue
                    }
                    index += 2
                    continue
                }
                if byte == UInt8(ascii: "\n") {
                    if !multiLine { return true }  // leaves the newline to run()
                    newline()
                } else if byte == quote {
                    if !multiLine { index += 1; return true }
                    if index + 2 < bytes.count, bytes[index + 1] == quote, bytes[index + 2] == quote {
                        // Up to two more quotes belong to the string (`""""` ends with one `"` inside).
                        index += 3
                        while index < bytes.count, bytes[index] == quote { index += 1 }
                        return true
                    }
                }
                index += 1
            }
            return false
        }
    }
}
