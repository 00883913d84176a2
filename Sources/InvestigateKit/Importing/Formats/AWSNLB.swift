import Foundation

/// AWS Network Load Balancer access logs: one line per TLS connection on a TLS listener
/// (space-separated, 22 fields in version 2.0). The NLB speaks TCP/TLS, not HTTP: its records name
/// the client, the target and the TLS handshake, never a method, path or status.
///
/// Field list and the first sample: the NLB user guide, "Access log entries" (archived
/// `awsdocs/elb-network-load-balancers-user-guide` `doc_source/load-balancer-access-logs.md`); the
/// same 22 fields in the same order in peers' parsers (Athena's documented NLB table, the
/// `nlb_regex` of public Glue tables).
public struct AWSNLBImporter: Importer {
    public init() {}

    public let id = "nlb"
    /// S3 objects, written whole: an unterminated last line is read as it is.
    public var writtenLive: Bool { false }
    public let title = "AWS Network Load Balancer access log (TLS listeners)"
    public let layer = Layer.nlb
    public let documentation = "https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-access-logs.html"

    public let samples = [
        FormatSample(fileName: "123456789012_elasticloadbalancing_us-east-2_net.my-network-loadbalancer.c6e77e28c25b2234_20181220T0300Z_4c8a6f7d.log", lines: [
            "tls 2.0 2018-12-20T02:59:40 net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd 72.21.218.154:51341 172.100.100.185:443 5 2 98 246 - arn:aws:acm:us-east-2:671290407336:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99 - ECDHE-RSA-AES128-SHA tlsv12 - my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com - - - 2018-12-20T02:59:30",
            #"tls 2.0 2020-04-01T08:51:42 net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd 72.21.218.154:51341 172.100.100.185:443 5 2 98 246 - arn:aws:acm:us-east-2:671290407336:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99 - ECDHE-RSA-AES128-SHA tlsv12 - my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com h2 h2 "h2","http/1.1" 2020-04-01T08:51:20"#,
        ]),
    ]

