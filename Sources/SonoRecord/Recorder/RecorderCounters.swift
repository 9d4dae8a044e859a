/// What a session recorder has done so far.
public struct RecorderCounters: Sendable, Equatable {
    /// Messages written to the file (both lanes).
    public var messages = 0
    /// Message payload bytes written (frames as encoded RawImage), before compression.
    public var payloadBytes: UInt64 = 0
    /// Bytes in the file.
    public var bytesWritten: UInt64 = 0
    /// Chunks written.
    public var chunks = 0
    /// Bulk items offered, and those dropped because the bulk lane was full.
    public var bulkOffered = 0
    public var bulkDropped = 0
    /// Control items recorded (messages, attachments, metadata, channels), never dropped.
    public var controlRecorded = 0
    /// The most control items that waited for the writer at once.
    public var controlHighWater = 0
    /// The most bulk items that waited for the writer at once (at most the bulk capacity).
    public var bulkHighWater = 0
    /// Items discarded after the writer failed (`writeError`).
    public var lostAfterError = 0
    /// The write failure that stopped the recording, if one did.
    public var writeError: RecordError?

    public init() {}
}
