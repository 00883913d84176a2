import Foundation

/// CloudWatch metric datapoints as `aws cloudwatch get-metric-data` and `get-metric-statistics`
/// print them: one record (kind `metric`) per datapoint, on the layer the metric belongs to.
///
/// Neither output names the metric's namespace or dimensions: get-metric-data gives each result's
/// `Id` and `Label` (the metric name unless the query set a label: the CLI reference's billing
/// example prints `"Label": "EstimatedCharges"` for a query without one), get-metric-statistics
/// only `Label` (the metric name). The importer learns them from the query the user ran when it
/// lies beside the output: a `--metric-data-queries` file (a JSON array of queries, or
/// `--cli-input-json` with `MetricDataQueries`) or a get-metric-statistics `--cli-input-json`
/// (`Namespace`, `MetricName`, `Dimensions`, `Period`, `Statistics`). Without one, a metric name
/// that belongs to one layer only (`HTTPCode_ELB_5XX_Count`, `BlockedRequests`) names the layer;
/// any other (`4XXError` is both API Gateway's and AppSync's) is stored on layer `system` with
/// namespace, layer and statistic unknown, and a note says so: the importer never guesses.
///
/// The console's "Download as .csv" is recognised by its header and rejected line by line with
/// what to export instead (`CloudWatchConsoleCSV`, which lists what was searched for its layout).
public struct CloudWatchMetricsImporter: Importer {
    // Context the diagnosis reads beyond the window's margin (`Importer.storedWholeForAWindow`).
    public var storedWholeForAWindow: Bool { true }

    public init() {}

    public let id = "cloudwatch-metrics"
    public var writtenLive: Bool { false }
    public let title = "CloudWatch metrics: get-metric-data / get-metric-statistics JSON (and the query files beside them)"
    public let layer = Layer.system
    public let documentation = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html"

    // Shapes from the CLI reference's examples (get-metric-data, get-metric-statistics), with the
    // API Gateway metrics of this tool's cases.
    public let samples = [
        FormatSample(fileName: "apigw-4xx.json", lines: [
            "{",
            "    \"MetricDataResults\": [",
            "        {",
            "            \"Id\": \"m1\",",
            "            \"Label\": \"HTTPCode_ELB_5XX_Count\",",
            "            \"Timestamps\": [",
            "                \"2024-09-29T22:11:00+00:00\",",
            "                \"2024-09-29T22:10:00+00:00\"",
            "            ],",
            "            \"Values\": [",
            "                14.0,",
            "                2.0",
            "            ],",
            "            \"StatusCode\": \"Complete\"",
            "        }",
            "    ],",
            "    \"Messages\": []",
            "}",
        ]),
        FormatSample(fileName: "4xxerror-statistics.json", lines: [
            "{",
            "    \"Label\": \"4XXError\",",
            "    \"Datapoints\": [",
            "        {",
            "            \"Timestamp\": \"2024-09-29T22:10:00+00:00\",",
            "            \"Sum\": 42.0,",
            "            \"Unit\": \"Count\"",
            "        }",
            "    ]",
            "}",
        ]),
    ]

