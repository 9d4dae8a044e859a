import Glibc

/// What a recovery kept and lost.
public struct MCAPRecoveryReport: Sendable, CustomStringConvertible {
    public var input: String
    public var output: String
    /// Messages written to the output (every message of every intact chunk of the input).
    public var messages = 0
    /// Intact chunks read from the input, and damaged ones skipped.
    public var chunks = 0
    public var chunksSkipped = 0
    public var attachments = 0
    public var attachmentsSkipped = 0
    public var metadata = 0
    public var inputBytes: UInt64 = 0
    /// Input bytes whose content is not in the output: skipped records and the unreadable tail.
    public var bytesLost: UInt64 = 0
    /// The input had its DataEnd, summary and footer, and nothing had to be skipped.
    public var inputWasComplete = false
    /// What was wrong with the input, in file order (empty for a complete input).
    public var problems: [RecordError] = []

    public var description: String {
        var text = "recovered \(messages) messages from \(chunks) chunks, \(attachments) attachments, \(metadata) metadata records of \(input) into \(output)"
        if chunksSkipped + attachmentsSkipped > 0 {
            text += "; skipped \(chunksSkipped) damaged chunks and \(attachmentsSkipped) damaged attachments"
        }
        text += "; \(bytesLost) of \(inputBytes) bytes lost"
        if inputWasComplete { text += " (the input was complete)" }
        for problem in problems { text += "\n  \(problem)" }
        return text
    }
}

/// Rebuilds a recording that was cut off (a crash, kill -9, power loss, a full disk) or damaged
/// into a new, complete and indexed file: every message of every intact chunk, every intact
/// attachment and metadata record, in the input's order. A damaged chunk whose record framing is
/// intact (bad CRC, bad compression) is skipped and reading goes on; at a break in the framing
/// (the cut, a bad length, zero-filled space) reading stops. Chunks carry their own Schema and
/// Channel records (MCAPWriter), so chunks after a skipped one still decode.
public enum MCAPRecovery {
    public static func recover(from input: String, to output: String,
                               options: MCAPWriterOptions = .init()) throws(RecordError) -> MCAPRecoveryReport {
        let file = try InputFile(path: input)
        var report = MCAPRecoveryReport(input: input, output: output)
        report.inputBytes = file.size

        // The input's magic and Header; a file cut before its Header is recovered as an empty one.
        var stream: RecordStream?
        var profile = options.profile, library = options.library
        do {
            let opened = try RecordStream(file: file)
            if let header = try opened.next(), header.opcode == Opcode.header.rawValue {
                var fields = opened.fields(header)
                profile = try fields.string("profile")
                library = try fields.string("library")
                stream = opened
            } else {
                report.problems.append(.corrupt(path: input, offset: 8, what: "no Header record after the magic"))
            }
        } catch {
            if case .notMCAP = error { throw error }
            report.problems.append(error)
        }

        var outputOptions = options
        outputOptions.profile = profile
        outputOptions.library = library.hasSuffix("(recovered)") ? library : "\(library) (recovered)"
        outputOptions.syncChunks = false  // one sync at the end
        let writer = try MCAPWriter(path: output, options: outputOptions)
        do throws(RecordError) {
            var copier = Copier(input: input, writer: writer)
            if let stream { try copier.copy(stream, &report) } else { report.bytesLost = file.size }
            try writer.close()
        } catch {
            try? writer.close()
            unlink(output)
            throw error
        }
        return report
    }

    /// Copies intact records from the input into the writer, mapping the input's schema and
    /// channel ids to the output's.
    private struct Copier {
        let input: String
        let writer: MCAPWriter
        var registry = ChannelRegistry()
        var schemaIDs: [UInt16: UInt16] = [:]
        var channelIDs: [UInt16: UInt16] = [:]
        let decoder = ChunkDecoder()

        init(input: String, writer: MCAPWriter) {
            self.input = input
            self.writer = writer
        }

