import Foundation
@testable import SonoRecord
import Testing

/// `sonoctl bench record`'s function on short runs: what it reports matches the file it wrote.
@Suite(.serialized) struct RecordingBenchTests {
    @Test func syntheticMessagesHaveTheSessionsSizes() {
        let force = (0..<1000).map { SyntheticSession.forceJSON(millisecond: $0).count }
        let joints = (0..<1000).map { SyntheticSession.jointsJSON(millisecond: $0).count }
        #expect((105...130).contains(force.reduce(0, +) / force.count))
        #expect((280...320).contains(joints.reduce(0, +) / joints.count))
        #expect(SyntheticSession.forceJSON(millisecond: 1234) == Array(
            #"{"t":1.234,"seq":1234,"fx":0.1133,"fy":-0.0264,"fz":8.4973,"tx":0.01100,"ty":-0.00400,"tz":0.00070,"frame":"probe"}"#.utf8))
        let frame = SyntheticSession.frame(3, width: 256, height: 256)
        #expect(frame.count == 256 * 256)
        #expect(frame[0] == 0, "outside the sector")
        #expect(Set(frame).count > 50, "speckle, not a flat image")
        #expect(frame != SyntheticSession.frame(4, width: 256, height: 256))
    }

    @Test(arguments: [false, true])
    func reportsWhatItWrote(realTime: Bool) throws {
        var options = RecordingBench.Options(path: TestFiles.temporary("bench.mcap"))
        options.realTime = realTime
        options.seconds = 0.5
        options.width = 128
        options.height = 128
        options.removeFile = false
        defer { TestFiles.remove(options.path) }
        let result = try RecordingBench.run(options)
        #expect(result.realTime == realTime)
        #expect(result.framesOffered == 30)
        #expect(result.controlMessages == 1000)
        #expect(result.fileBytes == UInt64(try TestFiles.bytes(options.path).count))
        #expect(result.cpuSecondsPerSecond > 0)
        #expect(result.description.contains("30 frames offered"))

        let (messages, read) = try TestFiles.readAll(options.path)
        #expect(read.complete)
        let topics = Dictionary(grouping: messages, by: \.channel.topic).mapValues(\.count)
        #expect(topics["/force"] == 500 && topics["/joints"] == 500)
        #expect(topics["/probe/image"] == 30 - result.framesDropped)
        let payload = messages.reduce(0) { $0 + $1.data.count }
        #expect(UInt64(payload) == result.payloadBytes)
        if realTime { #expect(result.seconds >= 0.5) }
    }
}
