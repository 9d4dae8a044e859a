/// Counters of what a receiver saw on one link.
public struct ReceiveStatistics: Sendable, Equatable {
    public var frames: UInt64 = 0
    public var bytes: UInt64 = 0
    public var oversized: UInt64 = 0
    public var malformedCOBS: UInt64 = 0
    public var truncated: UInt64 = 0
    public var crcMismatch: UInt64 = 0
    public var unsupportedVersion: UInt64 = 0
    public var lengthMismatch: UInt64 = 0
    public var unknownType: UInt64 = 0
    public var invalidPayload: UInt64 = 0

    public init() {}

    public var droppedFrames: UInt64 {
        oversized + malformedCOBS + truncated + crcMismatch + unsupportedVersion + lengthMismatch + unknownType
            + invalidPayload
    }

    mutating func count(_ error: FrameError) {
        switch error {
        case .oversized: oversized += 1
        case .malformedCOBS: malformedCOBS += 1
        case .truncated: truncated += 1
        case .crcMismatch: crcMismatch += 1
        case .unsupportedVersion: unsupportedVersion += 1
        case .lengthMismatch: lengthMismatch += 1
        case .unknownType: unknownType += 1
        case .invalidPayload: invalidPayload += 1
        }
    }
}

/// Splits a byte stream into frames at 0x00 delimiters and decodes them (PROTOCOL.md §1).
/// It owns two fixed buffers allocated once; `feed` never allocates, so the real-time loop
/// can use it. A damaged frame costs that frame only: decoding resumes at the next delimiter.
public struct StreamDecoder: ~Copyable {
    private let pending: UnsafeMutableRawBufferPointer
    private let scratch: UnsafeMutableRawBufferPointer
    private var pendingCount = 0
    /// Set after an oversize error: bytes are discarded until the next delimiter.
    private var discarding = false
    public private(set) var statistics = ReceiveStatistics()

    public init() {
        pending = .allocate(byteCount: ProtocolConstants.maxEncodedFrame, alignment: 8)
        scratch = .allocate(byteCount: ProtocolConstants.maxEncodedFrame, alignment: 8)
    }

    deinit {
        pending.deallocate()
        scratch.deallocate()
    }

    /// Feeds received bytes; `body` is called once per complete frame or dropped frame, in order.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer,
                              _ body: (Result<Frame, FrameError>) -> Void) {
        statistics.bytes &+= UInt64(bytes.count)
        for byte in bytes {
            if byte == 0 {
                if discarding {
                    discarding = false
                } else if pendingCount > 0 {
                    let result = Result { () throws(FrameError) -> Frame in
                        try FrameCodec.decode(cobs: UnsafeRawBufferPointer(rebasing: pending[0..<pendingCount]),
                                              scratch: scratch)
                    }
                    switch result {
                    case .success: statistics.frames &+= 1
                    case .failure(let error): statistics.count(error)
                    }
                    body(result)
                }
                pendingCount = 0
            } else if !discarding {
                if pendingCount == ProtocolConstants.maxEncodedFrame - 1 {
                    // One more byte than the largest frame without a delimiter: the frame is lost.
                    let error = FrameError.oversized(byteCount: pendingCount + 1)
                    statistics.count(error)
                    body(.failure(error))
                    discarding = true
                    pendingCount = 0
                } else {
                    pending[pendingCount] = byte
                    pendingCount += 1
                }
            }
        }
    }

    /// Forgets a half-received frame, e.g. after the port was reopened.
    public mutating func reset() {
        pendingCount = 0
        discarding = false
    }
}
