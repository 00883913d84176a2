import Foundation

/// Amazon API Gateway REST execution logs: `(requestId) message` lines, one request's lines grouped
/// into one record. The lines of concurrent requests interleave, so records are keyed by request id.
public struct APIGatewayExecutionImporter: Importer {
    public init() {}

    public let id = "apigateway-execution"
    /// Delivered by API Gateway to CloudWatch Logs, so a file of it is an export: an unterminated last line is read as it is.
    public var writtenLive: Bool { false }
    public let title = "Amazon API Gateway REST execution log"
    public let layer = Layer.apigateway
    public let documentation = "https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html"

    public let samples = [
        FormatSample(fileName: "API-Gateway-Execution-Logs_uwe3g5jm54-Prod.log", lines: [
            "(286364ab-3a83-11e9-8dc8-db3cf4c83204) Extended Request Id: Vwc2MGFUrPEFV_g=",
            "(286364ab-3a83-11e9-8dc8-db3cf4c83204) Starting execution for request: 286364ab-3a83-11e9-8dc8-db3cf4c83204",
            "(286364ab-3a83-11e9-8dc8-db3cf4c83204) HTTP Method: GET, Resource Path: /echo",
            "(286364ab-3a83-11e9-8dc8-db3cf4c83204) Method request headers: {Accept=application/json, X-Amzn-Trace-Id=Root=1-5c7674f4-a3491d0a9c8012c191821b83, X-Forwarded-For=62.254.81.74, 52.46.38.85, CloudFront-Is-Desktop-Viewer=true}",
            "(286364ab-3a83-11e9-8dc8-db3cf4c83204) Endpoint request URI: https://lambda.eu-west-2.amazonaws.com/2015-03-31/functions/arn:aws:lambda:eu-west-2:958845080241:function:log-test-1-EchoFunction-175HKORAF18IO/invocations",
            "(4f3e3b0f-39db-11e9-9c2e-5bd7c2de5998) Key throttle limit exceeded for RestApi uwe3g5jm54, Stage Prod, Resource k0w8mc, HttpMethod POST. Limit: 1.00 Burst: 1",
            "(4f3e3b0f-39db-11e9-9c2e-5bd7c2de5998) Method completed with status: 429",
            "(286364ab-3a83-11e9-8dc8-db3cf4c83204) Received response. Integration latency: 11029 ms",
            "(286364ab-3a83-11e9-8dc8-db3cf4c83204) Lambda execution failed with status 200 due to customer function error: 2019-02-27T11:31:11.456Z 71952965-d5cc-4974-ae08-6e2138b2275c Task timed out after 10.00 seconds. Lambda request id: 71952965-d5cc-4974-ae08-6e2138b2275c",
            "(286364ab-3a83-11e9-8dc8-db3cf4c83204) Method completed with status: 502",
            "(286364ab-3a83-11e9-8dc8-db3cf4c83204) AWS Integration Endpoint RequestId : 71952965-d5cc-4974-ae08-6e2138b2275c",
            "(286364ab-3a83-11e9-8dc8-db3cf4c83204) X-ray Tracing ID : 1-5c7674f4-a3491d0a9c8012c191821b83",
        ]),
    ]

