// PNG files of rendered ultrasound frames: 8-bit grayscale, non-interlaced, zlib from the system.

import CZlib
import SonoSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What went wrong encoding, decoding or writing a PNG.
public enum PNGError: Error, Equatable, CustomStringConvertible {
    /// Width or height is not in 1…2³¹−1, or width × height overflows.
    case invalidDimensions(width: Int, height: Int)
    /// A file's header claims more pixels than the decoder reads (`PNG.maxDecodedPixels`).
    case tooLarge(width: Int, height: Int, limit: Int)
    /// `pixels` does not hold width × height bytes.
    case pixelCountMismatch(width: Int, height: Int, expected: Int, actual: Int)
    /// zlib failed (its return code).
    case zlib(function: String, code: Int32)
    case cannotWrite(path: String, reason: String)
    case cannotRead(path: String, reason: String)
    /// The bytes do not start with the PNG signature.
    case notPNG
    /// The data ends inside a chunk or before IEND.
    case truncated(what: String)
    /// A chunk's CRC does not match its type and data.
    case badCRC(chunk: String)
    /// A valid PNG this decoder does not read (e.g. colour type 2, 16-bit, interlaced).
    case unsupported(String)
    /// Not a valid PNG: a missing or misplaced chunk, a bad filter type, wrong image data size.
    case corrupt(String)

    public var description: String {
        switch self {
        case .invalidDimensions(let width, let height):
            "PNG: invalid image size \(width)×\(height) (each side 1…2147483647)"
        case .tooLarge(let width, let height, let limit):
            "PNG: a \(width)×\(height) image is \(width * height) pixels, more than the \(limit) this reader decodes"
        case .pixelCountMismatch(let width, let height, let expected, let actual):
            "PNG: \(width)×\(height) image needs \(expected) pixels, got \(actual)"
        case .zlib(let function, let code):
            "PNG: zlib \(function) failed with code \(code)"
        case .cannotWrite(let path, let reason):
            "\(path): cannot write PNG: \(reason)"
        case .cannotRead(let path, let reason):
            "\(path): cannot read PNG: \(reason)"
        case .notPNG:
            "not a PNG (no PNG signature)"
        case .truncated(let what):
            "PNG truncated: \(what)"
        case .badCRC(let chunk):
            "PNG: CRC mismatch in chunk \(chunk)"
        case .unsupported(let what):
            "PNG: unsupported: \(what)"
        case .corrupt(let what):
            "PNG corrupt: \(what)"
        }
    }
}

/// 8-bit grayscale PNG encoding and decoding. Rows are top to bottom, `pixels[y * width + x]`.
public enum PNG {
    /// The 8 bytes every PNG starts with.
    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Largest IDAT chunk written; larger images get several.
    static let maxIDATSize = 1 << 20
    /// Largest PNG file `readGray8` reads: far above any frame or contact sheet Sono writes
    /// (a 4096² frame compresses to a few MB), and a bound before anything is allocated for it.
    public static let maxFileBytes = 64 << 20
    /// Most pixels `decodeGray8` decodes, checked against the header before anything is
    /// allocated for the image: 2²⁶, an 8192 × 8192 image. The images Sono writes and reads are
    /// probe frames (hundreds of pixels a side) and contact sheets of them (a few thousand), so
    /// this is many times the largest; decoding one at the limit holds two buffers of about
    /// 64 MiB (the inflated rows and the pixels). Without it the header's two 31-bit sides size
    /// the buffer: a 68-byte file asked for 4.6 × 10¹⁸ bytes (Fuzz/regressions/png).
    public static let maxDecodedPixels = 1 << 26
    /// Deflate's best ratio: one 258-byte match per 2 bits at most, 1032:1. Compressed image
    /// data can inflate to no more than this many times its size (plus the zlib header and a
    /// final block), so a header claiming more is refused before the buffer is allocated.
    static let maxDeflateRatio = 1032

