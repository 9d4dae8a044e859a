import Foundation
@testable import SonoDaemon
import SonoGeometry
@testable import SonoMotion
import SonoPlanner
import SonoProtocol
import SonoTestSupport
import Testing

/// The recorded events' JSON against their catalogs (the recording's JSON Schemas and
/// docs/RECORDING.md are made from and checked against the same catalogs): one of each case,
/// every required field there, no field the type does not document, values of the right type.
struct EventJSONTests {
    static let breach = SafetyBreach(cause: .forceHardCap, value: 21.5, limit: 20)
    static let rejection = SafetyStateMachine.TargetRejection.outsideJointLimits(joint: 2, value: 1.8, lower: -1.5, upper: 1.5)
    static let stop = StopRecord(kind: .category2, breach: breach, cycle: 1_200, decidedMicros: 5_000_100,
                                 forceBoardMicros: 4_999_000, forceReceivedMicros: 5_000_050, forceSampleCycle: 1_200,
                                 writtenMicros: 5_000_180)

    /// One of each MotionEvent case (and of the nested values that change the fields).
    static let motionEvents: [MotionEvent] = [
        .reply(ticket: 7, .success(.ready)),
        .reply(ticket: 8, .failure(.safety(.notAllowed(.startScan, in: .disabled)))),
        .reply(ticket: 9, .failure(.safety(.causePresent(breach)))),
        .reply(ticket: 10, .failure(.target(.motionNotAllowed(.ready)))),
        .reply(ticket: 11, .failure(.forceOutOfRange(30, allowed: 0...15))),
        .reply(ticket: 12, .failure(.noJointState)),
        .reply(ticket: 13, .failure(.notRunning)),
        .reply(ticket: 14, .failure(.timedOut(millis: 500))),
        .reply(ticket: 15, .failure(.queueFull)),
        .reply(ticket: 16, .failure(.expired(millis: 3))),
        .reply(ticket: 17, .failure(.liftingOff)),
        .reply(ticket: 18, .failure(.invalidLimits(MotionLimitsError(field: "speed_mm_s", value: -1)))),
        .reply(ticket: 18, .failure(.release(.notStopped(.ready)))),
        .reply(ticket: 19, .failure(.release(.estopEngaged))),
        .reply(ticket: 20, .failure(.release(.causePresent(breach)))),
        .reply(ticket: 21, .failure(.release(.busy))),
        .transition(from: .disabled, to: .ready, micros: 1_000),
        .stop(stop),
        .stop(StopRecord(kind: .category2, breach: nil, cycle: 3, decidedMicros: 3_000, forceBoardMicros: 0,
                         forceReceivedMicros: 0, forceSampleCycle: 0, writtenMicros: nil)),
        .stopAcknowledged(micros: 5_001_000),
        .drivesAcknowledged(micros: 5_002_000),
        .moveStarted(duration: 1.25),
        .moveFinished(micros: 6_000_000),
        .moveAborted(.trackingError(positionMM: 3.5, orientationRad: 0.02)),
        .moveAborted(.rejected(rejection)),
        .moveAborted(.rejected(.nonFinite(joint: 1))),
        .moveAborted(.rejected(.outsideWorkspace(Vector3(1, 2, 300)))),
        .moveAborted(.rejected(.wrongJointCount(expected: 6, got: 5))),
        .moveAborted(.holdTimeout),
        .retractStarted(micros: 7_000_000),
        .retractFinished(micros: 7_500_000, distanceMM: 4.5),
        .retractAborted(.breach(SafetyBreach(cause: .nonFiniteInput, value: .nan, limit: 0))),
        .liftOffStarted(.leaseExpired, micros: 8_000_000),
        .liftOffStarted(.scanEnded, micros: 8_100_000),
        .liftOffFinished(micros: 9_000_000, distanceMM: 15),
        .liftOffAborted(.breach(SafetyBreach(cause: .operatorStop, value: 1, limit: 0))),
        .releaseStarted(micros: 10_000_000),
        .releaseFinished(micros: 13_000_000, distanceMM: 15),
        .releaseAborted(.drivesRefused),
        .releaseAborted(.forceRose(11.5)),
        .boardFault(FaultReport(code: .overCurrent, axis: 3, severity: 2, value: 4.5, limit: 4), .arm),
        .boardFault(FaultReport(code: FaultCode(rawValue: 99), axis: FaultReport.noAxis, severity: 1, value: 1, limit: 0),
                    .forceTorque),
        .boardRefused(ackedType: MessageType.jointCommand.rawValue, reason: .outOfRange, .arm),
        .boardRefused(ackedType: 0x7E, reason: NackReason(rawValue: 42), .forceTorque),
        .sendFailed(.jointCommand),
    ]