    public let fieldNotes = """
        `time` (the end of the TLS connection) → `time`; `tls_connection_creation_time` → \
        `extra.tls_connection_creation_time` (µs in `extra.connection_creation_us`); `client:port` → `client_ip` \
        (+ `extra.client_port`; no IP address → `extra.client_text`); `destination:port` → `extra.target`; \
        `connection_time` (ms) → `duration`; `sent_bytes` → `bytes`; `domain_name` (SNI) → `host`; `incoming_tls_alert` \
        → `error` when set. `extra`: `type`, `version`, `elb`, `listener`, `connection_time`, `tls_handshake_time`, \
        `received_bytes`, `incoming_tls_alert`, `chosen_cert_arn`, `chosen_cert_serial`, `tls_cipher`, \
        `tls_protocol_version`, `tls_named_group`, `alpn_fe_protocol`, `alpn_be_protocol`, \
        `alpn_client_preference_list`. No method, path or status: an NLB logs connections, not HTTP requests. \
        Fields after the 22nd (newer versions) are kept in `extra.trailing`, with a note.
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        let hits = lines.filter { line in Line.with(line, number: 1) { ALBLineShape.classify($0.bytes) } == .nlb }.count
        return Double(hits) / Double(max(lines.count, 1))
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser { AWSNLBParser() }
}

struct AWSNLBParser: RecordParser {
    static let names = ["type", "version", "time", "elb", "listener", "client:port", "destination:port", "connection_time",
                        "tls_handshake_time", "received_bytes", "sent_bytes", "incoming_tls_alert", "chosen_cert_arn",
                        "chosen_cert_serial", "tls_cipher", "tls_protocol_version", "tls_named_group", "domain_name",
                        "alpn_fe_protocol", "alpn_be_protocol", "alpn_client_preference_list", "tls_connection_creation_time"]

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if line.isEmpty { return }
        if line.isComment { return sink.rejectComment(line, notA: "a Network Load Balancer access-log record") }
        guard ALBLineShape.classify(line.bytes) == .nlb else {
            return sink.reject(line, "not a Network Load Balancer access-log line: expected `tls` and a version (2.0) first")
        }
        switch Self.parse(line, &sink) {
        case .success(let e): sink.emit(e)
        case .failure(let why): sink.reject(line, why.description)
        }
    }

    mutating func finish(into sink: inout RecordSink) {}

    static func parse(_ line: Line, _ sink: inout RecordSink) -> Result<Event, ImporterError> {
        let f = line.bytes.split(separator: 0x20).map { String(decoding: $0, as: UTF8.self) }
        guard f.count >= names.count else {
            return .failure(ImporterError("only \(f.count) fields; a Network Load Balancer access-log line (version 2.0) has \(names.count)"))
        }
        guard let time = AWSTime.iso8601(f[2]) else { return .failure(ImporterError("time '\(f[2].prefix(40))' is not ISO-8601")) }
        var e = Event(time: time, layer: .nlb, kind: .access, line: line.number, raw: line.copyBytes())
        func keep(_ i: Int, _ key: String) { if f[i] != "-" { e.extra[key] = f[i] } }
        keep(0, "type"); keep(1, "version"); keep(3, "elb"); keep(4, "listener")
        let (client, port) = ELBFields.hostPort(f[5])
        if !e.setAddress(.client, client, elseKeep: "client_text") { sink.note(IPAddressText.note(field: "client:port", key: "client_text")) }
        if let port { e.extra["client_port"] = port }
        keep(6, "target")
        for (i, key) in [(7, "connection_time"), (8, "tls_handshake_time")] where f[i] != "-" {
            guard f[i].utf8.count <= 12, let ms = Int64(f[i]), ms >= 0 else {
                return .failure(ImporterError("\(key) '\(f[i].prefix(40))' is not a number of milliseconds"))
            }
            e.extra[key] = f[i]
            if i == 7 { e.duration = ms * 1000 }
        }
        for (i, key) in [(9, "received_bytes"), (10, "sent_bytes")] where f[i] != "-" {
            guard let n = Int64(f[i]), n >= 0 else { return .failure(ImporterError("\(key) '\(f[i].prefix(40))' is not a byte count")) }
            if i == 10 { e.bytes = n } else { e.extra[key] = f[i] }
        }
        keep(11, "incoming_tls_alert")
        e.error = e.extra["incoming_tls_alert"].map { "incoming TLS alert \($0)" }
        keep(12, "chosen_cert_arn"); keep(13, "chosen_cert_serial"); keep(14, "tls_cipher"); keep(15, "tls_protocol_version")
        keep(16, "tls_named_group")
        if f[17] != "-" { e.host = f[17] }
        keep(18, "alpn_fe_protocol"); keep(19, "alpn_be_protocol"); keep(20, "alpn_client_preference_list")
        if f[21] != "-" {
            guard let created = AWSTime.iso8601(f[21]) else {
                return .failure(ImporterError("tls_connection_creation_time '\(f[21].prefix(40))' is not ISO-8601"))
            }
            e.extra["tls_connection_creation_time"] = f[21]
            e.extra["connection_creation_us"] = String(created)
        }
        if f.count > names.count {
            e.extra["trailing"] = f[names.count...].joined(separator: " ")
            sink.note("NLB lines with fields after tls_connection_creation_time: kept in extra.trailing")
        }
        return .success(e)
    }
}

/// ALB connection logs: one line per TLS connection attempt on an HTTPS listener (handshake,
/// mutual-TLS verification), space-separated, the client certificate's subject quoted.
///
/// Field list: the ALB user guide, "Connection log entries"
/// (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-connection-logs.html):
/// timestamp, client_ip, client_port, listener_port, tls_protocol, tls_cipher, tls_handshake_latency,
/// leaf_client_cert_subject, leaf_client_cert_validity, leaf_client_cert_serial_number,
/// tls_verify_status, conn_trace_id, tls_keyexchange, elb, ip_address (fields are added at the end; lines
/// with 11 or more are read, and fields after the 15th ignored, as the guide asks). The samples are the
/// guide's two examples, each on one line (the guide wraps them "only to make them easier to read").
/// Records are kind `log` of layer `alb`: they tell how connections went, not which requests the
/// load balancer answered, so an ALB with only connection logs is not taken to have logged every request.
public struct ALBConnectionLogImporter: Importer {
    public init() {}

    public let id = "alb-connection"
    /// S3 objects, written whole: an unterminated last line is read as it is.
    public var writtenLive: Bool { false }
    public let title = "AWS Application Load Balancer connection log"
    public let layer = Layer.alb
    public let documentation = "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-connection-logs.html"

    public let samples = [
        FormatSample(fileName: "123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_20231004T1705Z_203.0.113.1_abcd1234.log", lines: [
            #"2023-10-04T17:05:15.514108Z 203.0.113.1 36280 443 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 4.036 "CN=amazondomains.com,O=endEntity,L=Seattle,ST=Washington,C=US" NotBefore=2023-09-21T22:43:21Z;NotAfter=2026-06-17T22:43:21Z FEF257372D5C14D4 Success TID_3180a73013c8ca4bac2f731159d4b0fe"#,
            #"2023-10-04T17:05:15.514108Z 203.0.113.1 36280 443 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 - "CN=amazondomains.com,O=endEntity,L=Seattle,ST=Washington,C=US" NotBefore=2023-09-21T22:43:21Z;NotAfter=2026-06-17T22:43:21Z FEF257372D5C14D4 Failed:ClientCertUntrusted TID_1c71a68d70587445ad5127ff8b2687d7"#,
        ]),
    ]

    public let fieldNotes = """
        `timestamp` → `time`; `client_ip` → `client_ip` (no IP address → `extra.client_text`); `client_port` → \
        `extra.client_port`; `tls_handshake_latency` (seconds, ms precision; `-` for a failed handshake) → `duration`; `tls_verify_status` → `extra.tls_verify_status`, \
        and a `Failed:…` status → `error`; `extra`: `listener_port`, `tls_protocol`, `tls_cipher`, `tls_handshake_latency`, \
        `leaf_client_cert_subject`, `leaf_client_cert_validity`, `leaf_client_cert_serial_number`, `conn_trace_id`, \
        `tls_keyexchange`, `elb`, `ip_address` (the load balancer node). Fields after the 15th are ignored. \
        Kind `log`: a connection record, not a request.
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        let hits = lines.filter { line in Line.with(line, number: 1) { ALBLineShape.classify($0.bytes) } == .connection }.count
        return Double(hits) / Double(max(lines.count, 1))
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser { ALBConnectionLogParser() }
}

