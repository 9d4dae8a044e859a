/// CRC-32C (Castagnoli): poly 0x1EDC6F41 (reflected 0x82F63B78), init 0xFFFFFFFF,
/// reflected in and out, xor-out 0xFFFFFFFF; check value 0xE3069283. PROTOCOL.md §1.2.
///
/// Slicing-by-8 (eight 1 KiB tables, eight bytes per step): the probe's frames are checked
/// whole, up to 256 KiB each, on libusb's event thread; byte-at-a-time ran at ~300 MB/s there.
public enum CRC32C {
    /// `tables[k][b]`: the CRC of byte `b` followed by `k` zero bytes; `tables[0]` is the classic table.
    private static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for index in 0..<256 {
            var crc = UInt32(index)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
            tables[index] = crc
        }
        for slice in 1..<8 {
            for index in 0..<256 {
                let previous = tables[(slice - 1) * 256 + index]
                tables[slice * 256 + index] = tables[Int(previous & 0xFF)] ^ (previous >> 8)
            }
        }
        return tables
    }()

    /// The CRC of `bytes`; with `previous`, the CRC of the bytes that gave `previous` followed by
    /// `bytes` (so a frame's CRC can be computed over disjoint parts without copying them together).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing previous: UInt32 = 0) -> UInt32 {
        tables.withUnsafeBufferPointer { t in
            var crc: UInt32 = previous ^ 0xFFFF_FFFF
            var index = 0
            let count = bytes.count
            while count - index >= 8 {
                // Little-endian loads, assembled from bytes so alignment never matters.
                let low = UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2]) << 16
                    | UInt32(bytes[index + 3]) << 24
                let high = UInt32(bytes[index + 4]) | UInt32(bytes[index + 5]) << 8 | UInt32(bytes[index + 6]) << 16
                    | UInt32(bytes[index + 7]) << 24
                let mixed = crc ^ low
                crc = t[7 * 256 + Int(mixed & 0xFF)] ^ t[6 * 256 + Int((mixed >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((mixed >> 16) & 0xFF)] ^ t[4 * 256 + Int(mixed >> 24)]
                    ^ t[3 * 256 + Int(high & 0xFF)] ^ t[2 * 256 + Int((high >> 8) & 0xFF)]
                    ^ t[256 + Int((high >> 16) & 0xFF)] ^ t[Int(high >> 24)]
                index += 8
            }
            while index < count {
                crc = t[Int((crc ^ UInt32(bytes[index])) & 0xFF)] ^ (crc >> 8)
                index += 1
            }
            return crc ^ 0xFFFF_FFFF
        }
    }

    public static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        Array(bytes).withUnsafeBytes { checksum($0, continuing: 0) }
    }
}
