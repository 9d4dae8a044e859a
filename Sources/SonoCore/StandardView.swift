/// The standard transthoracic views Sono acquires, and `other` for everything else.
public enum StandardView: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
    case plax = "PLAX"
    case psax = "PSAX"
    case a4c = "A4C"
    case a2c = "A2C"
    case sc4c = "SC4C"
    case other = "OTHER"

    public static let standard: [StandardView] = [.plax, .psax, .a4c, .a2c, .sc4c]
    public var description: String { rawValue }

    public init?(name: String) { self.init(rawValue: name.uppercased()) }
}
