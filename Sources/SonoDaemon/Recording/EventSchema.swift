import Foundation

/// One field of a recorded event: its JSON name (the unit is in the name: `_us`, `_mm`, `_n`…),
/// its JSON type, and whether every event of its type carries it. The catalogs built from these
/// are the one description of the event channels: the recording's JSON Schemas are generated from
/// them and the tests check the encoders and docs/RECORDING.md against them.
struct EventField: Sendable {
    enum Kind: Sendable {
        case integer, number, string, boolean, object
        /// An array of numbers (of exactly `count` when given).
        case numbers(count: Int?)
        case strings
        /// An array of objects (their fields are documented where the API defines them).
        case objects
        /// A string from a fixed set of snake_case values.
        case oneOf([String])
        /// An object that is itself one of a catalog's types.
        indirect case nested(EventCatalog)
    }

    var name: String
    var kind: Kind
    /// Present in every event of the type (otherwise only when it applies; docs/RECORDING.md says when).
    var required: Bool
    /// JSON `null` allowed (the control API writes absent values as null).
    var nullable = false

    static func required(_ name: String, _ kind: Kind, nullable: Bool = false) -> EventField {
        EventField(name: name, kind: kind, required: true, nullable: nullable)
    }

    static func optional(_ name: String, _ kind: Kind) -> EventField {
        EventField(name: name, kind: kind, required: false)
    }

    var schema: [String: Any] {
        var schema: [String: Any]
        switch kind {
        case .integer: schema = ["type": "integer"]
        case .number: schema = ["type": "number"]
        case .string: schema = ["type": "string"]
        case .boolean: schema = ["type": "boolean"]
        case .object: schema = ["type": "object"]
        case .numbers(let count):
            schema = ["type": "array", "items": ["type": "number"]]
            if let count { schema["minItems"] = count; schema["maxItems"] = count }
        case .strings: schema = ["type": "array", "items": ["type": "string"]]
        case .objects: schema = ["type": "array", "items": ["type": "object"]]
        case .oneOf(let values): schema = ["type": "string", "enum": values]
        case .nested(let catalog): schema = catalog.schemaObject
        }
        if nullable, let type = schema["type"] as? String {
            schema["type"] = [type, "null"]
            if var values = schema["enum"] as? [Any] { values.append(NSNull()); schema["enum"] = values }
        }
        return schema
    }
}

/// One event type of a channel: the value of its `type` field and its other fields.
struct EventType: Sendable {
    var name: String
    var title: String
    var fields: [EventField]
}

/// The event types one channel carries, and fields every one of them has besides `type`.
struct EventCatalog: Sendable {
    var title: String
    /// The field that names the type (`type`; `call` for the planner's calls).
    var discriminator = "type"
    var common: [EventField] = []
    var types: [EventType]

    func type(named name: String) -> EventType? { types.first { $0.name == name } }

    /// Every field an event of `type` may carry, `type` included.
    func fields(of type: EventType) -> [EventField] {
        [.required(discriminator, .oneOf([type.name]))] + common + type.fields
    }

    /// The channel's JSON Schema (draft 2020-12): one of the event types, each an object with a
    /// constant `type`, its required fields and no others.
    var jsonSchema: String {
        var schema = schemaObject
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        let data = (try? JSONSerialization.data(withJSONObject: schema, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data("{\"type\":\"object\"}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// The schema as a value, to nest in another.
    var schemaObject: [String: Any] {
        let variants: [[String: Any]] = types.map { type in
            let fields = fields(of: type)
            var properties: [String: Any] = [:]
            for field in fields { properties[field.name] = field.schema }
            properties[discriminator] = ["const": type.name]
            return ["title": type.title, "type": "object", "properties": properties,
                    "required": fields.filter(\.required).map(\.name), "additionalProperties": false]
        }
        return ["title": title, "type": "object", "oneOf": variants]
    }
}

/// The encoder of every recorded event: sorted keys, so that the same event is always the same
/// text (the replay compares recorded and replayed events as text).
enum EventCoding {
    static func encode(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "{\"type\":\"unencodable\"}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Nil for NaN and infinities, which JSON cannot hold: such a field is left out.
    static func finite(_ value: Double) -> Double? { value.isFinite ? value : nil }
}