    public let fieldNotes = """
        One record per datapoint, kind `metric`: `time` = the datapoint's timestamp (the start of its \
        period); `message` = `<namespace> <metric> <stat> <value> per <period> s (<dimensions>)`; `extra.namespace`, \
        `extra.metric`, `extra.dimensions` (`Name=Value,…`), `extra.period` (s), `extra.stat`, `extra.value`, `extra.unit`, \
        `extra.id`, `extra.label`, `extra.status_code`. `raw` is the datapoint as written: get-metric-data's timestamp and \
        value tokens (`"2024-09-29T22:10:00+00:00" 14.0`, from its parallel `Timestamps`/`Values` arrays), \
        get-metric-statistics' datapoint object. Namespace, dimensions, period and statistic come from a query file in \
        the same directory (`--metric-data-queries` JSON by `Id`, or get-metric-statistics `--cli-input-json` by \
        `MetricName`), which this importer also reads (its lines are framing, with a note); without one they are left \
        out and a metric name that several services use (`4XXError`, `Count`, `Latency`) is stored on layer `system` \
        with a note, never guessed. The query file must lie beside the output when the output is first ingested: a stored \
        output is not read again when a query file appears later (ingest into a new `--db`). A datapoint that is not a number or not a stamp, a result whose timestamps and \
        values differ in number, or a get-metric-statistics datapoint without a statistic is rejected with the reason. \
        Metric records never count as the layer's logs (`source_layer`), nor as requests. The console's "Download as \
        .csv" (a CSV whose first line names metrics such as `4XXError`, `HTTPCode_ELB_5XX_Count` or `BlockedRequests`) is \
        recognised and not read: no description or verified example of its layout could be found, so its times' zone and its \
        columns' statistic and period are unknown; each of its lines is rejected with one reason that says to export \
        with `aws cloudwatch get-metric-data` instead, and a note counts them; the file is named on stderr as not read \
        (exit status 1).
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        guard let first = lines.first?.trimmingCharacters(in: .whitespaces) else { return 0 }
        // The console's CSV download: recognised so that it is rejected with what to export instead.
        guard first.hasPrefix("{") || first.hasPrefix("[") else { return CloudWatchConsoleCSV.recognize(lines) }
        let joined = lines.joined(separator: "\n")
        if joined.contains("\"MetricDataResults\"") { return 1 }
        if joined.contains("\"Datapoints\"") && joined.contains("\"Label\"") { return 1 }
        if joined.contains("\"MetricStat\"") || joined.contains("\"MetricDataQueries\"") { return 1 }
        if joined.contains("\"MetricName\"") && joined.contains("\"Namespace\"") && joined.contains("\"Statistics\"") { return 1 }
        return 0
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser {
        CloudWatchMetricsFileParser(json: CloudWatchMetricsParser(queries: MetricQueries.beside(context.path)))
    }
}

/// A metrics file is JSON (an output or a query file) or a console CSV download, told apart by its
/// first line that is neither blank nor a comment: a CSV header naming metrics goes to
/// `CloudWatchConsoleCSVParser`, which rejects the file line by line; anything else to the JSON parser.
struct CloudWatchMetricsFileParser: RecordParser {
    var json: CloudWatchMetricsParser
    var csv: CloudWatchConsoleCSVParser?
    var decided = false

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if csv != nil { return csv!.consume(line, into: &sink) }
        if !decided, !line.isComment, !line.bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) {
            decided = true
            if let names = CloudWatchConsoleCSV.metricNames(inHeader: line.text) {
                // Blank lines before the header were handed to the JSON parser, which is dropped.
                csv = CloudWatchConsoleCSVParser(metrics: names)
                return csv!.consume(line, into: &sink)
            }
        }
        json.consume(line, into: &sink)
    }

    mutating func finish(into sink: inout RecordSink) {
        if csv != nil { return csv!.finish(into: &sink) }
        json.finish(into: &sink)
    }
}

/// What a query file says about the metric of one result.
struct MetricQuery: Equatable {
    var namespace: String?
    var metric: String?
    var dimensions: String?
    var period: Int64?
    var stat: String?
    var label: String?
}

/// The query files beside an output: get-metric-data queries by `Id`, get-metric-statistics
/// inputs by `MetricName`.
struct MetricQueries {
    var byID: [String: MetricQuery] = [:]
    var byName: [String: MetricQuery] = [:]
    var ambiguous: Set<String> = []
    var files: [String] = []

    /// Query files are a few KB; larger JSON beside the output (logs) is not opened.
    static let maxFileBytes = 256 << 10

    static func beside(_ path: String) -> MetricQueries {
        var out = MetricQueries()
        let directory = (path as NSString).deletingLastPathComponent
        guard !directory.isEmpty,
              let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return out }
        for name in names.sorted().prefix(200) where name.lowercased().hasSuffix(".json") {
            let file = (directory as NSString).appendingPathComponent(name)
            guard file != path,
                  let attributes = try? FileManager.default.attributesOfItem(atPath: file),
                  (attributes[.type] as? FileAttributeType) == .typeRegular,
                  let size = attributes[.size] as? Int, size <= maxFileBytes,
                  let data = FileManager.default.contents(atPath: file),
                  data.range(of: Data("MetricName".utf8)) != nil,
                  let value = try? JSONSerialization.jsonObject(with: data) else { continue }
            if out.add(value) { out.files.append(name) }
        }
        return out
    }

    /// Adds the queries of one parsed file; false if it holds none.
    @discardableResult
    mutating func add(_ value: Any) -> Bool {
        var any = false
        if let list = value as? [Any] ?? (value as? [String: Any]).flatMap({ JSONRecords.value($0, "MetricDataQueries") as? [Any] }) {
            for case let q as [String: Any] in list {
                guard let id = JSONRecords.string(q, "Id") else { continue }
                let stat = JSONRecords.object(q, "MetricStat")
                let metric = JSONRecords.object(stat, "Metric")
                var query = MetricQuery(namespace: JSONRecords.string(metric, "Namespace"), metric: JSONRecords.string(metric, "MetricName"),
                                        dimensions: MetricQueries.dimensions(metric.flatMap { JSONRecords.value($0, "Dimensions") }),
                                        period: stat.flatMap { AWSJSON.int(JSONRecords.value($0, "Period")) }, stat: JSONRecords.string(stat, "Stat"),
                                        label: JSONRecords.string(q, "Label"))
                if stat == nil { query.metric = nil }
                insert(id, query, byName: false)
                any = true
            }
        } else if let o = value as? [String: Any], let name = JSONRecords.string(o, "MetricName") {
            let stats = (JSONRecords.value(o, "Statistics") as? [Any])?.compactMap(AWSJSON.meaningful)
            insert(name, byName: true, MetricQuery(namespace: JSONRecords.string(o, "Namespace"), metric: name,
                                              dimensions: MetricQueries.dimensions(JSONRecords.value(o, "Dimensions")),
                                              period: AWSJSON.int(JSONRecords.value(o, "Period")), stat: stats?.count == 1 ? stats?.first : nil))
            any = true
        }
        return any
    }

    private mutating func insert(_ key: String, _ q: MetricQuery, byName: Bool) {
        let have = byName ? self.byName[key] : byID[key]
        if let have, have != q { ambiguous.insert(key) }
        if byName { self.byName[key] = q } else { byID[key] = q }
    }

    private mutating func insert(_ key: String, byName: Bool, _ q: MetricQuery) { insert(key, q, byName: byName) }

    static func dimensions(_ value: Any?) -> String? {
        guard let list = value as? [Any], !list.isEmpty else { return nil }
        let pairs = list.compactMap { item -> String? in
            guard let d = item as? [String: Any], let name = JSONRecords.string(d, "Name") else { return nil }
            return "\(name)=\(JSONRecords.string(d, "Value") ?? "")"
        }
        return pairs.isEmpty ? nil : pairs.joined(separator: ",")
    }

    func forResult(id: String?, label: String?) -> MetricQuery? {
        if let id, !ambiguous.contains(id), let q = byID[id] { return q }
        return nil
    }

    func forStatistics(label: String?) -> MetricQuery? {
        if let label, !ambiguous.contains(label), let q = byName[label] { return q }
        return nil
    }
}

/// Which layer a metric belongs to, and what that layer's logs leave out that the metric counts.
public enum MetricCatalog {
    public static func layer(namespace: String) -> Layer? {
        switch namespace {
        case "AWS/ApiGateway": return .apigateway
        case "AWS/ApplicationELB", "AWS/ELB": return .alb
        case "AWS/WAFV2", "WAF", "AWS/WAF": return .waf
        case "AWS/Lambda": return .lambda
        default: return nil
        }
    }

    /// A metric name that only one layer's namespace uses, so the name alone tells the layer.
    public static func layer(uniqueName name: String) -> Layer? {
        if name.hasPrefix("HTTPCode_ELB_") || name.hasPrefix("HTTPCode_Target_") || name == "RejectedConnectionCount"
            || name == "TargetConnectionErrorCount" { return .alb }
        if ["BlockedRequests", "AllowedRequests", "CountedRequests", "PassedRequests", "CaptchaRequests", "ChallengeRequests"].contains(name) { return .waf }
        return nil
    }

    /// The metrics that count error responses (or blocked requests) of a layer, summed per period.
    public static func countsErrors(_ metric: String) -> Bool {
        ["4XXError", "5XXError", "HTTPCode_ELB_4XX_Count", "HTTPCode_ELB_5XX_Count", "HTTPCode_ELB_502_Count",
         "HTTPCode_ELB_503_Count", "HTTPCode_ELB_504_Count", "HTTPCode_Target_4XX_Count", "HTTPCode_Target_5XX_Count",
         "RejectedConnectionCount", "BlockedRequests", "Errors"].contains(metric)
    }

    /// What a layer's logs leave unlogged that its metrics still count.
    public static func unlogged(_ layer: Layer) -> String {
        switch layer {
        case .apigateway:
            return "API Gateway's own responses (403 Missing Authentication Token for unknown routes, 429 throttling, WAF_FILTERED, 413/431) are sent before method execution and never reach its execution log or the integration; only the stage's access log, when enabled, records them"
        case .alb:
            return "responses the load balancer generates itself (ELB 502/503/504, 4xx for malformed requests) appear only in its access log when access logging is on, and rejected connections never form a request in any log"
        case .waf:
            return "requests the web ACL blocked leave no WAF log record when a logging filter drops BLOCK records, logging is off, or the request was answered by a rule whose logs are filtered"
        case .lambda:
            return "invocations that failed before the function's code ran (throttles, init errors) leave little or nothing in the function's log"
        default:
            return "what its logs do not show"
        }
    }
}

struct CloudWatchMetricsParser: RecordParser {
    var queries: MetricQueries
    var document = JSONDocumentBuffer()

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if line.isComment { return sink.rejectComment(line, notA: "part of a CloudWatch metrics JSON document") }
        document.append(line, into: &sink)
    }

    mutating func finish(into sink: inout RecordSink) {
        let doc = document
        document = JSONDocumentBuffer()
        let queries = self.queries
        if !queries.files.isEmpty {
            sink.note("metric names, namespaces and dimensions from the query file\(queries.files.count == 1 ? "" : "s") beside it: \(queries.files.joined(separator: ", "))")
        }
        JSONRecords.read(doc, noun: "metric datapoint", into: &sink, isPage: { top in
            // A query file, or an empty result page.
            var probe = MetricQueries()
            if probe.add(top) { return true }
            guard let o = top as? [String: Any] else { return false }
            return JSONRecords.value(o, "MetricDataResults") != nil || JSONRecords.value(o, "Datapoints") != nil
                || JSONRecords.value(o, "Messages") != nil
        }, isRecord: { _ in false }, handle: { range, object, top, sink in
            if JSONRecords.value(object, "Timestamps") != nil || JSONRecords.value(object, "Values") != nil {
                return Self.result(range, object, doc, queries, into: &sink)
            }
            if JSONRecords.value(object, "Timestamp") != nil || top.map({ JSONRecords.value($0, "Datapoints") != nil }) ?? false {
                return Self.datapoint(range, object, top, doc, queries, into: &sink)
            }
            // `Messages` entries, query definitions and their dimensions: the page's metadata.
            return .metadata
        })
        // A query file alone holds no datapoints: its lines were counted as framing.
        if doc.bytes.count <= MetricQueries.maxFileBytes {
            var probe = MetricQueries()
            if let value = try? JSONSerialization.jsonObject(with: Data(doc.bytes)), probe.add(value) {
                sink.note("a metric query file (no datapoints): it names the metrics of the get-metric-data/get-metric-statistics output beside it")
            }
        }
    }

    /// Fills the metric's identity and layer; nil namespace when unknown.
    static func identify(_ e: inout Event, query: MetricQuery?, name: String?, id: String?, label: String?, into sink: inout RecordSink) {
        let metric = query?.metric ?? name
        let namespace = query?.namespace
        var layer = namespace.flatMap(MetricCatalog.layer(namespace:))
        if layer == nil, namespace == nil, let metric { layer = MetricCatalog.layer(uniqueName: metric) }
        e.layer = layer ?? .system
        if let namespace { e.extra["namespace"] = namespace }
        if let metric { e.extra["metric"] = metric }
        if let d = query?.dimensions { e.extra["dimensions"] = d }
        if let p = query?.period { e.extra["period"] = String(p) }
        if let s = query?.stat { e.extra["stat"] = s }
        if let id { e.extra["id"] = id }
        if let label { e.extra["label"] = label }
        if layer == nil {
            sink.note("metric \(metric.map { "`\($0)`" } ?? "without a name") (result \(id ?? label ?? "?")): its namespace is not in the file and no query file beside it names it, so its layer is unknown (stored on layer system, namespace left out); put the --metric-data-queries JSON beside the output to have it used")
        } else if query == nil {
            sink.note("metric \(metric ?? "?") read from its label alone: namespace, dimensions, period and statistic are unknown without the query file beside it")
        }
    }

    static func describe(_ e: inout Event, value: Double, unit: String?) {
        let text = value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        e.extra["value"] = text
        if let unit { e.extra["unit"] = unit }
        var parts = [e.extra["namespace"] ?? "(namespace unknown)", e.extra["metric"] ?? e.extra["label"] ?? "(metric unknown)"]
        parts.append(e.extra["stat"] ?? "(statistic unknown)")
        parts.append(text)
        if let p = e.extra["period"] { parts.append("per \(p) s") }
        if let d = e.extra["dimensions"] { parts.append("(\(d))") }
        e.message = parts.joined(separator: " ")
    }

    /// One get-metric-data result: parallel `Timestamps` and `Values`.
    static func result(_ range: Range<Int>, _ o: [String: Any], _ doc: JSONDocumentBuffer, _ queries: MetricQueries,
                       into sink: inout RecordSink) -> JSONRecords.Outcome {
        let id = JSONRecords.string(o, "Id"), label = JSONRecords.string(o, "Label")
        guard let stamps = JSONRecords.value(o, "Timestamps") as? [Any], let values = JSONRecords.value(o, "Values") as? [Any] else {
            doc.reject(range, "metric result \(id ?? "?") lacks its Timestamps or Values array", into: &sink)
            return .taken([range])
        }
        guard stamps.count == values.count else {
            doc.reject(range, "metric result \(id ?? "?") has \(stamps.count) timestamps but \(values.count) values: the datapoints cannot be paired", into: &sink)
            return .taken([range])
        }
        let tokens: ([Range<Int>], [Range<Int>])? = doc.bytes.withUnsafeBufferPointer { b in
            guard let t = JSONRecords.arrayElements(b, object: range, key: "Timestamps"),
                  let v = JSONRecords.arrayElements(b, object: range, key: "Values"), t.count == stamps.count, v.count == values.count else { return nil }
            return (t, v)
        }
        guard let (tRanges, vRanges) = tokens else {
            doc.reject(range, "metric result \(id ?? "?"): its Timestamps/Values arrays could not be located in the text", into: &sink)
            return .taken([range])
        }
        if let status = JSONRecords.string(o, "StatusCode"), status != "Complete" {
            sink.note("metric result \(id ?? "?") has StatusCode \(status): not every datapoint of the requested range is in the file")
        }
        let query = queries.forResult(id: id, label: label)
        if stamps.isEmpty { sink.note("metric result \(id ?? label ?? "?") holds no datapoints") }
        var parts: [Range<Int>] = []
        for i in 0..<stamps.count {
            let tr = tRanges[i], vr = vRanges[i]
            let lower = min(tr.lowerBound, vr.lowerBound), upper = max(tr.upperBound, vr.upperBound)
            parts.append(lower..<upper)
            let raw = doc.slice(tr) + [0x20] + doc.slice(vr)
            let (a, _) = doc.lineRange(lower..<upper)
            let lineEnd = doc.line(at: upper - 1)
            guard let time = JSONRecords.time(stamps[i]), stamps[i] is String else {
                sink.rejected.append(RejectedLine(line: a, lineEnd: lineEnd, reason: "metric datapoint \(i + 1) of \(id ?? "?"): timestamp is not an ISO-8601 stamp", raw: raw))
                continue
            }
            guard let value = (values[i] as? NSNumber).map(\.doubleValue), value.isFinite, !(values[i] is String) else {
                sink.rejected.append(RejectedLine(line: a, lineEnd: lineEnd, reason: "metric datapoint \(i + 1) of \(id ?? "?"): value is not a number", raw: raw))
                continue
            }
            var e = Event(time: time, layer: .system, kind: .metric, line: a, lineEnd: lineEnd, raw: raw)
            identify(&e, query: query, name: query?.metric ?? label, id: id, label: label, into: &sink)
            if let s = JSONRecords.string(o, "StatusCode") { e.extra["status_code"] = s }
            describe(&e, value: value, unit: nil)
            sink.emit(e)
        }
        return .taken(parts.isEmpty ? [range] : parts)
    }

    /// One get-metric-statistics datapoint object.
    static func datapoint(_ range: Range<Int>, _ o: [String: Any], _ top: [String: Any]?, _ doc: JSONDocumentBuffer, _ queries: MetricQueries,
                          into sink: inout RecordSink) -> JSONRecords.Outcome {
        let (first, last) = doc.lineRange(range)
        let raw = doc.slice(range)
        guard let stamp = JSONRecords.value(o, "Timestamp") as? String, let time = AWSTime.iso8601(AWSJSON.trimmedBlanks(stamp)) else {
            sink.rejected.append(RejectedLine(line: first, lineEnd: last, reason: "metric datapoint has no ISO-8601 Timestamp", raw: raw))
            return .taken([range])
        }
        let label = top.flatMap { JSONRecords.string($0, "Label") }
        var query = queries.forStatistics(label: label)
        var chosen: (String, Double)?
        for stat in ["Sum", "SampleCount", "Average", "Maximum", "Minimum"] {
            guard let v = JSONRecords.value(o, stat) else { continue }
            guard let n = v as? NSNumber, !(v is String), n.doubleValue.isFinite else {
                sink.rejected.append(RejectedLine(line: first, lineEnd: last, reason: "metric datapoint: \(stat) is not a number", raw: raw))
                return .taken([range])
            }
            if chosen == nil { chosen = (stat, n.doubleValue) }
        }
        if chosen == nil, let ext = JSONRecords.value(o, "ExtendedStatistics") as? [String: Any],
           let (k, v) = ext.sorted(by: { $0.key < $1.key }).first, let n = v as? NSNumber {
            chosen = (k, n.doubleValue)
        }
        guard let (stat, value) = chosen else {
            sink.rejected.append(RejectedLine(line: first, lineEnd: last, reason: "metric datapoint has no statistic (Sum, SampleCount, Average, Maximum, Minimum or ExtendedStatistics)", raw: raw))
            return .taken([range])
        }
        if top == nil { sink.note("the document is truncated: its Label (the metric name) was not read, so its datapoints' metric is unknown") }
        query = query ?? MetricQuery()
        query?.stat = stat
        if query?.metric == nil { query?.metric = label }
        var e = Event(time: time, layer: .system, kind: .metric, line: first, lineEnd: last, raw: raw)
        identify(&e, query: queries.forStatistics(label: label) == nil ? nil : query, name: label, id: nil, label: label, into: &sink)
        e.extra["stat"] = stat
        describe(&e, value: value, unit: JSONRecords.string(o, "Unit"))
        sink.emit(e)
        return .taken([range])
    }
}
