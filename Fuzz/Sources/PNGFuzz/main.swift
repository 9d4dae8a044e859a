// libFuzzer target: the PNG reader behind `sonoctl classify` (SonoImaging.PNG.decodeGray8), with
// a file from anywhere. The first byte's low bit asks the harness to repair every chunk's CRC
// first, so mutations get past the CRC check to the header, the zlib stream and the filters.
//
// Invariants: no crash (ASan); a bad file is a thrown PNGError; a decoded image has
// width × height pixels; allocation stays bounded (make fuzz runs with -malloc_limit_mb);
// decoding is a round trip: encode(decoded) decodes to the same image.

import FuzzSupport
import SonoImaging

@_cdecl("LLVMFuzzerTestOneInput")
public func pngFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(UnsafeRawBufferPointer(start: data, count: size))
    let repair = input.byte() & 1 == 1
    var bytes = Array(input.rest())
    if repair { repairCRCs(&bytes) }
    let image: (width: Int, height: Int, pixels: [UInt8])
    do { image = try PNG.decodeGray8(bytes) } catch {
        _ = error.description
        return 0
    }
    invariant(image.pixels.count == image.width * image.height,
              "decoded \(image.pixels.count) pixels for \(image.width)×\(image.height)")
    do {
        let encoded = try PNG.encodeGray8(width: image.width, height: image.height, pixels: image.pixels)
        let again = try PNG.decodeGray8(encoded)
        invariant(again.width == image.width && again.height == image.height && again.pixels == image.pixels,
                  "re-encoding a decoded image does not round-trip")
    } catch {
        invariant(false, "a decoded image does not re-encode: \(error)")
    }
    return 0
}

/// Rewrites the CRC of every chunk whose length fits the file.
func repairCRCs(_ bytes: inout [UInt8]) {
    var offset = PNG.signature.count
    while offset + 12 <= bytes.count {
        let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
        guard length <= bytes.count - offset - 12 else { return }
        let crc = PNG.crc(bytes[offset + 4 ..< offset + 8 + length])
        let at = offset + 8 + length
        bytes[at] = UInt8(crc >> 24); bytes[at + 1] = UInt8(crc >> 16 & 0xFF)
        bytes[at + 2] = UInt8(crc >> 8 & 0xFF); bytes[at + 3] = UInt8(crc & 0xFF)
        offset = at + 4
    }
}

@_cdecl("PNGFuzz_main")
func PNGFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, pngFuzz)
}
