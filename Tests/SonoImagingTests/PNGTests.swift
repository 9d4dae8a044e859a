import CZlib
import SonoImaging
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Deterministic pseudo-random bytes (xorshift64*).
private struct Bytes {
    var state: UInt64
    mutating func next() -> UInt8 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return UInt8(truncatingIfNeeded: (state &* 0x2545_F491_4F6C_DD1D) >> 56)
    }
}

private func be32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
    (UInt32(bytes[offset]) << 24) | (UInt32(bytes[offset + 1]) << 16) | (UInt32(bytes[offset + 2]) << 8)
        | UInt32(bytes[offset + 3])
}

private func bigEndian(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
}

private func zlibCRC(_ bytes: [UInt8]) -> UInt32 {
    UInt32(truncatingIfNeeded: bytes.withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) })
}

/// (type, data) of every chunk, checking each CRC with zlib's crc32.
private func chunks(_ png: [UInt8]) -> [(type: String, data: [UInt8])] {
    var result: [(String, [UInt8])] = []
    var offset = 8
    while offset + 12 <= png.count {
        let length = Int(be32(png, offset))
        let typeAndData = Array(png[offset + 4 ..< offset + 8 + length])
        let type = String(decoding: typeAndData[0..<4], as: UTF8.self)
        #expect(be32(png, offset + 8 + length) == zlibCRC(typeAndData), "CRC of chunk \(type)")
        result.append((type, Array(typeAndData[4...])))
        offset += 12 + length
    }
    #expect(offset == png.count, "chunks end exactly at the end of the file")
    return result
}

/// A PNG built by hand: the given IHDR fields and already-filtered scanlines, compressed in the test.
private func handmadePNG(width: Int, height: Int, scanlines: [UInt8], bitDepth: UInt8 = 8, colorType: UInt8 = 0,
                         interlace: UInt8 = 0) -> [UInt8] {
    var compressed = [UInt8](repeating: 0, count: Int(compressBound(uLong(scanlines.count))))
    var length = uLong(compressed.count)
    let code = compressed.withUnsafeMutableBufferPointer { out in
        scanlines.withUnsafeBufferPointer { compress(out.baseAddress, &length, $0.baseAddress, uLong($0.count)) }
    }
    precondition(code == Z_OK)
    compressed.removeSubrange(Int(length)...)
    func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return bigEndian(UInt32(data.count)) + body + bigEndian(zlibCRC(body))
    }
    let header = bigEndian(UInt32(width)) + bigEndian(UInt32(height)) + [bitDepth, colorType, 0, 0, interlace]
    return PNG.signature + chunk("IHDR", header) + chunk("IDAT", compressed) + chunk("IEND", [])
}

@Suite struct PNGTests {
    @Test(arguments: [(1, 1), (3, 2), (17, 5), (64, 64), (200, 37), (1, 300), (640, 480)])
    func roundTripRandom(width: Int, height: Int) throws {
        var random = Bytes(state: UInt64(width * 7919 + height * 104_729 + 1))
        let pixels = (0..<width * height).map { _ in random.next() }
        let png = try PNG.encodeGray8(width: width, height: height, pixels: pixels)
        let decoded = try PNG.decodeGray8(png)
        #expect(decoded.width == width)
        #expect(decoded.height == height)
        #expect(decoded.pixels == pixels)
    }

    @Test func roundTripSmoothImageUsesFilters() throws {
        // A gradient with speckle: what ultrasound frames look like, and what filters compress.
        let width = 256, height = 192
        var random = Bytes(state: 42)
        var pixels = [UInt8](repeating: 0, count: width * height)
        for y in 0..<height {
            for x in 0..<width {
                pixels[y * width + x] = UInt8(truncatingIfNeeded: (x + y) / 2 + Int(random.next() % 4))
            }
        }
        let png = try PNG.encodeGray8(width: width, height: height, pixels: pixels)
        #expect(try PNG.decodeGray8(png).pixels == pixels)
        #expect(png.count < pixels.count / 2, "filtered gradient compresses well (\(png.count) bytes)")
        // The IDAT decompresses (plain zlib) to one filter byte plus one row per line, filters 0–4.
        let idat = chunks(png).filter { $0.type == "IDAT" }.flatMap(\.data)
        var raw = [UInt8](repeating: 0, count: height * (width + 1))
        var length = uLong(raw.count)
        let code = raw.withUnsafeMutableBufferPointer { out in
            idat.withUnsafeBufferPointer { uncompress(out.baseAddress, &length, $0.baseAddress, uLong($0.count)) }
        }
        #expect(code == Z_OK)
        #expect(Int(length) == raw.count)
        let filters = (0..<height).map { raw[$0 * (width + 1)] }
        #expect(filters.allSatisfy { $0 <= 4 })
        #expect(filters.contains { $0 != 0 }, "the adaptive filter picks something better than None")
    }

