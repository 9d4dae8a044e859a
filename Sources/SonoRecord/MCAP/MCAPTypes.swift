/// Chunk compression. zstd suits Sono's data: B-mode frames compress roughly 2–4× and the
/// JSON streams far more, at a small fraction of one core.
public enum MCAPCompression: String, Sendable {
    case none = ""
    case zstd = "zstd"
}

public struct MCAPWriterOptions: Sendable {
    public var compression: MCAPCompression = .zstd
    /// Close a chunk at this many uncompressed bytes...
    public var chunkSize = 4 << 20
    /// ...or this long (wall clock) after its first message: a crash loses at most this much.
    public var chunkSeconds = 1.0
    /// fdatasync after each chunk (and attachment, metadata), so a closed chunk survives power loss.
    public var syncChunks = true
    /// The Header's profile.
    public var profile = "sono"
    /// The Header's library field: the daemon passes "sono <version>".
    public var library = "sono"
    /// zstd level: 1 is the fastest and compresses ultrasound frames nearly as well as 3.
    public var zstdLevel: Int32 = 1
    public init() {}
}

public struct MCAPSchema: Sendable, Equatable {
    public var name: String
    /// e.g. "protobuf", "jsonschema"
    public var encoding: String
    public var data: [UInt8]

    public init(name: String, encoding: String, data: [UInt8]) {
        self.name = name
        self.encoding = encoding
        self.data = data
    }
}

public struct MCAPChannel: Sendable, Equatable {
    public var id: UInt16
    public var topic: String
    /// e.g. "protobuf", "json"
    public var messageEncoding: String
    public var schema: MCAPSchema?
    public var metadata: [String: String]

    public init(id: UInt16, topic: String, messageEncoding: String, schema: MCAPSchema?, metadata: [String: String]) {
        self.id = id
        self.topic = topic
        self.messageEncoding = messageEncoding
        self.schema = schema
        self.metadata = metadata
    }
}

/// One message as read back.
public struct MCAPMessage {
    public var channel: MCAPChannel
    public var sequence: UInt32
    /// ns; Sono uses CLOCK_REALTIME nanoseconds for recordings.
    public var logTime: UInt64
    public var publishTime: UInt64
    public var data: [UInt8]
}

/// What a read delivered.
public struct MCAPReadResult: Sendable {
    /// Messages delivered to the caller.
    public var messages: Int
    /// The footer and summary were read and agree with the data (statistics, chunk indexes, CRCs).
    public var complete: Bool
    /// Why reading stopped early (tolerant reads only); nil when the whole file was read.
    public var damage: RecordError?
}
