import Foundation
import NIOCore
import NIOHTTP1

/// One HTTP request put together from its parts as they arrive, its body bounded at
/// `ControlAPI.maxBodyBytes` (past it the body is dropped and the request is answered 413).
/// The control socket and the operator console take requests the same way, with the same
/// bound and the same refusals.
struct RequestAssembly {
    private var pending: HTTPRequestHead?
    private(set) var body = ByteBuffer()
    /// The body went past the bound: it was dropped, and the request must be refused.
    private(set) var tooLarge = false

    /// Takes one part; returns the request's head once its end has arrived.
    mutating func take(_ part: HTTPServerRequestPart) -> HTTPRequestHead? {
        switch part {
        case .head(let head):
            pending = head
            body.clear()
            tooLarge = false
        case .body(var chunk):
            if body.readableBytes + chunk.readableBytes > ControlAPI.maxBodyBytes {
                tooLarge = true
            } else {
                body.writeBuffer(&chunk)
            }
        case .end:
            defer { pending = nil }
            return pending
        }
        return nil
    }

    /// The body's bytes, for the API.
    var data: Data { Data(body.readableBytesView) }

    /// 413, when the body went past the bound.
    var tooLargeRefusal: ControlAPI.Response? {
        tooLarge ? ControlAPI.error(413, "payload_too_large", "request bodies are limited to \(ControlAPI.maxBodyBytes) bytes") : nil
    }

    /// 415, when the request has a body that is not JSON.
    func mediaTypeRefusal(_ head: HTTPRequestHead) -> ControlAPI.Response? {
        guard body.readableBytes > 0, let type = head.headers.first(name: "content-type"),
              !type.lowercased().hasPrefix("application/json") else { return nil }
        return ControlAPI.error(415, "unsupported_media_type", "send JSON (Content-Type: application/json), not \(type)")
    }
}
