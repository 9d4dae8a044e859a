import SonoGeometry
import SonoMotion
import SonoProtocol

/// A motion controller event as the recording's `/motion/events` channel holds it: a `type` and
/// named fields with their units in the names (docs/RECORDING.md, "Motion events"). The
/// controller's own `MotionEvent` stays a plain value (its loop must not allocate); this is
/// built from it off the loop, on the motion event thread.
struct MotionEventJSON: Codable, Equatable {
    var type: String
    // reply
    var ticket: UInt64?
    var accepted: Bool?
    var state: String?
    var refusal: String?
    var command: String?
    var forceN: Double?
    var allowedMinN: Double?
    var allowedMaxN: Double?
    var timeoutMS: Int?
    // transition
    var from: String?
    var to: String?
    var tUS: UInt64?
    // stop
    var kind: String?
    var cycle: UInt64?
    var decidedUS: UInt64?
    var forceBoardUS: UInt64?
    var forceReceivedUS: UInt64?
    var forceSampleCycle: UInt64?
    var writtenUS: UInt64?
    // a breach (stop, aborts, refusals)
    var cause: String?
    var breachValue: Double?
    var breachLimit: Double?
    // moves and the retraction
    var durationS: Double?
    var distanceMM: Double?
    var reason: String?
    var positionErrorMM: Double?
    var orientationErrorRad: Double?
    // a rejected target (aborts, refusals)
    var rejection: String?
    var joint: Int?
    var targetRad: Double?
    var lowerRad: Double?
    var upperRad: Double?
    var tipMM: [Double]?
    var expectedJoints: Int?
    var gotJoints: Int?
    // board fault, refusal, failed send
    var board: String?
    var code: String?
    var axis: Int?
    var severity: String?
    var value: Float?
    var limit: Float?
    var ackedType: String?
    var message: String?

    enum CodingKeys: String, CodingKey {
        case type, ticket, accepted, state, refusal, command, forceN = "force_n", allowedMinN = "allowed_min_n",
             allowedMaxN = "allowed_max_n", timeoutMS = "timeout_ms", from, to, tUS = "t_us", kind, cycle,
             decidedUS = "decided_us", forceBoardUS = "force_board_us", forceReceivedUS = "force_received_us",
             forceSampleCycle = "force_sample_cycle", writtenUS = "written_us", cause, breachValue = "breach_value",
             breachLimit = "breach_limit", durationS = "duration_s", distanceMM = "distance_mm", reason,
             positionErrorMM = "position_error_mm", orientationErrorRad = "orientation_error_rad", rejection, joint,
             targetRad = "target_rad", lowerRad = "lower_rad", upperRad = "upper_rad", tipMM = "tip_mm",
             expectedJoints = "expected_joints", gotJoints = "got_joints", board, code, axis, severity, value, limit,
             ackedType = "acked_type", message
    }

    private init(type: String) { self.type = type }

