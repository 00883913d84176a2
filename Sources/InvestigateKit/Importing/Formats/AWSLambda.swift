import Foundation

/// AWS Lambda function logs as they reach CloudWatch Logs: the platform's `START`/`END`/`REPORT`
/// lines, runtime lines (`[LEVEL]\t<ISO>\t<requestId>\t<message>` for Python,
/// `<ISO>\t<requestId>\t<LEVEL>\t<message>` for Node.js), `Task timed out after N seconds`, and the
/// JSON log format (`platform.*` records and JSON application records).
public struct AWSLambdaImporter: Importer {
    public init() {}

    public let id = "lambda"
    /// Delivered by Lambda to CloudWatch Logs, so a file of it is an export: an unterminated last line is read as it is.
    public var writtenLive: Bool { false }
    public let title = "AWS Lambda function log (platform lines, runtime lines, JSON log format)"
    public let layer = Layer.lambda
    public let documentation = "https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html"

    public let samples = [
        FormatSample(fileName: "2020-01-31-[$LATEST]3893xmpl7fac4485b47bb75b671a283c.log", lines: [
            "START RequestId: 8f507cfc-xmpl-4697-b07a-ac58fc914c95 Version: $LATEST",
            "[INFO]\t2020-01-31T22:12:58.534Z\t8f507cfc-xmpl-4697-b07a-ac58fc914c95\t## ENVIRONMENT VARIABLES",
            "[ERROR]\t2020-01-31T22:12:58.600Z\t8f507cfc-xmpl-4697-b07a-ac58fc914c95\tTraceback (most recent call last):",
            "  File \"/var/task/lambda_function.py\", line 12, in handler",
            "END RequestId: 8f507cfc-xmpl-4697-b07a-ac58fc914c95",
            "REPORT RequestId: 8f507cfc-xmpl-4697-b07a-ac58fc914c95\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB\tInit Duration: 130.49 ms\t",
            "XRAY TraceId: 1-5e34a614-10bdxmplf1fb44f07bc535a1\tSegmentId: 07f5xmpl2d1f6f85\tSampled: true\t",
            "2019-02-27T11:31:11.456Z 71952965-d5cc-4974-ae08-6e2138b2275c Task timed out after 10.00 seconds",
        ]),
        FormatSample(fileName: "lambda-json.log", lines: [
            #"{"time":"2024-05-20T16:29:45.019Z","type":"platform.runtimeDone","record":{"requestId":"4b142fc3-17b8-4cdb-a46b-a8dbe7918715","status":"success","spans":[{"name":"responseLatency","start":"2024-05-20T16:29:45.008Z","durationMs":2.215},{"name":"responseDuration","start":"2024-05-20T16:29:45.010Z","durationMs":0.056},{"name":"runtimeOverhead","start":"2024-05-20T16:29:45.010Z","durationMs":8.686}],"metrics":{"durationMs":11.185,"producedBytes":40}}}"#,
            #"{"time":"2024-05-20T16:29:45.022Z","type":"platform.report","record":{"requestId":"4b142fc3-17b8-4cdb-a46b-a8dbe7918715","status":"success","metrics":{"durationMs":11.642,"billedDurationMs":12,"memorySizeMB":128,"maxMemoryUsedMB":67,"initDurationMs":174.055}}}"#,
            #"{"timestamp":"2023-10-27T19:17:45.586Z","level":"INFO","message":"Inside the handler function","logger": "root","requestId":"79b4f56e-95b1-4643-9700-2807f4e68189"}"#,
        ]),
    ]

