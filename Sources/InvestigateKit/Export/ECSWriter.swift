import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Elastic Common Schema documents, one per line (NDJSON), nested as ECS is, numbers as numbers.
/// With `bulk`, each document is preceded by a `_bulk` action line `{"create":{"_id":…}}` (the id
/// is the record's stable `record_id`, so loading the same export twice adds nothing). The
/// mapping is documented in docs/export.md.
public struct ECSWriter: ExportWriter {
    public static let ecsVersion = "8.11.0"
    public var bulk: Bool

    public init(bulk: Bool = false) { self.bulk = bulk }

    public func header() -> [UInt8] { [] }

    public func write(_ r: ExportRecord, into out: inout [UInt8]) -> Bool {
        if bulk {
            JSONBytes.append(.object([("create", .object([("_id", .string(r.recordID))]))]), to: &out)
            out.append(0x0A)
        }
        JSONBytes.append(Self.document(r), to: &out)
        out.append(0x0A)
        return true
    }

    /// The ECS document of a record, keys in a fixed order.
    public static func document(_ r: ExportRecord) -> JSONValue {
        let e = r.event
        let dataset = ExportFields.dataset(r)
        let original = ExportFields.original(r.raw)
        var doc = Doc()
        if let t = r.time { doc["@timestamp"] = .string(ExportFields.isoTimeZ(t)) }
        doc["message"] = .string(ExportFields.message(r))
        doc["ecs"] = Doc([("version", .string(ecsVersion))]).value

        var event = Doc()
        event["original"] = .string(original.text)
        event["dataset"] = .string(dataset)
        event["module"] = .string(String(dataset.prefix { $0 != "." }))
        event["provider"] = .string(r.layer.rawValue)
        event["id"] = .string(r.recordID)
        if let e {
            // ECS: a metric datapoint is `metric`, a security finding an `alert`.
            event["kind"] = .string(e.kind == .metric ? "metric" : e.kind == .finding ? "alert" : "event")
            if e.kind == .access && e.layer == .nlb {
                // A TLS connection, not an HTTP request.
                event["category"] = .array([.string("network")])
                event["type"] = .array([.string("connection")])
            } else if e.kind == .access {
                event["category"] = .array([.string("web")])
                event["type"] = .array([.string("access")])
                if let s = e.status { event["outcome"] = .string(s >= 400 ? "failure" : "success") }
            }
            if let a = e.wafAction { event["action"] = .string(a) }
            if let d = e.duration, d >= 0, d <= Int64.max / 1000 { event["duration"] = .int(Int(d * 1000)) }  // ECS: nanoseconds
        } else {
            event["kind"] = .string("pipeline_error")
        }
        doc["event"] = event.value

        var ips = Doc()
        if let e {
            let client = e.clientIP.flatMap(Self.ip)
            let peer = e.peerIP.flatMap(Self.ip)
            if let source = peer ?? client { doc["source"] = Doc([("ip", .string(source))]).value }
            if let client { doc["client"] = Doc([("ip", .string(client))]).value }
            // An address a log wrote that is not one (an X-Forwarded-For token, a hostname) would make
            // Elasticsearch reject the whole document from an `ip` field: it is kept as text instead.
            if let c = e.clientIP, client == nil { ips["client_ip"] = .string(c) }
            if let p = e.peerIP, peer == nil { ips["peer_ip"] = .string(p) }

            var request = Doc(), response = Doc()
            if let m = e.method { request["method"] = .string(m) }
            if let id = e.requestID { request["id"] = .string(id) }
            if let s = e.status { response["status_code"] = .int(s) }
            if let b = e.bytes {
                // nginx, gunicorn and the app count the body; the ALB and API Gateway what they sent.
                if [.nginx, .gunicorn, .app].contains(e.layer) { response["body"] = Doc([("bytes", .int(Int(b)))]).value }
                else { response["bytes"] = .int(Int(b)) }
            }
            var http = Doc()
            if !request.isEmpty { http["request"] = request.value }
            if !response.isEmpty { http["response"] = response.value }
            if !http.isEmpty { doc["http"] = http.value }

            var url = Doc()
            if let p = e.path { url["path"] = .string(p) }
            if let q = e.query { url["query"] = .string(q) }
            if let h = e.host { url["domain"] = .string(h) }
            if !url.isEmpty { doc["url"] = url.value }
            if let ua = e.userAgent { doc["user_agent"] = Doc([("original", .string(ua))]).value }
            if let h = e.hostname { doc["host"] = Doc([("hostname", .string(h))]).value }
            var process = Doc()
            if let p = e.program { process["name"] = .string(p) }
            if let pid = e.pid { process["pid"] = .int(pid) }
            if !process.isEmpty { doc["process"] = process.value }
            if let t = e.traceID { doc["trace"] = Doc([("id", .string(t))]).value }
            if let err = e.error { doc["error"] = Doc([("message", .string(err))]).value }
            if let rule = e.wafRule { doc["rule"] = Doc([("name", .string(rule))]).value }
            if let ts = e.targetStatus {
                doc["aws"] = Doc([("elb", Doc([("backend", Doc([("http", Doc([("response", Doc([("status_code", .int(ts))]).value)]).value)]).value)]).value)]).value
            }
        } else if let reason = r.reason {
            doc["error"] = Doc([("message", .string(reason))]).value
        }

        var log = Doc([("file", Doc([("path", .string(r.source.path))]).value)])
        if let level = e?.level { log["level"] = .string(level) }
        doc["log"] = log.value

        var inv = Doc()
        inv["record"] = .string(r.kind.rawValue)
        inv["layer"] = .string(r.layer.rawValue)
        if let e { inv["kind"] = .string(e.kind.rawValue) }
        inv["timestamp_desc"] = .string(ExportFields.timestampDescription(r))
        if r.timeEstimated { inv["time_estimated"] = .bool(true) }
        var source = Doc()
        source["sha256"] = .string(r.source.sha256)
        source["line"] = .int(r.line)
        source["line_end"] = .int(r.lineEnd)
        if let f = r.source.format { source["format"] = .string(f) }
        inv["source"] = source.value
        if r.kind == .event { inv["event_id"] = .int(Int(r.rowID)) }
        if let c = r.chainID {
            inv["chain_id"] = .int(Int(c))
            var link = Doc()
            if let k = r.linkKey { link["key"] = .string(k) }
            if let conf = r.linkConfidence { link["confidence"] = .number(conf) }
            if !link.isEmpty { inv["link"] = link.value }
        }
        if let c = r.copyOf { inv["copy_of"] = .int(Int(c)) }
        if let v = r.verdict {
            inv["diagnosis"] = .object([("responder", .string(v.responder)), ("cause", .string(v.cause)), ("confidence", .string(v.confidence)),
                                        ("rule", .string(v.rule)), ("reason", .string(v.reason)), ("explanation", .string(v.explanation))])
        }
        if let e {
            if let f = e.forwardedFor { inv["forwarded_for"] = .string(f) }
            if let a = e.altTime { inv["alt_timestamp"] = .string(ExportFields.isoTimeZ(a)) }
            if let m = e.message { inv["log_message"] = .string(m) }
            if let s = e.elbStatus { inv["elb_status"] = .int(s) }
            if !e.extra.isEmpty {
                inv["extra"] = .object(ExportFields.flatExtra(e.extra, prefix: "").map { ($0.0, .string($0.1)) })
            }
        }
        if let text = r.extraText { inv["extra_unparsed"] = .string(text) }
        if !ips.isEmpty { inv["unparsed_ip"] = ips.value }
        if let b64 = original.base64 { inv["original_base64"] = .string(b64) }
        doc["investigate"] = inv.value
        return doc.value
    }

