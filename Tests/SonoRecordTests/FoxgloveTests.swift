import Foundation
@testable import SonoRecord
import SwiftProtobuf
import Testing

/// The foxglove.RawImage schema and encoder against foxglove/schemas' RawImage.proto.
@Suite struct FoxgloveTests {
    @Test func rawImageSchemaDescribesFoxglovesRawImage() throws {
        let schema = FoxgloveSchemas.rawImage
        #expect(schema.name == "foxglove.RawImage")
        #expect(schema.encoding == "protobuf")
        let set = try Google_Protobuf_FileDescriptorSet(serializedBytes: schema.data)
        #expect(set.file.map(\.name) == ["google/protobuf/timestamp.proto", "foxglove/RawImage.proto"])
        let timestamp = try #require(set.file.first { $0.package == "google.protobuf" }?.messageType.first)
        #expect(timestamp.name == "Timestamp")
        #expect(timestamp.field.map { "\($0.name)=\($0.number):\($0.type)" } == ["seconds=1:int64", "nanos=2:int32"])

        let file = try #require(set.file.first { $0.package == "foxglove" })
        #expect(file.dependency == ["google/protobuf/timestamp.proto"])
        #expect(file.syntax == "proto3")
        let message = try #require(file.messageType.first)
        #expect(message.name == "RawImage")
        // foxglove/schemas schemas/proto/foxglove/RawImage.proto
        let fields = Dictionary(uniqueKeysWithValues: message.field.map { ($0.name, ($0.number, $0.type, $0.typeName)) })
        #expect(fields.count == 7)
        #expect(fields["timestamp"]?.0 == 1 && fields["timestamp"]?.1 == .message && fields["timestamp"]?.2 == ".google.protobuf.Timestamp")
        #expect(fields["width"]?.0 == 2 && fields["width"]?.1 == .fixed32)
        #expect(fields["height"]?.0 == 3 && fields["height"]?.1 == .fixed32)
        #expect(fields["encoding"]?.0 == 4 && fields["encoding"]?.1 == .string)
        #expect(fields["step"]?.0 == 5 && fields["step"]?.1 == .fixed32)
        #expect(fields["data"]?.0 == 6 && fields["data"]?.1 == .bytes)
        #expect(fields["frame_id"]?.0 == 7 && fields["frame_id"]?.1 == .string)
    }

    @Test func jsonSchema() {
        let schema = FoxgloveSchemas.jsonSchema(name: "sono.Force", json: #"{"type":"object"}"#)
        #expect(schema == MCAPSchema(name: "sono.Force", encoding: "jsonschema", data: Array(#"{"type":"object"}"#.utf8)))
    }

    /// Protobuf wire fields: number → (wire type, value bytes or varint).
    static func fields(_ bytes: [UInt8]) throws -> [Int: (wireType: Int, bytes: [UInt8], number: UInt64)] {
        var result: [Int: (Int, [UInt8], UInt64)] = [:]
        var position = 0
        func varint() throws -> UInt64 {
            var value: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard position < bytes.count else { throw RecordError.invalidUse(path: "test", what: "varint past the end") }
                let byte = bytes[position]
                position += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
        }
        while position < bytes.count {
            let key = try varint()
            let number = Int(key >> 3), wireType = Int(key & 7)
            switch wireType {
            case 0: result[number] = (0, [], try varint())
            case 2:
                let length = Int(try varint())
                result[number] = (2, Array(bytes[position..<(position + length)]), 0)
                position += length
            case 5:
                let value = bytes[position..<(position + 4)].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) }
                result[number] = (5, [], value)
                position += 4
            default: throw RecordError.invalidUse(path: "test", what: "wire type \(wireType)")
            }
        }
        return result
    }

    @Test func encoderWritesEveryField() throws {
        let encoder = RawImageEncoder(frameID: "probe-tip")
        let pixels = (0..<(320 * 240)).map { UInt8(truncatingIfNeeded: $0 / 3) }
        let nanos: UInt64 = 1_764_000_000_987_654_321
        let encoded = try encoder.encodeMono8(timestampNanos: nanos, width: 320, height: 240, pixels: pixels) { Array($0) }
        let fields = try Self.fields(encoded)
        let timestamp = try Google_Protobuf_Timestamp(serializedBytes: try #require(fields[1]).bytes)
        #expect(timestamp.seconds == 1_764_000_000 && timestamp.nanos == 987_654_321)
        #expect(fields[2]?.wireType == 5 && fields[2]?.number == 320)
        #expect(fields[3]?.wireType == 5 && fields[3]?.number == 240)
        #expect(fields[4]?.bytes == Array("mono8".utf8))
        #expect(fields[5]?.wireType == 5 && fields[5]?.number == 320)
        #expect(fields[6]?.bytes == pixels)
        #expect(fields[7]?.bytes == Array("probe-tip".utf8))
        #expect(fields.count == 7)

        // The buffer is reused: a second frame of the same size gives the same length.
        let again = try encoder.encodeMono8(timestampNanos: nanos + 1, width: 320, height: 240, pixels: pixels) { $0.count }
        #expect(again == encoded.count)
        // A timestamp at the epoch is an empty Timestamp (proto3 leaves zero fields out).
        let zero = try Self.fields(try encoder.encodeMono8(timestampNanos: 0, width: 320, height: 240, pixels: pixels) { Array($0) })
        #expect(zero[1]?.bytes == [])
    }

    @Test func encoderRefusesAFrameOfTheWrongSize() {
        let encoder = RawImageEncoder()
        #expect(throws: RecordError.self) {
            try encoder.encodeMono8(timestampNanos: 0, width: 4, height: 4, pixels: [UInt8](repeating: 0, count: 15)) { $0.count }
        }
        #expect(throws: RecordError.self) { try encoder.encodeMono8(timestampNanos: 0, width: 0, height: 4, pixels: []) { $0.count } }
    }
}
