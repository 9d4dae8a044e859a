// The one door to TOMLKit for Sono's TOML files (patient files, sono.toml, the safety profiles,
// the robot description, the scan prior): the text is checked for what the bundled parser cannot
// take safely (TOMLText.check), then parsed, and any failure is one error type with a line and
// column.

public import TOMLKit

/// TOML text that is not valid, or that Sono refuses before parsing: where, and what.
public struct TOMLSyntaxError: Error, CustomStringConvertible, Equatable, Sendable {
    /// 1-based; nil when the parser gave no position.
    public let line: Int?
    public let column: Int?
    public let message: String

    public init(line: Int?, column: Int?, message: String) {
        self.line = line
        self.column = column
        self.message = message
    }

    /// "line 3, column 2: message", or the message alone without a position. Callers put the
    /// file's name in front.
    public var description: String {
        switch (line, column) {
        case let (line?, column?): "line \(line), column \(column): \(message)"
        case let (line?, nil): "line \(line): \(message)"
        default: message
        }
    }
}

public enum TOMLDocument {
    /// Parses `text` into its root table. Throws a TOMLSyntaxError for text the parser rejects,
    /// and for the constructs TOMLText.check refuses before the parser sees them.
    public static func parse(_ text: String) throws(TOMLSyntaxError) -> TOMLTable {
        try TOMLText.check(text)
        do {
            return try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            let line = error.source.begin.line > 0 ? error.source.begin.line : nil
            let column = error.source.begin.column > 0 ? error.source.begin.column : nil
            throw TOMLSyntaxError(line: line, column: column, message: error.description)
        } catch {
            throw TOMLSyntaxError(line: nil, column: nil, message: "\(error)")
        }
    }
}