    @Test func headerAndChunkLayout() throws {
        let width = 300, height = 200
        let pixels = [UInt8](repeating: 128, count: width * height)
        let png = try PNG.encodeGray8(width: width, height: height, pixels: pixels)
        #expect(Array(png[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        let list = chunks(png)
        #expect(list.first?.type == "IHDR")
        #expect(list.last?.type == "IEND")
        #expect(list.last?.data.isEmpty == true)
        #expect(list.dropFirst().dropLast().allSatisfy { $0.type == "IDAT" })
        let ihdr = try #require(list.first?.data)
        #expect(ihdr.count == 13)
        #expect(be32(ihdr, 0) == 300)
        #expect(be32(ihdr, 4) == 200)
        #expect(Array(ihdr[8...]) == [8, 0, 0, 0, 0], "8-bit, grayscale, deflate, filter method 0, no interlace")
    }

    @Test func largeImageSplitsIDAT() throws {
        // Random pixels do not compress: 1.5 MB of them need more than one 1 MiB IDAT chunk.
        let width = 1500, height = 1000
        var random = Bytes(state: 7)
        let pixels = (0..<width * height).map { _ in random.next() }
        let png = try PNG.encodeGray8(width: width, height: height, pixels: pixels)
        #expect(chunks(png).filter { $0.type == "IDAT" }.count >= 2)
        #expect(try PNG.decodeGray8(png).pixels == pixels)
    }

