public import Foundation
import SonoDevices
import SonoMotion

/// The scanner as the control API shows it: `GET /v1/status` and `GET /v1/limits`.
extension Scanner {
    public func status() -> StatusJSON {
        let motion = controller.status
        let loop = controller.loopStatistics
        let rt = controller.realTime
        var view: ViewJSON?
        var probeDevice = DeviceJSON(connected: false, source: "none", detail: "no probe configured")
        if let pipeline {
            let frames = pipeline.snapshot
            if let observation = frames.observation {
                view = ViewJSON(label: observation.smoothedLabel, confidence: round2(Double(observation.smoothedConfidence)),
                                stableFrames: observation.stableFrames, frame: frames.frameNumber,
                                diagnosticQuality: round2(Double(configuration.planner.acquireQuality)))
                // The smoothed predicted quality as each view the model predicts one for (none for OTHER).
                let labels = pipeline.classifier.labels
                if !observation.smoothedQuality.isEmpty {
                    var quality: [String: Double] = [:]
                    for label in pipeline.classifier.qualityLabels {
                        if let index = labels.firstIndex(of: label), index < observation.smoothedQuality.count {
                            quality[label] = round2(Double(observation.smoothedQuality[index]))
                        }
                    }
                    view?.quality = quality
                    view?.labelQuality = quality[observation.smoothedLabel]
                }
            }
            if let usbProbe {
                let statistics = usbProbe.statistics
                probeDevice = DeviceJSON(connected: statistics.link == "streaming", source: usbProbe.configuration.selector,
                                         detail: ProbeStatisticsText(statistics).description)
            } else {
                probeDevice = DeviceJSON(connected: frames.failure == nil && frames.frames > 0, source: "simulated",
                                         detail: frames.failure ?? "\(frames.frames) frames, \(frames.dropped) dropped, "
                                             + "\(frames.stale) too old for the planner (last \(frames.ageMicros / 1_000) ms old)")
            }
        }
        func device(_ link: BoardLink, _ selector: String) -> DeviceJSON {
            if case .connected(let info, let path) = link.state {
                return DeviceJSON(connected: true, source: path, detail: "\(info.kind) \(info.serial) firmware \(info.firmwareVersion)")
            }
            return DeviceJSON(connected: false, source: selector, detail: link.state.description)
        }
        let simulation = mode.simulation
        let armSource = simulation.map { "simulated (\($0.armPort))" } ?? configuration.armPort.description
        let forceSource = simulation.map { "simulated (\($0.forceSensorPort))" } ?? configuration.forceSensorPort.description
        return StatusJSON(
            mode: mode.name, version: Self.version,
            uptimeS: round2(Date().timeIntervalSince(started)), state: motion.state.rawValue,
            latched: motion.latched.map { LatchedJSON(cause: $0.cause.rawValue, value: round2($0.value), limit: $0.limit) },
            devices: DevicesJSON(arm: device(boards.arm, armSource), forceSensor: device(boards.forceSensor, forceSource),
                                 probe: probeDevice),
            forceN: VectorJSON(x: round2(motion.force.x), y: round2(motion.force.y), z: round2(motion.force.z)),
            contactTargetN: motion.contactTargetN, forceLimited: motion.forceLimited, probe: PoseJSON(motion.probe),
            moving: motion.moving, retracting: motion.retracting, liftingOff: motion.liftingOff,
            releasing: motion.releasing,
            contact: ContactJSON(inContact: motion.inContact, leaseRemainingMs: round2(Double(motion.leaseRemainingMicros) / 1_000),
                                 leaseMs: Double(motionConfiguration.limits.contactLeaseMicros / 1_000),
                                 lastLiftOff: motion.lastLiftOff?.rawValue),
            view: view,
            loop: LoopJSON(cycles: loop.cycles, overruns: loop.overruns, periodP50Us: Double(loop.periodP50),
                           periodP99Us: Double(loop.periodP99), periodMaxUs: Double(loop.periodMax),
                           overrunsLongBody: loop.overrunsLongBody, startLatenessP99Us: Double(loop.jitterP99),
                           startLatenessMaxUs: Double(loop.jitterMax), bodyP99Us: Double(loop.bodyP99), bodyMaxUs: Double(loop.bodyMax),
                           realtime: RealTimeJSON(scheduler: rt?.fifoPriority != nil ? "SCHED_FIFO" : "SCHED_OTHER",
                                                  priority: Int(rt?.fifoPriority ?? 0), memoryLocked: rt?.memoryLocked ?? false,
                                                  note: rt.flatMap { [$0.fifoError, $0.lockError].compactMap { $0 }.first })),
            scan: scanStatus(), recording: sessions.status,
            runRecording: recording.map { run in
                let error = run.counters.writeError
                return RunRecordingJSON(path: run.path, active: error == nil, error: error?.description)
            },
            safetyProfile: safetyProfileJSON)
    }

