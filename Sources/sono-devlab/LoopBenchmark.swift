import ArgumentParser
import Foundation
import SonoGeometry
import SonoMotion
import SonoProtocol
import SonoSim
import SonoTestbed

/// Settings shared by the motion benchmarks: the arm and patient files, and the emulated link's
/// stale-data headroom (umockdev relays every byte through one thread; its latency tail, not
/// the controller, would otherwise trip the 5 ms deadlines).
struct RigOptions: ParsableArguments {
    @Option(help: "Robot description.")
    var robot = "hardware/arm.toml"

    @Option(help: "Patient file.")
    var patient = "hardware/patients/default.toml"

    @Option(help: "Stale-data deadline for force samples and joint states, ms.")
    var deadlineMillis: UInt64 = 40

    func configuration(_ adjust: (inout MotionControllerConfiguration) -> Void = { _ in }) -> MotionControllerConfiguration {
        var configuration = MotionControllerConfiguration()
        configuration.limits.forceDeadlineMicros = deadlineMillis * 1_000
        configuration.limits.jointStateDeadlineMicros = deadlineMillis * 1_000
        adjust(&configuration)
        return configuration
    }
}

func printLoop(_ stats: ControlLoopStatistics, _ report: RealTimeReport?) {
    print("""
          loop:     \(report.map { "\($0)" } ?? "not started")
          cycles:   \(stats.cycles) (\(stats.overruns) overruns, \(stats.overrunsLongBody) of them a body longer than the period)
          period:   p50 \(stats.periodP50) µs, p99 \(stats.periodP99) µs, p99.9 \(stats.periodP999) µs, max \(stats.periodMax) µs
          lateness: p99 \(stats.jitterP99) µs, max \(stats.jitterMax) µs (cycle start after its deadline)
          body:     p99 \(stats.bodyP99) µs, max \(stats.bodyMax) µs (the cycle's own work)
        """)
}

/// `sono-devlab bench-loop`: the 1 kHz control loop running the real motion controller, in
/// contact with the virtual patient and sweeping over the skin, through the emulated serial
/// boards: period, jitter and overruns over the whole run.
struct LoopBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-loop",
        abstract: "Measure the control loop's period and jitter while it scans the virtual patient (default 60 s).")

    @Option(help: "Seconds to run.")
    var seconds: Double = 60

    @OptionGroup var rig: RigOptions

    func run() throws {
        _ = try requireBench()
        let scanner = try VirtualScannerRig(robotPath: rig.robot, patientPath: rig.patient,
                                            configuration: rig.configuration(), serialSuffix: "LOOP")
        defer { scanner.stop() }
        try scanner.start(lockMemory: true)
        try scanner.makeContact(at: .plax, forceN: 8)
        let report = scanner.controller.realTime
        print("control loop: 1 kHz motion controller in contact with the virtual patient for \(Int(seconds)) s")
        print("  command: umockdev-wrapper .build/release/sono-devlab bench-loop --seconds \(Int(seconds))")
        let start = Date()
        let before = scanner.controller.loopStatistics
        let centre = scanner.controller.status.probe
        var side = 1.0
        // Sweep ±10 mm across the window at 10 mm/s, holding 8 N, until the time is up.
        while Date().timeIntervalSince(start) < seconds {
            var target = centre
            target.position += centre.rotation.x * (10 * side)
            do { try scanner.controller.perform(.move(to: target, limits: MotionLimits(speedMMs: 10))) } catch {
                throw ValidationError("sweep refused: \(error); stops: \(scanner.stops)")
            }
            scanner.wait(seconds: min(5, seconds - Date().timeIntervalSince(start))) { !scanner.controller.status.moving }
            side = -side
        }
        let stats = scanner.controller.loopStatistics
        printLoop(stats, report)
        print("  (\(stats.cycles - before.cycles) cycles during the sweep; stops: \(scanner.stops.count); "
              + "events dropped: \(scanner.controller.droppedEvents); inputs dropped: \(scanner.boards.inputs.overflows))")
    }
}

