import Foundation

/// AWS Application Load Balancer access logs (space-separated, some fields quoted). Fields are read
/// by position up to `conn_trace_id`; newer trailing fields are ignored as AWS asks.
public struct AWSALBImporter: Importer {
    public init() {}

    public let id = "alb"
    /// S3 objects, written whole: an unterminated last line is read as it is.
    public var writtenLive: Bool { false }
    public let title = "AWS Application Load Balancer access log"
    public let layer = Layer.alb
    public let documentation = "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-access-logs.html"

    public let samples = [
        FormatSample(fileName: "123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.50dc6c495c0c9188_20180702T2225Z_192.168.131.39_2j4gl2fo.log", lines: [
            #"https 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.086 0.048 0.037 200 200 0 57 "GET https://www.example.com:443/ HTTP/1.1" "curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337281-1d84f3d73c47ec4e58577259" "www.example.com" "arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012" 1 2018-07-02T22:22:48.364000Z "authenticate,forward" "-" "-" "10.0.0.1:80" "200" "-" "-""#,
            #"http 2018-11-30T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 - 0.000 0.001 0.000 502 - 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337364-23a8c76965a2ef7629b185e3" "-" "-" 0 2018-11-30T22:22:48.364000Z "forward" "-" "LambdaInvalidResponse" "-" "-" "-" "-""#,
            #"http 2018-11-30T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 - 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337364-23a8c76965a2ef7629b185e3" "-" "-" 0 2018-11-30T22:22:48.364000Z "forward" "-" "-" "-" "-" "-" "-" TID_dc57cebed65b444ebc8177bb698fe166"#,
        ]),
    ]

