/// Little-endian integers at byte offsets of raw memory or byte arrays: the byte order of the
/// board protocol, the USB probe's structures, MCAP and Sono's own files. Loads and stores are
/// unaligned (a field may start at any byte) and bounds-checked: an offset outside the buffer
/// stops the program rather than touching memory that is not the buffer's. Input whose length is
/// not yet checked goes through `loadIfPresent`, which answers nil instead.
///
/// Floating-point fields go through their bit patterns: `Float(bitPattern: load(UInt32.self, …))`.
public enum LittleEndian {
    /// The `T` stored little-endian at `offset` in `bytes`.
    @inlinable @inline(__always)
    public static func load<T: FixedWidthInteger>(_: T.Type = T.self, from bytes: UnsafeRawBufferPointer,
                                                 at offset: Int) -> T {
        precondition(offset >= 0 && offset <= bytes.count - MemoryLayout<T>.size,
                     "little-endian load outside the buffer")
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    @inlinable
    public static func load<T: FixedWidthInteger>(_: T.Type = T.self, from bytes: [UInt8], at offset: Int) -> T {
        bytes.withUnsafeBytes { load(T.self, from: $0, at: offset) }
    }

    /// The `T` at `offset`, or nil when the buffer ends before it.
    @inlinable
    public static func loadIfPresent<T: FixedWidthInteger>(_: T.Type = T.self, from bytes: UnsafeRawBufferPointer,
                                                          at offset: Int) -> T? {
        guard offset >= 0, offset <= bytes.count - MemoryLayout<T>.size else { return nil }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    @inlinable
    public static func loadIfPresent<T: FixedWidthInteger>(_: T.Type = T.self, from bytes: [UInt8], at offset: Int) -> T? {
        bytes.withUnsafeBytes { loadIfPresent(T.self, from: $0, at: offset) }
    }

    /// Stores `value` little-endian at `offset` in `bytes`.
    @inlinable @inline(__always)
    public static func store<T: FixedWidthInteger>(_ value: T, into bytes: UnsafeMutableRawBufferPointer, at offset: Int) {
        precondition(offset >= 0 && offset <= bytes.count - MemoryLayout<T>.size,
                     "little-endian store outside the buffer")
        bytes.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
    }

    @inlinable
    public static func store<T: FixedWidthInteger>(_ value: T, into bytes: inout [UInt8], at offset: Int) {
        bytes.withUnsafeMutableBytes { store(value, into: $0, at: offset) }
    }

    /// Appends `value`'s little-endian bytes to `bytes`.
    @inlinable
    public static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}

/// A cursor writing little-endian fields one after another into a buffer whose size the
/// caller's layout checks have settled (the frame codec's encoder).
@usableFromInline
struct ByteWriter {
    @usableFromInline let base: UnsafeMutableRawBufferPointer
    @usableFromInline var offset: Int

    @inlinable init(_ base: UnsafeMutableRawBufferPointer, offset: Int = 0) {
        self.base = base
        self.offset = offset
    }

    @inlinable mutating func put<T: FixedWidthInteger>(_ value: T) {
        LittleEndian.store(value, into: base, at: offset)
        offset += MemoryLayout<T>.size
    }

    @inlinable mutating func u8(_ value: UInt8) { put(value) }
    @inlinable mutating func u16(_ value: UInt16) { put(value) }
    @inlinable mutating func u32(_ value: UInt32) { put(value) }
    @inlinable mutating func u64(_ value: UInt64) { put(value) }
    @inlinable mutating func f32(_ value: Float) { put(value.bitPattern) }
}

/// A cursor reading little-endian fields one after another from a buffer whose length the
/// caller's layout checks have settled (the frame codec's decoder).
@usableFromInline
struct ByteReader {
    @usableFromInline let base: UnsafeRawBufferPointer
    @usableFromInline var offset: Int

    @inlinable init(_ base: UnsafeRawBufferPointer, offset: Int = 0) {
        self.base = base
        self.offset = offset
    }

    @inlinable mutating func take<T: FixedWidthInteger>(_: T.Type = T.self) -> T {
        defer { offset += MemoryLayout<T>.size }
        return LittleEndian.load(T.self, from: base, at: offset)
    }

    @inlinable mutating func u8() -> UInt8 { take() }
    @inlinable mutating func u16() -> UInt16 { take() }
    @inlinable mutating func u32() -> UInt32 { take() }
    @inlinable mutating func u64() -> UInt64 { take() }
    @inlinable mutating func f32() -> Float { Float(bitPattern: take(UInt32.self)) }
}
