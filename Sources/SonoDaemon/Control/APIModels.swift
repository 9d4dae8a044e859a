public import Foundation
import SonoGeometry

// The control API's JSON bodies (docs/control-api.yaml). snake_case on the wire.

public struct PoseJSON: Codable, Sendable, Equatable {
    public var positionMM: [Double]
    public var rotationVectorDeg: [Double]

    // "position_mm" under the coders' snake-case conversion (which would make it positionMm).
    enum CodingKeys: String, CodingKey {
        case positionMM = "positionMm", rotationVectorDeg
    }

    init(_ pose: Pose) {
        positionMM = [pose.position.x, pose.position.y, pose.position.z].map(round2)
        let r = pose.rotation.rotationVector * (180 / .pi)
        rotationVectorDeg = [r.x, r.y, r.z].map(round2)
    }
}

public struct PoseErrorJSON: Codable, Sendable, Equatable {
    enum CodingKeys: String, CodingKey {
        case positionMM = "positionMm", beamDeg, rotationDeg, truthView
    }

    public var positionMM: Double
    public var beamDeg: Double
    public var rotationDeg: Double
    /// The view the simulator's ground truth gives for the probe's true pose and force at the
    /// end of the hold (what the classifier should have seen).
    public var truthView: String
}

public struct ViewResultJSON: Codable, Sendable, Equatable {
    public var view: String
    public var acquired: Bool
    public var seconds: Double
    public var confidence: Double
    public var maxForceN: Double
    /// The model's mean predicted quality of the view over the clip (or the best seen on a
    /// failure); null with a model that predicts none.
    @Nullable public var predictedQuality: Double? = nil
    /// Simulation only: the simulator's mean true quality of the view over the clip's frames.
    /// An acquisition below `diagnosticQuality` (0.7) is a false acquisition.
    @Nullable public var trueQuality: Double? = nil
    @Nullable public var reason: String?
    @Nullable public var pose: PoseJSON?
    /// Simulation only: against the simulator's canonical pose of the view.
    @Nullable public var poseError: PoseErrorJSON?
}

public struct ScanStatusJSON: Codable, Sendable, Equatable {
    public var running: Bool
    public var views: [String]
    @Nullable public var currentView: String?
    @Nullable public var step: String?
    @Nullable public var startedAt: String?
    public var results: [ViewResultJSON]
}

public struct RecordingStatusJSON: Codable, Sendable, Equatable {
    public var active: Bool
    @Nullable public var session: String?
    @Nullable public var path: String?
    @Nullable public var startedAt: String?
}

/// The daemon run's MCAP recording: where, and whether it still records (it stops early only on
/// a write error or when its disk reaches `[recording] min_free_mib`, and then says why).
public struct RunRecordingJSON: Codable, Sendable, Equatable {
    public var path: String
    public var active: Bool
    @Nullable public var error: String?
}

public struct DeviceJSON: Codable, Sendable, Equatable {
    public var connected: Bool
    public var source: String
    @Nullable public var detail: String?
}

public struct DevicesJSON: Codable, Sendable, Equatable {
    public var arm: DeviceJSON
    public var forceSensor: DeviceJSON
    public var probe: DeviceJSON
}

public struct LatchedJSON: Codable, Sendable, Equatable {
    public var cause: String
    public var value: Double
    public var limit: Double
}

public struct VectorJSON: Codable, Sendable, Equatable {
    public var x: Double, y: Double, z: Double
}

public struct ViewJSON: Codable, Sendable, Equatable {
    public var label: String
    public var confidence: Double
    public var stableFrames: Int
    public var frame: UInt64
    /// The smoothed predicted diagnostic quality (0–1) as each view the model predicts one for,
    /// by label (no OTHER); null with a model that predicts none.
    @Nullable public var quality: [String: Double]? = nil
    /// The smoothed predicted quality of `label`; null when the model predicts none for it
    /// (OTHER, or a model without quality).
    @Nullable public var labelQuality: Double? = nil
    /// The smoothed predicted quality at or above which a view is diagnostic and the planner
    /// acquires it (`PlannerSettings.acquireQuality`).
    public var diagnosticQuality: Double = 0.7
}

public struct RealTimeJSON: Codable, Sendable, Equatable {
    public var scheduler: String
    public var priority: Int
    public var memoryLocked: Bool
    @Nullable public var note: String?
}

public struct LoopJSON: Codable, Sendable, Equatable {
    public var cycles: UInt64
    public var overruns: UInt64
    public var periodP50Us: Double
    public var periodP99Us: Double
    public var periodMaxUs: Double
    public var overrunsLongBody: UInt64
    public var startLatenessP99Us: Double
    public var startLatenessMaxUs: Double
    public var bodyP99Us: Double
    public var bodyMaxUs: Double
    public var realtime: RealTimeJSON
}

public struct StatusJSON: Codable, Sendable, Equatable {
    public var mode: String
    public var version: String
    public var uptimeS: Double
    public var state: String
    @Nullable public var latched: LatchedJSON?
    public var devices: DevicesJSON
    public var forceN: VectorJSON
    @Nullable public var contactTargetN: Double?
    public var forceLimited: Bool
    public var probe: PoseJSON
    public var moving: Bool
    public var retracting: Bool
    /// The controller lifts the probe off on its own (`contact.last_lift_off` says why).
    public var liftingOff: Bool
    /// The operator's release is under way.
    public var releasing: Bool
    public var contact: ContactJSON
    @Nullable public var view: ViewJSON?
    public var loop: LoopJSON
    public var scan: ScanStatusJSON
    public var recording: RecordingStatusJSON
    /// The daemon run's MCAP recording; null when `recording.mcap` is off.
    @Nullable public var runRecording: RunRecordingJSON?
    /// The safety profile whose limits the interlocks enforce.
    public var safetyProfile: SafetyProfileJSON
}

