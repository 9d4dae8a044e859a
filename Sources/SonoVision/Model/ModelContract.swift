import Foundation

/// What Sono requires of a view-classification model (models/README.md), read from the model's
/// own metadata so that a model and its preprocessing cannot drift apart:
/// - one float32 input [1, 1, S, S] (a dynamic batch dimension is taken as 1);
/// - `sono.labels`: comma-separated labels, one per output in order;
/// - `sono.input.size`: S; `sono.resize`: `bilinear-half-pixel`;
/// - `sono.normalize.mean` / `sono.normalize.std`: input = (pixel / 255 − mean) / std;
/// - an output of logits [1, labels.count]; optionally a second output `quality` [1, Q] (each value
///   in [0, 1], after a Sigmoid in the graph) with `sono.quality.labels`: the Q labels, in output
///   order, each one of `sono.labels`.
public struct ModelContract: Sendable {
    public var labels: [String]
    /// The labels the `quality` output predicts a diagnostic quality for, in output order
    /// (`sono.quality.labels`); empty when the model has no quality output.
    public var qualityLabels: [String] = []
    public var inputSize: Int
    public var mean: Float
    public var std: Float
    public var version: String
    /// The part of the frame the model sees (the imaging sector without margins), as fractions
    /// of width and height: x0, y0, x1, y1. `sono.crop`; the whole frame when absent.
    public var crop: (x0: Double, y0: Double, x1: Double, y1: Double) = (0, 0, 1, 1)

    static let resizeMethod = "bilinear-half-pixel"

    static let qualityLabelsKey = "sono.quality.labels"

    /// `hasQualityOutput`: whether the graph has the `quality` output, which requires
    /// `sono.quality.labels` (and the key requires the output).
    init(metadata: [String: String], inputShape: [Int?], hasQualityOutput: Bool = false) throws(ModelError) {
        guard let labelText = metadata["sono.labels"] else { throw .contract(key: "sono.labels", reason: "is missing") }
        labels = labelText.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard labels.count >= 2, !labels.contains(where: \.isEmpty), Set(labels).count == labels.count else {
            throw .contract(key: "sono.labels", reason: "must list at least two distinct, non-empty labels (got '\(labelText)')")
        }
        guard let sizeText = metadata["sono.input.size"], let size = Int(sizeText), (8...1024).contains(size) else {
            throw .contract(key: "sono.input.size", reason: "must be an integer 8…1024 (got \(metadata["sono.input.size"] ?? "nothing"))")
        }
        inputSize = size
        guard let meanText = metadata["sono.normalize.mean"], let mean = Float(meanText), mean.isFinite else {
            throw .contract(key: "sono.normalize.mean", reason: "must be a number")
        }
        guard let stdText = metadata["sono.normalize.std"], let std = Float(stdText), std.isFinite, std > 0 else {
            throw .contract(key: "sono.normalize.std", reason: "must be a positive number")
        }
        self.mean = mean
        self.std = std
        let resize = metadata["sono.resize"] ?? Self.resizeMethod
        guard resize == Self.resizeMethod else {
            throw .contract(key: "sono.resize", reason: "must be \(Self.resizeMethod) (got \(resize))")
        }
        version = metadata["sono.model.version"] ?? "unversioned"
        if let cropText = metadata["sono.crop"] {
            let parts = cropText.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 4, parts.allSatisfy({ (0...1).contains($0) }), parts[0] < parts[2], parts[1] < parts[3] else {
                throw .contract(key: "sono.crop", reason: "must be x0,y0,x1,y1 fractions of the frame with x0 < x1, y0 < y1 (got \(cropText))")
            }
            crop = (parts[0], parts[1], parts[2], parts[3])
        }
        switch (metadata[Self.qualityLabelsKey], hasQualityOutput) {
        case (nil, false): break
        case (nil, true):
            throw .contract(key: Self.qualityLabelsKey, reason: "is missing; the model has a quality output, and it must list its labels")
        case (let text?, false):
            throw .contract(key: Self.qualityLabelsKey, reason: "is given ('\(text)') but the model has no output named quality")
        case (let text?, true):
            let names = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard !names.contains(where: \.isEmpty), Set(names).count == names.count else {
                throw .contract(key: Self.qualityLabelsKey, reason: "must list distinct, non-empty labels (got '\(text)')")
            }
            if let unknown = names.first(where: { !labels.contains($0) }) {
                throw .contract(key: Self.qualityLabelsKey,
                                reason: "names '\(unknown)', which is not one of sono.labels (\(labels.joined(separator: ",")))")
            }
            qualityLabels = names
        }
        guard inputShape.count == 4, inputShape[0] == nil || inputShape[0] == 1, inputShape[1] == 1,
              inputShape[2] == size, inputShape[3] == size else {
            let shown = inputShape.map { $0.map(String.init) ?? "?" }.joined(separator: "×")
            throw .contract(key: "input shape", reason: "must be 1×1×\(size)×\(size) (got \(shown))")
        }
    }

}
