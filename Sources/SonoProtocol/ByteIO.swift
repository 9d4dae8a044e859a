/// Little-endian field access over raw buffers, bounds-checked by the caller's layout checks.
/// Values are assembled from bytes, never by reinterpreting memory, so alignment never matters.
@usableFromInline
struct ByteWriter {
    @usableFromInline let base: UnsafeMutableRawBufferPointer
    @usableFromInline var offset: Int

    @inlinable init(_ base: UnsafeMutableRawBufferPointer, offset: Int = 0) {
        self.base = base
        self.offset = offset
    }

    @inlinable mutating func u8(_ value: UInt8) {
        base[offset] = value
        offset += 1
    }

    @inlinable mutating func u16(_ value: UInt16) {
        base[offset] = UInt8(truncatingIfNeeded: value)
        base[offset + 1] = UInt8(truncatingIfNeeded: value >> 8)
        offset += 2
    }

    @inlinable mutating func u32(_ value: UInt32) {
        for shift in 0..<4 { base[offset + shift] = UInt8(truncatingIfNeeded: value >> (8 * shift)) }
        offset += 4
    }

    @inlinable mutating func u64(_ value: UInt64) {
        for shift in 0..<8 { base[offset + shift] = UInt8(truncatingIfNeeded: value >> (8 * shift)) }
        offset += 8
    }

    @inlinable mutating func f32(_ value: Float) { u32(value.bitPattern) }
}

@usableFromInline
struct ByteReader {
    @usableFromInline let base: UnsafeRawBufferPointer
    @usableFromInline var offset: Int

    @inlinable init(_ base: UnsafeRawBufferPointer, offset: Int = 0) {
        self.base = base
        self.offset = offset
    }

    @inlinable mutating func u8() -> UInt8 {
        defer { offset += 1 }
        return base[offset]
    }

    @inlinable mutating func u16() -> UInt16 {
        defer { offset += 2 }
        return UInt16(base[offset]) | UInt16(base[offset + 1]) << 8
    }

    @inlinable mutating func u32() -> UInt32 {
        var value: UInt32 = 0
        for shift in 0..<4 { value |= UInt32(base[offset + shift]) << (8 * shift) }
        offset += 4
        return value
    }

    @inlinable mutating func u64() -> UInt64 {
        var value: UInt64 = 0
        for shift in 0..<8 { value |= UInt64(base[offset + shift]) << (8 * shift) }
        offset += 8
        return value
    }

    @inlinable mutating func f32() -> Float { Float(bitPattern: u32()) }
}
