import Foundation

/// The export formats (`investigate export --format`).
public enum ExportFormat: String, Sendable, CaseIterable {
    case timesketch, ecs, csv

    /// A writer for this format. `bulk`: ECS documents each preceded by a `_bulk` `create` action.
    public func writer(bulk: Bool = false) -> any ExportWriter {
        switch self {
        case .timesketch: return TimesketchWriter()
        case .ecs: return ECSWriter(bulk: bulk)
        case .csv: return CSVWriter()
        }
    }
}

/// Turns records into the bytes of one format. `header` once, then `write` per record in order.
public protocol ExportWriter {
    func header() -> [UInt8]
    /// Appends the record; false when the format cannot carry it (nothing is appended).
    func write(_ record: ExportRecord, into out: inout [UInt8]) -> Bool
}

/// What the formats share: how a record is named, dated and summarised. Documented in
/// docs/export.md; every value from a log is data here, escaped by the writer of each format.
public enum ExportFields {
    /// What the stamp means at that layer (Timesketch's `timestamp_desc`). Each importer stores
    /// the moment the layer itself wrote down (docs/architecture.md): the WAF and API Gateway's
    /// access log (and the Classic Load Balancer) the request's arrival, nginx, the ALB, gunicorn and the app's Response lines the
    /// response, messages the moment they were logged.
    public static func timestampDescription(_ r: ExportRecord) -> String {
        guard let e = r.event else { return "Rejected line (time of the nearest parsed record in its file)" }
        switch (e.layer, e.kind) {
        case (_, .metric): return "Metric period start"
        case (_, .finding): return "Finding last seen"
        case (.waf, _): return "Request received"
        case (.apigateway, .access): return "Request received"
        // AWS documents the Classic Load Balancer's stamp as the request's arrival, the ALB's as the response.
        case (.alb, _) where r.source.format == "elb-classic": return "Request received"
        case (.alb, .access), (.nginx, .access), (.gunicorn, .access), (.app, .access): return "Response sent"
        // CloudFront: when the edge finished responding; NLB: the end of the TLS connection; ALB
        // connection log: when the connection was established or failed; CloudTrail: the API call.
        case (.cloudfront, .access): return "Response sent"
        case (.nlb, .access): return "Connection closed"
        case (.alb, .log) where r.source.format == "alb-connection": return "Connection established or failed"
        case (.cloudtrail, _): return "API call"
        case (.app, .log) where e.status == nil && e.method != nil && (e.message ?? "").hasPrefix("Request"):
            return "Request received"
        default: return "Logged"
        }
    }

    /// The dataset as Elastic's own integrations name it where one exists (aws.waf,
    /// aws.elb_logs, aws.apigateway_logs, nginx.access, nginx.error, system.syslog); Lambda's
    /// function log is CloudWatch Logs (`aws.cloudwatch_logs`; `aws.lambda` is Elastic's Lambda
    /// *metrics* stream); gunicorn and the Python application have no Elastic integration and are
    /// named the same way (`gunicorn.access`, `gunicorn.error`, `python.app`).
    public static func dataset(_ r: ExportRecord) -> String {
        let kind = r.event?.kind
        switch r.source.format {
        case "cloudwatch-metrics": return "aws.cloudwatch_metrics"
        case "guardduty-findings": return "aws.guardduty"
        case "inspector-findings": return "aws.inspector"
        default: break
        }
        switch r.layer {
        case .cloudfront: return "aws.cloudfront_logs"
        case .waf: return "aws.waf"
        case .alb, .nlb: return "aws.elb_logs"
        case .cloudtrail: return "aws.cloudtrail"
        case .apigateway: return "aws.apigateway_logs"
        case .lambda: return "aws.cloudwatch_logs"
        case .nginx: return kind == .log || (kind == nil && r.source.format == "nginx-error") ? "nginx.error" : "nginx.access"
        case .gunicorn: return kind == .log || (kind == nil && r.source.format == "gunicorn-error") ? "gunicorn.error" : "gunicorn.access"
        case .app: return "python.app"
        case .system, .client, .upstream: return "system.syslog"
        }
    }

