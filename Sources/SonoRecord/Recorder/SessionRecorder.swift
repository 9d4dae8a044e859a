import Foundation
import Glibc
import SonoSystem

/// Records a session into one MCAP file from any number of producer threads; one writer thread
/// owns the `MCAPWriter` and is the only one that touches the disk.
///
/// Two lanes:
/// - control (`record`, `attach`, `metadata`, `channel`): force, joints, events, state. Never
///   dropped: an unbounded FIFO whose high-water mark is counted, so a slow disk shows as a
///   growing queue rather than lost control data.
/// - bulk (`offer`, `offerMono8Frame`): probe frames. Bounded at `bulkCapacity` items waiting;
///   when full the new item is dropped and counted, so a slow disk costs frames, never memory.
///
/// Producers only append to an array under a mutex and signal the writer (frames are also
/// copied, outside the lock, into a reused buffer): cheap enough for the frame pipeline and the
/// motion controller's publishing thread, not meant for the 1 kHz loop itself.
/// The writer drains both lanes in batches (control first), encodes frames as
/// `foxglove.RawImage`, and closes chunks by size, by age (`chunkSeconds`, also when idle),
/// and on `finish`. Always call `finish()`: the writer thread holds the recorder until then
/// (without it the file stays as after a crash, readable up to its last chunk).
public final class SessionRecorder: @unchecked Sendable {
    // @unchecked: the writer and its file belong to the writer thread; producers reach it only through `lock`-guarded lanes.
    public let path: String
    public let bulkCapacity: Int

    private enum ControlItem {
        /// `schemaID` 0: none; `newSchema`: first channel with it, so the writer adds it.
        case register(schema: MCAPSchema?, schemaID: UInt16, newSchema: Bool, topic: String, encoding: String,
                      metadata: [String: String], channel: UInt16)
        case message(channel: UInt16, sequence: UInt32, logTime: UInt64, data: [UInt8])
        case attachment(name: String, mediaType: String, logTime: UInt64, data: [UInt8])
        case metadata(name: String, entries: [String: String])
    }

    private struct BulkItem {
        var channel: UInt16
        var sequence: UInt32
        var logTime: UInt64
        var data: [UInt8]
        /// Pixels of a mono8 frame to encode as RawImage (data is then a pooled buffer).
        var mono8: (width: Int, height: Int)?
    }

    /// Everything producers and the writer share; guarded by `lock`.
    private struct Shared {
        var control: [ControlItem] = []
        var bulk: [BulkItem] = []
        /// Items queued or being written, per lane.
        var controlWaiting = 0
        var bulkWaiting = 0
        var counters = RecorderCounters()
        var schemas: [MCAPSchema] = []
        var channels = 0
        var finishing = false
        var finished = false
        var writerSleeping = false
        /// Reused frame buffers.
        var framePool: [[UInt8]] = []
    }

    private let lock = MonotonicCondition()
    private var shared = Shared()
    /// Only the writer thread touches these after `init`.
    private let writer: MCAPWriter
    private let encoder = RawImageEncoder()
    /// Test hook: the writer sleeps this long per bulk item, like a disk that cannot keep up.
    private let bulkWriteDelayMicros: UInt32
    /// Free space (bytes) the recording leaves on its file system: below it the writer closes
    /// the file and stops (`RecordError.diskLow`). 0: no floor.
    public let minimumFreeBytes: UInt64
    /// How often the writer thread looks at the free space.
    static let spaceCheckNanos: UInt64 = 1_000_000_000

    /// Creates the file (never overwriting one) and starts the writer thread.
    ///
    /// - Parameter minimumFreeBytes: stop recording, with the file closed and complete, when its
    ///   file system has less free space than this (checked by the writer thread once a second).
    /// - Throws: `RecordError.io` when the file cannot be created (`.fileExists`: one is there),
    ///   `.invalidUse` for a `bulkCapacity` below 1.
    public convenience init(path: String, options: MCAPWriterOptions = .init(), bulkCapacity: Int = 120,
                            minimumFreeBytes: UInt64 = 0) throws(RecordError) {
        try self.init(path: path, options: options, bulkCapacity: bulkCapacity, bulkWriteDelayMicros: 0,
                      minimumFreeBytes: minimumFreeBytes)
    }

