import SonoProtocol
import Testing

@Suite struct LittleEndianTests {
    @Test func storesAndLoadsAtAnyByteOffset() {
        var bytes = [UInt8](repeating: 0, count: 16)
        LittleEndian.store(UInt32(0x0403_0201), into: &bytes, at: 1)
        #expect(Array(bytes[0..<6]) == [0, 1, 2, 3, 4, 0])
        #expect(LittleEndian.load(UInt32.self, from: bytes, at: 1) == 0x0403_0201)
        LittleEndian.store(UInt64.max - 1, into: &bytes, at: 7)
        #expect(LittleEndian.load(UInt64.self, from: bytes, at: 7) == UInt64.max - 1)
        #expect(LittleEndian.load(Int16.self, from: [0xFE, 0xFF], at: 0) == -2)
        #expect(Float(bitPattern: LittleEndian.load(from: [0x00, 0x00, 0x80, 0x3F], at: 0)) == 1.0)
    }

    @Test func appendsInByteOrder() {
        var bytes: [UInt8] = [9]
        LittleEndian.append(UInt16(0xBBAA), to: &bytes)
        #expect(bytes == [9, 0xAA, 0xBB])
    }

    @Test func answersNilPastTheEnd() {
        let bytes: [UInt8] = [1, 2, 3]
        #expect(LittleEndian.loadIfPresent(UInt16.self, from: bytes, at: 1) == 0x0302)
        #expect(LittleEndian.loadIfPresent(UInt16.self, from: bytes, at: 2) == nil)
        #expect(LittleEndian.loadIfPresent(UInt16.self, from: bytes, at: -1) == nil)
        #expect(LittleEndian.loadIfPresent(UInt64.self, from: [], at: 0) == nil)
    }
}
