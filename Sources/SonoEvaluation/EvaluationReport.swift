import Foundation
public import SonoCore
import SonoSim

/// The evaluation over all patients: per view, and the patients it went worst on.
public struct EvaluationAggregate: Sendable, Equatable, Codable {
    public struct ViewSummary: Sendable, Equatable, Codable {
        public var view: String
        /// Patients whose scan tried this view.
        public var attempts: Int
        public var acquired: Int
        /// Acquired with a clip whose mean true quality is below `ViewQuality.diagnostic`.
        public var falseAcquisitions: Int
        /// Acquired with a diagnostic clip, over attempts: the success rate.
        public var successRate: Double
        /// Time from the view's start to the view held, acquired views only, simulated s.
        public var secondsP50: Double?
        public var secondsP95: Double?
        /// Mean of the clips' mean true quality (acquired views).
        public var meanClipQuality: Double?
        /// The largest true normal contact force over every scan of this view, N, and the median
        /// of each scan's largest.
        public var maxTrueForceN: Double
        public var medianMaxTrueForceN: Double
        /// The largest axial force, and force magnitude, the controller measured over every scan
        /// of this view, N (the hard cap judges the magnitude).
        public var maxAxialForceN: Double
        public var maxForceMagnitudeN: Double
        /// Attempts where the patient allows a diagnostic view at all (the oracle's best
        /// reachable quality ≥ `ViewQuality.diagnostic`), and the success rate over those.
        public var reachable: Int
        public var successRateReachable: Double
    }

    public struct PatientRank: Sendable, Equatable, Codable {
        public var patient: String
        public var trueAcquisitions: Int
        public var falseAcquisitions: Int
        public var views: Int
        public var scanSeconds: Double
        public var interruption: String?
    }

    public var patients: Int
    public var views: [String]
    public var model: String
    public var perView: [ViewSummary]
    /// Scans in which every view was acquired with a diagnostic clip.
    public var completeScans: Int
    public var interruptedScans: Int
    /// Scans that could not run (start-up refused).
    public var failedScans: Int
    public var stops: Int
    public var faults: Int
    /// Lift-offs because the contact lease expired (the planner fell silent or frames stopped).
    public var leaseExpiries: Int
    /// The worst scans first: fewest true acquisitions, then most false ones, then the longest.
    public var worst: [PatientRank]
    public var simulatedSeconds: Double

    public init(results: [PatientEvaluation], views: [StandardView], model: String, worstCount: Int = 5) {
        patients = results.count
        self.views = views.map(\.rawValue)
        self.model = model
        perView = views.map { view in
            let outcomes = results.flatMap { $0.views.filter { $0.view == view.rawValue } }
            let acquired = outcomes.filter(\.acquired)
            let falseOnes = acquired.filter(\.falseAcquisition).count
            let seconds = acquired.map(\.seconds).sorted()
            let forces = outcomes.map(\.maxTrueForceN).sorted()
            let qualities = acquired.compactMap(\.clipMeanQuality)
            let reachable = outcomes.filter { ($0.reachableQuality ?? 0) >= ViewQuality.diagnostic }
            let reachableTrue = reachable.filter { $0.acquired && !$0.falseAcquisition }.count
            return ViewSummary(
                view: view.rawValue, attempts: outcomes.count, acquired: acquired.count, falseAcquisitions: falseOnes,
                successRate: outcomes.isEmpty ? 0 : round6(Double(acquired.count - falseOnes) / Double(outcomes.count)),
                secondsP50: percentile(seconds, 0.5).map(round6), secondsP95: percentile(seconds, 0.95).map(round6),
                meanClipQuality: qualities.isEmpty ? nil : round6(qualities.reduce(0, +) / Double(qualities.count)),
                maxTrueForceN: round6(forces.last ?? 0), medianMaxTrueForceN: round6(percentile(forces, 0.5) ?? 0),
                maxAxialForceN: round6(outcomes.map(\.maxAxialForceN).max() ?? 0),
                maxForceMagnitudeN: round6(outcomes.map(\.maxForceMagnitudeN).max() ?? 0),
                reachable: reachable.count,
                successRateReachable: reachable.isEmpty ? 0 : round6(Double(reachableTrue) / Double(reachable.count)))
        }
        completeScans = results.filter { $0.error == nil && $0.trueAcquisitions == views.count }.count
        interruptedScans = results.filter { $0.interruption != nil }.count
        failedScans = results.filter { $0.error != nil }.count
        stops = results.reduce(0) { $0 + $1.incidents.filter { $0.kind == "stop" }.count }
        faults = results.reduce(0) { $0 + $1.incidents.filter { $0.kind == "fault" }.count }
        leaseExpiries = results.reduce(0) { $0 + $1.incidents.filter { $0.kind == "lift_off" && $0.detail == "lease_expired" }.count }
        worst = results.sorted { a, b in
            if a.trueAcquisitions != b.trueAcquisitions { return a.trueAcquisitions < b.trueAcquisitions }
            if a.falseAcquisitions != b.falseAcquisitions { return a.falseAcquisitions > b.falseAcquisitions }
            if a.scanSeconds != b.scanSeconds { return a.scanSeconds > b.scanSeconds }
            return a.patient < b.patient
        }.prefix(worstCount).map {
            PatientRank(patient: $0.patient, trueAcquisitions: $0.trueAcquisitions, falseAcquisitions: $0.falseAcquisitions,
                        views: $0.views.count, scanSeconds: $0.scanSeconds, interruption: $0.interruption ?? $0.error)
        }
        // In the patients' order: the same sum whatever order the workers finished in.
        simulatedSeconds = round6(results.reduce(0) { $0 + $1.simulatedSeconds })
    }

