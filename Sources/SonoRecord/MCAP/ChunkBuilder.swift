/// The chunk being filled: its records (uncompressed), and per channel the (log time, offset)
/// pairs its Message Index records will carry. Everything is reset, not reallocated, between
/// chunks, so steady-state writing allocates nothing per message.
final class ChunkBuilder {
    let records: ByteBuffer
    private(set) var messageCount = 0
    private(set) var startTime: UInt64 = 0
    private(set) var endTime: UInt64 = 0
    /// CLOCK_MONOTONIC ns when the first message went in (for `chunkSeconds`).
    private(set) var openedAt: UInt64 = 0
    /// Message index entries by channel id, flattened (log time, offset, log time, offset, ...).
    private(set) var indexEntries: [[UInt64]] = []
    /// Channels with messages in this chunk, in first-use order.
    private(set) var channelsUsed: [UInt16] = []
    /// Whether this chunk already carries the Schema / Channel record of an id.
    private var schemaDescribed: [Bool] = []
    private var channelDescribed: [Bool] = []

    init(capacity: Int) {
        records = ByteBuffer(capacity: capacity)
    }

    var isEmpty: Bool { records.count == 0 }

    func ensureIDs(schemas: Int, channels: Int) {
        if schemaDescribed.count <= schemas { schemaDescribed += Array(repeating: false, count: schemas + 1 - schemaDescribed.count) }
        if channelDescribed.count <= channels {
            let extra = channels + 1 - channelDescribed.count
            channelDescribed += Array(repeating: false, count: extra)
            indexEntries += Array(repeating: [], count: extra)
        }
    }

    /// Appends a Schema record unless this chunk has one for `id` already.
    func describeSchema(_ id: UInt16, record: [UInt8]) {
        guard !schemaDescribed[Int(id)] else { return }
        schemaDescribed[Int(id)] = true
        records.append(record)
    }

    /// Appends a Channel record unless this chunk has one for `id` already.
    func describeChannel(_ id: UInt16, record: [UInt8]) {
        guard !channelDescribed[Int(id)] else { return }
        channelDescribed[Int(id)] = true
        records.append(record)
    }

    /// Appends one Message record and indexes it.
    func appendMessage(channel: UInt16, sequence: UInt32, logTime: UInt64, publishTime: UInt64,
                       data: UnsafeRawBufferPointer, now: UInt64) {
        if messageCount == 0 {
            openedAt = now
            startTime = logTime
            endTime = logTime
        } else {
            startTime = min(startTime, logTime)
            endTime = max(endTime, logTime)
        }
        let offset = UInt64(records.count)
        records.reserve(MCAPFormat.recordPrefix + MCAPFormat.messageFixedLength + data.count)
        records.append(Opcode.message.rawValue)
        records.append(UInt64(MCAPFormat.messageFixedLength + data.count))
        records.append(channel)
        records.append(sequence)
        records.append(logTime)
        records.append(publishTime)
        records.append(data)
        let slot = Int(channel)
        if indexEntries[slot].isEmpty { channelsUsed.append(channel) }
        indexEntries[slot].append(logTime)
        indexEntries[slot].append(offset)
        messageCount += 1
    }

    /// Channels used, sorted by id (the order the Message Index records are written in).
    func sortChannelsUsed() { channelsUsed.sort() }

    func reset() {
        records.removeAll()
        messageCount = 0
        startTime = 0
        endTime = 0
        for channel in channelsUsed { indexEntries[Int(channel)].removeAll(keepingCapacity: true) }
        channelsUsed.removeAll(keepingCapacity: true)
        for index in schemaDescribed.indices { schemaDescribed[index] = false }
        for index in channelDescribed.indices { channelDescribed[index] = false }
    }
}
