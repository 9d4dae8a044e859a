import SwiftProtobuf

/// Schemas Foxglove (and any MCAP tool) understands, for the channels of a session.
public enum FoxgloveSchemas {
    /// `foxglove.RawImage`, encoding "protobuf": a serialized `google.protobuf.FileDescriptorSet`
    /// holding foxglove/RawImage.proto and its dependency google/protobuf/timestamp.proto, as
    /// protoc would describe them (field numbers from foxglove/schemas, RawImage.proto):
    ///
    ///     message RawImage {
    ///       google.protobuf.Timestamp timestamp = 1;  string frame_id = 7;
    ///       fixed32 width = 2;  fixed32 height = 3;  string encoding = 4;  fixed32 step = 5;
    ///       bytes data = 6;
    ///     }
    public static let rawImage = MCAPSchema(name: "foxglove.RawImage", encoding: "protobuf", data: rawImageDescriptorSet())

    /// A JSON Schema for "json" channels (encoding "jsonschema"; `json` is the schema text).
    public static func jsonSchema(name: String, json: String) -> MCAPSchema {
        MCAPSchema(name: name, encoding: "jsonschema", data: Array(json.utf8))
    }

    static func rawImageDescriptorSet() -> [UInt8] {
        typealias Field = Google_Protobuf_FieldDescriptorProto
        func field(_ name: String, _ number: Int32, _ type: Field.TypeEnum, typeName: String? = nil, json: String) -> Field {
            var field = Field()
            field.name = name
            field.number = number
            field.label = .optional
            field.type = type
            if let typeName { field.typeName = typeName }
            field.jsonName = json
            return field
        }

        var timestampMessage = Google_Protobuf_DescriptorProto()
        timestampMessage.name = "Timestamp"
        timestampMessage.field = [field("seconds", 1, .int64, json: "seconds"), field("nanos", 2, .int32, json: "nanos")]
        var timestampFile = Google_Protobuf_FileDescriptorProto()
        timestampFile.name = "google/protobuf/timestamp.proto"
        timestampFile.package = "google.protobuf"
        timestampFile.messageType = [timestampMessage]
        timestampFile.syntax = "proto3"

        var rawImageMessage = Google_Protobuf_DescriptorProto()
        rawImageMessage.name = "RawImage"
        rawImageMessage.field = [
            field("timestamp", 1, .message, typeName: ".google.protobuf.Timestamp", json: "timestamp"),
            field("frame_id", 7, .string, json: "frameId"),
            field("width", 2, .fixed32, json: "width"),
            field("height", 3, .fixed32, json: "height"),
            field("encoding", 4, .string, json: "encoding"),
            field("step", 5, .fixed32, json: "step"),
            field("data", 6, .bytes, json: "data"),
        ]
        var rawImageFile = Google_Protobuf_FileDescriptorProto()
        rawImageFile.name = "foxglove/RawImage.proto"
        rawImageFile.package = "foxglove"
        rawImageFile.dependency = ["google/protobuf/timestamp.proto"]
        rawImageFile.messageType = [rawImageMessage]
        rawImageFile.syntax = "proto3"

        var set = Google_Protobuf_FileDescriptorSet()
        set.file = [timestampFile, rawImageFile]
        do {
            return try set.serializedBytes()
        } catch {
            // Only proto2 `required` fields make serialisation fail, and descriptor.proto's
            // file, message and field descriptors have none set here: this cannot happen.
            preconditionFailure("serialising the RawImage FileDescriptorSet failed: \(error)")
        }
    }
}