    /// One line for a person: `waf 203.0.113.45 GET /app/admin?x=1 → 403 BLOCK AWS-…`, a log's
    /// level and message, a rejected line's reason. Log text stays as it was (each format escapes it).
    public static func message(_ r: ExportRecord) -> String {
        guard let e = r.event else { return "rejected line: \(r.reason ?? "no reason recorded")" }
        var parts = [e.layer.rawValue]
        if e.kind == .access || e.method != nil {
            if let ip = e.clientIP ?? e.peerIP { parts.append(ip) }
            if let m = e.method { parts.append(m) }
            if let p = e.path { parts.append(p + (e.query.map { $0.isEmpty ? "" : "?" + $0 } ?? "")) }
            if let s = e.status { parts.append("→ \(s)") }
            if let a = e.wafAction { parts.append(a) }
            if let rule = e.wafRule { parts.append(rule) }
            if let error = e.error { parts.append("(\(error))") }
        }
        if e.kind != .access {
            if let level = e.level { parts.append("[\(level)]") }
            if let m = e.message ?? e.error { parts.append(m) }
        }
        if parts.count == 1 { parts.append(firstLine(String(decoding: r.raw, as: UTF8.self))) }
        return parts.joined(separator: " ")
    }

    static func firstLine(_ s: String) -> String {
        String(s.prefix { $0 != "\n" && $0 != "\r" }.prefix(500))
    }

    /// The record's bytes as text (invalid UTF-8 as U+FFFD) and, when that lost anything, the
    /// exact bytes in base64: the original is never altered in silence.
    public static func original(_ raw: [UInt8]) -> (text: String, base64: String?) {
        let text = String(decoding: raw, as: UTF8.self)
        let exact = text.utf8.elementsEqual(raw)
        return (text, exact ? nil : Data(raw).base64EncodedString())
    }

    /// `extra` keys as attribute names every index takes: lower-case letters, digits and `_` (a
    /// dot would make Elasticsearch build objects, and `a` and `a.b` would then clash), prefixed;
    /// names that collide after that get `_2`, `_3`… in key order.
    public static func flatExtra(_ extra: [String: String], prefix: String) -> [(String, String)] {
        var used = Set<String>()
        var out: [(String, String)] = []
        for (key, value) in extra.sorted(by: { $0.key < $1.key }) {
            var name = prefix + String(key.lowercased().unicodeScalars.map { s -> Character in
                (s.value < 0x80 && (CharacterSet.alphanumerics.contains(s))) ? Character(s) : "_"
            })
            if used.contains(name) {
                var n = 2
                while used.contains("\(name)_\(n)") { n += 1 }
                name = "\(name)_\(n)"
            }
            used.insert(name)
            out.append((name, value))
        }
        return out
    }

    /// `2025-02-06T05:32:10.118000+00:00`: ISO 8601 with microseconds and the zone, UTC.
    public static func isoTime(_ micros: Int64) -> String {
        let (date, time, _) = TimeFormat.split(micros)
        let us = Int(((micros % 1_000_000) + 1_000_000) % 1_000_000)
        return "\(date)T\(time).\(TimeFormat.pad(us, 6))+00:00"
    }

    /// `2025-02-06T05:32:10.118000Z` (Elasticsearch's `date` reads it; `date_nanos` keeps the µs).
    public static func isoTimeZ(_ micros: Int64) -> String {
        let (date, time, _) = TimeFormat.split(micros)
        let us = Int(((micros % 1_000_000) + 1_000_000) % 1_000_000)
        return "\(date)T\(time).\(TimeFormat.pad(us, 6))Z"
    }

