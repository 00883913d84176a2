import Foundation
#if canImport(Glibc)
import Glibc
private let sysConnect = Glibc.connect
private let sysSend = Glibc.send
private let noSignal = Int32(MSG_NOSIGNAL)
#elseif canImport(Darwin)
import Darwin
private let sysConnect = Darwin.connect
private let sysSend = Darwin.send
private let noSignal: Int32 = 0
#endif

/// One HTTP/1.1 POST over a plain socket whose response body is handed to the caller in chunks as
/// it arrives: the window fetch reads a response of any size with a fixed buffer. The socket is
/// read only when the caller has consumed the previous chunk, so TCP flow control holds the server
/// back while the working set is written (URLSession on Linux hands every received chunk to its
/// delegate queue at once, buffering a whole window in memory when the reader is slower).
///
/// Only what ClickHouse's HTTP interface answers: a status line, headers, then a body that is
/// `chunked` or has a `Content-Length` or ends when the connection does. `Connection: close`, one
/// request per connection. No TLS (the ClickHouse store is plain HTTP, loopback or a trusted network).
struct HTTPStream {
    struct Failure: Error {
        enum Kind { case unresolved, refused, timedOut, dropped, protocolError }
        var kind: Kind
        var detail: String
        /// Whether the request may have reached the server.
        var sent: Bool
    }

    /// The response's status and, for a status other than 200, the start of its body.
    struct Outcome {
        var status: Int
        var errorBody: [UInt8]
    }

    let host: String
    let port: Int
    let timeout: TimeInterval

    /// POSTs `body` to `target` (path and query, already percent-encoded). With status 200, every
    /// piece of the body goes to `consume` in order; otherwise the body's first 4 KB are returned.
    func post(_ target: String, headers: [(String, String)], body: [UInt8],
              consume: (UnsafeRawBufferPointer) throws -> Void) throws -> Outcome {
        let fd = try connect()
        defer { close(fd) }
        var head = "POST \(target) HTTP/1.1\r\nHost: \(host.contains(":") ? "[\(host)]" : host):\(port)\r\n"
        head += "Content-Length: \(body.count)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        try send(fd, Array(head.utf8))
        try send(fd, body)

        var reader = Reader(fd: fd)
        // Status line and headers.
        let statusLine = try reader.line()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw Failure(kind: .protocolError, detail: "not an HTTP response", sent: true)
        }
        var chunked = false
        var length: Int?
        while true {
            let line = try reader.line()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if name == "transfer-encoding" { chunked = value.lowercased().contains("chunked") }
            if name == "content-length" { length = Int(value) }
        }
        var errorBody: [UInt8] = []
        try withoutActuallyEscaping(consume) { consume in
            let sink: (UnsafeRawBufferPointer) throws -> Void = status == 200 ? consume : { piece in
                if errorBody.count < 4096 { errorBody.append(contentsOf: piece.prefix(4096 - errorBody.count)) }
            }
            try readBody(&reader, chunked: chunked, length: length, sink)
        }
        return Outcome(status: status, errorBody: errorBody)
    }

    private func readBody(_ reader: inout Reader, chunked: Bool, length: Int?, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        if chunked {
            while true {
                let sizeLine = try reader.line()
                let hex = sizeLine.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
                guard let size = Int(hex, radix: 16), size >= 0 else {
                    throw Failure(kind: .protocolError, detail: "bad chunk size in the response", sent: true)
                }
                if size == 0 {
                    while try !reader.line().isEmpty {}  // trailers
                    break
                }
                try reader.body(size, sink)
                guard try reader.line().isEmpty else { throw Failure(kind: .protocolError, detail: "bad chunk end in the response", sent: true) }
            }
        } else if let length {
            try reader.body(length, sink)
        } else {
            try reader.rest(sink)
        }
    }

    private func connect() throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw Failure(kind: .unresolved, detail: "cannot resolve the host name", sent: false)
        }
        defer { freeaddrinfo(list) }
        var lastError: Int32 = ECONNREFUSED
        var info: UnsafeMutablePointer<addrinfo>? = first
        while let ai = info {
            info = ai.pointee.ai_next
            let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype, ai.pointee.ai_protocol)
            guard fd >= 0 else { lastError = errno; continue }
            var tv = timeval(tv_sec: Int(timeout), tv_usec: suseconds_t((timeout - timeout.rounded(.down)) * 1e6))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if sysConnect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 { return fd }
            lastError = errno
            close(fd)
        }
        if lastError == EINPROGRESS || lastError == EAGAIN || lastError == ETIMEDOUT {
            throw Failure(kind: .timedOut, detail: "connection timed out", sent: false)
        }
        throw Failure(kind: .refused, detail: String(cString: strerror(lastError)), sent: false)
    }

    private func send(_ fd: Int32, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = sysSend(fd, buffer.baseAddress! + offset, buffer.count - offset, noSignal)
                if n < 0 {
                    if errno == EINTR { continue }
                    let timedOut = errno == EAGAIN || errno == EWOULDBLOCK
                    throw Failure(kind: timedOut ? .timedOut : .dropped, detail: String(cString: strerror(errno)), sent: true)
                }
                offset += n
            }
        }
    }

    /// Buffered reads from the socket.
    private struct Reader {
        let fd: Int32
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        var start = 0
        var end = 0

        init(fd: Int32) { self.fd = fd }

        /// Reads more bytes into the buffer; false at the end of the stream.
        mutating func fill() throws -> Bool {
            if start == end { start = 0; end = 0 }
            if end == buffer.count {
                // Only a header line longer than the buffer gets here.
                guard start > 0 else { throw Failure(kind: .protocolError, detail: "response header line too long", sent: true) }
                buffer.withUnsafeMutableBytes { b in
                    _ = memmove(b.baseAddress!, b.baseAddress! + start, end - start)
                }
                end -= start
                start = 0
            }
            while true {
                let n = buffer.withUnsafeMutableBytes { b in recv(fd, b.baseAddress! + end, b.count - end, 0) }
                if n > 0 { end += n; return true }
                if n == 0 { return false }
                if errno == EINTR { continue }
                let timedOut = errno == EAGAIN || errno == EWOULDBLOCK
                throw Failure(kind: timedOut ? .timedOut : .dropped, detail: String(cString: strerror(errno)), sent: true)
            }
        }

        /// One CRLF-terminated line, without its end.
        mutating func line() throws -> String {
            while true {
                if let lf = buffer[start..<end].firstIndex(of: 0x0A) {
                    var last = lf
                    if last > start && buffer[last - 1] == 0x0D { last -= 1 }
                    let text = String(decoding: buffer[start..<last], as: UTF8.self)
                    start = lf + 1
                    return text
                }
                guard try fill() else { throw Failure(kind: .dropped, detail: "the server closed the connection mid-response", sent: true) }
            }
        }

        /// Exactly `count` body bytes, in pieces.
        mutating func body(_ count: Int, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
            var left = count
            while left > 0 {
                if start == end {
                    guard try fill() else { throw Failure(kind: .dropped, detail: "the server closed the connection mid-response", sent: true) }
                }
                let take = min(left, end - start)
                try buffer.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[start..<(start + take)])) }
                start += take
                left -= take
            }
        }

        /// Everything until the connection ends.
        mutating func rest(_ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
            while true {
                if start < end {
                    try buffer.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[start..<end])) }
                    start = end
                }
                guard try fill() else { return }
            }
        }
    }
}