    init(_ event: MotionEvent) {
        switch event {
        case .reply(let ticket, let result):
            self.init(type: "reply")
            self.ticket = ticket
            switch result {
            case .success(let state):
                accepted = true
                self.state = state.rawValue
            case .failure(let refusal):
                accepted = false
                add(refusal)
            }
        case .transition(let from, let to, let micros):
            self.init(type: "transition")
            self.from = from.rawValue
            self.to = to.rawValue
            tUS = micros
        case .stop(let record):
            self.init(type: "stop")
            kind = Self.name(record.kind)
            cause = record.breach?.cause.rawValue ?? "operator"
            if let breach = record.breach { add(breach) }
            cycle = record.cycle
            decidedUS = record.decidedMicros
            forceBoardUS = record.forceBoardMicros
            forceReceivedUS = record.forceReceivedMicros
            forceSampleCycle = record.forceSampleCycle
            writtenUS = record.writtenMicros
        case .stopAcknowledged(let micros):
            self.init(type: "stop_acknowledged")
            tUS = micros
        case .drivesAcknowledged(let micros):
            self.init(type: "drives_acknowledged")
            tUS = micros
        case .moveStarted(let duration):
            self.init(type: "move_started")
            durationS = EventCoding.finite(duration)
        case .moveFinished(let micros):
            self.init(type: "move_finished")
            tUS = micros
        case .moveAborted(let abort):
            self.init(type: "move_aborted")
            add(abort)
        case .retractStarted(let micros):
            self.init(type: "retract_started")
            tUS = micros
        case .retractFinished(let micros, let distance):
            self.init(type: "retract_finished")
            tUS = micros
            distanceMM = EventCoding.finite(distance)
        case .retractAborted(let abort):
            self.init(type: "retract_aborted")
            add(abort)
        case .liftOffStarted(let liftReason, let micros):
            self.init(type: "lift_off_started")
            tUS = micros
            reason = liftReason.rawValue
        case .liftOffFinished(let micros, let distance):
            self.init(type: "lift_off_finished")
            tUS = micros
            distanceMM = EventCoding.finite(distance)
        case .liftOffAborted(let abort):
            self.init(type: "lift_off_aborted")
            add(abort)
        case .releaseStarted(let micros):
            self.init(type: "release_started")
            tUS = micros
        case .releaseFinished(let micros, let distance):
            self.init(type: "release_finished")
            tUS = micros
            distanceMM = EventCoding.finite(distance)
        case .releaseAborted(let abort):
            self.init(type: "release_aborted")
            add(abort)
        case .boardFault(let report, let board):
            self.init(type: "board_fault")
            self.board = Self.name(board)
            code = report.code.description
            axis = report.axis == FaultReport.noAxis ? nil : Int(report.axis)
            severity = switch report.severity {
            case 1: "warning"
            case 2: "latched"
            default: "severity_\(report.severity)"
            }
            value = report.value.isFinite ? report.value : nil
            limit = report.limit.isFinite ? report.limit : nil
        case .boardRefused(let ackedType, let reason, let board):
            self.init(type: "board_refused")
            self.board = Self.name(board)
            self.ackedType = Self.messageName(ackedType)
            self.reason = reason.description
        case .sendFailed(let type):
            self.init(type: "send_failed")
            message = Self.name(type)
        }
    }

    private mutating func add(_ breach: SafetyBreach) {
        cause = breach.cause.rawValue
        breachValue = EventCoding.finite(breach.value)
        breachLimit = EventCoding.finite(breach.limit)
    }

    private mutating func add(_ rejection: SafetyStateMachine.TargetRejection) {
        switch rejection {
        case .motionNotAllowed(let state):
            self.rejection = "motion_not_allowed"
            self.state = state.rawValue
        case .nonFinite(let joint):
            self.rejection = "non_finite"
            self.joint = joint
        case .outsideJointLimits(let joint, let value, let lower, let upper):
            self.rejection = "outside_joint_limits"
            self.joint = joint
            targetRad = EventCoding.finite(value)
            lowerRad = EventCoding.finite(lower)
            upperRad = EventCoding.finite(upper)
        case .outsideWorkspace(let point):
            self.rejection = "outside_workspace"
            let tip = [point.x, point.y, point.z]
            tipMM = tip.allSatisfy(\.isFinite) ? tip : nil
        case .wrongJointCount(let expected, let got):
            self.rejection = "wrong_joint_count"
            expectedJoints = expected
            gotJoints = got
        }
    }

    private mutating func add(_ abort: MoveAbort) {
        switch abort {
        case .trackingError(let position, let orientation):
            reason = "tracking_error"
            positionErrorMM = EventCoding.finite(position)
            orientationErrorRad = EventCoding.finite(orientation)
        case .rejected(let rejection):
            reason = "rejected"
            add(rejection)
        case .breach(let breach):
            reason = "breach"
            add(breach)
        case .holdTimeout:
            reason = "hold_timeout"
        case .drivesRefused:
            reason = "drives_refused"
        case .forceRose(let force):
            reason = "force_rose"
            forceN = EventCoding.finite(force)
        }
    }