    init(path: String, options: MCAPWriterOptions, bulkCapacity: Int, bulkWriteDelayMicros: UInt32,
         minimumFreeBytes: UInt64 = 0) throws(RecordError) {
        guard bulkCapacity > 0 else { throw .invalidUse(path: path, what: "bulkCapacity must be at least 1") }
        self.path = path
        self.bulkCapacity = bulkCapacity
        self.bulkWriteDelayMicros = bulkWriteDelayMicros
        self.minimumFreeBytes = minimumFreeBytes
        writer = try MCAPWriter(path: path, options: options)
        shared.control.reserveCapacity(4096)
        shared.bulk.reserveCapacity(bulkCapacity)
        let thread = Thread { [self] in
            ThreadScheduling.nameCurrentThread("sono-recorder")
            writerLoop()
        }
        thread.start()
    }

    /// A channel (and its schema, shared by channels with an equal one). Ids are 1, 2, ...
    public func channel(topic: String, messageEncoding: String, schema: MCAPSchema?,
                        metadata: [String: String] = [:]) throws(RecordError) -> UInt16 {
        lock.lock()
        defer { lock.unlock() }
        if let error = shared.counters.writeError { throw error }
        guard !shared.finishing else { throw .invalidUse(path: path, what: "channel \(topic) added after finish()") }
        guard shared.channels < Int(UInt16.max) else { throw .invalidUse(path: path, what: "more than 65535 channels") }
        var schemaID: UInt16 = 0, newSchema = false
        if let schema {
            if let known = shared.schemas.firstIndex(of: schema) {
                schemaID = UInt16(known + 1)
            } else {
                guard shared.schemas.count < Int(UInt16.max) else { throw .invalidUse(path: path, what: "more than 65535 schemas") }
                shared.schemas.append(schema)
                schemaID = UInt16(shared.schemas.count)
                newSchema = true
            }
        }
        shared.channels += 1
        let id = UInt16(shared.channels)
        enqueueControl(.register(schema: schema, schemaID: schemaID, newSchema: newSchema, topic: topic,
                                 encoding: messageEncoding, metadata: metadata, channel: id))
        return id
    }

    /// Control data: never dropped.
    public func record(channel: UInt16, sequence: UInt32, logTime: UInt64, data: [UInt8]) {
        lock.lock()
        enqueueControl(.message(channel: channel, sequence: sequence, logTime: logTime, data: data))
        lock.unlock()
    }

    /// An attachment (a configuration file, a key frame as PNG, ...), through the control lane.
    public func attach(name: String, mediaType: String, logTime: UInt64, data: [UInt8]) {
        lock.lock()
        enqueueControl(.attachment(name: name, mediaType: mediaType, logTime: logTime, data: data))
        lock.unlock()
    }

    /// A metadata record (session facts, versions, outcome), through the control lane.
    public func metadata(name: String, _ entries: [String: String]) {
        lock.lock()
        enqueueControl(.metadata(name: name, entries: entries))
        lock.unlock()
    }

    /// Bulk data: false (and counted) when the bulk lane is full.
    @discardableResult
    public func offer(channel: UInt16, sequence: UInt32, logTime: UInt64, data: [UInt8]) -> Bool {
        lock.lock()
        guard reserveBulk() else {
            lock.unlock()
            return false
        }
        shared.bulk.append(BulkItem(channel: channel, sequence: sequence, logTime: logTime, data: data, mono8: nil))
        let wake = shared.writerSleeping
        lock.unlock()
        if wake { lock.signal() }
        return true
    }

