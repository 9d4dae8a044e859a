// libFuzzer target: the control API's requests (docs/control-api.yaml), in process, without a
// socket: the bytes a client sends go through the same NIO HTTP/1 server pipeline as sonod's
// ControlServer (configureHTTPServerPipeline with its error handling) on an EmbeddedChannel; each
// request that comes out is routed (ControlAPI.route) and its body decoded as the endpoint's JSON
// (ControlAPI.decode), exactly as ControlHTTPHandler and ControlAPI.perform do before they reach
// the scanner. The scanner itself is not involved: what it does is the daemon tests' business.
//
// Invariants: no crash (ASan); malformed HTTP is answered (400) or the connection closed, never a
// trap; a request gets a route whose method and path are the request's, or a 404 / 405 whose body
// is the API's error JSON (405 with an Allow header); a body is either the endpoint's request
// (which re-encodes and decodes to the same value) or a 400 with the error JSON; bodies are
// bounded by ControlAPI.maxBodyBytes.

import Foundation
import FuzzSupport
import NIOCore
import NIOEmbedded
import NIOHTTP1
@testable import SonoDaemon

/// Collects requests as ControlHTTPHandler does (its body limit included).
final class RequestCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    var requests: [(head: HTTPRequestHead, body: [UInt8], tooLarge: Bool)] = []
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
            tooLarge = false
        case .body(let chunk):
            if body.count + chunk.readableBytes > ControlAPI.maxBodyBytes { tooLarge = true } else { body += chunk.readableBytesView }
        case .end:
            guard let head else { return }
            requests.append((head, body, tooLarge))
            self.head = nil
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func controlAPIFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let collector = RequestCollector()
    let channel = EmbeddedChannel()
    do {
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
        try channel.pipeline.syncOperations.addHandler(collector)
    } catch {
        invariant(false, "cannot build the pipeline: \(error)")
    }
    _ = try? channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    _ = try? channel.writeInbound(ByteBuffer(bytes: UnsafeRawBufferPointer(start: data, count: size)))
    _ = try? channel.finish()

    for request in collector.requests {
        invariant(request.body.count <= ControlAPI.maxBodyBytes, "a body of \(request.body.count) bytes was kept")
        switch ControlAPI.route(method: request.head.method.rawValue, target: request.head.uri) {
        case .failure(let failure):
            let response = failure.response
            invariant(response.status == 404 || response.status == 405, "routing answered \(response.status)")
            checkErrorBody(response)
            if response.status == 405 { invariant(response.headers.contains { $0.0 == "Allow" }, "a 405 without Allow") }
        case .success(let route):
            let path = request.head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            invariant(route.method == request.head.method.rawValue && route.path == path,
                      "\(request.head.method) \(request.head.uri) routed to \(route.method) \(route.path)")
            let body = Data(request.body)
            switch route.operation {
            case .startScan: checkBody(ScanRequestJSON.self, body)
            case .startRecording: checkBody(RecordingRequestJSON.self, body)
            default: break
            }
        }
    }
    return 0
}

func checkBody<T: RequestBodyJSON>(_ type: T.Type, _ body: Data) {
    switch ControlAPI.decode(type, body) {
    case .success(let value):
        let encoded = APICoding.encode(value)
        let again = try? APICoding.decoder().decode(type, from: encoded)
        invariant(again == value, "a request body does not round-trip: \(value)")
    case .failure(let failure):
        invariant(failure.response.status == 400, "a bad body answered \(failure.response.status)")
        checkErrorBody(failure.response)
    }
}

func checkErrorBody(_ response: ControlAPI.Response) {
    let error = try? APICoding.decoder().decode(ErrorJSON.self, from: response.body)
    invariant(error != nil && !error!.error.isEmpty && !error!.code.isEmpty, "an error answer that is not the API's error JSON")
}

@_cdecl("ControlAPIFuzz_main")
func ControlAPIFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, controlAPIFuzz)
}
