import Foundation
import SonoSystem
#if canImport(Glibc)
import Glibc
#endif

/// A small blocking HTTP/1.1 client for sonod's Unix control socket (one request per
/// connection). Foundation's URLSession cannot reach Unix sockets on Linux.
struct ControlClient {
    let socketPath: String

    struct Response {
        var status: Int
        var body: Data
    }

    enum ClientError: Error, CustomStringConvertible {
        case connect(String, Errno)
        case io(String)
        case protocolError(String)

        var description: String {
            switch self {
            case .connect(let path, let code):
                code == .noSuchFileOrDirectory ? "no control socket at \(path): is sonod running? (--socket or SONO_SOCKET picks another)"
                    : code == .permissionDenied ? "permission denied on \(path): join the socket's group (sono) or use sudo"
                    : "cannot connect to \(path): \(code)"
            case .io(let reason): "control socket: \(reason)"
            case .protocolError(let reason): "unexpected answer from sonod: \(reason)"
            }
        }
    }

    private func connectSocket() throws(ClientError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .io("socket(): \(Errno.current)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(socketPath.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw .io("socket path too long: \(socketPath)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes + [0]) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            let code = Errno.current
            close(fd)
            throw .connect(socketPath, code)
        }
        return fd
    }

    private func send(_ fd: Int32, method: String, path: String, body: Data?) throws(ClientError) {
        var request = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nUser-Agent: sonoctl\r\nConnection: close\r\n"
        if let body { request += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
        else if method == "POST" { request += "Content-Length: 0\r\n" }
        request += "\r\n"
        var data = Data(request.utf8)
        if let body { data.append(body) }
        var offset = 0
        while offset < data.count {
            let written = data.withUnsafeBytes { bytes -> Int in
                guard let base = bytes.baseAddress else { return -1 }
                return write(fd, base + offset, bytes.count - offset)
            }
            guard written > 0 else { throw .io("write: \(Errno.current)") }
            offset += written
        }
    }

    func request(_ method: String, _ path: String, body: Data? = nil) throws(ClientError) -> Response {
        let fd = try connectSocket()
        defer { close(fd) }
        try send(fd, method: method, path: path, body: body)
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count < 0 { throw .io("read: \(Errno.current)") }
            if count == 0 { break }
            received.append(contentsOf: buffer[0..<count])
        }
        guard let split = received.firstRange(of: Data("\r\n\r\n".utf8)) else { throw .protocolError("no HTTP header") }
        let head = String(decoding: received[..<split.lowerBound], as: UTF8.self)
        let parts = head.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else { throw .protocolError("bad status line '\(head.prefix(40))'") }
        return Response(status: status, body: Data(received[split.upperBound...]))
    }

    /// Reads server-sent events until the connection closes or `handler` returns false.
    func events(_ path: String, handler: (_ name: String, _ data: String) -> Bool) throws(ClientError) {
        let fd = try connectSocket()
        defer { close(fd) }
        try send(fd, method: "GET", path: path, body: nil)
        var pending = Data()
        var headerDone = false
        var chunked = false
        var text = ""
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { return }
            pending.append(contentsOf: buffer[0..<count])
            if !headerDone {
                guard let split = pending.firstRange(of: Data("\r\n\r\n".utf8)) else { continue }
                let head = String(decoding: pending[..<split.lowerBound], as: UTF8.self)
                guard head.hasPrefix("HTTP/1.1 200") else {
                    throw .protocolError(head.split(separator: "\r\n").first.map(String.init) ?? head)
                }
                chunked = head.lowercased().contains("transfer-encoding: chunked")
                pending = Data(pending[split.upperBound...])
                headerDone = true
            }
            // De-chunk what is complete.
            if chunked {
                while let lineEnd = pending.firstRange(of: Data("\r\n".utf8)) {
                    let sizeText = String(decoding: pending[..<lineEnd.lowerBound], as: UTF8.self)
                    guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16) else {
                        throw .protocolError("bad chunk size '\(sizeText)'")
                    }
                    if size == 0 { return }
                    let start = lineEnd.upperBound
                    guard pending.count >= start - pending.startIndex + size + 2 else { break }
                    text += String(decoding: pending[start..<(start + size)], as: UTF8.self)
                    pending = Data(pending[(start + size + 2)...])
                }
            } else {
                text += String(decoding: pending, as: UTF8.self)
                pending.removeAll()
            }
            while let end = text.range(of: "\n\n") {
                let block = text[..<end.lowerBound]
                text = String(text[end.upperBound...])
                var name = "message"
                var data: [String] = []
                for line in block.split(separator: "\n") {
                    if line.hasPrefix("event:") { name = line.dropFirst(6).trimmingCharacters(in: .whitespaces) }
                    else if line.hasPrefix("data:") { data.append(line.dropFirst(5).trimmingCharacters(in: .whitespaces)) }
                }
                if data.isEmpty { continue }  // a comment (keep-alive)
                if !handler(name, data.joined(separator: "\n")) { return }
            }
        }
    }
}
