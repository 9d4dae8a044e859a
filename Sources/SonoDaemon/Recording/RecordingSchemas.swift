/// JSON Schemas of the recording's JSON channels (MCAP schema encoding "jsonschema"), so that
/// Foxglove and other readers know the fields and their types. docs/RECORDING.md describes them.
enum RecordingSchemas {
    private static func object(_ properties: [(String, String)], title: String? = nil) -> String {
        let fields = properties.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",")
        return "{\"type\":\"object\"" + (title.map { ",\"title\":\"\($0)\"" } ?? "") + ",\"properties\":{\(fields)}}"
    }
    private static let number = "{\"type\":\"number\"}"
    private static let integer = "{\"type\":\"integer\"}"
    private static let string = "{\"type\":\"string\"}"
    private static let boolean = "{\"type\":\"boolean\"}"
    private static let numbers = "{\"type\":\"array\",\"items\":{\"type\":\"number\"}}"

    static let force = object([("cycle", integer), ("board_us", integer), ("received_us", integer), ("fx", number),
                               ("fy", number), ("fz", number), ("tx", number), ("ty", number), ("tz", number),
                               ("status", integer)], title: "force/torque sample, N and N·m, sensor frame")
    static let joints = object([("cycle", integer), ("received_us", integer), ("status", integer), ("position", numbers),
                                ("velocity", numbers), ("current", numbers)], title: "joint state, rad, rad/s, A")
    static let armMessage = object([("cycle", integer), ("t_us", integer), ("type", string), ("delivered", boolean),
                                    ("position", numbers), ("max_velocity", numbers), ("category", integer),
                                    ("enable", boolean)], title: "a message the controller sent to the arm")
    static let classifier = object([("frame", integer), ("t_us", integer),
                                    ("probabilities", "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"number\"}}"),
                                    ("smoothed_label", string), ("smoothed_confidence", number), ("stable_frames", integer),
                                    ("quality", "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"number\"}}"),
                                    ("smoothed_quality", "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"number\"}}")],
                                   title: "view classifier output for one frame")
    // The event channels: one of their catalog's types each (MotionEventJSON, MotionCommandJSON,
    // PlannerCall with PlannerEventJSON, DaemonEventJSON).
    static let motionEvent = MotionEventJSON.catalog.jsonSchema
    static let motionCommand = MotionCommandJSON.catalog.jsonSchema
    static let plannerCall = PlannerCall.catalog.jsonSchema
    static let event = DaemonEventJSON.catalog.jsonSchema
}