    @Test func everyMotionEventIsAnObjectOfItsDocumentedType() throws {
        var types: Set<String> = []
        for event in Self.motionEvents {
            let object = try Self.check(MotionEventJSON(event).text, against: MotionEventJSON.catalog)
            types.insert(object["type"] as? String ?? "")
        }
        #expect(types == Set(MotionEventJSON.catalog.types.map(\.name)), "a catalog type without a sample, or the reverse")
    }

    @Test func motionEventFieldsCarryTheirValuesAsNamedSnakeCase() throws {
        let transition = try Self.object(MotionEventJSON(.transition(from: .operatorEnabled, to: .protectiveStop, micros: 42)).text)
        #expect(transition["type"] as? String == "transition")
        #expect(transition["from"] as? String == "operator_enabled")
        #expect(transition["to"] as? String == "protective_stop")
        #expect(transition["t_us"] as? Int == 42)

        let stop = try Self.object(MotionEventJSON(.stop(Self.stop)).text)
        #expect(stop["kind"] as? String == "category_2")
        #expect(stop["cause"] as? String == "force_hard_cap")
        #expect(stop["breach_value"] as? Double == 21.5)
        #expect(stop["breach_limit"] as? Double == 20)
        #expect(stop["decided_us"] as? Int == 5_000_100)
        #expect(stop["written_us"] as? Int == 5_000_180)

        let refused = try Self.object(MotionEventJSON(.reply(ticket: 8, .failure(.safety(.notAllowed(.startScan, in: .disabled))))).text)
        #expect(refused["accepted"] as? Bool == false)
        #expect(refused["refusal"] as? String == "not_allowed")
        #expect(refused["command"] as? String == "start_scan")
        #expect(refused["state"] as? String == "disabled")

        let aborted = try Self.object(MotionEventJSON(.moveAborted(.rejected(Self.rejection))).text)
        #expect(aborted["reason"] as? String == "rejected")
        #expect(aborted["rejection"] as? String == "outside_joint_limits")
        #expect(aborted["joint"] as? Int == 2)
        #expect(aborted["target_rad"] as? Double == 1.8)

        // NaN has no JSON form: the field is left out rather than written as text.
        let nan = try Self.object(MotionEventJSON(.retractAborted(.breach(SafetyBreach(cause: .nonFiniteInput, value: .nan, limit: 0)))).text)
        #expect(nan["cause"] as? String == "non_finite_input")
        #expect(nan["breach_value"] == nil)

        let fault = try Self.object(MotionEventJSON(.boardFault(FaultReport(code: .overCurrent, axis: 3, severity: 2, value: 4.5,
                                                                             limit: 4), .arm)).text)
        #expect(fault["board"] as? String == "arm")
        #expect(fault["code"] as? String == "over_current")
        #expect(fault["severity"] as? String == "latched")
        #expect(fault["axis"] as? Int == 3)

        let nack = try Self.object(MotionEventJSON(.boardRefused(ackedType: 0x7E, reason: NackReason(rawValue: 42), .forceTorque)).text)
        #expect(nack["acked_type"] as? String == "type_0x7E")
        #expect(nack["reason"] as? String == "error_42")
        #expect(nack["board"] as? String == "force_torque")
        #expect(try Self.object(MotionEventJSON(.sendFailed(.jointCommand)).text)["message"] as? String == "joint_command")
    }

