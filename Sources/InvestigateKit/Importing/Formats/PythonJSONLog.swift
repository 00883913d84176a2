import Foundation

/// Python application logs written one JSON object per line (python-json-logger's
/// `JsonFormatter`, structlog's `JSONRenderer`, the same from other stacks): the application layer,
/// with the request fields such loggers usually carry read into their columns.
public struct PythonJSONLogImporter: Importer {
    public init() {}

    public let id = "python-json"
    public let title = "Application log as JSON lines (python-json-logger, structlog)"
    public let layer = Layer.app
    public let documentation = "https://github.com/nhairs/python-json-logger"
    /// With the other application logs: after syslog, whose copies teach the app's zone.
    public let ingestOrder = 60

    public let samples = [
        FormatSample(fileName: "billing.json.log", lines: [
            #"{"asctime": "2026-07-08 15:14:01,721", "levelname": "INFO", "name": "billing.access", "message": "GET /healthz 200", "request_id": "612dd272d1371c17149d439536b3216f", "remote_addr": "188.167.13.19", "method": "GET", "path": "/healthz", "status": 200, "duration_ms": 71.6}"#,
            #"{"asctime": "2026-07-08 15:14:03,260", "levelname": "WARNING", "name": "billing.auth", "message": "token expired", "request_id": "dbc74254770f58904dba41ecccc3fc16", "user_id": 42}"#,
        ]),
        FormatSample(fileName: "app.jsonl", lines: [
            #"{"event": "request finished", "level": "error", "timestamp": "2026-07-08T06:14:05.120Z", "logger": "api", "method": "POST", "path": "/api/v1/orders?x=1", "status_code": 500, "exc_info": "Traceback (most recent call last):\n  File \"/srv/api/orders.py\", line 9, in create\nKeyError: 'sku'"}"#,
        ]),
    ]