    public let fieldNotes = """
        `time` (when the ALB sent the response) → `time`; `request_creation_time` → `extra.request_creation_time` \
        (and µs in `extra.request_creation_us`); `client:port` → `client_ip` (+ `extra.client_port`; a client that is no IP address, as in masked samples, → `extra.client_text`); \
        `target:port` → `extra.target`; the three processing times → `extra.*_processing_time` and their sum → `duration`; \
        when one is `-1` (the target was not reached or never answered), `duration` is `time` − `request_creation_time`, the time the client waited; `elb_status_code` → `status` and `elb_status`; `target_status_code` → \
        `target_status` (`-`: no target answered); `received_bytes` → `extra.received_bytes`, `sent_bytes` → \
        `bytes`; `"request"` → `method` (its start), `extra.protocol` (its end, `HTTP/x.y`), and the URL whole in between, spaces \
        and all → `host`, `path`, `query` (a malformed request is kept in `extra.request`); \
        `user_agent` → `user_agent`; `trace_id` Root (without `Root=`) → `trace_id`; `error_reason` → `error`; \
        `extra`: `type`, `elb`, `ssl_cipher`, `ssl_protocol`, `target_group_arn`, `domain`, `chosen_cert_arn`, \
        `matched_rule_priority`, `actions_executed`, `redirect_url`, `error_reason`, `target_port_list`, \
        `target_status_code_list`, `classification`, `classification_reason`, `conn_trace_id`. NLB access \
        lines and ALB connection-log lines in an ALB access-log file are rejected with that reason (files of \
        them are read by the `nlb` and `alb-connection` importers).
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        var alb = 0, family = 0
        for line in lines {
            switch Line.with(line, number: 1, { ALBLineShape.classify($0.bytes) }) {
            case .alb: alb += 1
            case .nlb, .connection, .comment: family += 1
            case .classic, .other: break
            }
        }
        guard alb > 0 else { return 0 }
        return Double(alb + family) / Double(lines.count)
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser { AWSALBParser() }
}

/// What kind of ELB-family line this is, from its first fields.
enum ALBLineShape {
    case alb, classic, nlb, connection, comment, other

    static let albTypes: Set<String> = ["http", "https", "h2", "grpcs", "ws", "wss"]
    static let albTypeBytes: [[UInt8]] = albTypes.map { Array($0.utf8) }

    static func classify(_ b: UnsafeBufferPointer<UInt8>) -> ALBLineShape {
        if b.first == 0x23 { return .comment }
        var s = ByteScanner(b)
        let firstBytes = s.token()
        let second = s.token()
        // The hot path: compare the type's bytes without building a String.
        if firstBytes.count <= 5, albTypeBytes.contains(where: { $0.elementsEqual(firstBytes) }) {
            return AWSTime.iso8601(second) != nil ? .alb : .other
        }
        let first = ByteScanner.string(firstBytes)
        if first == "tls", ByteScanner.string(second).hasPrefix("2.") || ByteScanner.string(second).hasPrefix("1.") { return .nlb }
        let firstIsTime = Line.with(first, number: 0) { AWSTime.iso8601($0.bytes) } != nil
        guard firstIsTime else { return .other }
        let third = ByteScanner.string(s.token())
        if !third.isEmpty, third.allSatisfy(\.isNumber) { return .connection }
        if isAddressWithPort(third) { return .classic }
        return .other
    }
}

/// `192.0.2.1:443`, `[2001:db8::1]:443` or `2001:db8::1:443`.
private func isAddressWithPort(_ text: String) -> Bool {
    guard let colon = text.lastIndex(of: ":"), colon != text.startIndex else { return false }
    let port = text[text.index(after: colon)...]
    let host = text[..<colon]
    return !port.isEmpty && port.allSatisfy(\.isNumber)
        && host.allSatisfy { $0.isHexDigit || $0 == "." || $0 == ":" || $0 == "[" || $0 == "]" || $0 == "x" || $0 == "X" }
}

/// One field of a space-separated ELB line and whether it was quoted.
struct ELBField {
    var bytes: UnsafeBufferPointer<UInt8>
    var quoted: Bool
    var text: String { ByteScanner.string(bytes) }
    var value: String? { ByteScanner.optionalString(bytes) }
}

enum ELBFields {
    /// The run of fields both load-balancer formats share, starting at `from`: load balancer name,
    /// client:port, target:port, the three processing times, the LB's and the target's status,
    /// received and sent bytes. (The ALB log has `type` before them, the classic log does not.)
    static func applyCore(_ f: [ELBField], from k: Int, targetStatusName: String, processingNames: [String],
                          into e: inout Event) -> Result<Void, ImporterError> {
        e.extra["elb"] = f[k].text
        let (client, port) = hostPort(f[k + 1].text)
        // A masked sample (`x.0.0.0:50337`) or a hostile line names no address: kept in extra.
        e.setAddress(.client, client, elseKeep: "client_text")
        if let port { e.extra["client_port"] = port }
        if let target = f[k + 2].value { e.extra["target"] = target }
        if case .failure(let why) = processingTimes(Array(f[(k + 3)...(k + 5)]), names: processingNames, into: &e) { return .failure(why) }
        switch status(f[k + 6], "elb_status_code") {
        case .failure(let why): return .failure(why)
        case .success(let v): e.status = v; e.elbStatus = v
        }
        switch status(f[k + 7], targetStatusName) {
        case .failure(let why): return .failure(why)
        case .success(let v): e.targetStatus = v
        }
        if let received = ByteScanner.int(f[k + 8].bytes) { e.extra["received_bytes"] = String(received) }
        e.bytes = ByteScanner.int(f[k + 9].bytes)
        return .success(())
    }

    /// Splits a line into fields; nil with the reason for an unterminated quote.
    static func split(_ b: UnsafeBufferPointer<UInt8>) -> Result<[ELBField], ImporterError> {
        var s = ByteScanner(b)
        var out: [ELBField] = []
        while true {
            s.skipSpaces()
            if s.atEnd { break }
            if s.peek() == 0x22 {
                guard let q = s.quoted() else { return .failure(ImporterError("unterminated quoted field \(out.count + 1)")) }
                out.append(ELBField(bytes: q, quoted: true))
                if let next = s.peek(), next != 0x20, next != 0x09 {
                    return .failure(ImporterError("quoted field \(out.count) runs into the next one: corrupt or spliced line"))
                }
            } else {
                var i = s.pos
                while i < b.count, b[i] != 0x20, b[i] != 0x09 { i += 1 }
                out.append(ELBField(bytes: UnsafeBufferPointer(rebasing: b[s.pos..<i]), quoted: false))
                s.pos = i
            }
        }
        return .success(out)
    }

    /// `ip:port` → (ip, port); IPv6 addresses keep their colons.
    static func hostPort(_ text: String) -> (String, String?) {
        guard let colon = text.lastIndex(of: ":") else { return (text, nil) }
        let port = text[text.index(after: colon)...]
        guard !port.isEmpty, port.allSatisfy(\.isNumber) else { return (text, nil) }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, String(port))
    }

    /// The quoted request line → method/host/path/query; `- - - ` and other malformed requests are kept whole.
    static func applyRequest(_ field: ELBField, to e: inout Event) {
        let text = field.text
        if text.hasPrefix("- ") || text == "-" || text.isEmpty {
            if let v = field.value { e.extra["request"] = v }
            return
        }
        splitRequest(field.bytes, into: &e)
    }

    static func processingTimes(_ fields: [ELBField], names: [String], into e: inout Event) -> Result<Void, ImporterError> {
        var total: Int64 = 0, any = false, unfinished = false
        for (field, name) in zip(fields, names) {
            let text = field.text
            e.extra[name] = text
            // -1: the load balancer could not dispatch the request (or the target closed the
            // connection first). Re-serialised logs write it with decimals ("-1.000"): the same value.
            // The sum of the others is then not the time the client waited (a target that never
            // answered held it for the whole idle timeout): left to `request_creation_time`.
            if isMinusOne(text) { unfinished = true; continue }
            if text == "-" { continue }
            // secondsToMicros accumulates in Int64: a hostile 30-digit number must not reach it.
            guard field.bytes.count <= 15, let us = ByteScanner.secondsToMicros(field.bytes), us >= 0 else {
                return .failure(ImporterError("\(name) '\(text.prefix(40))' is not a number of seconds"))
            }
            total += us
            any = true
        }
        if any && !unfinished { e.duration = total }
        return .success(())
    }

    /// "-1", "-1.0", "-1.000": no time, as the documentation writes "-1".
    static func isMinusOne(_ text: String) -> Bool {
        guard text.hasPrefix("-1") else { return false }
        let rest = text.dropFirst(2)
        return rest.isEmpty || (rest.first == "." && rest.count <= 7 && rest.dropFirst().allSatisfy { $0 == "0" })
    }

    static func status(_ field: ELBField, _ name: String) -> Result<Int?, ImporterError> {
        let text = field.text
        if text == "-" { return .success(nil) }
        guard text.count == 3, let v = Int(text) else { return .failure(ImporterError("\(name) '\(text.prefix(40))' is not a status code")) }
        return .success(v)
    }
}

struct AWSALBParser: RecordParser {
    static let minimumFields = 18
    static let processingNames = ["request_processing_time", "target_processing_time", "response_processing_time"]

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if line.isEmpty { return }
        switch ALBLineShape.classify(line.bytes) {
        case .comment: return sink.rejectComment(line, notA: "an ALB access-log record")
        case .nlb: return sink.reject(line, "Network Load Balancer (TLS listener) access-log line, not an ALB access-log line; a file of them is read as --format nlb")
        case .connection: return sink.reject(line, "ALB connection-log line (TLS handshake record), not an access-log line; a file of them is read as --format alb-connection")
        case .classic: return sink.reject(line, "Classic Load Balancer access-log line; read such files with --format elb-classic")
        case .other: return sink.reject(line, "not an ALB access-log line: expected a type (http, https, h2, grpcs, ws, wss) and an ISO-8601 time")
        case .alb: break
        }
        switch Self.parse(line) {
        case .success(let e):
            if e.extra["client_text"] != nil { sink.note(IPAddressText.note(field: "client:port", key: "client_text")) }
            sink.emit(e)
        case .failure(let why): sink.reject(line, why.description)
        }
    }

    mutating func finish(into sink: inout RecordSink) {}

    static func parse(_ line: Line) -> Result<Event, ImporterError> {
        let f: [ELBField]
        switch ELBFields.split(line.bytes) {
        case .failure(let why): return .failure(why)
        case .success(let v): f = v
        }
        guard f.count >= minimumFields else {
            return .failure(ImporterError("only \(f.count) fields; an ALB access-log line has at least \(minimumFields) (type … trace_id)"))
        }
        // Quoted fields must be quoted and plain ones plain: a spliced line shifts them.
        for (index, name) in quotedFields where index < f.count && !f[index].quoted {
            return .failure(ImporterError("field \(index + 1) (\(name)) is not quoted: corrupt or spliced line"))
        }
        for index in plainFields where index < f.count && f[index].quoted {
            return .failure(ImporterError("field \(index + 1) should not be quoted: corrupt or spliced line"))
        }
        return build(f, line: line)
    }

    /// Positions (0-based) of the fields AWS writes in double quotes, and of those it never quotes.
    static let quotedFields: [(Int, String)] = [(12, "request"), (13, "user_agent"), (17, "trace_id"), (18, "domain_name"),
                                                (19, "chosen_cert_arn"), (22, "actions_executed"), (23, "redirect_url"),
                                                (24, "error_reason"), (27, "classification"), (28, "classification_reason")]
    static let plainFields = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 15, 16, 20, 21]

    private static func build(_ f: [ELBField], line: Line) -> Result<Event, ImporterError> {
        guard let time = AWSTime.iso8601(f[1].bytes)?.micros else { return .failure(ImporterError("time is not ISO-8601")) }
        var e = Event(time: time, layer: .alb, kind: .access, line: line.number, raw: line.copyBytes())
        e.extra.reserveCapacity(24)
        e.extra["type"] = f[0].text
        if case .failure(let why) = ELBFields.applyCore(f, from: 2, targetStatusName: "target_status_code",
                                                         processingNames: processingNames, into: &e) { return .failure(why) }
        ELBFields.applyRequest(f[12], to: &e)
        e.userAgent = f[13].value
        if let v = f[14].value { e.extra["ssl_cipher"] = v }
        if let v = f[15].value { e.extra["ssl_protocol"] = v }
        if let v = f[16].value { e.extra["target_group_arn"] = v }
        if let trace = f[17].value { e.traceID = AWSTrace.root(trace); e.extra["trace_header"] = trace }
        func optional(_ i: Int, _ key: String) { if i < f.count, let v = f[i].value { e.extra[key] = v } }
        optional(18, "domain")
        optional(19, "chosen_cert_arn")
        optional(20, "matched_rule_priority")
        if f.count > 21, let creation = f[21].value {
            e.extra["request_creation_time"] = creation
            guard let us = AWSTime.iso8601(f[21].bytes)?.micros else {
                return .failure(ImporterError("request_creation_time '\(creation.prefix(40))' is not ISO-8601"))
            }
            e.extra["request_creation_us"] = String(us)
            // A processing time of -1: the client waited from the request's arrival to the response.
            if e.duration == nil, let t = e.time, t >= us, processingNames.contains(where: { ELBFields.isMinusOne(e.extra[$0] ?? "") }) {
                e.duration = t - us
            }
        }
        optional(22, "actions_executed")
        optional(23, "redirect_url")
        optional(24, "error_reason")
        e.error = e.extra["error_reason"]
        // The lists hold one item today, the same as target:port and target_status_code: keep them only when they differ.
        if f.count > 25, let v = f[25].value, v != e.extra["target"] { e.extra["target_port_list"] = v }
        if f.count > 26, let v = f[26].value, v != e.targetStatus.map(String.init) { e.extra["target_status_code_list"] = v }
        optional(27, "classification")
        optional(28, "classification_reason")
        if f.count > 29, f[29].text.hasPrefix("TID_") { e.extra["conn_trace_id"] = f[29].text }
        return .success(e)
    }
}

/// Classic Load Balancer (ELB v1) access logs.
public struct AWSClassicELBImporter: Importer {
    public init() {}

    public let id = "elb-classic"
    /// S3 objects, written whole: an unterminated last line is read as it is.
    public var writtenLive: Bool { false }
    public let title = "AWS Classic Load Balancer access log"
    public let layer = Layer.alb
    public let documentation = "https://docs.aws.amazon.com/elasticloadbalancing/latest/classic/access-log-collection.html"

    public let samples = [
        FormatSample(fileName: "123456789012_elasticloadbalancing_us-west-2_my-loadbalancer_20140215T2340Z_172.160.001.192_20sg8hgm.log", lines: [
            #"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -"#,
            #"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000086 0.001048 0.001337 200 200 0 57 "GET https://www.example.com:443/ HTTP/1.1" "curl/7.38.0" DHE-RSA-AES128-SHA TLSv1.2"#,
            #"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.001069 0.000028 0.000041 - - 82 305 "- - - " "-" - -"#,
        ]),
    ]

    public let fieldNotes = """
        `timestamp` (response time) → `time`; `client:port` → `client_ip` (no IP address → `extra.client_text`); `backend:port` → `extra.target`; the \
        three processing times → `extra.*_processing_time`, their sum → `duration` (empty when one is `-1`: the line has no creation time to measure the wait from); \
        `elb_status_code` → `status`, `elb_status`; `backend_status_code` → `target_status`; `sent_bytes` → \
        `bytes`; `"request"` → `method`, `host`, `path`, `query`; `"user_agent"` → `user_agent`; `ssl_cipher`, \
        `ssl_protocol`, `elb`, `received_bytes` → `extra`.
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        let hits = lines.filter { line in Line.with(line, number: 1) { ALBLineShape.classify($0.bytes) } == .classic }.count
        return Double(hits) / Double(max(lines.count, 1))
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser { AWSClassicELBParser() }
}