    public let fieldNotes = """
        One event per request id (kind `log`, all its lines in `raw`). The `(id)` prefix → `request_id`; \
        `Extended Request Id:` → `extra.extended_request_id`; `HTTP Method: M, Resource Path: P` → `method`, \
        `path`; `Method completed with status: N` → `status`; `Integration latency: N ms` → `duration` and \
        `extra.integration_latency_ms`; `Execution failed due to …`, `Lambda execution failed …`, `… throttle \
        limit exceeded …`, `Gateway response type: …` → `error` (first one wins) and `level` ERROR; \
        `Lambda request id:` / `AWS Integration Endpoint RequestId :` → `extra.lambda_request_id` / \
        `extra.integration_request_id`; `X-ray Tracing ID :` or the `X-Amzn-Trace-Id` in `Method request \
        headers` → `trace_id`; its `X-Forwarded-For` → `forwarded_for`, its first hop → `client_ip` (when an IP address; else `extra.forwarded_for_first_hop_text`); `Endpoint request URI:` → \
        `extra.endpoint_uri`. Lines carry no time: a CloudWatch wrapper supplies the first line's. Unprefixed \
        lines continue the previous request's message (multi-line bodies).
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        var hits = 0
        for line in lines where APIGatewayExecutionParser.split(line) != nil { hits += 1 }
        return Double(hits) / Double(max(lines.count, 1))
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser { APIGatewayExecutionParser() }
}

struct APIGatewayExecutionParser: RecordParser {
    /// `(id) message` → (id, message).
    static func split(_ line: String) -> (id: Substring, message: Substring)? {
        guard line.hasPrefix("("), let close = line.firstIndex(of: ")") else { return nil }
        let id = line[line.index(after: line.startIndex)..<close]
        guard id.count >= 8, id.count <= 64, id.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "=" }) else { return nil }
        var message = line[line.index(after: close)...]
        if message.first == " " { message = message.dropFirst() }
        return (id, message)
    }

    private struct Pending {
        var event: Event
        var lines: [[UInt8]]
        var order: Int
        var completed = false
    }

    private var open: [String: Pending] = [:]
    private var lastID: String?
    private var counter = 0
    /// Bounds memory on long streams: requests whose end never arrives are flushed when this many are open.
    static let maxOpen = 2000

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if line.isEmpty { return }
        let text = line.text
        guard let (idPart, messagePart) = Self.split(text) else {
            // A multi-line message body (a payload logged across lines) continues the last request.
            if let lastID, var p = open[lastID] {
                p.lines.append(line.copyBytes())
                p.event.lineEnd = line.number
                open[lastID] = p
                return
            }
            if line.isComment { return sink.rejectComment(line, notA: "an execution-log line") }
            return sink.reject(line, "not an execution-log line: expected '(requestId) message'")
        }
        let id = String(idPart)
        let message = String(messagePart)
        if open[id]?.completed == true, message.hasPrefix("Extended Request Id:") || message.hasPrefix("Starting execution") {
            // The same id reused by a new request (clients may set x-amzn-RequestId).
            flush(id, into: &sink)
        }
        var p = open[id] ?? {
            counter += 1
            var e = Event(time: nil, layer: .apigateway, kind: .log, line: line.number, raw: [])
            e.requestID = id
            return Pending(event: e, lines: [], order: counter)
        }()
        p.lines.append(line.copyBytes())
        p.event.lineEnd = line.number
        Self.apply(message, to: &p)
        open[id] = p
        lastID = id
        if p.completed, message.hasPrefix("X-ray Tracing ID") { flush(id, into: &sink) }
        if open.count > Self.maxOpen { flushOldest(into: &sink) }
    }

    mutating func finish(into sink: inout RecordSink) {
        for (id, _) in open.sorted(by: { $0.value.order < $1.value.order }) { flush(id, into: &sink) }
    }

    private mutating func flush(_ id: String, into sink: inout RecordSink) {
        guard var p = open.removeValue(forKey: id) else { return }
        p.event.raw = Array(p.lines.joined(separator: [0x0A]))
        if lastID == id { lastID = nil }
        if p.event.extra["forwarded_for_first_hop_text"] != nil {
            sink.note(IPAddressText.note(field: "the first X-Forwarded-For hop of Method request headers", key: "forwarded_for_first_hop_text"))
        }
        sink.emit(p.event)
    }

    private mutating func flushOldest(into sink: inout RecordSink) {
        let completed = open.filter { $0.value.completed }.sorted { $0.value.order < $1.value.order }.map(\.key)
        let victims = completed.isEmpty ? open.sorted { $0.value.order < $1.value.order }.prefix(Self.maxOpen / 4).map(\.key) : completed
        for id in victims { flush(id, into: &sink) }
    }

    private static func after(_ label: String, in message: String) -> String? {
        guard let r = message.range(of: label) else { return nil }
        let v = message[r.upperBound...].trimmingCharacters(in: .whitespaces)
        return v.isEmpty ? nil : v
    }

    private static func setError(_ text: String, _ p: inout Pending) {
        if p.event.error == nil { p.event.error = text }
        p.event.level = "ERROR"
    }

    private static func apply(_ m: String, to p: inout Pending) {
        if let v = after("Extended Request Id:", in: m), m.hasPrefix("Extended Request Id:") {
            p.event.extra["extended_request_id"] = v
        } else if m.hasPrefix("HTTP Method:") {
            let parts = m.dropFirst("HTTP Method:".count).components(separatedBy: ", Resource Path:")
            let method = parts[0].trimmingCharacters(in: .whitespaces)
            if !method.isEmpty { p.event.method = method }
            if parts.count > 1 {
                let path = parts[1].trimmingCharacters(in: .whitespaces)
                if !path.isEmpty { p.event.path = path }
            }
        } else if m.hasPrefix("Method completed with status:") {
            if let v = after("Method completed with status:", in: m), let status = Int(v.prefix(3)) { p.event.status = status }
            p.completed = true
        } else if m.contains("Integration latency:") {
            if let v = after("Integration latency:", in: m), let ms = Int64(v.split(separator: " ").first ?? ""), ms >= 0, ms < 1 << 40 {
                p.event.duration = ms * 1000
                p.event.extra["integration_latency_ms"] = String(ms)
            }
        } else if m.hasPrefix("Execution failed") || m.hasPrefix("Lambda execution failed") || m.contains("throttle limit exceeded")
                    || m.hasPrefix("Lambda invocation failed") || m.hasPrefix("Endpoint request timed out")
                    || m.hasPrefix("Authorizer error") || m.hasPrefix("Unauthorized request") {
            setError(m, &p)
            if let r = m.range(of: "Lambda request id:") {
                let id = m[r.upperBound...].trimmingCharacters(in: .whitespaces)
                if !id.isEmpty { p.event.extra["lambda_request_id"] = id }
            }
        } else if m.hasPrefix("Gateway response type:") {
            p.event.extra["gateway_response"] = String(m.dropFirst("Gateway response type:".count)).trimmingCharacters(in: .whitespaces)
            if let r = m.range(of: "with status code:"), p.event.status == nil,
               let status = Int(m[r.upperBound...].trimmingCharacters(in: .whitespaces).prefix(3)) {
                p.event.status = status
            }
            setError(m, &p)
        } else if m.hasPrefix("AWS Integration Endpoint RequestId") {
            if let r = m.range(of: ":") {
                let id = m[r.upperBound...].trimmingCharacters(in: .whitespaces)
                if !id.isEmpty {
                    p.event.extra["integration_request_id"] = id
                    if p.event.extra["endpoint_uri"]?.contains("lambda") ?? true, p.event.extra["lambda_request_id"] == nil {
                        p.event.extra["lambda_request_id"] = id
                    }
                }
            }
        } else if m.hasPrefix("X-ray Tracing ID") {
            if let r = m.range(of: ":") {
                let id = m[r.upperBound...].trimmingCharacters(in: .whitespaces)
                if !id.isEmpty { p.event.traceID = AWSTrace.root(id) }
            }
        } else if m.hasPrefix("Endpoint request URI:") {
            if let v = after("Endpoint request URI:", in: m) { p.event.extra["endpoint_uri"] = v }
        } else if m.hasPrefix("Method request headers:") {
            if p.event.traceID == nil, let v = header("X-Amzn-Trace-Id", in: m) { p.event.traceID = AWSTrace.root(v) }
            if let xff = header("X-Forwarded-For", in: m) {
                p.event.forwardedFor = xff
                // The first hop, when it is an address (the header is kept whole in forwarded_for).
                let first = xff.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces) }
                p.event.clientIP = nil
                p.event.setAddress(.client, first, elseKeep: "forwarded_for_first_hop_text")
            }
            if let ua = header("User-Agent", in: m) { p.event.userAgent = ua }
            if let host = header("Host", in: m) { p.event.host = host }
        }
    }

    /// A header's value in the `{Name=value, Name=value}` dump. X-Forwarded-For holds `, ` itself,
    /// so a value runs to the next `, Name=` or the closing brace.
    static func header(_ name: String, in message: String) -> String? {
        let lower = message.lowercased()
        let needle = name.lowercased() + "="
        var search = lower.startIndex
        while let r = lower.range(of: needle, range: search..<lower.endIndex) {
            let before = r.lowerBound == lower.startIndex ? nil : lower[lower.index(before: r.lowerBound)]
            if before == nil || before == "{" || before == " " {
                let startOffset = lower.distance(from: lower.startIndex, to: r.upperBound)
                let rest = message.utf8.dropFirst(startOffset)
                let text = String(decoding: rest, as: UTF8.self)
                var end = text.endIndex
                if let brace = text.lastIndex(of: "}") { end = brace }
                if let next = text.range(of: #", [A-Za-z0-9-]+="#, options: .regularExpression), next.lowerBound < end { end = next.lowerBound }
                let v = text[..<end].trimmingCharacters(in: .whitespaces)
                return v.isEmpty ? nil : v
            }
            search = r.upperBound
        }
        return nil
    }
}