    var safetyProfileJSON: SafetyProfileJSON {
        let profile = motionConfiguration.limits.profile
        return SafetyProfileJSON(name: profile.name, path: profile.path, simulation: profile.simulation)
    }

    public func limitsJSON() -> Data {
        let l = motionConfiguration.limits
        let c = motionConfiguration.contact
        let profile = safetyProfileJSON
        // The joint speeds the interlocks and the arm board enforce: rated × speed.joint_fraction.
        let jointSpeeds = arm.maxVelocity.map { $0 * l.jointSpeedFraction }
        let body: [String: [String: AnyEncodable]] = [
            "safety_profile": ["name": .init(profile.name), "path": .init(profile.path), "simulation": .init(profile.simulation)],
            "planning": ["margin": .init(l.planningMargin)],
            "force": ["soft_limit_n": .init(l.forceSoftLimitN), "hard_limit_n": .init(l.forceHardCapN),
                      "max_rate_n_per_s": .init(l.forceRateLimitNPerS), "rate_window_us": .init(Double(l.forceRateWindowMicros))],
            "speed": ["tip_mm_s": .init(l.tipSpeedLimitMMs), "joint_speed_fraction": .init(l.jointSpeedFraction),
                      "joint_rad_s": .init(Array(jointSpeeds))],
            "workspace": ["min_mm": .init([l.workspaceMin.x, l.workspaceMin.y, l.workspaceMin.z]),
                          "max_mm": .init([l.workspaceMax.x, l.workspaceMax.y, l.workspaceMax.z])],
            "stale": ["force_ms": .init(Double(l.forceDeadlineMicros) / 1000), "joints_ms": .init(Double(l.jointStateDeadlineMicros) / 1000),
                      "frame_age_ms": .init(Double(l.frameAgeMicros) / 1000)],
            "contact": ["default_n": .init(c.defaultTargetN), "min_n": .init(c.targetRange.lowerBound), "max_n": .init(c.targetRange.upperBound),
                        "lease_ms": .init(Double(l.contactLeaseMicros) / 1000), "detect_n": .init(l.contactDetectN),
                        "lift_off_mm": .init(l.liftOffMM)],
            "release": ["speed_mm_s": .init(l.releaseSpeedMMs), "distance_mm": .init(l.releaseDistanceMM),
                        "force_rise_n": .init(l.releaseForceRiseN)],
            "standstill": ["speed_mm_s": .init(l.standstillSpeedMMs), "displacement_mm": .init(l.standstillDisplacementMM),
                           "settle_ms": .init(Double(l.standstillSettleMicros) / 1000)],
        ]
        return APICoding.encode(body)
    }
}

/// A JSON value of a few shapes, for bodies assembled in code.
struct AnyEncodable: Encodable {
    private let encodeValue: (any Encoder) throws -> Void
    init(_ value: Double) { encodeValue = { try value.encode(to: $0) } }
    init(_ value: [Double]) { encodeValue = { try value.encode(to: $0) } }
    init(_ value: Bool) { encodeValue = { try value.encode(to: $0) } }
    /// A string, or null.
    init(_ value: String?) {
        encodeValue = { encoder in
            var container = encoder.singleValueContainer()
            if let value { try container.encode(value) } else { try container.encodeNil() }
        }
    }
    func encode(to encoder: any Encoder) throws { try encodeValue(encoder) }
}