    @Test func theReplayComparesWhetherAStopWasWrittenNotWhen() {
        var later = Self.stop
        later.writtenMicros = 5_000_999
        var unwritten = Self.stop
        unwritten.writtenMicros = nil
        let text = { (record: StopRecord) in MotionEventJSON.withoutWriteTime(MotionEventJSON(.stop(record)).text) }
        #expect(text(Self.stop) == text(later))
        #expect(text(Self.stop) != text(unwritten))
    }

    @Test func everyMotionCommandIsAnObjectOfItsDocumentedType() throws {
        let pose = Pose(rotation: .identity, position: Vector3(10, -20, 150))
        let commands: [MotionCommand] = [.safety(.enableMotion), .move(to: pose, limits: nil), .move(to: pose, limits: MotionLimits()),
                                         .contact(forceN: 5), .contact(forceN: nil), .hold, .deadMan(held: true),
                                         .renewContactLease, .release]
        var types: Set<String> = []
        for command in commands {
            let object = try Self.check(MotionCommandJSON(command, cycle: 5, ticket: 3).text, against: MotionCommandJSON.catalog)
            types.insert(object["type"] as? String ?? "")
        }
        #expect(types == Set(MotionCommandJSON.catalog.types.map(\.name)))
        let move = try Self.object(MotionCommandJSON(.move(to: pose, limits: MotionLimits()), cycle: 5, ticket: 3).text)
        #expect(move["position_mm"] as? [Double] == [10, -20, 150])
        #expect(move["speed_mm_s"] as? Double == 50)
        #expect(try Self.object(MotionCommandJSON(.safety(.enableMotion), cycle: 5, ticket: 3).text)["command"] as? String
            == "enable_motion")
    }

    @Test func everyPlannerEventIsAnObjectOfItsDocumentedType() throws {
        var outcome = ViewOutcome(view: .plax, acquired: true, seconds: 12.5, pose: .identity, confidence: 0.9, maxForceN: 6.5)
        outcome.clipStartSeconds = 10
        outcome.clipEndSeconds = 12
        let events: [PlannerEvent] = [.viewStarted(.plax), .windowReached(.plax), .searching(.plax, step: "tilt"),
                                      .viewAcquired(outcome), .clipStarted(.plax), .clipEnded(.plax),
                                      .viewFailed(ViewOutcome(view: .a4c, acquired: false, seconds: 30, pose: nil, confidence: 0.2,
                                                              maxForceN: 4, reason: "not found"))]
        var types: Set<String> = []
        for event in events {
            let object = try Self.check(EventCoding.encode(PlannerEventJSON(event)), against: PlannerEventJSON.catalog)
            types.insert(object["type"] as? String ?? "")
            // The report call that carries it is one of the planner calls.
            _ = try Self.check(PlannerTapeCoding.encode(PlannerCall(call: .report, plannerEvent: PlannerEventJSON(event))),
                               against: PlannerCall.catalog)
        }
        #expect(types == Set(PlannerEventJSON.catalog.types.map(\.name)))
        let acquired = try Self.object(EventCoding.encode(PlannerEventJSON(.viewAcquired(outcome))))
        #expect(acquired["duration_s"] as? Double == 12.5)
        #expect(acquired["max_force_n"] as? Double == 6.5)
    }

    @Test func daemonEventsAreTheirNameAsTypeBesideTheirData() throws {
        let events = [
            DaemonEvent("state", StateChangeJSON(from: "disabled", to: "ready", at: "2026-01-01T00:00:00.000Z")),
            DaemonEvent("stop", StopJSON(kind: "category_2", cause: "operator", value: nil, limit: nil, at: "t")),
            DaemonEvent("fault", FaultJSON(board: "arm actuator", code: "over_current", detail: "axis 1")),
            DaemonEvent("view", ViewChangeJSON(label: "PLAX", confidence: 0.8)),
            DaemonEvent("scan", ScanStatusJSON(running: true, views: ["PLAX"], currentView: "PLAX", step: nil, startedAt: nil,
                                               results: [])),
            DaemonEvent("recording", RecordingStatusJSON(active: false, session: nil, path: nil, startedAt: nil)),
            DaemonEvent("view_acquired", ViewResultJSON(view: "PLAX", acquired: true, seconds: 3, confidence: 0.9, maxForceN: 5,
                                                        reason: nil, pose: nil, poseError: nil)),
            DaemonEvent("view_failed", ViewResultJSON(view: "A4C", acquired: false, seconds: 30, confidence: 0.2, maxForceN: 4,
                                                      reason: "not found", pose: nil, poseError: nil)),
            DaemonEvent("probe", ProbeEventBody(kind: "connected", message: "probe connected")),
        ]
        var types: Set<String> = []
        for event in events {
            let object = try Self.check(DaemonEventJSON.text(event), against: DaemonEventJSON.catalog)
            types.insert(object["type"] as? String ?? "")
        }
        #expect(types == Set(DaemonEventJSON.catalog.types.map(\.name)))
        let state = try Self.object(DaemonEventJSON.text(events[0]))
        #expect(state["to"] as? String == "ready")
    }

    @Test func theSchemasAreJSONAndTheRecordingDocListsEveryTypeAndField() throws {
        let doc = try String(contentsOf: Repository.url("docs/RECORDING.md"), encoding: .utf8)
        for catalog in [MotionEventJSON.catalog, MotionCommandJSON.catalog, PlannerEventJSON.catalog, PlannerCall.catalog,
                        DaemonEventJSON.catalog] {
            let schema = try Self.object(catalog.jsonSchema)
            #expect((schema["oneOf"] as? [Any])?.count == catalog.types.count)
            for type in catalog.types {
                #expect(doc.contains("`\(type.name)`"), "docs/RECORDING.md does not list the \(catalog.title) type \(type.name)")
                for field in catalog.common + type.fields {
                    #expect(doc.contains("`\(field.name)`"), "docs/RECORDING.md does not document the field \(field.name) of \(type.name)")
                }
            }
        }
    }

    /// The shape of ProbeEventJSON, which is built from a driver event only.
    struct ProbeEventBody: Encodable { var kind: String; var message: String }

    static func object(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
    }

    /// The event's object after checking it against its type in the catalog (a small subset of
    /// JSON Schema: required fields, no others, JSON types; the Python check validates the real
    /// recordings with a full validator).
    @discardableResult
    static func check(_ text: String, against catalog: EventCatalog) throws -> [String: Any] {
        let object = try object(text)
        let name = try #require(object[catalog.discriminator] as? String, "no \(catalog.discriminator): \(text)")
        let type = try #require(catalog.type(named: name), "type \(name) is not in the catalog: \(text)")
        let fields = catalog.fields(of: type)
        for field in fields where field.required {
            #expect(object[field.name] != nil, "\(name) lacks its field \(field.name): \(text)")
        }
        for (key, value) in object {
            guard let field = fields.first(where: { $0.name == key }) else {
                Issue.record("\(name) has the undocumented field \(key): \(text)")
                continue
            }
            #expect(matches(value, field), "\(name).\(key) = \(value) is not of its documented type: \(text)")
        }
        return object
    }

    static func matches(_ value: Any, _ field: EventField) -> Bool {
        if value is NSNull { return field.nullable }
        switch field.kind {
        case .integer: return value is Int || (value as? Double).map { $0 == $0.rounded() } == true
        case .number: return value is Double || value is Int
        case .string: return value is String
        case .boolean: return value is Bool
        case .object: return value is [String: Any]
        case .numbers(let count): return (value as? [Any]).map { $0.allSatisfy { $0 is Double || $0 is Int } && (count == nil || $0.count == count) } ?? false
        case .strings: return (value as? [Any])?.allSatisfy { $0 is String } ?? false
        case .objects: return (value as? [Any])?.allSatisfy { $0 is [String: Any] } ?? false
        case .oneOf(let values): return (value as? String).map(values.contains) ?? false
        case .nested(let catalog):
            guard let object = value as? [String: Any], let data = try? JSONSerialization.data(withJSONObject: object),
                  (try? check(String(decoding: data, as: UTF8.self), against: catalog)) != nil else { return false }
            return true
        }
    }
}
