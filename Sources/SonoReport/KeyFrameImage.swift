// Key frames as inline images: PNG (SonoImaging's encoder, the one sonod writes key frames with)
// in a base64 data URI, so the report needs no file beside it.

import SonoImaging

enum KeyFrameImage {
    /// `data:image/png;base64,…` of the frame, or why it cannot be shown (e.g. a pixel count that
    /// does not match its size: the recording is damaged, and the report says so instead of failing).
    static func dataURI(_ image: ReportImage) -> Result<String, PNGError> {
        do {
            let png = try PNG.encodeGray8(width: image.width, height: image.height, pixels: image.pixels)
            return .success("data:image/png;base64," + Base64.encode(png))
        } catch {
            return .failure(error)
        }
    }
}

enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Standard base64 (RFC 4648 §4) with padding.
    static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let value = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            out += [alphabet[Int(value >> 18)], alphabet[Int(value >> 12 & 63)], alphabet[Int(value >> 6 & 63)], alphabet[Int(value & 63)]]
            index += 3
        }
        let rest = bytes.count - index
        if rest > 0 {
            let value = UInt32(bytes[index]) << 16 | (rest == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
            out += [alphabet[Int(value >> 18)], alphabet[Int(value >> 12 & 63)]]
            out += rest == 2 ? [alphabet[Int(value >> 6 & 63)], UInt8(ascii: "=")] : [UInt8(ascii: "="), UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
