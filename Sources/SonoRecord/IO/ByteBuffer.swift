import SonoProtocol

/// A growable byte buffer for building records: little-endian appends, and `removeAll` keeps the
/// storage, so a writer that reuses one allocates only while it grows to its working size.
final class ByteBuffer {
    private(set) var count = 0
    private(set) var capacity: Int
    private var storage: UnsafeMutableRawPointer

    init(capacity: Int = 4096) {
        self.capacity = max(capacity, 64)
        storage = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 16)
    }

    deinit { storage.deallocate() }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: storage, count: count) }

    /// Room for `extra` more bytes; the storage doubles so appends are amortised O(1).
    func reserve(_ extra: Int) {
        let needed = count + extra
        guard needed > capacity else { return }
        var grown = capacity
        while grown < needed { grown *= 2 }
        let bigger = UnsafeMutableRawPointer.allocate(byteCount: grown, alignment: 16)
        bigger.copyMemory(from: storage, byteCount: count)
        storage.deallocate()
        storage = bigger
        capacity = grown
    }

    func removeAll() { count = 0 }

    /// Storage for `byteCount` bytes to be filled by the caller (e.g. a compressor), then
    /// committed with `commit`.
    func unsafeSpace(_ byteCount: Int) -> UnsafeMutableRawBufferPointer {
        reserve(byteCount)
        return UnsafeMutableRawBufferPointer(start: storage + count, count: byteCount)
    }

    func commit(_ byteCount: Int) {
        precondition(count + byteCount <= capacity, "committed beyond reserved space")
        count += byteCount
    }

    func append(_ value: UInt8) {
        reserve(1)
        storage.storeBytes(of: value, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    func append(_ value: UInt16) { appendInteger(value) }
    func append(_ value: UInt32) { appendInteger(value) }
    func append(_ value: UInt64) { appendInteger(value) }

    private func appendInteger<T: FixedWidthInteger>(_ value: T) {
        reserve(MemoryLayout<T>.size)
        LittleEndian.store(value, into: UnsafeMutableRawBufferPointer(start: storage, count: capacity), at: count)
        count += MemoryLayout<T>.size
    }

    func append(_ raw: UnsafeRawBufferPointer) {
        guard let base = raw.baseAddress, raw.count > 0 else { return }
        reserve(raw.count)
        (storage + count).copyMemory(from: base, byteCount: raw.count)
        count += raw.count
    }

    func append(_ array: [UInt8]) { array.withUnsafeBytes { append($0) } }

    /// An MCAP String: uint32 byte length, then UTF-8.
    func appendString(_ string: String) {
        var string = string
        string.withUTF8 { utf8 in
            append(UInt32(truncatingIfNeeded: utf8.count))
            append(UnsafeRawBufferPointer(utf8))
        }
    }

    /// An MCAP Map<string, string>, keys sorted so equal maps serialise identically.
    func appendStringMap(_ map: [String: String]) {
        let lengthAt = count
        append(UInt32(0))
        for key in map.keys.sorted() {
            appendString(key)
            appendString(map[key] ?? "")
        }
        set(UInt32(truncatingIfNeeded: count - lengthAt - 4), at: lengthAt)
    }

    /// Overwrites a little-endian integer written earlier (record lengths known only at the end).
    func set<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        precondition(offset + MemoryLayout<T>.size <= count, "patch outside the buffer")
        LittleEndian.store(value, into: UnsafeMutableRawBufferPointer(start: storage, count: count), at: offset)
    }
}