    /// A probe frame (8-bit grey, `width` × `height`, rows without padding) for a channel with
    /// `FoxgloveSchemas.rawImage`: copied into a reused buffer and encoded as `foxglove.RawImage`
    /// (timestamp = `logTime`) on the writer thread. No allocation per frame once the pool of
    /// `bulkCapacity` buffers exists. False (and counted) when the bulk lane is full.
    @discardableResult
    public func offerMono8Frame(channel: UInt16, sequence: UInt32, logTime: UInt64, width: Int, height: Int,
                                pixels: UnsafeRawBufferPointer) -> Bool {
        guard width > 0, height > 0, pixels.count == width * height else { return false }
        lock.lock()
        guard reserveBulk() else {
            lock.unlock()
            return false
        }
        var buffer = shared.framePool.popLast() ?? []
        lock.unlock()
        if buffer.count != pixels.count { buffer = [UInt8](repeating: 0, count: pixels.count) }
        buffer.withUnsafeMutableBytes { $0.copyMemory(from: pixels) }
        lock.lock()
        shared.bulk.append(BulkItem(channel: channel, sequence: sequence, logTime: logTime, data: buffer, mono8: (width, height)))
        let wake = shared.writerSleeping
        lock.unlock()
        if wake { lock.signal() }
        return true
    }

    public var counters: RecorderCounters { lock.withLock { shared.counters } }

    /// Drains both lanes, writes the summary and closes the file. Returns the final counters, or
    /// throws the write error that stopped the recording. Calling it again returns the same.
    @discardableResult
    public func finish() throws(RecordError) -> RecorderCounters {
        lock.lock()
        shared.finishing = true
        lock.broadcast()
        while !shared.finished { lock.wait(nanoseconds: nil) }
        let counters = shared.counters
        lock.unlock()
        if let error = counters.writeError { throw error }
        return counters
    }

    // MARK: - Producer side (lock held)

    private func enqueueControl(_ item: ControlItem) {
        if shared.finishing || shared.counters.writeError != nil {
            shared.counters.lostAfterError += 1
            return
        }
        shared.control.append(item)
        shared.controlWaiting += 1
        shared.counters.controlRecorded += 1
        shared.counters.controlHighWater = max(shared.counters.controlHighWater, shared.controlWaiting)
        if shared.writerSleeping { lock.signal() }
    }

    /// Takes a place in the bulk lane, or counts the drop.
    private func reserveBulk() -> Bool {
        shared.counters.bulkOffered += 1
        if shared.finishing || shared.counters.writeError != nil {
            shared.counters.lostAfterError += 1
            return false
        }
        guard shared.bulkWaiting < bulkCapacity else {
            shared.counters.bulkDropped += 1
            return false
        }
        shared.bulkWaiting += 1
        shared.counters.bulkHighWater = max(shared.counters.bulkHighWater, shared.bulkWaiting)
        return true
    }

    // MARK: - Writer thread