    private mutating func add(_ refusal: MotionRefusal) {
        switch refusal {
        case .safety(.notAllowed(let command, let state)):
            self.refusal = "not_allowed"
            self.command = command.rawValue
            self.state = state.rawValue
        case .safety(.causePresent(let breach)):
            self.refusal = "cause_present"
            add(breach)
        case .target(let rejection):
            self.refusal = "target_rejected"
            add(rejection)
        case .forceOutOfRange(let force, let allowed):
            self.refusal = "force_out_of_range"
            forceN = EventCoding.finite(force)
            allowedMinN = EventCoding.finite(allowed.lowerBound)
            allowedMaxN = EventCoding.finite(allowed.upperBound)
        case .noJointState: self.refusal = "no_joint_state"
        case .notRunning: self.refusal = "not_running"
        case .timedOut(let millis):
            self.refusal = "timed_out"
            timeoutMS = millis
        case .queueFull: self.refusal = "queue_full"
        case .expired(let millis):
            self.refusal = "expired"
            timeoutMS = millis
        case .liftingOff: self.refusal = "lifting_off"
        case .invalidLimits(let error):
            self.refusal = "invalid_limits"
            reason = error.description
        case .release(.notStopped(let state)):
            self.refusal = "release_not_stopped"
            self.state = state.rawValue
        case .release(.estopEngaged): self.refusal = "release_estop_engaged"
        case .release(.causePresent(let breach)):
            self.refusal = "release_cause_present"
            add(breach)
        case .release(.busy): self.refusal = "release_busy"
        }
    }

    static func name(_ kind: StopKind) -> String { "category_\(kind.rawValue)" }

    static func name(_ board: BoardKind) -> String {
        switch board {
        case .forceTorque: "force_torque"
        case .arm: "arm"
        }
    }

    /// PROTOCOL.md's message name in lower case (`joint_command`).
    static func name(_ type: MessageType) -> String { type.description.lowercased() }

    /// A raw message type byte a board answered: its name, or `type_0xNN` when this host does not know it.
    static func messageName(_ raw: UInt8) -> String {
        MessageType(rawValue: raw).map(name) ?? "type_0x" + String(raw, radix: 16, uppercase: true)
    }

    /// The text the recording holds and the replay compares.
    var text: String { EventCoding.encode(self) }

    /// A stop's `written_us` is when the STOP frame's write returned: a measurement of the link
    /// (the breach-to-stop benchmark reads it), taken from the clock, not a decision. The replay
    /// compares whether it was written and not when, on the encoded text.
    static func withoutWriteTime(_ text: String) -> String {
        text.replacingOccurrences(of: #""written_us":\d+"#, with: "\"written_us\":\"written\"", options: .regularExpression)
    }
}

extension MotionEventJSON {
    private static let safetyStates = SafetyState.allCases.map(\.rawValue)
    private static let causes = SafetyCause.allCases.map(\.rawValue)
    private static let stopKinds = ["category_0", "category_1", "category_2"]
    private static let boards = ["force_torque", "arm"]

    /// The fields of a breach: which interlock and its measured value against its limit.
    private static let breachFields: [EventField] = [
        .optional("cause", .oneOf(causes)), .optional("breach_value", .number), .optional("breach_limit", .number),
    ]
    /// The fields of a rejected target.
    private static let rejectionFields: [EventField] = [
        .optional("rejection", .oneOf(["motion_not_allowed", "non_finite", "outside_joint_limits", "outside_workspace",
                                       "wrong_joint_count"])),
        .optional("state", .oneOf(safetyStates)), .optional("joint", .integer), .optional("target_rad", .number),
        .optional("lower_rad", .number), .optional("upper_rad", .number), .optional("tip_mm", .numbers(count: 3)),
        .optional("expected_joints", .integer), .optional("got_joints", .integer),
    ]
    private static let abortFields: [EventField] = [
        .required("reason", .oneOf(["tracking_error", "rejected", "breach", "hold_timeout", "drives_refused", "force_rose"])),
        .optional("position_error_mm", .number), .optional("orientation_error_rad", .number), .optional("force_n", .number),
    ] + breachFields + rejectionFields