    /// The address in canonical form when the text is an IPv4 or IPv6 address, else nil.
    static func ip(_ text: String) -> String? {
        guard let bytes = IPRange.parse(text) else { return nil }
        return IPText.canonical(bytes)
    }

    /// An ordered JSON object under construction.
    struct Doc {
        var fields: [(String, JSONValue)] = []
        init(_ fields: [(String, JSONValue)] = []) { self.fields = fields }
        var isEmpty: Bool { fields.isEmpty }
        var value: JSONValue { .object(fields) }
        subscript(key: String) -> JSONValue? {
            get { fields.first { $0.0 == key }?.1 }
            set {
                if let i = fields.firstIndex(where: { $0.0 == key }) {
                    if let newValue { fields[i].1 = newValue } else { fields.remove(at: i) }
                } else if let newValue {
                    fields.append((key, newValue))
                }
            }
        }
    }
}

/// Text of an address's bytes: dotted IPv4, RFC 5952 IPv6 (via inet_ntop).
public enum IPText {
    public static func canonical(_ bytes: [UInt8]) -> String? {
        var buffer = [CChar](repeating: 0, count: 64)
        let family = bytes.count == 4 ? AF_INET : bytes.count == 16 ? AF_INET6 : -1
        guard family != -1 else { return nil }
        let ok = bytes.withUnsafeBytes { raw in inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil }
        return ok ? String(cString: buffer) : nil
    }
}
