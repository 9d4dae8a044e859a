/// Consistent Overhead Byte Stuffing (Cheshire & Baker 1999), plain variant: the encoded
/// bytes hold no 0x00, so 0x00 delimits frames on the wire. PROTOCOL.md §1.
public enum COBS {
    /// Worst-case encoded size of `count` bytes (without the delimiter).
    public static func maxEncodedCount(_ count: Int) -> Int { count + count / 254 + 1 }

    /// Encodes `source` into `destination`; returns the number of bytes written, or nil when
    /// `destination` is too small.
    public static func encode(_ source: UnsafeRawBufferPointer,
                              into destination: UnsafeMutableRawBufferPointer) -> Int? {
        guard destination.count >= maxEncodedCount(source.count) else { return nil }
        var codeIndex = 0
        var write = 1
        var code: UInt8 = 1
        for (index, byte) in source.enumerated() {
            if byte == 0 {
                destination[codeIndex] = code
                codeIndex = write
                write += 1
                code = 1
            } else {
                destination[write] = byte
                write += 1
                code += 1
                // A full block ends without an implied zero. A new block starts only if input
                // remains, so 254 non-zero bytes at the end need no extra code byte (the
                // canonical form, as the reference `cobs` package writes it).
                if code == 0xFF && index < source.count - 1 {
                    destination[codeIndex] = code
                    codeIndex = write
                    write += 1
                    code = 1
                }
            }
        }
        destination[codeIndex] = code
        return write
    }

    /// Decodes `source` (one frame, without its delimiter) into `destination`; returns the
    /// decoded length, or nil when the input is not valid COBS or does not fit.
    public static func decode(_ source: UnsafeRawBufferPointer,
                              into destination: UnsafeMutableRawBufferPointer) -> Int? {
        var read = 0
        var write = 0
        while read < source.count {
            let code = Int(source[read])
            guard code != 0, read + code <= source.count else { return nil }
            read += 1
            let run = code - 1
            guard write + run <= destination.count else { return nil }
            for offset in 0..<run {
                let byte = source[read + offset]
                guard byte != 0 else { return nil }
                destination[write + offset] = byte
            }
            write += run
            read += run
            // A code below 0xFF stands for a run followed by a zero, except at the frame's end.
            if code != 0xFF && read < source.count {
                guard write < destination.count else { return nil }
                destination[write] = 0
                write += 1
            }
        }
        return write
    }
}