    /// Every type of `/motion/events` (and of the controller's replies, which are not recorded).
    static let catalog = EventCatalog(title: "a motion controller event (docs/RECORDING.md, Motion events)", types: [
        EventType(name: "reply", title: "the answer to a command (not recorded: implied by the commands)", fields: [
            .required("ticket", .integer), .required("accepted", .boolean),
            .optional("refusal", .oneOf(["not_allowed", "cause_present", "target_rejected", "force_out_of_range",
                                         "no_joint_state", "not_running", "timed_out", "queue_full", "expired",
                                         "lifting_off", "release_not_stopped", "release_estop_engaged",
                                         "release_cause_present", "release_busy", "invalid_limits"])),
            .optional("command", .oneOf(SafetyCommand.allCases.map(\.rawValue))),
            .optional("force_n", .number), .optional("allowed_min_n", .number), .optional("allowed_max_n", .number),
            .optional("timeout_ms", .integer), .optional("reason", .string),
        ] + breachFields + rejectionFields),
        EventType(name: "transition", title: "the safety state changed", fields: [
            .required("from", .oneOf(safetyStates)), .required("to", .oneOf(safetyStates)), .required("t_us", .integer),
        ]),
        EventType(name: "stop", title: "the controller stopped the arm", fields: [
            .required("kind", .oneOf(stopKinds)), .required("cause", .oneOf(causes + ["operator"])),
            .optional("breach_value", .number), .optional("breach_limit", .number),
            .required("cycle", .integer), .required("decided_us", .integer), .required("force_board_us", .integer),
            .required("force_received_us", .integer), .required("force_sample_cycle", .integer),
            .optional("written_us", .integer),
        ]),
        EventType(name: "stop_acknowledged", title: "the arm board acknowledged the stop",
                  fields: [.required("t_us", .integer)]),
        EventType(name: "drives_acknowledged", title: "the arm board acknowledged a SET_DRIVES (on or off)",
                  fields: [.required("t_us", .integer)]),
        EventType(name: "move_started", title: "a probe move started", fields: [.optional("duration_s", .number)]),
        EventType(name: "move_finished", title: "the move reached its target", fields: [.required("t_us", .integer)]),
        EventType(name: "move_aborted", title: "the move was cancelled; the arm holds", fields: abortFields),
        EventType(name: "retract_started", title: "the over-force retraction started", fields: [.required("t_us", .integer)]),
        EventType(name: "retract_finished", title: "the retraction ended",
                  fields: [.required("t_us", .integer), .optional("distance_mm", .number)]),
        EventType(name: "retract_aborted", title: "the retraction was cancelled", fields: abortFields),
        EventType(name: "lift_off_started", title: "the controller lifts the probe off (contact without a live lease)",
                  fields: [.required("t_us", .integer), .required("reason", .oneOf(["lease_expired", "scan_ended"]))]),
        EventType(name: "lift_off_finished", title: "the probe is clear of the patient and holds",
                  fields: [.required("t_us", .integer), .optional("distance_mm", .number)]),
        EventType(name: "lift_off_aborted", title: "the lift-off was cancelled", fields: abortFields),
        EventType(name: "release_started", title: "the operator's patient release started",
                  fields: [.required("t_us", .integer)]),
        EventType(name: "release_finished", title: "the release retracted the probe; drives off",
                  fields: [.required("t_us", .integer), .optional("distance_mm", .number)]),
        EventType(name: "release_aborted", title: "the release was stopped; drives off", fields: abortFields),
        EventType(name: "board_fault", title: "a board reported a fault", fields: [
            .required("board", .oneOf(boards)), .required("code", .string), .optional("axis", .integer),
            .required("severity", .string), .optional("value", .number), .optional("limit", .number),
        ]),
        EventType(name: "board_refused", title: "a board refused a message (NACK)", fields: [
            .required("board", .oneOf(boards)), .required("acked_type", .string), .required("reason", .string),
        ]),
        EventType(name: "send_failed", title: "a message to the arm could not be written",
                  fields: [.required("message", .string)]),
    ])
}
