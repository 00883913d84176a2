import Foundation

/// `aws logs filter-log-events` / `get-log-events` output: a JSON document with an `events` array
/// (pretty-printed by the CLI, often several pages pasted back to back), a bare array of events
/// (`--query events`), or one event per line (NDJSON from `jq -c '.events[]'`).
public struct CloudWatchJSONImporter: Importer {
    public init() {}

    public let id = "cloudwatch-json"
    /// API output saved whole: an unterminated last line is read as it is.
    public var writtenLive: Bool { false }
    public let title = "CloudWatch Logs filter-log-events / get-log-events JSON, any inner format"
    public let layer = Layer.system
    public let documentation = "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_FilterLogEvents.html"

    public let samples = [
        FormatSample(fileName: "filter-log-events.json", lines: [
            "{",
            "    \"events\": [",
            "        {",
            "            \"logStreamName\": \"2024/05/09/[$LATEST]abc1024\",",
            "            \"timestamp\": 1712568068991,",
            "            \"message\": \"START RequestId: 4b142fc3-17b8-4cdb-a46b-a8dbe7918715 Version: $LATEST\\n\",",
            "            \"ingestionTime\": 1712568070017,",
            "            \"eventId\": \"00001544141707904000000130886135001961903807164184002560\"",
            "        },",
            "        {",
            "            \"logStreamName\": \"2024/05/09/[$LATEST]abc1024\",",
            "            \"timestamp\": 1712568069001,",
            "            \"message\": \"REPORT RequestId: 4b142fc3-17b8-4cdb-a46b-a8dbe7918715\\tDuration: 11.64 ms\\tBilled Duration: 12 ms\\tMemory Size: 128 MB\\tMax Memory Used: 67 MB\\t\\n\",",
            "            \"ingestionTime\": 1712568070017,",
            "            \"eventId\": \"00001544141707904000000130886135001961903807164184002561\"",
            "        }",
            "    ],",
            "    \"searchedLogStreams\": []",
            "}",
        ]),
        FormatSample(fileName: "events.ndjson", lines: [
            #"{"logStreamName":"2024/05/09/[$LATEST]abc1024","timestamp":1712568068991,"message":"[INFO]\t2024-04-08T09:21:08.991Z\t4b142fc3-17b8-4cdb-a46b-a8dbe7918715\thello\n","ingestionTime":1712568070017,"eventId":"00001544141707904000000130886135001961903807164184002560"}"#,
        ]),
    ]