    private func writerLoop() {
        var control: [ControlItem] = []
        var bulk: [BulkItem] = []
        control.reserveCapacity(4096)
        bulk.reserveCapacity(bulkCapacity)
        var returned: [[UInt8]] = []
        returned.reserveCapacity(bulkCapacity)
        var failure: RecordError?
        var nextSpaceCheck: UInt64 = 0
        while true {
            lock.lock()
            if shared.control.isEmpty && shared.bulk.isEmpty && !shared.finishing {
                shared.writerSleeping = true
                // Wake for the open chunk's age limit; after a failure only for new work or finish.
                lock.wait(nanoseconds: failure == nil ? writer.nanosecondsUntilChunkDue : nil)
                shared.writerSleeping = false
            }
            swap(&control, &shared.control)
            swap(&bulk, &shared.bulk)
            let finishing = shared.finishing
            lock.unlock()

            var written = 0  // items of this batch that made it into the writer
            var payload = 0
            if failure == nil {
                do throws(RecordError) {
                    for item in control {
                        payload += try write(item)
                        written += 1
                    }
                    for item in bulk {
                        payload += try write(item)
                        written += 1
                    }
                    try writer.flushIfDue()
                    if minimumFreeBytes > 0, MonotonicClock.nowNanos() >= nextSpaceCheck {
                        nextSpaceCheck = MonotonicClock.nowNanos() + Self.spaceCheckNanos
                        if let free = freeBytes(), free < minimumFreeBytes {
                            // Close now, while there is room for the summary and footer: the
                            // file stays complete, and the disk keeps its margin.
                            try writer.close()
                            throw RecordError.diskLow(path: path, freeBytes: free, floorBytes: minimumFreeBytes)
                        }
                    }
                } catch {
                    failure = error
                }
            }
            for item in bulk where item.mono8 != nil { returned.append(item.data) }
            let drained = (control: control.count, bulk: bulk.count)
            control.removeAll(keepingCapacity: true)
            bulk.removeAll(keepingCapacity: true)

            lock.lock()
            shared.controlWaiting -= drained.control
            shared.bulkWaiting -= drained.bulk
            shared.framePool.append(contentsOf: returned)
            shared.counters.messages = Int(writer.messagesWritten)
            shared.counters.payloadBytes += UInt64(payload)
            shared.counters.bytesWritten = writer.bytesWritten
            shared.counters.chunks = writer.chunksWritten
            if let failure {
                // Everything not written is lost, and so is all that comes later.
                shared.counters.writeError = shared.counters.writeError ?? failure
                shared.counters.lostAfterError += drained.control + drained.bulk - written + shared.control.count + shared.bulk.count
                shared.controlWaiting -= shared.control.count
                shared.bulkWaiting -= shared.bulk.count
                shared.control.removeAll()
                shared.bulk.removeAll()
            }
            let done = finishing && shared.control.isEmpty && shared.bulk.isEmpty
            lock.unlock()
            returned.removeAll(keepingCapacity: true)
            if done { break }
        }

        var closeError: RecordError?
        do throws(RecordError) { try writer.close() } catch { closeError = error }
        lock.lock()
        shared.counters.bytesWritten = writer.bytesWritten
        shared.counters.chunks = writer.chunksWritten
        shared.counters.messages = Int(writer.messagesWritten)
        if shared.counters.writeError == nil { shared.counters.writeError = closeError }
        shared.finished = true
        lock.broadcast()
        lock.unlock()
    }

    /// Writes one item; returns its message payload size (0 for other records).
    private func freeBytes() -> UInt64? { Self.freeBytes(at: path) }

    /// Bytes an unprivileged writer may still use on the file system holding `path`, or nil
    /// when statvfs cannot say (then no floor is enforced rather than a wrong one).
    public static func freeBytes(at path: String) -> UInt64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        let (bytes, overflow) = UInt64(info.f_bavail).multipliedReportingOverflow(by: UInt64(info.f_frsize))
        return overflow ? UInt64.max : bytes
    }

    private func write(_ item: ControlItem) throws(RecordError) -> Int {
        switch item {
        case .register(let schema, let schemaID, let newSchema, let topic, let encoding, let metadata, let channel):
            // The writer numbers schemas and channels in the order they are added, as `channel()` did.
            if let schema, newSchema {
                guard try writer.addSchema(schema) == schemaID else {
                    throw .invalidUse(path: path, what: "schema ids out of step (internal error)")
                }
            }
            let id = try writer.addChannel(topic: topic, messageEncoding: encoding, schemaID: schemaID, metadata: metadata)
            guard id == channel else { throw .invalidUse(path: path, what: "channel ids out of step (internal error)") }
            return 0
        case .message(let channel, let sequence, let logTime, let data):
            try writer.write(channel: channel, sequence: sequence, logTime: logTime, publishTime: logTime, data: data)
            return data.count
        case .attachment(let name, let mediaType, let logTime, let data):
            try writer.addAttachment(name: name, mediaType: mediaType, logTime: logTime, data: data)
            return 0
        case .metadata(let name, let entries):
            try writer.addMetadata(name: name, entries)
            return 0
        }
    }

    private func write(_ item: BulkItem) throws(RecordError) -> Int {
        if bulkWriteDelayMicros > 0 { usleep(bulkWriteDelayMicros) }
        if let frame = item.mono8 {
            return try encoder.encodeMono8(timestampNanos: item.logTime, width: frame.width, height: frame.height,
                                           pixels: item.data) { (encoded) throws(RecordError) in
                try writer.write(channel: item.channel, sequence: item.sequence, logTime: item.logTime,
                                 publishTime: item.logTime, data: encoded)
                return encoded.count
            }
        }
        try writer.write(channel: item.channel, sequence: item.sequence, logTime: item.logTime, publishTime: item.logTime, data: item.data)
        return item.data.count
    }
}