    /// A complete PNG file: IHDR (8-bit gray, non-interlaced), IDAT (zlib level 6, per-row
    /// adaptive filter), IEND.
    public static func encodeGray8(width: Int, height: Int, pixels: [UInt8]) throws(PNGError) -> [UInt8] {
        let count = try pixelCount(width: width, height: height)
        guard pixels.count == count else {
            throw .pixelCountMismatch(width: width, height: height, expected: count, actual: pixels.count)
        }

        let filtered = filterRows(width: width, height: height, pixels: pixels)
        let compressed = try deflate(filtered)

        var png = signature
        png.reserveCapacity(signature.count + 25 + compressed.count + 12 * (compressed.count / maxIDATSize + 1) + 12)
        var header: [UInt8] = []
        appendUInt32(UInt32(width), to: &header)
        appendUInt32(UInt32(height), to: &header)
        header += [8, 0, 0, 0, 0]  // bit depth 8, colour type 0 (gray), deflate, filter method 0, no interlace
        appendChunk("IHDR", header, to: &png)
        var start = 0
        repeat {
            let end = min(start + maxIDATSize, compressed.count)
            appendChunk("IDAT", compressed[start..<end], to: &png)
            start = end
        } while start < compressed.count
        appendChunk("IEND", [], to: &png)
        return png
    }