    /// The flat attributes Timesketch and the CSV share, in a fixed order (nil values left out).
    /// `extra` is left to each format (flattened attributes, or one JSON column).
    static func flat(_ r: ExportRecord) -> [(String, FlatValue?)] {
        let e = r.event
        let original = original(r.raw)
        return [
            ("message", .text(message(r))),
            ("datetime", r.time.map { .text(isoTime($0)) }),
            ("timestamp", r.time.map { .int($0) }),
            ("timestamp_desc", .text(timestampDescription(r))),
            ("record", .text(r.kind.rawValue)),
            ("layer", .text(r.layer.rawValue)),
            ("kind", e.map { .text($0.kind.rawValue) }),
            ("dataset", .text(dataset(r))),
            ("client_ip", e?.clientIP.map(FlatValue.text)),
            ("peer_ip", e?.peerIP.map(FlatValue.text)),
            ("forwarded_for", e?.forwardedFor.map(FlatValue.text)),
            ("method", e?.method.map(FlatValue.text)),
            ("path", e?.path.map(FlatValue.text)),
            ("query", e?.query.map(FlatValue.text)),
            ("status", e?.status.map(FlatValue.int)),
            ("bytes", e?.bytes.map { .int($0) }),
            ("duration_us", e?.duration.map { .int($0) }),
            ("request_id", e?.requestID.map(FlatValue.text)),
            ("trace_id", e?.traceID.map(FlatValue.text)),
            ("user_agent", e?.userAgent.map(FlatValue.text)),
            ("host", e?.host.map(FlatValue.text)),
            ("level", e?.level.map(FlatValue.text)),
            ("log_message", e?.message.map(FlatValue.text)),
            ("hostname", e?.hostname.map(FlatValue.text)),
            ("program", e?.program.map(FlatValue.text)),
            ("pid", e?.pid.map(FlatValue.int)),
            ("waf_action", e?.wafAction.map(FlatValue.text)),
            ("waf_rule", e?.wafRule.map(FlatValue.text)),
            ("elb_status", e?.elbStatus.map(FlatValue.int)),
            ("target_status", e?.targetStatus.map(FlatValue.int)),
            ("error", e?.error.map(FlatValue.text)),
            ("alt_datetime", e?.altTime.map { .text(isoTime($0)) }),
            ("chain_id", r.chainID.map { .int($0) }),
            ("link_key", r.linkKey.map(FlatValue.text)),
            ("link_confidence", r.linkConfidence.map(FlatValue.number)),
            ("copy_of", r.copyOf.map { .int($0) }),
            ("diagnosis_responder", r.verdict.map { .text($0.responder) }),
            ("diagnosis_cause", r.verdict.map { .text($0.cause) }),
            ("diagnosis_confidence", r.verdict.map { .text($0.confidence) }),
            ("diagnosis_rule", r.verdict.map { .text($0.rule) }),
            ("diagnosis_explanation", r.verdict.map { .text($0.explanation) }),
            ("time_estimated", r.timeEstimated ? .bool(true) : nil),
            ("reject_reason", r.reason.map(FlatValue.text)),
            ("source_file", .text(r.source.path)),
            ("source_line", .int(r.line)),
            ("source_line_end", .int(r.lineEnd)),
            ("source_sha256", .text(r.source.sha256)),
            ("source_format", r.source.format.map(FlatValue.text)),
            ("event_id", r.kind == .event ? .int(r.rowID) : nil),
            ("record_id", .text(r.recordID)),
            ("original", .text(original.text)),
            ("original_base64", original.base64.map(FlatValue.text)),
        ]
    }

    enum FlatValue {
        case text(String)
        case int(Int)
        case number(Double)
        case bool(Bool)

        static func int(_ v: Int64) -> FlatValue { .int(Int(v)) }

        var csv: String {
            switch self {
            case .text(let s): return s
            case .int(let i): return String(i)
            case .number(let d):
                var out: [UInt8] = []
                JSONBytes.append(.number(d), to: &out)
                return d.isFinite ? String(decoding: out, as: UTF8.self) : ""
            case .bool(let b): return b ? "true" : "false"
            }
        }

        var json: JSONValue {
            switch self {
            case .text(let s): return .string(s)
            case .int(let i): return .int(i)
            case .number(let d): return .number(d)
            case .bool(let b): return .bool(b)
            }
        }
    }
}

/// Compact JSON bytes of a `JSONValue`, keys in the order given (the writers give a fixed one), so
/// the same records give the same bytes. Strings are escaped by `JSONText` (quotes, backslashes,
/// every control character).
enum JSONBytes {
    static func append(_ v: JSONValue, to out: inout [UInt8]) {
        switch v {
        case .string(let s): JSONText.appendQuoted(s.utf8, to: &out)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .number(let d):
            if d.isFinite, d == d.rounded(), abs(d) < 1e15 { out.append(contentsOf: String(Int64(d)).utf8) }
            else if d.isFinite { out.append(contentsOf: String(d).utf8) }
            else { out.append(contentsOf: "null".utf8) }
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .null: out.append(contentsOf: "null".utf8)
        case .array(let a):
            out.append(0x5B)
            for (i, x) in a.enumerated() {
                if i > 0 { out.append(0x2C) }
                append(x, to: &out)
            }
            out.append(0x5D)
        case .object(let o):
            out.append(0x7B)
            for (i, (k, x)) in o.enumerated() {
                if i > 0 { out.append(0x2C) }
                JSONText.appendQuoted(k.utf8, to: &out)
                out.append(0x3A)
                append(x, to: &out)
            }
            out.append(0x7D)
        }
    }
}
