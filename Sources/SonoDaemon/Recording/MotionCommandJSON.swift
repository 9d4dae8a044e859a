import SonoGeometry
import SonoMotion

/// A command to the motion controller as `/motion/commands` holds it: the cycle that handled
/// it, its ticket, a `type` and the command's fields, units in their names (docs/RECORDING.md,
/// "Motion commands").
struct MotionCommandJSON: Codable, Equatable {
    var type: String
    var cycle: UInt64
    var ticket: UInt64
    var command: String?
    var positionMM: [Double]?
    /// The probe frame's x, y and z axes in the chest frame, one after the other.
    var rotationAxes: [Double]?
    var speedMMS: Double?
    var accelerationMMS2: Double?
    var jerkMMS3: Double?
    var angularSpeedRadS: Double?
    var angularAccelerationRadS2: Double?
    var angularJerkRadS3: Double?
    var forceN: Double?
    var held: Bool?

    enum CodingKeys: String, CodingKey {
        case type, cycle, ticket, command, positionMM = "position_mm", rotationAxes = "rotation_axes",
             speedMMS = "speed_mm_s", accelerationMMS2 = "acceleration_mm_s2", jerkMMS3 = "jerk_mm_s3",
             angularSpeedRadS = "angular_speed_rad_s", angularAccelerationRadS2 = "angular_acceleration_rad_s2",
             angularJerkRadS3 = "angular_jerk_rad_s3", forceN = "force_n", held
    }

    init(_ command: MotionCommand, cycle: UInt64, ticket: UInt64) {
        self.cycle = cycle
        self.ticket = ticket
        switch command {
        case .safety(let safety):
            type = "safety"
            self.command = safety.rawValue
        case .move(let pose, let limits):
            type = "move"
            let p = pose.position, r = pose.rotation
            positionMM = Self.finite([p.x, p.y, p.z])
            rotationAxes = Self.finite([r.x.x, r.x.y, r.x.z, r.y.x, r.y.y, r.y.z, r.z.x, r.z.y, r.z.z])
            if let limits {
                speedMMS = EventCoding.finite(limits.speedMMs)
                accelerationMMS2 = EventCoding.finite(limits.accelerationMMs2)
                jerkMMS3 = EventCoding.finite(limits.jerkMMs3)
                angularSpeedRadS = EventCoding.finite(limits.angularSpeed)
                angularAccelerationRadS2 = EventCoding.finite(limits.angularAcceleration)
                angularJerkRadS3 = EventCoding.finite(limits.angularJerk)
            }
        case .contact(let force):
            type = "contact"
            forceN = force.flatMap(EventCoding.finite)
        case .hold:
            type = "hold"
        case .deadMan(let held):
            type = "dead_man"
            self.held = held
        case .renewContactLease:
            type = "renew_contact_lease"
        case .release:
            type = "release"
        }
    }

    /// Nil when any is not finite: a move to NaN is recorded as a move without a target.
    private static func finite(_ values: [Double]) -> [Double]? { values.allSatisfy(\.isFinite) ? values : nil }

    var text: String { EventCoding.encode(self) }

    static let catalog = EventCatalog(
        title: "a command to the motion controller (docs/RECORDING.md, Motion commands)",
        common: [.required("cycle", .integer), .required("ticket", .integer)],
        types: [
            EventType(name: "safety", title: "an interlock command",
                      fields: [.required("command", .oneOf(SafetyCommand.allCases.map(\.rawValue)))]),
            EventType(name: "move", title: "move the probe to a pose on a jerk-limited trajectory", fields: [
                .optional("position_mm", .numbers(count: 3)), .optional("rotation_axes", .numbers(count: 9)),
                .optional("speed_mm_s", .number), .optional("acceleration_mm_s2", .number),
                .optional("jerk_mm_s3", .number), .optional("angular_speed_rad_s", .number),
                .optional("angular_acceleration_rad_s2", .number), .optional("angular_jerk_rad_s3", .number),
            ]),
            EventType(name: "contact", title: "hold a contact force along the probe axis (absent: position only)",
                      fields: [.optional("force_n", .number)]),
            EventType(name: "hold", title: "cancel the move and hold", fields: []),
            EventType(name: "dead_man", title: "the operator's enabling switch", fields: [.required("held", .boolean)]),
            EventType(name: "renew_contact_lease", title: "the contact's supervisor renewed its lease", fields: []),
            EventType(name: "release", title: "the operator's patient release after a category 0/1 stop", fields: []),
        ])
}
