import Foundation
import Glibc
import SonoSystem

/// `sonoctl bench record`: a session's data volume recorded in real time through the
/// SessionRecorder (60 fps 512×512 mono8 RawImage frames + 1 kHz force JSON + 1 kHz joints
/// JSON from three producer threads), or written as fast as possible through one MCAPWriter
/// (`realTime: false`, the figure to compare with tools/record/bench_python_writer.py).
public enum RecordingBench {
    public struct Options: Sendable {
        /// The recording (must not exist).
        public var path: String
        public var seconds = 10.0
        public var realTime = true
        public var writer = MCAPWriterOptions()
        public var width = 512
        public var height = 512
        public var framesPerSecond = 60
        /// Force and joint samples per second (each).
        public var sampleRate = 1000
        public var bulkCapacity = 120
        /// Delete the recording afterwards.
        public var removeFile = true

        public init(path: String) { self.path = path }
    }

    public struct Result: Sendable, CustomStringConvertible {
        public var realTime: Bool
        public var seconds: Double
        public var framesOffered = 0
        public var framesDropped = 0
        public var controlMessages = 0
        /// Message payload bytes handed to the recorder (frames as encoded RawImage).
        public var payloadBytes: UInt64 = 0
        public var fileBytes: UInt64 = 0
        public var chunks = 0
        public var controlHighWater = 0
        /// Payload per wall second (MB = 10⁶ bytes).
        public var megabytesPerSecond: Double { Double(payloadBytes) / seconds / 1e6 }
        /// Process CPU time (user + system, all threads) per wall second.
        public var cpuSecondsPerSecond = 0.0

        public var description: String {
            let mode = realTime ? "real time" : "as fast as possible"
            let ratio = fileBytes > 0 ? Double(payloadBytes) / Double(fileBytes) : 0
            return """
                recording bench (\(mode), \(String(format: "%.1f", seconds)) s wall): \
                \(framesOffered) frames offered, \(framesDropped) dropped; \(controlMessages) control messages \
                (queue high-water \(controlHighWater)); \(String(format: "%.1f", megabytesPerSecond)) MB/s of payload; \
                file \(String(format: "%.1f", Double(fileBytes) / 1e6)) MB in \(chunks) chunks \
                (payload/file \(String(format: "%.2f", ratio))); CPU \(String(format: "%.3f", cpuSecondsPerSecond)) s per s
                """
        }
    }

    public static func run(_ options: Options) throws(RecordError) -> Result {
        defer { if options.removeFile { unlink(options.path) } }
        return options.realTime ? try realTime(options) : try asFastAsPossible(options)
    }

    /// 16 distinct frames and one second of force and joint messages, made before the clock starts.
    struct Material {
        let frames: [[UInt8]]
        let force: [[UInt8]]
        let joints: [[UInt8]]

        init(_ options: Options) {
            frames = (0..<16).map { SyntheticSession.frame($0, width: options.width, height: options.height) }
            force = (0..<options.sampleRate).map(SyntheticSession.forceJSON(millisecond:))
            joints = (0..<options.sampleRate).map(SyntheticSession.jointsJSON(millisecond:))
        }
    }