/// Which safety profile is in force: hardware/safety.toml (or a site's copy) on hardware,
/// hardware/safety-simulation.toml in simulation.
public struct SafetyProfileJSON: Codable, Sendable, Equatable {
    public var name: String
    @Nullable public var path: String?
    public var simulation: Bool
}

/// The contact lease as the status shows it.
public struct ContactJSON: Codable, Sendable, Equatable {
    /// A contact force is held or the axial force is above the contact threshold.
    public var inContact: Bool
    /// Time left on the lease, ms (0 when expired or out of contact).
    public var leaseRemainingMs: Double
    public var leaseMs: Double
    /// Why the controller last lifted off on its own: lease_expired or scan_ended.
    @Nullable public var lastLiftOff: String?
}

public struct StateJSON: Codable, Sendable, Equatable {
    public var state: String
}

public struct SessionJSON: Codable, Sendable, Equatable {
    public var name: String
    public var path: String
    public var startedAt: String
    public var bytes: Int
    public var viewsAcquired: [String]
}

public struct SessionsJSON: Codable, Sendable, Equatable {
    public var sessions: [SessionJSON]
}

public struct ErrorJSON: Codable, Sendable, Equatable {
    public var error: String
    public var code: String
}

/// A request body: the members it may have (any other is refused, `ControlAPI.decode`) and
/// what an empty body means.
public protocol RequestBodyJSON: Codable, Sendable, Equatable {
    static var fields: Set<String> { get }
    static var empty: Self { get }
}

public struct ScanRequestJSON: RequestBodyJSON {
    public var views: [String]?
    public init(views: [String]?) { self.views = views }
    public static let fields: Set<String> = ["views"]
    public static let empty = ScanRequestJSON(views: nil)
}

public struct RecordingRequestJSON: RequestBodyJSON {
    public var name: String?
    public init(name: String?) { self.name = name }
    public static let fields: Set<String> = ["name"]
    public static let empty = RecordingRequestJSON(name: nil)
}

/// The JSON coders of the API: snake_case keys, sorted for stable output.
public enum APICoding {
    public static func encoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    public static func encode(_ value: some Encodable, pretty: Bool = false) -> Data {
        (try? encoder(pretty: pretty).encode(value)) ?? Data("{}".utf8)
    }
}

func round2(_ value: Double) -> Double { (value * 100).rounded() / 100 }

func rfc3339(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.string(from: date)
}

/// An optional that is written as JSON null rather than left out, as the API document requires
/// (synthesised Codable omits nil keys); a missing key decodes as nil.
@propertyWrapper
public struct Nullable<Value: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var wrappedValue: Value?

    public init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        wrappedValue = container.decodeNil() ? nil : try container.decode(Value.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}

extension KeyedDecodingContainer {
    public func decode<Value>(_ type: Nullable<Value>.Type, forKey key: Key) throws -> Nullable<Value> {
        try decodeIfPresent(type, forKey: key) ?? Nullable(wrappedValue: nil)
    }
}

public struct StateChangeJSON: Codable, Sendable { public var from: String; public var to: String; public var at: String }
public struct StopJSON: Codable, Sendable, Equatable {
    public var kind: String
    public var cause: String
    @Nullable public var value: Double?
    @Nullable public var limit: Double?
    public var at: String
}
public struct FaultJSON: Codable, Sendable, Equatable { public var board: String; public var code: String; public var detail: String }
public struct ViewChangeJSON: Codable, Sendable { public var label: String; public var confidence: Double }


/// What `sonod --summary` writes and the scan's session keeps (summary.json).
public struct ScanSummaryJSON: Codable, Sendable {
    public var mode: String
    public var patient: String?
    public var views: [String]
    public var results: [ViewResultJSON]
    public var acquired: Int
    public var scanSeconds: Double
    public var maxForceN: Double
    public var hardCapN: Double
    public var softLimitN: Double
    public var stops: [StopJSON]
    public var faults: [FaultJSON]
    public var interruption: String?
    public var session: String?
    /// The MCAP recording of the daemon run the scan was part of.
    public var recording: String?
    /// How close the real-time path came to its stale-data deadlines during the scan (absent
    /// from summaries written before it existed).
    public var timing: ScanTimingJSON?
}

/// The real-time path over one scan: the oldest force sample and joint state the interlocks
/// judged (arrival at the host to the control cycle) against the deadlines that stop the arm
/// when exceeded, and the control loop's overruns.
public struct ScanTimingJSON: Codable, Sendable, Equatable {
    public var forceAgeMaxMs: Double
    public var jointAgeMaxMs: Double
    public var forceDeadlineMs: Double
    public var jointDeadlineMs: Double
    public var loopCycles: UInt64
    public var loopOverruns: UInt64
    /// Of those, the overruns of a cycle body that alone took longer than a period (absent from
    /// summaries written before it was counted).
    public var loopOverrunsLongBody: UInt64?

    /// The smaller margin to a deadline, as a fraction of it (1: the inputs were always fresh;
    /// 0 or less: a deadline was reached).
    public var headroom: Double {
        min(1 - forceAgeMaxMs / forceDeadlineMs, 1 - jointAgeMaxMs / jointDeadlineMs)
    }
}