    /// The table `sonoctl sim eval` prints.
    public var text: String {
        var lines: [String] = []
        lines.append("  view   success   acquired   false   time to acquire p50 / p95 (s)   clip q   "
            + "max force N: true normal worst / median; measured axial, |F|   reachable: views, success")
        for v in perView {
            let time = v.secondsP50.map { p50 in String(format: "%6.1f / %6.1f", p50, v.secondsP95 ?? p50) } ?? "     -  /     - "
            let quality = v.meanClipQuality.map { String(format: "%6.2f", $0) } ?? "     -"
            lines.append("  " + pad(v.view, 6)
                + String(format: " %6.1f %%   %3d/%-3d    %3d", v.successRate * 100, v.acquired, v.attempts, v.falseAcquisitions)
                + "     " + pad(time, 30) + "  " + quality
                + String(format: "   %6.2f / %6.2f; %6.2f, %6.2f", v.maxTrueForceN, v.medianMaxTrueForceN, v.maxAxialForceN,
                         v.maxForceMagnitudeN)
                + String(format: "         %3d/%-3d %6.1f %%", v.reachable, v.attempts, v.successRateReachable * 100))
        }
        let attempts = perView.reduce(0) { $0 + $1.attempts }
        let successes = perView.reduce(0) { $0 + $1.acquired - $1.falseAcquisitions }
        let falseOnes = perView.reduce(0) { $0 + $1.falseAcquisitions }
        lines.append(String(format: "  all views: %d/%d acquired diagnostic (%.1f %%), %d false acquisitions; "
                            + "%d of the %d views reachable diagnostic by the oracle", successes, attempts,
                            attempts == 0 ? 0 : Double(successes) / Double(attempts) * 100, falseOnes,
                            perView.reduce(0) { $0 + $1.reachable }, attempts))
        lines.append("  \(completeScans)/\(patients) scans with every view diagnostic; \(interruptedScans) interrupted, "
            + "\(failedScans) failed to start; \(stops) stops, \(faults) faults, \(leaseExpiries) lease expiries")
        if !worst.isEmpty {
            lines.append("  worst patients:")
            for rank in worst {
                lines.append("    " + pad(rank.patient, 22)
                    + " \(rank.trueAcquisitions)/\(rank.views) diagnostic, \(rank.falseAcquisitions) false, "
                    + String(format: "%.1f s", rank.scanSeconds) + (rank.interruption.map { " (\($0))" } ?? ""))
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// Nearest-rank percentile of sorted values; nil when there are none.
func percentile(_ sorted: [Double], _ fraction: Double) -> Double? {
    guard !sorted.isEmpty else { return nil }
    let rank = Int((fraction * Double(sorted.count)).rounded(.up))
    return sorted[min(sorted.count - 1, max(0, rank - 1))]
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}