    /// Registers the three channels; returns (image, force, joints).
    static func channels(_ add: (String, String, MCAPSchema?) throws(RecordError) -> UInt16) throws(RecordError) -> (UInt16, UInt16, UInt16) {
        let image = try add("/probe/image", "protobuf", FoxgloveSchemas.rawImage)
        let force = try add("/force", "json", FoxgloveSchemas.jsonSchema(name: "sono.ForceTorque", json: #"{"type":"object"}"#))
        let joints = try add("/joints", "json", FoxgloveSchemas.jsonSchema(name: "sono.JointState", json: #"{"type":"object"}"#))
        return (image, force, joints)
    }

    private static func asFastAsPossible(_ options: Options) throws(RecordError) -> Result {
        let material = Material(options)
        let writer = try MCAPWriter(path: options.path, options: options.writer)
        let (image, force, joints) = try channels { (topic, encoding, schema) throws(RecordError) in
            try writer.addChannel(topic: topic, messageEncoding: encoding,
                                  schemaID: try schema.map { (schema) throws(RecordError) in try writer.addSchema(schema) } ?? 0)
        }
        let encoder = RawImageEncoder()
        var result = Result(realTime: false, seconds: 0)
        let start = MonotonicClock.nowNanos(), cpuStart = cpuSeconds()
        let samples = Int(options.seconds * Double(options.sampleRate))
        var frame = 0
        for sample in 0..<samples {
            let time = UInt64(sample) * 1_000_000_000 / UInt64(options.sampleRate)
            let forceData = material.force[sample % options.sampleRate], jointsData = material.joints[sample % options.sampleRate]
            try writer.write(channel: force, sequence: UInt32(sample), logTime: time, publishTime: time, data: forceData)
            try writer.write(channel: joints, sequence: UInt32(sample), logTime: time, publishTime: time, data: jointsData)
            result.payloadBytes += UInt64(forceData.count + jointsData.count)
            result.controlMessages += 2
            if frame * options.sampleRate <= sample * options.framesPerSecond {
                let size = try encoder.encodeMono8(timestampNanos: time, width: options.width, height: options.height,
                                                   pixels: material.frames[frame % material.frames.count]) { (encoded) throws(RecordError) in
                    try writer.write(channel: image, sequence: UInt32(frame), logTime: time, publishTime: time, data: encoded)
                    return encoded.count
                }
                result.payloadBytes += UInt64(size)
                result.framesOffered += 1
                frame += 1
            }
        }
        try writer.close()
        result.seconds = Double(MonotonicClock.nowNanos() - start) / 1e9
        result.cpuSecondsPerSecond = (cpuSeconds() - cpuStart) / result.seconds
        result.fileBytes = writer.bytesWritten
        result.chunks = writer.chunksWritten
        return result
    }

    private static func realTime(_ options: Options) throws(RecordError) -> Result {
        let material = Material(options)
        let recorder = try SessionRecorder(path: options.path, options: options.writer, bulkCapacity: options.bulkCapacity)
        let (image, force, joints) = try channels { (topic, encoding, schema) throws(RecordError) in
            try recorder.channel(topic: topic, messageEncoding: encoding, schema: schema)
        }
        let start = MonotonicClock.nowNanos(), cpuStart = cpuSeconds()
        let end = start + UInt64(options.seconds * 1e9)
        let group = DispatchGroup()
        func producer(_ name: String, rate: Int, _ body: @escaping @Sendable (Int, UInt64) -> Void) {
            group.enter()
            let thread = Thread {
                var index = 0
                while true {
                    let due = start + UInt64(index) * 1_000_000_000 / UInt64(rate)
                    guard due < end else { break }
                    MonotonicClock.sleep(untilNanos: due)
                    body(index, due)
                    index += 1
                }
                group.leave()
            }
            thread.name = name
            thread.start()
        }
        let width = options.width, height = options.height, sampleRate = options.sampleRate
        producer("bench-frames", rate: options.framesPerSecond) { index, time in
            material.frames[index % material.frames.count].withUnsafeBytes {
                _ = recorder.offerMono8Frame(channel: image, sequence: UInt32(index), logTime: time, width: width, height: height, pixels: $0)
            }
        }
        producer("bench-force", rate: sampleRate) { index, time in
            let data = material.force[index % sampleRate]
            recorder.record(channel: force, sequence: UInt32(index), logTime: time, data: data)
        }
        producer("bench-joints", rate: sampleRate) { index, time in
            let data = material.joints[index % sampleRate]
            recorder.record(channel: joints, sequence: UInt32(index), logTime: time, data: data)
        }
        group.wait()
        let counters = try recorder.finish()
        var result = Result(realTime: true, seconds: Double(MonotonicClock.nowNanos() - start) / 1e9)
        result.cpuSecondsPerSecond = (cpuSeconds() - cpuStart) / result.seconds
        result.framesOffered = counters.bulkOffered
        result.framesDropped = counters.bulkDropped
        result.controlMessages = counters.messages - (counters.bulkOffered - counters.bulkDropped)
        result.controlHighWater = counters.controlHighWater
        result.payloadBytes = counters.payloadBytes
        result.fileBytes = counters.bytesWritten
        result.chunks = counters.chunks
        return result
    }

    /// User + system CPU seconds of the whole process.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

}