struct AWSClassicELBParser: RecordParser {
    static let processingNames = ["request_processing_time", "backend_processing_time", "response_processing_time"]

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if line.isEmpty { return }
        if line.isComment { return sink.rejectComment(line, notA: "a Classic Load Balancer access-log record") }
        switch Self.parse(line) {
        case .success(let e):
            if e.extra["client_text"] != nil { sink.note(IPAddressText.note(field: "client:port", key: "client_text")) }
            sink.emit(e)
        case .failure(let why): sink.reject(line, why.description)
        }
    }

    mutating func finish(into sink: inout RecordSink) {}

    static func parse(_ line: Line) -> Result<Event, ImporterError> {
        let f: [ELBField]
        switch ELBFields.split(line.bytes) {
        case .failure(let why): return .failure(why)
        case .success(let v): f = v
        }
        guard f.count >= 11 else { return .failure(ImporterError("only \(f.count) fields; a Classic Load Balancer line has at least 11")) }
        guard let time = AWSTime.iso8601(f[0].bytes)?.micros else { return .failure(ImporterError("timestamp is not ISO-8601")) }
        var e = Event(time: time, layer: .alb, kind: .access, line: line.number, raw: line.copyBytes())
        if case .failure(let why) = ELBFields.applyCore(f, from: 1, targetStatusName: "backend_status_code",
                                                         processingNames: processingNames, into: &e) { return .failure(why) }
        if f.count > 11 {
            guard f[11].quoted else { return .failure(ImporterError("request field is not quoted")) }
            ELBFields.applyRequest(f[11], to: &e)
        }
        if f.count > 12 { e.userAgent = f[12].value }
        if f.count > 13, let v = f[13].value { e.extra["ssl_cipher"] = v }
        if f.count > 14, let v = f[14].value { e.extra["ssl_protocol"] = v }
        return .success(e)
    }
}