/// `sono-devlab bench-stop`: breach-to-stop latency through the serial link. The force board
/// reports 25 N (over the 20 N cap); the time from that sample to the STOP frame's write is
/// measured from the sample's board stamp and from its arrival at the host.
struct StopBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-stop", abstract: "Measure force-breach-to-stop latency through the serial link.")

    @Option(help: "Breaches to measure.")
    var count = 100

    @OptionGroup var rig: RigOptions

    func run() throws {
        _ = try requireBench()
        let wrench = SettableWrench()
        let scanner = try VirtualScannerRig(robotPath: rig.robot, patientPath: rig.patient,
                                            configuration: rig.configuration { $0.retractDistanceMM = 2 },
                                            serialSuffix: "STOP", wrench: wrench)
        defer { scanner.stop() }
        try scanner.start()
        let controller = scanner.controller
        let start = controller.status.probe
        var fromArrival: [UInt64] = []
        var fromBoard: [UInt64] = []
        var sameCycle = 0
        var other: [String] = []
        for _ in 0..<count {
            if controller.status.state != .operatorEnabled {
                if controller.status.state == .fault || controller.status.state == .emergencyStop {
                    do { try controller.perform(.safety(.reset)) } catch {
                        throw ValidationError("reset refused: \(error); last events: \(scanner.events.suffix(6))")
                    }
                }
                try controller.perform(.safety(.enable))
                try controller.perform(.safety(.enableMotion))
                // Each retraction lifts the probe: go back, or the workspace's top ends the run.
                try controller.perform(.move(to: start, limits: nil))
                scanner.wait(seconds: 3) { !controller.status.moving }
            }
            Thread.sleep(forTimeInterval: 0.03)
            scanner.clearEvents()
            wrench.set(ForceTorqueSample(fx: 0, fy: 0, fz: 25, tx: 0, ty: 0, tz: 0))
            let stopped = scanner.wait(seconds: 1) { !scanner.stops.isEmpty }
            wrench.set(ForceTorqueSample(fx: 0, fy: 0, fz: 0, tx: 0, ty: 0, tz: 0))
            guard stopped, let stop = scanner.stops.first else { throw ValidationError("no stop within 1 s of 25 N") }
            if stop.breach?.cause == .forceHardCap, let written = stop.writtenMicros {
                fromArrival.append(written - stop.forceReceivedMicros)
                fromBoard.append(written - stop.forceBoardMicros)
                if stop.cycle == stop.forceSampleCycle { sameCycle += 1 }
            } else {
                other.append(stop.breach?.cause.rawValue ?? "operator")
            }
            scanner.wait(seconds: 2) {
                scanner.events.contains { event in
                    switch event {
                    case .retractFinished, .retractAborted: true
                    default: false
                    }
                }
            }
        }
        func percentile(_ values: [UInt64], _ p: Double) -> UInt64 {
            let sorted = values.sorted()
            return sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))]
        }
        print("breach-to-stop through the serial link: \(fromArrival.count) over-force stops "
              + "(\(sameCycle) on the cycle the sample arrived for)")
        print("  command: umockdev-wrapper .build/release/sono-devlab bench-stop --count \(count)")
        print("  sample arrives at host → STOP written: p50 \(percentile(fromArrival, 0.5)) µs, "
              + "p99 \(percentile(fromArrival, 0.99)) µs, max \(percentile(fromArrival, 1)) µs")
        print("  sample stamped on board → STOP written: p50 \(percentile(fromBoard, 0.5)) µs, "
              + "p99 \(percentile(fromBoard, 0.99)) µs, max \(percentile(fromBoard, 1)) µs")
        if !other.isEmpty { print("  stops for other causes (not counted): \(other)") }
        printLoop(controller.loopStatistics, controller.realTime)
    }
}