    public let fieldNotes = """
        `RequestId` → `request_id` on every line that has one. `REPORT`: `Duration` → `duration`, `Billed Duration`, \
        `Memory Size`, `Max Memory Used`, `Init Duration`, `Status` → `extra` (`billed_duration_ms`, \
        `memory_size_mb`, `max_memory_used_mb`, `init_duration_ms`, `status`); a following `XRAY TraceId` line \
        joins it → `trace_id`. Runtime lines: the level in brackets (or after the request id) → `level`, the ISO \
        time → `time`, the text → `message`; lines without a prefix (tracebacks) continue the message before them. \
        `Task timed out after N seconds` → `error`; the runtime's `RequestId: … Error: Runtime exited with error: signal: killed` → \
        `request_id`, level ERROR, `error` (its first line). JSON: `platform.*` records → `extra.type`, `record.requestId` → \
        `request_id`, `metrics.durationMs` → `duration`, a status other than success → `error`; application \
        records: `timestamp`, `level`, `message`, `requestId`, `errorType`/`errorMessage` → `error`, other keys → \
        `extra`. Platform lines carry no time of their own: a CloudWatch wrapper supplies it.
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        var hits = 0
        for line in lines where AWSLambdaParser.classify(line) != .other { hits += 1 }
        return Double(hits) / Double(max(lines.count, 1))
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser { AWSLambdaParser() }
}

struct AWSLambdaParser: RecordParser {
    enum LineKind: Equatable { case start, end, report, xray, platformText, pythonRuntime, nodeRuntime, timeout, runtimeError, json, other }

    static let levels: Set<String> = ["TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "CRITICAL", "FATAL"]

    static func classify(_ line: String) -> LineKind {
        if line.hasPrefix("START RequestId: ") { return .start }
        if line.hasPrefix("END RequestId: ") { return .end }
        if line.hasPrefix("REPORT RequestId: ") { return .report }
        if line.hasPrefix("XRAY TraceId: ") { return .xray }
        // The runtime's own failure of an invocation: `RequestId: … Error: Runtime exited with error: signal: killed`.
        if line.hasPrefix("RequestId: "), line.contains(" Error: ") { return .runtimeError }
        for p in ["INIT_START ", "INIT_REPORT ", "RESTORE_START ", "RESTORE_REPORT ", "EXTENSION\t", "TELEMETRY\t", "INIT_RUNTIME_DONE"] where line.hasPrefix(p) {
            return .platformText
        }
        if line.hasPrefix("["), let close = line.firstIndex(of: "]"), levels.contains(String(line[line.index(after: line.startIndex)..<close])) {
            return .pythonRuntime
        }
        if line.hasPrefix("{") {
            if line.contains("\"type\""), line.contains("\"platform.") { return .json }
            if line.contains("\"requestId\""), line.contains("\"level\"") || line.contains("\"message\"") { return .json }
            return .other
        }
        if line.contains("Task timed out after ") { return .timeout }
        let tabs = line.split(separator: "\t", maxSplits: 3, omittingEmptySubsequences: false)
        if tabs.count >= 3, AWSTime.iso8601(String(tabs[0])) != nil, tabs[1].count >= 32 { return .nodeRuntime }
        return .other
    }

    private struct Pending {
        var event: Event
        var lines: [[UInt8]]
        var kind: LineKind
    }

    private var pending: Pending?

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if line.isEmpty { return }
        let text = line.text
        let kind = Self.classify(text)
        switch kind {
        case .other:
            // Traceback lines continue the runtime message before them; other print() output stands
            // alone (inside CloudWatch each print is an event of its own).
            if var p = pending, p.kind == .pythonRuntime || p.kind == .nodeRuntime || p.kind == .timeout {
                p.lines.append(line.copyBytes())
                p.event.lineEnd = line.number
                p.event.message = (p.event.message.map { $0 + "\n" } ?? "") + text
                pending = p
                return
            }
            // Outside a traceback a `#` line is taken for a comment (annotated excerpts), as in every format.
            if line.isComment { return sink.rejectComment(line, notA: "a Lambda log line") }
            var e = Event(time: nil, layer: .lambda, kind: .log, line: line.number, raw: [])
            e.message = text
            start(Pending(event: e, lines: [line.copyBytes()], kind: .other), into: &sink)
        case .xray:
            if var p = pending, p.kind == .report, p.event.traceID == nil {
                Self.applyXRay(text, to: &p.event)
                p.lines.append(line.copyBytes())
                p.event.lineEnd = line.number
                pending = p
                return
            }
            var e = Event(time: nil, layer: .lambda, kind: .log, line: line.number, raw: [])
            e.message = text
            Self.applyXRay(text, to: &e)
            start(Pending(event: e, lines: [line.copyBytes()], kind: .xray), into: &sink)
        case .json:
            switch AWSJSON.parseObject(line.copyBytes()) {
            case .failure(let why):
                flush(into: &sink)
                sink.reject(line, why.description)
            case .success(let o):
                var e = Event(time: nil, layer: .lambda, kind: .log, line: line.number, raw: [])
                Self.applyJSON(o, to: &e)
                start(Pending(event: e, lines: [line.copyBytes()], kind: .json), into: &sink)
            }
        default:
            var e = Event(time: nil, layer: .lambda, kind: .log, line: line.number, raw: [])
            Self.applyText(text, kind: kind, to: &e)
            start(Pending(event: e, lines: [line.copyBytes()], kind: kind), into: &sink)
        }
    }

    mutating func finish(into sink: inout RecordSink) { flush(into: &sink) }

    private mutating func start(_ p: Pending, into sink: inout RecordSink) {
        flush(into: &sink)
        pending = p
    }

    private mutating func flush(into sink: inout RecordSink) {
        guard var p = pending else { return }
        pending = nil
        p.event.raw = Array(p.lines.joined(separator: [0x0A]))
        sink.emit(p.event)
    }

    static func requestID(after label: String, in text: String) -> String? {
        guard let r = text.range(of: label) else { return nil }
        let id = text[r.upperBound...].prefix { !$0.isWhitespace }
        return id.isEmpty ? nil : String(id)
    }

    /// `label: value` pairs of a REPORT/XRAY line, tab-separated (or spaced in copies that lost the tabs).
    static func value(_ label: String, in text: String) -> String? {
        guard let r = text.range(of: label + ": ") else { return nil }
        let rest = text[r.upperBound...]
        let end = rest.firstIndex(of: "\t") ?? rest.range(of: "  ")?.lowerBound ?? rest.endIndex
        let v = rest[..<end].trimmingCharacters(in: .whitespaces)
        return v.isEmpty ? nil : v
    }

    static func number(_ v: String?) -> Double? {
        guard let v else { return nil }
        return Double(v.split(separator: " ").first ?? "")
    }

    static func applyXRay(_ text: String, to e: inout Event) {
        if let trace = value("XRAY TraceId", in: text) { e.traceID = trace }
        if let seg = value("SegmentId", in: text) { e.extra["xray_segment_id"] = seg }
    }

    static func applyText(_ text: String, kind: LineKind, to e: inout Event) {
        e.message = text
        switch kind {
        case .start:
            e.requestID = requestID(after: "RequestId: ", in: text)
            if let v = value("Version", in: text) { e.extra["version"] = v }
            e.extra["platform"] = "start"
        case .end:
            e.requestID = requestID(after: "RequestId: ", in: text)
            e.extra["platform"] = "end"
        case .report:
            e.requestID = requestID(after: "RequestId: ", in: text)
            e.extra["platform"] = "report"
            if let d = number(value("Duration", in: text)), d.isFinite, d >= 0, d < 1e12 { e.duration = Int64((d * 1000).rounded()) }
            for (label, key) in [("Billed Duration", "billed_duration_ms"), ("Memory Size", "memory_size_mb"),
                                 ("Max Memory Used", "max_memory_used_mb"), ("Init Duration", "init_duration_ms"),
                                 ("Restore Duration", "restore_duration_ms")] {
                if let v = value(label, in: text) { e.extra[key] = String(v.split(separator: " ").first ?? "") }
            }
            if let status = value("Status", in: text) {
                e.extra["status"] = status
                if status != "success" { e.error = "invocation status: \(status)"; e.level = "ERROR" }
            }
            if let errorType = value("Error Type", in: text) { e.extra["error_type"] = errorType }
            applyXRay(text, to: &e)
        case .runtimeError:
            e.requestID = requestID(after: "RequestId: ", in: text)
            e.level = "ERROR"
            if let r = text.range(of: " Error: ") {
                let what = text[r.upperBound...].split(whereSeparator: { $0 == "\n" || $0 == "\r" }).first.map(String.init) ?? ""
                if !what.isEmpty { e.error = what }
            }
        case .platformText:
            e.extra["platform"] = String(text.prefix { !$0.isWhitespace }).lowercased()
            // `INIT_REPORT Init Duration: 10002.22 ms\tPhase: init\tStatus: timeout`: a failed cold start.
            if let status = value("Status", in: text) {
                e.extra["status"] = status
                if status != "success" { e.error = "init status: \(status)"; e.level = "ERROR" }
            }
            if let d = value("Init Duration", in: text) { e.extra["init_duration_ms"] = String(d.split(separator: " ").first ?? "") }
        case .pythonRuntime:
            guard let close = text.firstIndex(of: "]") else { return }
            e.level = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            let parts = rest.drop(while: { $0 == "\t" || $0 == " " }).split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false)
            if parts.count == 3, let t = AWSTime.iso8601(String(parts[0])) {
                e.time = t
                e.requestID = parts[1].isEmpty ? nil : String(parts[1])
                e.message = String(parts[2])
            } else {
                e.message = String(rest.drop(while: { $0 == "\t" || $0 == " " }))
            }
        case .nodeRuntime:
            let parts = text.split(separator: "\t", maxSplits: 3, omittingEmptySubsequences: false)
            e.time = AWSTime.iso8601(String(parts[0]))
            e.requestID = String(parts[1])
            if parts.count == 4, levels.contains(String(parts[2])) {
                e.level = String(parts[2]); e.message = String(parts[3])
            } else {
                e.message = parts.dropFirst(2).joined(separator: "\t")
            }
        case .timeout:
            e.level = "ERROR"
            let words = text.split(separator: " ", maxSplits: 2)
            if words.count == 3, let t = AWSTime.iso8601(String(words[0])) {
                e.time = t
                e.requestID = String(words[1])
            }
            if let r = text.range(of: "Task timed out after ") { e.error = String(text[r.lowerBound...]) } else { e.error = text }
        default:
            break
        }
    }

    static func applyJSON(_ o: [String: Any], to e: inout Event) {
        if let type = AWSJSON.string(o["type"]), type.hasPrefix("platform."), let record = o["record"] {
            e.extra["platform"] = String(type.dropFirst("platform.".count))
            e.time = AWSJSON.string(o["time"]).flatMap(AWSTime.iso8601)
            e.message = type
            guard let r = record as? [String: Any] else { return }
            e.requestID = AWSJSON.meaningful(r["requestId"])
            if let v = AWSJSON.meaningful(r["version"]) { e.extra["version"] = v }
            if let status = AWSJSON.meaningful(r["status"]) {
                e.extra["status"] = status
                if status != "success" {
                    e.level = "ERROR"
                    e.error = "invocation status: \(status)" + (AWSJSON.meaningful(r["errorType"]).map { " (\($0))" } ?? "")
                }
            }
            if let metrics = r["metrics"] as? [String: Any] {
                if let d = AWSJSON.millisToMicros(metrics["durationMs"]), d >= 0 { e.duration = d }
                for (key, name) in [("billedDurationMs", "billed_duration_ms"), ("memorySizeMB", "memory_size_mb"),
                                    ("maxMemoryUsedMB", "max_memory_used_mb"), ("initDurationMs", "init_duration_ms"),
                                    ("producedBytes", "produced_bytes")] {
                    if let v = AWSJSON.string(metrics[key]) { e.extra[name] = v }
                }
            }
            if let tracing = r["tracing"] as? [String: Any], let value = AWSJSON.string(tracing["value"]) {
                e.traceID = AWSTrace.root(value)
            }
            return
        }
        for (key, value) in o {
            switch key {
            case "timestamp", "time": e.time = e.time ?? (AWSJSON.string(value).flatMap(AWSTime.iso8601) ?? AWSTime.epoch(value))
            case "level", "levelname": e.level = AWSJSON.meaningful(value)?.uppercased()
            case "message", "msg": e.message = AWSJSON.string(value) ?? AWSJSON.compact(value)
            case "requestId", "AWSRequestId", "aws_request_id": e.requestID = AWSJSON.meaningful(value)
            case "errorMessage": e.error = AWSJSON.string(value)
            case "errorType": e.extra["error_type"] = AWSJSON.string(value)
            case "xrayTraceId", "traceId": e.traceID = AWSJSON.string(value).flatMap(AWSTrace.root)
            default:
                if !(value is NSNull) { e.extra[key] = AWSJSON.compact(value) }
            }
        }
        if e.error == nil, let type = e.extra["error_type"] { e.error = type }
    }
}
