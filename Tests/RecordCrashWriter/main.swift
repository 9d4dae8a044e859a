// The process SonoRecordTests kills with SIGKILL in the middle of a recording.
//
//   record-crash-writer PATH
//
// Writes messages forever on two channels (sequence n, payload from TestFiles.payload's pattern)
// with small chunks, and after each chunk reaches the disk prints "<messages written>\n" on
// stdout, so the test knows a lower bound of what must survive the kill.
import Glibc
import SonoRecord

/// One unbuffered write(2): the test reads each line as soon as the chunk is on disk.
func say(_ text: String, to descriptor: Int32 = 1) {
    var line = text + "\n"
    line.withUTF8 { _ = write(descriptor, $0.baseAddress, $0.count) }
}

guard CommandLine.arguments.count == 2 else {
    say("usage: record-crash-writer PATH", to: 2)
    exit(64)
}
var options = MCAPWriterOptions()
options.chunkSize = 48 << 10
options.syncChunks = false  // a killed process loses nothing the kernel has; power loss is not tested here
do {
    let writer = try MCAPWriter(path: CommandLine.arguments[1], options: options)
    let schema = try writer.addSchema(MCAPSchema(name: "crash.Sample", encoding: "jsonschema", data: Array("{}".utf8)))
    let force = try writer.addChannel(topic: "/force", messageEncoding: "json", schemaID: schema)
    let frames = try writer.addChannel(topic: "/frames", messageEncoding: "x-bytes", schemaID: 0)
    var sequence: UInt32 = 0
    var chunks = 0
    while true {
        let channel = sequence % 4 == 0 ? frames : force
        var data = [UInt8(truncatingIfNeeded: channel), UInt8(truncatingIfNeeded: sequence),
                    UInt8(truncatingIfNeeded: sequence >> 8), UInt8(truncatingIfNeeded: sequence >> 16)]
        let size = channel == frames ? 3000 : 120
        for index in 0..<size { data.append(UInt8(truncatingIfNeeded: Int(sequence) &* 31 &+ index &* 7 &+ Int(channel))) }
        try writer.write(channel: channel, sequence: sequence, logTime: 1_000 + UInt64(sequence), publishTime: 1_000 + UInt64(sequence), data: data)
        sequence += 1
        if writer.chunksWritten != chunks {
            chunks = writer.chunksWritten
            say(String(writer.messagesWritten))
        }
    }
} catch {
    say("record-crash-writer: \(error)", to: 2)
    exit(1)
}