    /// Encodes and writes a PNG file (through a temporary file and a rename, so readers never see
    /// half a frame).
    public static func write(path: String, width: Int, height: Int, pixels: [UInt8]) throws(PNGError) {
        let png = try encodeGray8(width: width, height: height, pixels: pixels)
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw .cannotWrite(path: path, reason: errorString()) }
        let failure: Errno? = png.withUnsafeBytes { bytes in
            var written = 0
            while written < bytes.count {
                let rest = UnsafeRawBufferPointer(rebasing: bytes[written...])
                do throws(Errno) {
                    written += try Errno.retryingInterrupts { posixWrite(fd, rest.baseAddress, rest.count) }
                } catch {
                    return error
                }
            }
            return nil
        }
        if let failure {
            close(fd)
            unlink(temporary)
            throw .cannotWrite(path: path, reason: failure.description)
        }
        guard close(fd) == 0 else {
            let reason = errorString()
            unlink(temporary)
            throw .cannotWrite(path: path, reason: reason)
        }
        guard rename(temporary, path) == 0 else {
            let reason = errorString()
            unlink(temporary)
            throw .cannotWrite(path: path, reason: reason)
        }
    }

    /// Decodes an 8-bit grayscale, non-interlaced PNG (any filter types; ancillary chunks are
    /// skipped). Verifies every chunk's CRC.
    public static func decodeGray8(_ bytes: [UInt8]) throws(PNGError) -> (width: Int, height: Int, pixels: [UInt8]) {
        guard bytes.count >= signature.count, Array(bytes[0..<signature.count]) == signature else { throw .notPNG }
        var offset = signature.count
        var width = 0, height = 0
        var sawHeader = false
        var data: [UInt8] = []
        var sawIDAT = false
        var idatEnded = false

        while true {
            guard offset + 8 <= bytes.count else { throw .truncated(what: "missing IEND chunk") }
            let length = Int(readUInt32(bytes, at: offset))
            let typeBytes = Array(bytes[offset + 4 ..< offset + 8])
            let type = String(decoding: typeBytes, as: UTF8.self)
            guard length <= Int(Int32.max), offset + 12 + length <= bytes.count else {
                throw .truncated(what: "chunk \(type) of \(length) bytes")
            }
            let body = bytes[offset + 4 ..< offset + 8 + length]  // type + data, what the CRC covers
            let storedCRC = readUInt32(bytes, at: offset + 8 + length)
            guard crc(body) == storedCRC else { throw .badCRC(chunk: type) }
            let chunkData = bytes[offset + 8 ..< offset + 8 + length]
            offset += 12 + length

            if !sawHeader && type != "IHDR" { throw .corrupt("first chunk is \(type), not IHDR") }
            switch type {
            case "IHDR":
                guard !sawHeader else { throw .corrupt("second IHDR chunk") }
                guard length == 13 else { throw .corrupt("IHDR of \(length) bytes, not 13") }
                sawHeader = true
                let h = Array(chunkData)
                width = Int(readUInt32(h, at: 0))
                height = Int(readUInt32(h, at: 4))
                guard (1...Int(Int32.max)).contains(width), (1...Int(Int32.max)).contains(height) else {
                    throw .corrupt("image size \(width)×\(height)")
                }
                guard width * height <= maxDecodedPixels else {  // no overflow: each side < 2³¹
                    throw .tooLarge(width: width, height: height, limit: maxDecodedPixels)
                }
                let (bitDepth, colorType, compression, filter, interlace) = (h[8], h[9], h[10], h[11], h[12])
                guard colorType == 0 else {
                    throw .unsupported("colour type \(colorType) (only 0, grayscale, is read)")
                }
                guard bitDepth == 8 else { throw .unsupported("bit depth \(bitDepth) (only 8 is read)") }
                guard compression == 0 else { throw .corrupt("compression method \(compression)") }
                guard filter == 0 else { throw .corrupt("filter method \(filter)") }
                guard interlace == 0 else { throw .unsupported("interlace method \(interlace) (only 0 is read)") }
            case "IDAT":
                guard !idatEnded else { throw .corrupt("IDAT chunks are not consecutive") }
                sawIDAT = true
                data += chunkData
            case "IEND":
                guard sawIDAT else { throw .corrupt("no IDAT chunk") }
                let expected = height * (width + 1)  // each row and its filter-type byte
                guard expected <= data.count * maxDeflateRatio + 64 else {
                    throw .corrupt("\(data.count) bytes of compressed image data cannot hold a \(width)×\(height) image (\(expected) bytes)")
                }
                return (width, height, try unfilterRows(width: width, height: height, data: inflate(data, expected: expected)))
            default:
                if sawIDAT { idatEnded = true }
                // Bit 5 of the first byte: 0 = critical chunk the decoder must understand.
                if typeBytes[0] & 0x20 == 0 { throw .unsupported("critical chunk \(type)") }
            }
        }
    }

    /// Reads and decodes a PNG file written by `write(path:…)`.
    public static func readGray8(path: String) throws(PNGError) -> (width: Int, height: Int, pixels: [UInt8]) {
        let bytes: [UInt8]
        do { bytes = try FileContents.read(path: path, limitBytes: maxFileBytes) } catch {
            throw .cannotRead(path: path, reason: error.description)
        }
        return try decodeGray8(bytes)
    }

    // MARK: - Filtering

    /// Each row prefixed with its filter type: the filter (0–4) whose output has the smallest sum
    /// of absolute values taken as signed bytes (the heuristic the PNG spec recommends).
    static func filterRows(width: Int, height: Int, pixels: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: height * (width + 1))
        var candidate = [UInt8](repeating: 0, count: width)
        var best = [UInt8](repeating: 0, count: width)
        pixels.withUnsafeBufferPointer { pixels in
            for y in 0..<height {
                let row = y * width
                var bestFilter: UInt8 = 0
                var bestCost = Int.max
                for filter in UInt8(0)...4 {
                    var cost = 0
                    for x in 0..<width {
                        let raw = pixels[row + x]
                        let a = x > 0 ? pixels[row + x - 1] : 0
                        let b = y > 0 ? pixels[row - width + x] : 0
                        let c = x > 0 && y > 0 ? pixels[row - width + x - 1] : 0
                        let value = raw &- predictor(filter, a: a, b: b, c: c)
                        candidate[x] = value
                        cost += Int(Int8(bitPattern: value).magnitude)
                    }
                    if cost < bestCost {
                        bestCost = cost
                        bestFilter = filter
                        swap(&best, &candidate)
                    }
                }
                let start = y * (width + 1)
                out[start] = bestFilter
                out.replaceSubrange(start + 1 ... start + width, with: best)
            }
        }
        return out
    }

    static func unfilterRows(width: Int, height: Int, data: [UInt8]) throws(PNGError) -> [UInt8] {
        var pixels = [UInt8](repeating: 0, count: width * height)
        for y in 0..<height {
            let start = y * (width + 1)
            let filter = data[start]
            guard filter <= 4 else { throw .corrupt("filter type \(filter) in row \(y)") }
            let row = y * width
            for x in 0..<width {
                let a = x > 0 ? pixels[row + x - 1] : 0
                let b = y > 0 ? pixels[row - width + x] : 0
                let c = x > 0 && y > 0 ? pixels[row - width + x - 1] : 0
                pixels[row + x] = data[start + 1 + x] &+ predictor(filter, a: a, b: b, c: c)
            }
        }
        return pixels
    }

    /// PNG filter predictors for one byte: a left, b above, c above-left (0 outside the image).
    @inline(__always)
    static func predictor(_ filter: UInt8, a: UInt8, b: UInt8, c: UInt8) -> UInt8 {
        switch filter {
        case 1: return a
        case 2: return b
        case 3: return UInt8((Int(a) + Int(b)) / 2)
        case 4:
            let p = Int(a) + Int(b) - Int(c)
            let pa = abs(p - Int(a)), pb = abs(p - Int(b)), pc = abs(p - Int(c))
            if pa <= pb && pa <= pc { return a }
            return pb <= pc ? b : c
        default: return 0
        }
    }

    // MARK: - zlib

    static func deflate(_ data: [UInt8]) throws(PNGError) -> [UInt8] {
        var capacity = compressBound(uLong(data.count))
        var out = [UInt8](repeating: 0, count: Int(capacity))
        let code = out.withUnsafeMutableBufferPointer { out in
            data.withUnsafeBufferPointer { data in
                compress2(out.baseAddress, &capacity, data.baseAddress, uLong(data.count), 6)
            }
        }
        guard code == Z_OK else { throw .zlib(function: "compress2", code: code) }
        out.removeSubrange(Int(capacity)...)
        return out
    }

    /// Inflates a zlib stream that must decompress to exactly `expected` bytes.
    static func inflate(_ data: [UInt8], expected: Int) throws(PNGError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: expected + 1)  // one spare byte detects too much data
        var length = uLong(out.count)
        let code = out.withUnsafeMutableBufferPointer { out in
            data.withUnsafeBufferPointer { data in
                uncompress(out.baseAddress, &length, data.baseAddress, uLong(data.count))
            }
        }
        switch code {
        case Z_OK: break
        case Z_BUF_ERROR:
            // Output full (more than expected), or the input ends early.
            if Int(length) == out.count { throw .corrupt("image data longer than \(expected) bytes") }
            throw .truncated(what: "compressed image data")
        case Z_DATA_ERROR: throw .corrupt("compressed image data is not a valid zlib stream")
        default: throw .zlib(function: "uncompress", code: code)
        }
        guard Int(length) == expected else {
            throw .corrupt("image data is \(length) bytes, \(expected) expected")
        }
        out.removeLast()
        return out
    }

    /// CRC-32 (the PNG/zlib polynomial) of `bytes`.
    public static func crc<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        let value = bytes.withContiguousStorageIfAvailable { buffer in
            crc32(0, buffer.baseAddress, uInt(buffer.count))
        } ?? Array(bytes).withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
        return UInt32(truncatingIfNeeded: value)
    }

    // MARK: - Bytes

    private static func pixelCount(width: Int, height: Int) throws(PNGError) -> Int {
        let side = 1...Int(Int32.max)
        guard side.contains(width), side.contains(height) else { throw .invalidDimensions(width: width, height: height) }
        let (count, overflow) = width.multipliedReportingOverflow(by: height)
        let (_, rowsOverflow) = (width + 1).multipliedReportingOverflow(by: height)
        guard !overflow, !rowsOverflow, count <= Int(UInt32.max) else {
            throw .invalidDimensions(width: width, height: height)
        }
        return count
    }

    private static func appendChunk<C: Collection>(_ type: String, _ data: C, to png: inout [UInt8])
    where C.Element == UInt8 {
        appendUInt32(UInt32(data.count), to: &png)
        let start = png.count
        png += Array(type.utf8)
        png += data
        appendUInt32(crc(png[start...]), to: &png)
    }

    private static func appendUInt32(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes += [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    private static func readUInt32<C: Collection>(_ bytes: C, at offset: C.Index) -> UInt32
    where C.Element == UInt8, C.Index == Int {
        (UInt32(bytes[offset]) << 24) | (UInt32(bytes[offset + 1]) << 16)
            | (UInt32(bytes[offset + 2]) << 8) | UInt32(bytes[offset + 3])
    }

    private static func errorString() -> String { Errno.current.description }
}

/// The C `write`, which `PNG.write` hides inside the enum.
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    write(fd, buffer, count)
}
