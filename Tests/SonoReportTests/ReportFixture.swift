// A realistic synthetic session for the report's tests: 200 s of 1 kHz contact force (breathing,
// a spike past the soft limit and the protective stop it caused), 30 Hz classifier confidence
// for six views, a 100 Hz probe path over three acoustic windows, states and events, and four
// target views with 64×64 key frames, one given up.

import Foundation
import SonoReport

enum ReportFixture {
    static let duration = 200.0
    static let stopTime = 95.0
    static let spikeN = 21.3
    /// (view, acquired at, search started at); A2C was given up at 190 s.
    static let acquisitions: [(view: String, at: Double, from: Double)] = [("PLAX", 40, 10), ("PSAX", 75, 45), ("A4C", 150, 100)]
    static let failedView = (view: "A2C", at: 190.0, from: 155.0)

    static func session() -> SessionReportData {
        var random = SplitMix(seed: 20260511)
        return SessionReportData(
            title: "Scan of default.toml (simulation)",
            subtitle: ["patient": "default.toml", "started": "2026-05-11 09:14:03 UTC", "duration": "3:20",
                       "model": "view-classifier.onnx (sha256 3f9a…c2)", "sono version": "0.9.0 (c8684f5)",
                       "outcome": "3 of 4 views acquired"],
            forceN: force(&random), forceTargetN: 8, forceSoftLimitN: 15, forceHardCapN: 25,
            confidence: confidence(&random), confidenceThreshold: 0.8,
            probePathMM: path(&random), markers: markers(), views: views(),
            counters: ["frames recorded": "5 985", "frames dropped": "3", "messages": "241 377",
                       "file": "session-20260511-091403.mcap", "file size": "38.2 MB"])
    }

    /// Contact force: none until contact at 8 s, then the 8 N target with breathing (±0.8 N at
    /// 0.25 Hz) and sensor noise; a spike to 21.3 N at 95 s, the stop, lift-off, contact again at
    /// 100 s; lifted between windows (at 76–80 s and 151–156 s).
    static func force(_ random: inout SplitMix) -> [TimedValue] {
        (0..<Int(duration * 1000)).map { index in
            let t = Double(index) / 1000
            var value: Double
            switch t {
            case ..<8: value = 0
            case 8..<9: value = 8 * (t - 8)
            case stopTime..<(stopTime + 0.06): value = 8 + (spikeN - 8) * sin((t - stopTime) / 0.06 * .pi)
            case (stopTime + 0.06)..<100, 76..<80, 151..<156: value = 0
            default: value = 8 + 0.8 * sin(2 * .pi * 0.25 * t)
            }
            if value > 0 { value += random.gaussian() * 0.15 }
            return TimedValue(t: t, value: value)
        }
    }

    /// The same session from a model that predicts quality: each view's smoothed predicted
    /// quality (its probability curve scaled to peak at 0.86 for the acquired views, 0.55 for
    /// A2C), the planner's diagnostic line 0.7, and the views' predicted and true quality, PSAX
    /// a false acquisition (true quality 0.58 < 0.7).
    static func qualitySession() -> SessionReportData {
        var data = session()
        data.quality = data.confidence.filter { $0.key != "OTHER" }.mapValues { series in
            series.map { TimedValue(t: $0.t, value: min(1, $0.value * 0.92)) }
        }
        data.qualityThreshold = 0.7
        let quality: [String: (predicted: Double, truth: Double)] = [
            "PLAX": (0.84, 0.81), "PSAX": (0.78, 0.58), "A4C": (0.86, 0.79), "A2C": (0.55, 0.49),
        ]
        for index in data.views.indices {
            data.views[index].predictedQuality = quality[data.views[index].name]?.predicted
            data.views[index].trueQuality = quality[data.views[index].name]?.truth
        }
        return data
    }

    /// Each view's smoothed probability: low in general, rising over its search to its
    /// acquisition; A2C only reaches 0.6.
    static func confidence(_ random: inout SplitMix) -> [String: [TimedValue]] {
        var result: [String: [TimedValue]] = [:]
        let peaks = acquisitions.map { ($0.view, $0.from, $0.at, 0.93) } + [(failedView.view, failedView.from, failedView.at, 0.62)]
        for view in ["PLAX", "PSAX", "A4C", "A2C", "SC4C", "OTHER"] {
            var wander = 0.0
            result[view] = (0..<Int(duration * 30)).map { index in
                let t = Double(index) / 30
                var p = view == "OTHER" ? 0.35 : 0.04
                if let search = peaks.first(where: { $0.0 == view }), t >= search.1, t <= search.2 + 3 {
                    let progress = min(1, (t - search.1) / (search.2 - search.1))
                    p = 0.05 + (search.3 - 0.05) * progress * progress
                }
                // The smoother's output: slow wander, little frame-to-frame noise.
                wander = 0.97 * wander + random.gaussian() * 0.006
                p += wander
                return TimedValue(t: t, value: min(1, max(0, p)))
            }
        }
        return result
    }

