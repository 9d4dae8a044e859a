// Reads the browser's screenshot (8-bit RGB or RGBA PNG, non-interlaced) into pixels, so the
// test can tell a rendered page from a blank one. SonoImaging's PNG reads only grayscale; this is
// the test's own minimal reader for colour.

import CZlib

struct ScreenshotImage {
    enum Failure: Error, CustomStringConvertible {
        case notPNG, truncated, unsupported(String), corrupt(String)

        var description: String {
            switch self {
            case .notPNG: "screenshot: not a PNG"
            case .truncated: "screenshot: PNG truncated"
            case .unsupported(let what): "screenshot: unsupported PNG (\(what))"
            case .corrupt(let what): "screenshot: corrupt PNG (\(what))"
            }
        }
    }

    let width: Int
    let height: Int
    /// RGB, 3 bytes per pixel, rows top to bottom.
    let rgb: [UInt8]

    init(png bytes: [UInt8]) throws(Failure) {
        guard bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else { throw .notPNG }
        func u32(_ at: Int) -> Int {
            Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
        }
        var offset = 8, width = 0, height = 0, channels = 0
        var compressed: [UInt8] = []
        chunks: while true {
            guard offset + 8 <= bytes.count else { throw .truncated }
            let length = u32(offset)
            let type = String(decoding: bytes[offset + 4 ..< offset + 8], as: UTF8.self)
            guard offset + 12 + length <= bytes.count else { throw .truncated }
            let data = bytes[offset + 8 ..< offset + 8 + length]
            switch type {
            case "IHDR":
                width = u32(offset + 8)
                height = u32(offset + 12)
                let (depth, colour, interlace) = (bytes[offset + 16], bytes[offset + 17], bytes[offset + 20])
                guard depth == 8, colour == 2 || colour == 6, interlace == 0 else {
                    throw .unsupported("bit depth \(depth), colour type \(colour), interlace \(interlace)")
                }
                channels = colour == 2 ? 3 : 4
            case "IDAT": compressed += data
            case "IEND": break chunks
            default: break
            }
            offset += 12 + length
        }
        guard width > 0, height > 0, channels > 0 else { throw .corrupt("no IHDR") }
        let stride = width * channels
        var raw = [UInt8](repeating: 0, count: height * (stride + 1))
        var length = uLong(raw.count)
        let code = raw.withUnsafeMutableBufferPointer { out in
            compressed.withUnsafeBufferPointer { uncompress(out.baseAddress, &length, $0.baseAddress, uLong($0.count)) }
        }
        guard code == Z_OK, Int(length) == raw.count else { throw .corrupt("zlib code \(code), \(length) bytes") }

        // Undo the per-row filters (PNG spec §9), then drop alpha.
        var pixels = [UInt8](repeating: 0, count: height * stride)
        for y in 0..<height {
            let filter = raw[y * (stride + 1)]
            for x in 0..<stride {
                let value = raw[y * (stride + 1) + 1 + x]
                let a = x >= channels ? Int(pixels[y * stride + x - channels]) : 0
                let b = y > 0 ? Int(pixels[(y - 1) * stride + x]) : 0
                let c = x >= channels && y > 0 ? Int(pixels[(y - 1) * stride + x - channels]) : 0
                let predicted: Int
                switch filter {
                case 0: predicted = 0
                case 1: predicted = a
                case 2: predicted = b
                case 3: predicted = (a + b) / 2
                case 4:
                    let p = a + b - c
                    let (pa, pb, pc) = (abs(p - a), abs(p - b), abs(p - c))
                    predicted = pa <= pb && pa <= pc ? a : pb <= pc ? b : c
                default: throw .corrupt("filter \(filter) in row \(y)")
                }
                pixels[y * stride + x] = value &+ UInt8(predicted)
            }
        }
        self.width = width
        self.height = height
        if channels == 3 {
            rgb = pixels
        } else {
            var out = [UInt8]()
            out.reserveCapacity(width * height * 3)
            for index in 0..<(width * height) { out += pixels[index * 4 ..< index * 4 + 3] }
            rgb = out
        }
    }

    /// How many pixels have each colour (0xRRGGBB).
    func histogram() -> [UInt32: Int] {
        var counts: [UInt32: Int] = [:]
        for index in stride(from: 0, to: rgb.count, by: 3) {
            counts[UInt32(rgb[index]) << 16 | UInt32(rgb[index + 1]) << 8 | UInt32(rgb[index + 2]), default: 0] += 1
        }
        return counts
    }
}
