import Foundation
import SonoSystem
import SonoTestSupport
import Testing

@Suite struct FileContentsTests {
    @Test func readsAWholeFileAndRefusesOneOverTheLimit() throws {
        let path = Temporary.path("contents.bin")
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }  // several reads
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(try FileContents.read(path: path, limitBytes: bytes.count) == bytes)
        #expect(throws: FileReadError.tooLarge(limitBytes: 100_000)) { try FileContents.read(path: path, limitBytes: 100_000) }
    }

    @Test func aMissingFileIsTheSystemsError() {
        #expect(throws: FileReadError.system(.noSuchFileOrDirectory)) {
            try FileContents.read(path: "/nonexistent/sono-\(UInt32.random(in: 0...UInt32.max))", limitBytes: 10)
        }
    }
}
