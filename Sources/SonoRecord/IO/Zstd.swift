import CZstd

/// zstd compression with one reused context, so compressing a chunk allocates nothing once the
/// output buffer has reached its working size.
final class ZstdCompressor {
    private let context: OpaquePointer?
    let level: Int32

    init(level: Int32) {
        context = ZSTD_createCCtx()
        self.level = level
    }

    deinit { ZSTD_freeCCtx(context) }

    /// Compresses `input` into `output` (replacing its contents).
    func compress(_ input: UnsafeRawBufferPointer, into output: ByteBuffer, path: String) throws(RecordError) {
        output.removeAll()
        let space = output.unsafeSpace(ZSTD_compressBound(input.count))
        let result = ZSTD_compressCCtx(context, space.baseAddress, space.count, input.baseAddress, input.count, level)
        if ZSTD_isError(result) != 0 {
            throw .compression(path: path, offset: 0, what: "zstd compression failed: \(String(cString: ZSTD_getErrorName(result)))")
        }
        output.commit(result)
    }
}

/// zstd decompression of one chunk into a buffer of the size the chunk declares.
final class ZstdDecompressor {
    private let context: OpaquePointer?

    /// zstd.h's ZSTD_CONTENTSIZE_UNKNOWN and ZSTD_CONTENTSIZE_ERROR (macros Swift does not import).
    private static let contentSizeUnknown = UInt64.max
    private static let contentSizeError = UInt64.max - 1

    init() { context = ZSTD_createDCtx() }
    deinit { ZSTD_freeDCtx(context) }

    /// Decompresses `input` into `output`, which must come out exactly `expectedSize` bytes.
    /// Errors are reported as `what` for the caller to place (file, offset).
    func decompress(_ input: UnsafeRawBufferPointer, expectedSize: Int, into output: ByteBuffer) -> String? {
        output.removeAll()
        // A frame that states its size must agree with the chunk's header before the header's
        // size is allocated (ZSTD_CONTENTSIZE_UNKNOWN: a streamed frame, checked after).
        let stated = ZSTD_getFrameContentSize(input.baseAddress, input.count)
        if stated == Self.contentSizeError {
            return "the chunk's data is not a zstd frame"
        }
        if stated != Self.contentSizeUnknown, stated != UInt64(expectedSize) {
            return "the chunk's zstd frame holds \(stated) bytes, its header says \(expectedSize)"
        }
        let space = output.unsafeSpace(expectedSize)
        let result = ZSTD_decompressDCtx(context, space.baseAddress, space.count, input.baseAddress, input.count)
        if ZSTD_isError(result) != 0 {
            return "zstd cannot decompress the chunk: \(String(cString: ZSTD_getErrorName(result)))"
        }
        guard result == expectedSize else {
            return "the chunk decompresses to \(result) bytes, its header says \(expectedSize)"
        }
        output.commit(result)
        return nil
    }
}
