/// CRC-32C (Castagnoli): poly 0x1EDC6F41 (reflected 0x82F63B78), init 0xFFFFFFFF,
/// reflected in and out, xor-out 0xFFFFFFFF; check value 0xE3069283. PROTOCOL.md §1.2.
public enum CRC32C {
    /// Byte-wise lookup table, built once; 1 KiB.
    private static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 {
            crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1
        }
        return crc
    }

    /// The CRC of `bytes`; with `previous`, the CRC of the bytes that gave `previous` followed by
    /// `bytes` (so a frame's CRC can be computed over disjoint parts without copying them together).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing previous: UInt32 = 0) -> UInt32 {
        table.withUnsafeBufferPointer { table in
            var crc: UInt32 = previous ^ 0xFFFF_FFFF
            for byte in bytes {
                crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
            }
            return crc ^ 0xFFFF_FFFF
        }
    }

    public static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        Array(bytes).withUnsafeBytes { checksum($0, continuing: 0) }
    }
}