struct ALBConnectionLogParser: RecordParser {
    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if line.isEmpty { return }
        if line.isComment { return sink.rejectComment(line, notA: "an ALB connection-log record") }
        guard ALBLineShape.classify(line.bytes) == .connection else {
            return sink.reject(line, "not an ALB connection-log line: expected an ISO-8601 time, a client address and a port first")
        }
        switch Self.parse(line, &sink) {
        case .success(let e): sink.emit(e)
        case .failure(let why): sink.reject(line, why.description)
        }
    }

    mutating func finish(into sink: inout RecordSink) {}

    static func parse(_ line: Line, _ sink: inout RecordSink) -> Result<Event, ImporterError> {
        let f: [ELBField]
        switch ELBFields.split(line.bytes) {
        case .failure(let why): return .failure(why)
        case .success(let v): f = v
        }
        guard f.count >= 11 else {
            return .failure(ImporterError("only \(f.count) fields; an ALB connection-log line has at least 11 (timestamp … tls_verify_status)"))
        }
        guard f[7].quoted || f[7].text == "-" else { return .failure(ImporterError("field 8 (leaf_client_cert_subject) is not quoted: corrupt or spliced line")) }
        for (i, field) in f.enumerated() where i != 7 && i < 15 && field.quoted {
            return .failure(ImporterError("field \(i + 1) should not be quoted: corrupt or spliced line"))
        }
        guard let time = AWSTime.iso8601(f[0].bytes)?.micros else { return .failure(ImporterError("timestamp is not ISO-8601")) }
        var e = Event(time: time, layer: .alb, kind: .log, line: line.number, raw: line.copyBytes())
        if !e.setAddress(.client, f[1].text, elseKeep: "client_text") { sink.note(IPAddressText.note(field: "client_ip", key: "client_text")) }
        let names = ["timestamp", "client_ip", "client_port", "listener_port", "tls_protocol", "tls_cipher", "tls_handshake_latency",
                     "leaf_client_cert_subject", "leaf_client_cert_validity", "leaf_client_cert_serial_number", "tls_verify_status", "conn_trace_id",
                     "tls_keyexchange", "elb", "ip_address"]
        for i in 2..<min(f.count, names.count) { if let v = f[i].value { e.extra[names[i]] = v } }
        for key in ["client_port", "listener_port"] {
            if let v = e.extra[key], !(v.utf8.count <= 5 && v.allSatisfy { $0.isASCII && $0.isNumber }) {
                return .failure(ImporterError("\(key) '\(v.prefix(40))' is not a port"))
            }
        }
        if let v = e.extra["tls_handshake_latency"] {
            guard f[6].bytes.count <= 15, let us = ByteScanner.secondsToMicros(f[6].bytes), us >= 0 else {
                return .failure(ImporterError("tls_handshake_latency '\(v.prefix(40))' is not a number of seconds"))
            }
            e.duration = us
        }
        if let status = e.extra["tls_verify_status"], status.hasPrefix("Failed") { e.error = status }
        if let tid = e.extra["conn_trace_id"], !tid.hasPrefix("TID_") {
            return .failure(ImporterError("conn_trace_id '\(tid.prefix(40))' does not start with TID_"))
        }
        e.message = "TLS connection from \(f[1].text)\(e.extra["client_port"].map { ":\($0)" } ?? "") to port \(e.extra["listener_port"] ?? "?"): \(e.extra["tls_verify_status"] ?? "-")"
        return .success(e)
    }
}