    /// Scanlines filtered by hand with each filter type (known answers from the PNG spec).
    @Test func decodesEveryFilterType() throws {
        // Image 3×5: rows 10 20 30 / 40 50 60 / 70 80 90 / 100 110 120 / 130 140 150.
        let image: [UInt8] = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150]
        let scanlines: [UInt8] = [
            0, 10, 20, 30,            // None
            1, 40, 10, 10,            // Sub: 40−0, 50−40, 60−50
            2, 30, 30, 30,            // Up: 70−40, 80−50, 90−60
            3, 65, 20, 20,            // Average: 100−(0+70)/2, 110−(100+80)/2, 120−(110+90)/2
            4, 30, 10, 10,            // Paeth, below
        ]
        // Paeth row 5: x0: a=0, b=100, c=0 → p=100 → b; 130−100 = 30.
        // x1: a=130, b=110, c=100 → p=140, pa=10, pb=30, pc=40 → a; 140−130 = 10.
        // x2: a=140, b=120, c=110 → p=150, pa=10, pb=30, pc=40 → a; 150−140 = 10.
        let png = handmadePNG(width: 3, height: 5, scanlines: scanlines)
        let decoded = try PNG.decodeGray8(png)
        #expect(decoded.width == 3 && decoded.height == 5)
        #expect(decoded.pixels == image)
    }

    @Test func pixelCountMismatch() {
        #expect(throws: PNGError.pixelCountMismatch(width: 4, height: 4, expected: 16, actual: 15)) {
            try PNG.encodeGray8(width: 4, height: 4, pixels: [UInt8](repeating: 0, count: 15))
        }
        #expect(throws: PNGError.invalidDimensions(width: 0, height: 4)) {
            try PNG.encodeGray8(width: 0, height: 4, pixels: [])
        }
    }

    @Test func rejectsBadInput() throws {
        #expect(throws: PNGError.notPNG) { try PNG.decodeGray8(Array("GIF89a..".utf8)) }

        var png = try PNG.encodeGray8(width: 8, height: 8, pixels: (0..<64).map { UInt8($0 * 4) })
        var corrupted = png
        corrupted[20] ^= 0x01  // inside IHDR's data: its CRC no longer matches
        #expect(throws: PNGError.badCRC(chunk: "IHDR")) { try PNG.decodeGray8(corrupted) }

        #expect(throws: PNGError.truncated(what: "missing IEND chunk")) { try PNG.decodeGray8(Array(png.dropLast(12))) }

        png = handmadePNG(width: 2, height: 2, scanlines: [0, 1, 2, 0, 3, 4], colorType: 2)
        #expect(throws: PNGError.unsupported("colour type 2 (only 0, grayscale, is read)")) {
            try PNG.decodeGray8(png)
        }
        png = handmadePNG(width: 2, height: 2, scanlines: [0, 1, 2, 9, 3, 4])
        #expect(throws: PNGError.corrupt("filter type 9 in row 1")) { try PNG.decodeGray8(png) }
        png = handmadePNG(width: 2, height: 2, scanlines: [0, 1, 2, 0, 3])
        #expect(throws: PNGError.corrupt("image data is 5 bytes, 6 expected")) { try PNG.decodeGray8(png) }
    }

    /// The header's sides sized the decode buffer before anything was inflated: the fuzzer's
    /// inputs (Fuzz/regressions/png) are 68-byte files claiming 2147483647² and 30000² pixels.
    @Test func headerClaimingTooManyPixelsIsRefusedBeforeAllocating() throws {
        let zeros: [UInt8] = [0, 0]
        #expect(throws: PNGError.tooLarge(width: 2_147_483_647, height: 2_147_483_647, limit: PNG.maxDecodedPixels)) {
            try PNG.decodeGray8(handmadePNG(width: 2_147_483_647, height: 2_147_483_647, scanlines: zeros))
        }
        #expect(throws: PNGError.tooLarge(width: 8193, height: 8192, limit: 1 << 26)) {
            try PNG.decodeGray8(handmadePNG(width: 8193, height: 8192, scanlines: zeros))
        }
        let error = PNGError.tooLarge(width: 30000, height: 30000, limit: PNG.maxDecodedPixels)
        #expect(error.description == "PNG: a 30000×30000 image is 900000000 pixels, more than the 67108864 this reader decodes")
        // Within the limit, but 10 bytes of zlib cannot inflate to 8192 × 8193 bytes.
        #expect(throws: PNGError.corrupt("10 bytes of compressed image data cannot hold a 8192×8192 image (67117056 bytes)")) {
            try PNG.decodeGray8(handmadePNG(width: 8192, height: 8192, scanlines: zeros))
        }
    }

    /// zlib at its best ratio (an all-zero image, about 1000:1) stays within the deflate bound.
    @Test func uniformImageAtDeflatesBestRatioDecodes() throws {
        let pixels = [UInt8](repeating: 0, count: 1024 * 1024)
        let png = try PNG.encodeGray8(width: 1024, height: 1024, pixels: pixels)
        #expect(png.count < 2000)
        #expect(try PNG.decodeGray8(png).pixels == pixels)
    }

    @Test func writeAndReadFile() throws {
        let path = "/tmp/sono-png-test-\(getpid()).png"
        defer { unlink(path) }
        var random = Bytes(state: 99)
        let pixels = (0..<(50 * 40)).map { _ in random.next() }
        try PNG.write(path: path, width: 50, height: 40, pixels: pixels)
        let decoded = try PNG.readGray8(path: path)
        #expect(decoded.width == 50 && decoded.height == 40 && decoded.pixels == pixels)
    }

    @Test func writeToMissingDirectoryNamesPath() {
        let path = "/nonexistent-sono-dir/frame.png"
        do {
            try PNG.write(path: path, width: 1, height: 1, pixels: [0])
            Issue.record("wrote into a missing directory")
        } catch {
            guard case .cannotWrite(let failedPath, let reason) = error else {
                Issue.record("expected cannotWrite, got \(error)")
                return
            }
            #expect(failedPath == path)
            #expect(reason.contains("No such file"))
            #expect(error.description.hasPrefix(path))
        }
    }
}
