// Codec throughput and allocations for the two 1 kHz streams (FT_SAMPLE, JOINT_STATE).
// Run: make bench-codec   (swift package benchmark --target ProtocolCodec)
import Benchmark
import SonoProtocol

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal, .instructions],
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 1_000_000
    )

    let force = Frame(seq: 1, timestampMicros: 123_456_789, message: .forceTorqueSample(
        ForceTorqueSample(fx: 0.5, fy: -1.25, fz: 7.75, tx: 0.01, ty: -0.02, tz: 0.003)))
    let joints = Frame(seq: 2, timestampMicros: 123_457_789, message: .jointState(JointState(
        status: [.drivesEnabled, .homed],
        joints: JointArray((0..<6).map { JointReading(position: Float($0) * 0.3, velocity: 0.1, current: 1.2) },
                           filler: .zero))))

    for (name, frame) in [("FT_SAMPLE", force), ("JOINT_STATE (6 joints)", joints)] {
        Benchmark("encode+decode \(name)") { benchmark in
            let wire = UnsafeMutableRawBufferPointer.allocate(byteCount: ProtocolConstants.maxEncodedFrame, alignment: 8)
            defer { wire.deallocate() }
            var decoder = StreamDecoder()
            var decoded = 0
            benchmark.startMeasurement()
            for index in benchmark.scaledIterations {
                var outgoing = frame
                outgoing.seq = UInt16(truncatingIfNeeded: index)
                let count = (try? FrameCodec.encode(outgoing, into: wire)) ?? 0
                decoder.feed(UnsafeRawBufferPointer(rebasing: wire[0..<count])) { result in
                    if case .success = result { decoded += 1 }
                }
            }
            benchmark.stopMeasurement()
            precondition(decoded == benchmark.scaledIterations.count, "a frame failed to round-trip")
        }
    }
}
