import Foundation
import SonoMotion

/// The daemon's events (the control socket's stream) as `/events` holds them: the event's name
/// as `type`, then the fields of its data, which are the bodies docs/control-api.yaml documents
/// for the stream (docs/RECORDING.md, "Daemon events").
enum DaemonEventJSON {
    /// `{"type":NAME, …data's fields}`: the data is the API's JSON object, spliced rather than
    /// decoded and encoded again, so the recording holds the very bytes the socket sent.
    static func text(_ event: DaemonEvent) -> String {
        let name = EventCoding.encode(event.name)
        let data = String(decoding: event.data, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        guard data.hasPrefix("{"), data.hasSuffix("}") else {
            // Not an object (no event of today's catalog): kept whole under `data`.
            return "{\"type\":\(name),\"data\":\(data.isEmpty ? "null" : data)}"
        }
        let body = data.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
        return body.isEmpty ? "{\"type\":\(name)}" : "{\"type\":\(name),\(body)}"
    }

    private static let states = SafetyState.allCases.map(\.rawValue)
    private static let viewResultFields: [EventField] = [
        .required("view", .string), .required("acquired", .boolean), .required("seconds", .number),
        .required("confidence", .number), .required("max_force_n", .number), .required("reason", .string, nullable: true),
        .required("pose", .object, nullable: true), .required("pose_error", .object, nullable: true),
        .required("predicted_quality", .number, nullable: true), .required("true_quality", .number, nullable: true),
    ]

    static let catalog = EventCatalog(title: "a daemon event (docs/RECORDING.md, Daemon events; docs/control-api.yaml)", types: [
        EventType(name: "state", title: "a transition of the safety state", fields: [
            .required("from", .oneOf(states)), .required("to", .oneOf(states)), .required("at", .string),
        ]),
        EventType(name: "stop", title: "the arm was stopped by an interlock or a command", fields: [
            .required("kind", .oneOf(["category_0", "category_1", "category_2"])), .required("cause", .string),
            .required("value", .number, nullable: true), .required("limit", .number, nullable: true),
            .required("at", .string),
        ]),
        EventType(name: "fault", title: "a board reported a fault", fields: [
            .required("board", .string), .required("code", .string), .required("detail", .string),
        ]),
        EventType(name: "view", title: "the smoothed view classification changed", fields: [
            .required("label", .string), .required("confidence", .number),
        ]),
        EventType(name: "scan", title: "the scan's progress", fields: [
            .required("running", .boolean), .required("views", .strings),
            .required("current_view", .string, nullable: true), .required("step", .string, nullable: true),
            .required("started_at", .string, nullable: true), .required("results", .objects),
        ]),
        EventType(name: "recording", title: "a session recording started or stopped", fields: [
            .required("active", .boolean), .required("session", .string, nullable: true),
            .required("path", .string, nullable: true), .required("started_at", .string, nullable: true),
        ]),
        EventType(name: "view_acquired", title: "the planner held a view", fields: viewResultFields),
        EventType(name: "view_failed", title: "the planner gave up on a view", fields: viewResultFields),
        EventType(name: "probe", title: "the USB probe's link changed", fields: [
            .required("kind", .oneOf(["connected", "streaming", "open_failed", "stream_stalled", "stream_restarted",
                                      "faulted", "recovered", "disconnected"])),
            .required("message", .string),
        ]),
    ])
}