    public let fieldNotes = """
        One JSON object per line. Time: `asctime`, `timestamp`, `time` or `@timestamp`, as ISO 8601 or Python's \
        `YYYY-MM-DD HH:MM:SS,mmm`; a stamp with an offset or `Z` keeps it, one without is read in the app zone chosen as \
        for `flask` (`--app-tz`, the syslog-learnt zone, nginx's offset, this machine's; guesses are checked by \
        `AppZoneAlignment`), and the stamp as written → `extra.local_time`. `levelname`/`level` → `level` (upper case); \
        `message`/`msg`/`event` → `message`; `name`/`logger` → `extra.logger`; `method` → `method`; `path`/`url`/`uri` \
        (a path, or a URL whose path is taken) → `path` and `query`; `status`/`status_code` (a whole number 100-599) → \
        `status`; a record with a method, a path, a status and a duration is kind `access` (loggers bind the request's \
        fields to every line of it, so those alone do not make the access record); `request_id`/`x_request_id` → `request_id`; \
        `trace_id` → `trace_id`; `remote_addr`/`client_ip` → `client_ip` when it is an IP address; `duration_ms` \
        (milliseconds) or `duration` (seconds, when it has a fraction; a whole number, of no known unit, stays in `extra` with a note) → `duration`; `exc_info`/`exception`/`stack_info` (a traceback) → \
        `raw` as written and its last line → `error`. Every other key → `extra.<key>` (objects and arrays as JSON). \
        A line that is not a JSON object, or whose time cannot be read, is rejected with the reason.
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        var ok = 0, considered = 0
        for line in lines where !line.isEmpty {
            considered += 1
            guard line.hasPrefix("{"), let object = Self.object(line), Self.stamp(object) != nil,
                  Self.first(object, Self.messageKeys) != nil, Self.first(object, Self.levelKeys) != nil else { continue }
            ok += 1
        }
        return considered == 0 ? 0 : Double(ok) / Double(considered)
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser {
        let zone = appZone(context)
        return PythonJSONLogParser(zone: zone.zone, zoneNote: zone.note)
    }

    static let timeKeys = ["asctime", "timestamp", "time", "@timestamp"]
    static let messageKeys = ["message", "msg", "event"]
    static let levelKeys = ["levelname", "level"]

    static func object(_ line: String) -> [String: Any]? {
        guard let data = line.data(using: .utf8) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) as? [String: Any]
    }

    static func first(_ object: [String: Any], _ keys: [String]) -> (key: String, value: Any)? {
        for k in keys { if let v = object[k], !(v is NSNull) { return (k, v) } }
        return nil
    }

    /// The record's stamp: (µs, whether it carried its zone, as written).
    static func stamp(_ object: [String: Any]) -> (micros: Int64, zoned: Bool, text: String)? {
        guard let (_, value) = first(object, timeKeys), let text = value as? String else { return nil }
        // Only a stamp that says its zone is read as such: a bare ISO stamp is local time too.
        if text.range(of: #"(Z|[+-]\d{2}:?\d{2})$"#, options: .regularExpression) != nil, text.count > 19, let t = AWSTime.iso8601(text) {
            return (t, true, text)
        }
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { b -> (Int64, Bool, String)? in
            guard let (wall, length) = PythonLogFormat.asctime(b, at: 0), length == b.count else { return nil }
            return (wall, false, text)
        }
    }
}

struct PythonJSONLogParser: RecordParser {
    let zone: ZoneSpec
    let zoneNote: String
    private var zonelessStamps = 0
    private var wholeDurations = 0

    init(zone: ZoneSpec, zoneNote: String) {
        self.zone = zone
        self.zoneNote = zoneNote
    }

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if line.isEmpty { return }
        if line.isComment { return sink.rejectComment(line, notA: "a JSON application log record") }
        let raw = line.copyBytes()
        guard raw.first == 0x7B else { return sink.reject(line, "not a JSON object (a JSON application log has one per line)") }
        let object: [String: Any]
        switch AWSJSON.parseObject(raw) {
        case .failure(let why): return sink.reject(line: line.number, reason: why.description, raw: raw)
        case .success(let o): object = o
        }
        guard let stamp = PythonJSONLogImporter.stamp(object) else {
            return sink.reject(line: line.number, reason: "no readable time (asctime, timestamp, time or @timestamp)", raw: raw)
        }
        var time = stamp.micros
        var extra: [String: String] = [:]
        if !stamp.zoned {
            time = zone.utc(fromLocal: stamp.micros)
            zonelessStamps += 1
            extra["local_time"] = stamp.text
        }
        var e = Event(time: time, layer: .app, kind: .log, line: line.number, raw: raw)
        var used = Set(PythonJSONLogImporter.timeKeys.filter { object[$0] != nil })
        func take(_ keys: [String]) -> Any? {
            guard let (k, v) = PythonJSONLogImporter.first(object, keys) else { return nil }
            used.insert(k)
            return v
        }
        func text(_ v: Any?) -> String? {
            switch v {
            case let s as String: return s
            case let n as NSNumber: return n.stringValue
            default: return nil
            }
        }
        e.level = text(take(PythonJSONLogImporter.levelKeys))?.uppercased()
        e.message = text(take(PythonJSONLogImporter.messageKeys))
        if let logger = text(take(["name", "logger"])) { extra["logger"] = logger }
        if let method = text(take(["method"])), method.count <= 16, method.allSatisfy({ $0.isLetter }) { e.method = method.uppercased() }
        if let target = text(take(["path", "url", "uri"])) {
            let url = target.hasPrefix("/") ? nil : URLComponents(string: target)
            let full = url.map { $0.percentEncodedPath + ($0.percentEncodedQuery.map { "?" + $0 } ?? "") } ?? target
            if full.hasPrefix("/") {
                let parts = full.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
                e.path = String(parts[0])
                if parts.count > 1 { e.query = String(parts[1]) }
            } else {
                extra["url"] = target
            }
        }
        if let status = take(["status", "status_code"]) {
            if let n = (status as? NSNumber)?.intValue ?? (status as? String).flatMap({ Int($0) }), (100...599).contains(n) { e.status = n } else { extra["status"] = text(status) ?? "\(status)" }
        }
        e.requestID = text(take(["request_id", "x_request_id"]))
        e.traceID = text(take(["trace_id"]))
        if let address = text(take(["remote_addr", "client_ip"])) {
            if IPAddressText.isAddress(address) { e.clientIP = address } else { extra["remote_addr"] = address }
        }
        if let ms = take(["duration_ms"]) as? NSNumber, ms.doubleValue.isFinite, ms.doubleValue >= 0, ms.doubleValue < 86_400_000 {
            e.duration = Int64(ms.doubleValue * 1000)
        } else if let s = object["duration"] as? NSNumber, s.doubleValue.isFinite, s.doubleValue >= 0, s.doubleValue < 86_400,
                  s.doubleValue != s.doubleValue.rounded() {
            // Seconds only with a fraction (`time.perf_counter()` differences): a whole number
            // may as well be milliseconds or nanoseconds, and stays in `extra` with a note.
            used.insert("duration")
            e.duration = Int64(s.doubleValue * 1_000_000)
        } else if object["duration"] is NSNumber {
            wholeDurations += 1
        }
        // Loggers bind the request's fields to every line of it (structlog's contextvars): a line
        // is the request's access record when it also says how long the request took.
        if e.status != nil && e.method != nil && e.path != nil && e.duration != nil { e.kind = .access }
        if let trace = text(take(["exc_info", "exception", "stack_info"])) {
            e.error = ExceptionText.summary(trace) ?? trace.split(separator: "\n").last.map(String.init)
            extra["exc_info"] = trace
        }
        for (k, v) in object where !used.contains(k) {
            if let s = text(v) { extra[k] = s } else if let data = try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .fragmentsAllowed]) {
                extra[k] = String(decoding: data, as: UTF8.self)
            }
        }
        e.extra = extra
        sink.emit(e)
    }

    mutating func finish(into sink: inout RecordSink) {
        if wholeDurations > 0 {
            sink.note("\(wholeDurations) records give `duration` as a whole number, whose unit (seconds, milliseconds, nanoseconds) the key does not say: kept in extra.duration, not read as the request's duration")
        }
        if zonelessStamps > 0 { sink.note("\(zonelessStamps)\(AppZoneReading.marker)\(zoneNote)") }
    }
}