    /// Three windows (parasternal, apical, and the apical again after the stop) with the
    /// search's small sweeps, travel between them lifted 20 mm.
    static func path(_ random: inout SplitMix) -> [TimedPoint] {
        let parasternal = (x: 420.0, y: -40.0, z: 210.0), apical = (x: 470.0, y: -120.0, z: 195.0)
        return (0..<Int(duration * 100)).map { index in
            let t = Double(index) / 100
            let window = t < 78 ? parasternal : apical
            let sweep = t < 8 ? 0 : 6 * sin(t * 0.7) + 3 * sin(t * 1.9)
            var point = (x: window.x + sweep, y: window.y + 4 * cos(t * 0.5), z: window.z)
            if t < 8 { point.z += 40 * (1 - t / 8) }
            if (76..<80).contains(t) {
                let u = (t - 76) / 4
                point = (parasternal.x + (apical.x - parasternal.x) * u, parasternal.y + (apical.y - parasternal.y) * u,
                         parasternal.z + 20 * sin(u * .pi))
            }
            return TimedPoint(t: t, x: point.x + random.gaussian() * 0.2, y: point.y + random.gaussian() * 0.2,
                              z: point.z + random.gaussian() * 0.1)
        }
    }

    static func markers() -> [ReportMarker] {
        var markers: [ReportMarker] = [
            ReportMarker(t: 0, kind: .stateChange, text: "disabled"),
            ReportMarker(t: 1.5, kind: .operator, text: "enable"),
            ReportMarker(t: 2, kind: .stateChange, text: "ready"),
            ReportMarker(t: 3, kind: .operator, text: "scan start PLAX PSAX A4C A2C"),
            ReportMarker(t: 3.2, kind: .stateChange, text: "travelling"),
            ReportMarker(t: 8, kind: .stateChange, text: "scanning"),
            ReportMarker(t: 76, kind: .stateChange, text: "travelling"),
            ReportMarker(t: 80, kind: .stateChange, text: "scanning"),
            ReportMarker(t: stopTime, kind: .stop, text: "force above soft limit (21.3 N > 15.0 N)"),
            ReportMarker(t: stopTime, kind: .stateChange, text: "protective stop"),
            ReportMarker(t: 99.5, kind: .operator, text: "resume"),
            ReportMarker(t: 100, kind: .stateChange, text: "scanning"),
            ReportMarker(t: 122.4, kind: .fault, text: "force sample late (3.1 ms), cleared"),
            ReportMarker(t: 151, kind: .stateChange, text: "travelling"),
            ReportMarker(t: 155, kind: .stateChange, text: "scanning"),
            ReportMarker(t: failedView.at, kind: .viewFailed, text: "gave up after 35 s", view: failedView.view),
            ReportMarker(t: 191, kind: .stateChange, text: "parking"),
            ReportMarker(t: 196, kind: .stateChange, text: "done"),
        ]
        for acquisition in acquisitions {
            markers.append(ReportMarker(t: acquisition.at, kind: .viewAcquired, text: "\(acquisition.view) acquired",
                                        view: acquisition.view))
        }
        return markers
    }

    static func views() -> [ReportView] {
        acquisitions.enumerated().map { index, acquisition in
            ReportView(name: acquisition.view, acquired: true, secondsToAcquire: acquisition.at - acquisition.from,
                       confidence: 0.91 + 0.02 * Double(index), poseError: "\(4 + index).\(2 * index) mm, \(3 + index).1°",
                       keyFrame: keyFrame(seed: index))
        } + [ReportView(name: failedView.view, acquired: false, secondsToAcquire: failedView.at - failedView.from,
                        confidence: 0.62, poseError: "14.8 mm, 11.0°",
                        reason: "gave up after 35 s: best smoothed confidence 0.62 < 0.80")]
    }

    /// A 64×64 ultrasound-like frame: a bright sector with speckle and a dark chamber.
    static func keyFrame(seed: Int) -> ReportImage {
        var random = SplitMix(seed: UInt64(seed + 1))
        let size = 64
        var pixels = [UInt8](repeating: 0, count: size * size)
        for y in 0..<size {
            for x in 0..<size {
                let dx = Double(x - size / 2), dy = Double(y)
                let inSector = abs(dx) < dy * 0.7 + 2
                guard inSector else { continue }
                let chamber = hypot(dx - Double(seed * 10 - 10), dy - 30 - Double(seed * 6)) < 8 + Double(seed * 2)
                let base = chamber ? 20.0 : 120 + 60 * sin(dy * 0.3)
                pixels[y * size + x] = UInt8(max(0, min(255, base + random.gaussian() * 30)))
            }
        }
        return ReportImage(width: size, height: size, pixels: pixels)
    }
}

/// Reproducible pseudo-random numbers (SplitMix64) with Gaussian samples.
struct SplitMix {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }

    mutating func gaussian() -> Double {
        let u = max(uniform(), 1e-12), v = uniform()
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }
}
