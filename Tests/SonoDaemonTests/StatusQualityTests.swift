import Foundation
@testable import SonoDaemon
import SonoTestSupport
import Testing

/// The predicted quality in the control API: the status's view and the scan results, as JSON and
/// as docs/control-api.yaml describes them.
struct StatusQualityTests {
    static func object(_ data: Data) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "not a JSON object")
    }

    /// The names of `required: [...]` of a component schema of docs/control-api.yaml.
    static func requiredFields(of schema: String) throws -> Set<String> {
        let document = try String(contentsOf: Repository.url("docs/control-api.yaml"), encoding: .utf8)
        let start = try #require(document.range(of: "\n    \(schema):\n"), "no schema \(schema) in docs/control-api.yaml")
        let line = try #require(document[start.upperBound...].split(separator: "\n").first { $0.hasPrefix("      required: [") })
        let names = line.drop { $0 != "[" }.dropFirst().prefix { $0 != "]" }
        return Set(names.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
    }

    @Test func theStatusViewCarriesQualityByLabelAndTheDiagnosticLine() throws {
        var view = ViewJSON(label: "PLAX", confidence: 0.92, stableFrames: 9, frame: 8841, diagnosticQuality: 0.7)
        view.quality = ["PLAX": 0.81, "PSAX": 0.05, "A4C": 0.02, "A2C": 0.01, "SC4C": 0]
        view.labelQuality = 0.81
        let object = try Self.object(APICoding.encode(view))
        // Labels are data, not keys: the snake-case strategy must leave them as the model spells them.
        let quality = try #require(object["quality"] as? [String: Double], "\(object)")
        #expect(quality == ["PLAX": 0.81, "PSAX": 0.05, "A4C": 0.02, "A2C": 0.01, "SC4C": 0])
        #expect(object["label_quality"] as? Double == 0.81 && object["diagnostic_quality"] as? Double == 0.7)
        #expect(Set(object.keys) == (try Self.requiredFields(of: "ViewEstimate")), "docs/control-api.yaml ViewEstimate")
        #expect(try APICoding.decoder().decode(ViewJSON.self, from: APICoding.encode(view)) == view)

        // A model without quality: the fields are there, null.
        let plain = try Self.object(APICoding.encode(ViewJSON(label: "OTHER", confidence: 0.6, stableFrames: 1, frame: 3)))
        #expect(plain["quality"] is NSNull && plain["label_quality"] is NSNull && plain["diagnostic_quality"] as? Double == 0.7)
        #expect(Set(plain.keys) == (try Self.requiredFields(of: "ViewEstimate")))
    }

    @Test func scanResultsCarryThePredictedAndTrueQuality() throws {
        let result = ViewResultJSON(view: "PLAX", acquired: true, seconds: 12, confidence: 0.9, maxForceN: 6,
                                    predictedQuality: 0.82, trueQuality: 0.64, reason: nil, pose: nil, poseError: nil)
        let object = try Self.object(APICoding.encode(result))
        #expect(object["predicted_quality"] as? Double == 0.82 && object["true_quality"] as? Double == 0.64)
        #expect(Set(object.keys) == (try Self.requiredFields(of: "ViewResult")), "docs/control-api.yaml ViewResult")
    }
}