        mutating func copy(_ stream: RecordStream, _ report: inout MCAPRecoveryReport) throws(RecordError) {
            var reachedDataEnd = false
            reading: while true {
                let raw: RecordStream.Raw
                do {
                    guard let next = try stream.next() else {
                        report.problems.append(.truncated(path: input, offset: stream.offset,
                                                          what: "the file ends without DataEnd, summary and footer: the recording was not closed"))
                        break reading
                    }
                    raw = next
                } catch {
                    if case .io = error { throw error }
                    report.problems.append(error)
                    report.bytesLost += stream.file.size - stream.offset
                    break reading
                }
                var fields = stream.fields(raw)
                switch Opcode(rawValue: raw.opcode) {
                case .schema, .channel:
                    do throws(RecordError) {
                        var trial = registry
                        if raw.opcode == Opcode.schema.rawValue {
                            try trial.add(try SchemaRecord(&fields), path: input, offset: raw.offset)
                        } else {
                            try trial.add(try ChannelRecord(&fields), path: input, offset: raw.offset)
                        }
                        registry = trial
                    } catch {
                        report.problems.append(error)
                        report.bytesLost += raw.end - raw.offset
                    }
                case .message:
                    do throws(RecordError) {
                        let message = try MessageRecord(&fields)
                        try write(message, offset: raw.offset, &report)
                    } catch {
                        if case .io = error { throw error }
                        report.problems.append(error)
                        report.bytesLost += raw.end - raw.offset
                    }
                case .chunk:
                    try copyChunk(raw, &fields, &report)
                case .attachment:
                    do throws(RecordError) {
                        let attachment = try AttachmentRecord(&fields)
                        try attachment.checkCRC(path: input, offset: raw.offset)
                        try writer.addAttachment(name: attachment.name, mediaType: attachment.mediaType,
                                                 logTime: attachment.logTime, data: Array(attachment.data))
                        report.attachments += 1
                    } catch {
                        if case .io = error { throw error }
                        report.problems.append(error)
                        report.attachmentsSkipped += 1
                        report.bytesLost += raw.end - raw.offset
                    }
                case .metadata:
                    do throws(RecordError) {
                        let entry = try MetadataRecord(&fields)
                        try writer.addMetadata(name: entry.name, entry.entries)
                        report.metadata += 1
                    } catch {
                        if case .io = error { throw error }
                        report.problems.append(error)
                        report.bytesLost += raw.end - raw.offset
                    }
                case .dataEnd:
                    reachedDataEnd = true
                    break reading
                case .messageIndex, nil:
                    break  // indexes are rebuilt; unknown records are skipped
                case .header, .footer, .chunkIndex, .attachmentIndex, .statistics, .metadataIndex, .summaryOffset:
                    report.problems.append(fields.failure("this record does not belong in the data section; reading stops here"))
                    report.bytesLost += stream.file.size - raw.offset
                    break reading
                }
            }
            // Channels no intact message used: kept too, with their schemas.
            for id in registry.channelOrder where channelIDs[id] == nil {
                _ = try outputChannel(id, offset: stream.offset)
            }
            if reachedDataEnd && report.problems.isEmpty {
                do {
                    report.inputWasComplete = try Summary.read(stream.file) != nil
                } catch {
                    report.problems.append(error)
                }
                if !report.inputWasComplete && report.problems.isEmpty {
                    report.problems.append(.truncated(path: input, offset: stream.file.size, what: "the file ends after DataEnd without its footer"))
                }
            }
        }

        /// A chunk is taken whole or not at all.
        private mutating func copyChunk(_ raw: RecordStream.Raw, _ fields: inout FieldReader,
                                        _ report: inout MCAPRecoveryReport) throws(RecordError) {
            let items: [ChunkItem]
            var trial = registry
            do throws(RecordError) {
                let chunk = try ChunkRecord(&fields)
                let records = try decoder.records(of: chunk, path: input, offset: raw.offset)
                items = try parseChunkRecords(records, path: input, chunkOffset: raw.offset)
                for item in items {
                    switch item {
                    case .schema(let schema): try trial.add(schema, path: input, offset: raw.offset)
                    case .channel(let channel): try trial.add(channel, path: input, offset: raw.offset)
                    case .message(let message, _): _ = try trial.channel(message.channel, path: input, offset: raw.offset)
                    }
                }
            } catch {
                report.problems.append(error)
                report.chunksSkipped += 1
                report.bytesLost += raw.end - raw.offset
                return
            }
            registry = trial
            for item in items {
                guard case .message(let message, _) = item else { continue }
                try write(message, offset: raw.offset, &report)
            }
            report.chunks += 1
        }

        private mutating func write(_ message: MessageRecord, offset: UInt64, _ report: inout MCAPRecoveryReport) throws(RecordError) {
            let id = try outputChannel(message.channel, offset: offset)
            try writer.write(channel: id, sequence: message.sequence, logTime: message.logTime,
                             publishTime: message.publishTime, data: message.data)
            report.messages += 1
        }

        /// The output's id of an input channel, adding its schema and channel on first use.
        private mutating func outputChannel(_ input: UInt16, offset: UInt64) throws(RecordError) -> UInt16 {
            if let known = channelIDs[input] { return known }
            let channel = try registry.channel(input, path: self.input, offset: offset)
            var schemaID: UInt16 = 0
            if channel.schemaID != 0, let schema = registry.schemas[channel.schemaID] {
                if let known = schemaIDs[channel.schemaID] {
                    schemaID = known
                } else {
                    schemaID = try writer.addSchema(schema)
                    schemaIDs[channel.schemaID] = schemaID
                }
            }
            let id = try writer.addChannel(topic: channel.topic, messageEncoding: channel.messageEncoding,
                                           schemaID: schemaID, metadata: channel.metadata)
            channelIDs[input] = id
            return id
        }
    }
}