    public let fieldNotes = """
        Each event's `timestamp` (ms) → the inner event's `time` when it has none, else `alt_time`; \
        `logStreamName`/`logGroupName` → `extra.log_stream`/`extra.log_group`; `ingestionTime` → \
        `extra.ingestion_time`; `message` → the inner importer (its lines split on newlines). `raw` is the \
        event object's own bytes with its line range. The document is held in memory up to 256 MB; a \
        truncated document keeps every complete event before the cut and rejects the rest.
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        let joined = lines.joined(separator: "\n")
        guard let first = lines.first?.trimmingCharacters(in: .whitespaces), first.hasPrefix("{") || first.hasPrefix("[") else { return 0 }
        guard !joined.contains("\"logEvents\""), !joined.contains("\"awslogs\""), joined.contains("\"message\"") else { return 0 }
        // get-log-events events carry only timestamp, message and ingestionTime.
        if joined.contains("\"ingestionTime\"") || joined.contains("\"nextForwardToken\"") { return 1 }
        return joined.contains("\"eventId\"") && joined.contains("\"logStreamName\"") ? 1 : 0
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser {
        CloudWatchJSONParser(router: InnerFormatRouter(context: context, wrapperID: id))
    }
}

struct CloudWatchJSONParser: RecordParser {
    var router: InnerFormatRouter
    var document = JSONDocumentBuffer()

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        // No line of a JSON document starts with `#` (a string holds no raw newline).
        if line.isComment { return sink.rejectComment(line, notA: "part of a CloudWatch Logs JSON document") }
        document.append(line, into: &sink)
    }

    mutating func finish(into sink: inout RecordSink) {
        let doc = document
        document = JSONDocumentBuffer()
        doc.bytes.withUnsafeBufferPointer { b in
            let split = AWSJSON.splitConcatenated(b)
            for value in split.values { readValue(value, b, doc, complete: true, into: &sink) }
            if let t = split.truncated { readValue(t, b, doc, complete: false, into: &sink) }
            for g in split.garbage {
                doc.reject(g, "text outside any JSON value", into: &sink)
            }
        }
        router.finish(into: &sink)
    }

    /// Finds the event objects in one top-level value: the value itself (NDJSON), its elements (a
    /// bare array), or the elements of its arrays (`{"events":[…]}` pages).
    private mutating func readValue(_ range: Range<Int>, _ b: UnsafeBufferPointer<UInt8>, _ doc: JSONDocumentBuffer, complete: Bool,
                                    into sink: inout RecordSink) {
        var candidates: [Range<Int>] = []
        if b[range.lowerBound] == 0x5B {
            candidates = AWSJSON.nestedContainers(b, in: range, depth: 1).filter(\.isObject).map(\.range)
        } else {
            candidates = AWSJSON.nestedContainers(b, in: range, depth: 2).filter(\.isObject).map(\.range)
            if candidates.isEmpty, complete { candidates = [range] }
        }
        var found = 0, unreadable = 0
        var lastEnd = range.lowerBound
        // Lines between the records: frame, or debris kept as rejected. In a truncated value, up
        // to the last record (the rest is rejected whole below).
        defer { doc.accountOutside(candidates, in: complete ? range : range.lowerBound..<max(range.lowerBound, lastEnd), into: &sink) }
        for c in candidates {
            let bytes = Array(b[c])
            let (first, last) = doc.lineRange(c)
            let o: [String: Any]
            switch AWSJSON.parseObject(bytes) {
            case .failure(let why):
                // An event object that cannot be read is kept as rejected, never skipped.
                lastEnd = c.upperBound
                unreadable += 1
                doc.reject(c, "log event object is not valid JSON (\(why.description))", into: &sink)
                continue
            case .success(let parsed):
                o = parsed
            }
            // Objects without a message are the page's metadata (`searchedLogStreams`), not events;
            // an event object (stamped, with an id) that lost its message is kept as rejected.
            guard o["message"] != nil else {
                if o["timestamp"] != nil || o["eventId"] != nil || o["ingestionTime"] != nil {
                    unreadable += 1
                    doc.reject(c, "log event object has no message", into: &sink)
                } else {
                    // Its lines are the page's structure: accounted as framing, not left in nothing.
                    sink.framing(lines: last - first + 1)
                }
                lastEnd = c.upperBound
                continue
            }
            found += 1
            lastEnd = c.upperBound
            var m = WrappedMessage(text: AWSJSON.string(o["message"]) ?? AWSJSON.compact(o["message"] ?? ""),
                                   time: AWSJSON.millisToMicros(o["timestamp"]), line: first, lineEnd: last, raw: doc.slice(c),
                                   logGroup: AWSJSON.meaningful(o["logGroupName"]), logStream: AWSJSON.meaningful(o["logStreamName"]))
            if let ingestion = AWSJSON.millisToMicros(o["ingestionTime"]) { m.extra["ingestion_time"] = TimeFormat.isoUTC(ingestion) }
            router.add(m, into: &sink)
        }
        if !complete {
            let rest = lastEnd..<range.upperBound
            doc.reject(rest, "truncated JSON document: \(found) complete event(s) before the cut were kept", into: &sink)
        } else if found == 0, unreadable == 0 {
            let bytes = doc.slice(range)
            let isEmptyPage: Bool = {
                guard case .success(let o) = AWSJSON.parseObject(bytes) else { return false }
                return o["events"] != nil || o["nextToken"] != nil || o["nextForwardToken"] != nil
            }()
            if !isEmptyPage {
                doc.reject(range, "JSON value holds no log events (no object with a message)", into: &sink)
            }
        }
    }
}
