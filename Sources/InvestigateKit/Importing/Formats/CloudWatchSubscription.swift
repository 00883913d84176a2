import Foundation

/// CloudWatch Logs subscription payloads: the event a Lambda receives (`{"awslogs":{"data":<base64
/// gzip>}}`), and the decoded `DATA_MESSAGE` documents (as Firehose writes them, back to back).
public struct CloudWatchSubscriptionImporter: Importer {
    public init() {}

    public let id = "cloudwatch-subscription"
    /// Delivered payloads are finished objects: an unterminated last line is read as it is.
    public var writtenLive: Bool { false }
    public let title = "CloudWatch Logs subscription event (awslogs base64 gzip, or DATA_MESSAGE JSON), any inner format"
    public let layer = Layer.system
    public let documentation = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/SubscriptionFilters.html"

    public let samples = [
        FormatSample(fileName: "cloudwatch-logs-event.json", lines: [
            "{",
            "  \"awslogs\": {",
            "    \"data\": \"H4sIAAAAAAAAAHWPwQqCQBCGX0Xm7EFtK+smZBEUgXoLCdMhFtKV3akI8d0bLYmibvPPN3wz00CJxmQnTO41whwWQRIctmEcB6sQbFC3CjW3XW8kxpOpP+OC22d1Wml1qZkQGtoMsScxaczKN3plG8zlaHIta5KqWsozoTYw3/djzwhpLwivWFGHGpAFe7DL68JlBUk+l7KSN7tCOEJ4M3/qOI49vMHj+zCKdlFqLaU2ZHV2a4Ct/an0/ivdX8oYc1UVX860fQDQiMdxRQEAAA==\"",
            "  }",
            "}",
        ]),
        FormatSample(fileName: "firehose-subscription.json", lines: [
            #"{"messageType":"DATA_MESSAGE","owner":"958845080241","logGroup":"API-Gateway-Execution-Logs_uwe3g5jm54/Prod","logStream":"e369853df766fa44e1ed0ff613f563bd","subscriptionFilters":["ship-logs"],"logEvents":[{"id":"34596034960000000000000000000000000000000000000000000000","timestamp":1551267060425,"message":"(4f3e3b0f-39db-11e9-9c2e-5bd7c2de5998) Key throttle limit exceeded for RestApi uwe3g5jm54, Stage Prod, Resource k0w8mc, HttpMethod POST. Limit: 1.00 Burst: 1"},{"id":"34596034960000000000000000000000000000000000000000000001","timestamp":1551267060426,"message":"(4f3e3b0f-39db-11e9-9c2e-5bd7c2de5998) Method completed with status: 429"}]}"#,
        ]),
    ]

    public let fieldNotes = """
        `awslogs.data` is base64-decoded and gunzipped into a `DATA_MESSAGE`; `logGroup`, `logStream`, `owner` → \
        `extra.log_group`, `extra.log_stream`, `extra.owner`; each `logEvents[]` `timestamp` (ms) → the inner \
        event's `time` when it has none, else `alt_time`; `message` → the inner importer (detected from the \
        messages, the log group breaking ties). `raw` is the log event as compact JSON (the file's own bytes \
        are base64). `CONTROL_MESSAGE` records are noted, not stored. Unreadable base64, gzip or JSON is \
        rejected with the reason.
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        let joined = lines.joined(separator: "\n")
        guard let first = lines.first?.trimmingCharacters(in: .whitespaces), first.hasPrefix("{") else { return 0 }
        if joined.contains("\"awslogs\"") { return 1 }
        if joined.contains("\"messageType\""), joined.contains("\"logEvents\"") || joined.contains("CONTROL_MESSAGE") { return 1 }
        return 0
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser {
        CloudWatchSubscriptionParser(router: InnerFormatRouter(context: context, wrapperID: id))
    }
}

struct CloudWatchSubscriptionParser: RecordParser {
    var router: InnerFormatRouter
    var document = JSONDocumentBuffer()

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        // No line of a JSON document starts with `#` (a string holds no raw newline).
        if line.isComment { return sink.rejectComment(line, notA: "part of a CloudWatch Logs subscription payload") }
        document.append(line, into: &sink)
    }

    mutating func finish(into sink: inout RecordSink) {
        let doc = document
        document = JSONDocumentBuffer()
        doc.bytes.withUnsafeBufferPointer { b in
            let split = AWSJSON.splitConcatenated(b)
            for value in split.values { read(value, doc, into: &sink) }
            if let t = split.truncated {
                doc.reject(t, "truncated JSON document", into: &sink)
            }
            for g in split.garbage {
                doc.reject(g, "text outside any JSON value", into: &sink)
            }
        }
        router.finish(into: &sink)
    }

    private mutating func read(_ range: Range<Int>, _ doc: JSONDocumentBuffer, into sink: inout RecordSink) {
        let bytes = doc.slice(range)
        let (first, last) = doc.lineRange(range)
        func reject(_ why: String) { doc.reject(range, why, into: &sink) }
        guard case .success(var o) = AWSJSON.parseObject(bytes) else { return reject("invalid JSON") }
        if let awslogs = o["awslogs"] as? [String: Any] {
            guard let data = AWSJSON.string(awslogs["data"]) else { return reject("awslogs without a data string") }
            guard let compressed = Data(base64Encoded: data, options: [.ignoreUnknownCharacters]) else { return reject("awslogs.data is not base64") }
            guard let inflated = try? GzipInflater.gunzip(Array(compressed)) else { return reject("awslogs.data is not gzip data") }
            guard case .success(let payload) = AWSJSON.parseObject(inflated) else { return reject("awslogs.data does not hold a JSON object") }
            o = payload
        }
        let type = AWSJSON.string(o["messageType"])
        if type == "CONTROL_MESSAGE" { return sink.note("CONTROL_MESSAGE records (CloudWatch's reachability checks) carry no log events") }
        guard let events = o["logEvents"] as? [Any] else { return reject("no logEvents array: not a subscription payload") }
        let group = AWSJSON.meaningful(o["logGroup"]), stream = AWSJSON.meaningful(o["logStream"])
        for case let event as [String: Any] in events {
            guard let message = event["message"] else { reject("a log event without a message"); continue }
            var m = WrappedMessage(text: AWSJSON.string(message) ?? AWSJSON.compact(message), time: AWSJSON.millisToMicros(event["timestamp"]),
                                   line: first, lineEnd: last, raw: Array(AWSJSON.compact(event).utf8), logGroup: group, logStream: stream)
            if let owner = AWSJSON.meaningful(o["owner"]) { m.extra["owner"] = owner }
            router.add(m, into: &sink)
        }
    }
}
