import Foundation

/// CloudWatch Logs Insights results: `aws logs get-query-results` JSON (`results` rows of
/// `{field, value}` pairs) and a CSV table whose header names the query's fields (`@timestamp`,
/// `@message`, …). The CSV layout is not documented by AWS: read by its header, RFC 4180 quoting.
public struct CloudWatchInsightsImporter: Importer {
    public init() {}

    public let id = "cloudwatch-insights"
    /// Query results are saved whole: an unterminated last line is read as it is.
    public var writtenLive: Bool { false }
    public let title = "CloudWatch Logs Insights query results (JSON or CSV), any inner format"
    public let layer = Layer.system
    public let documentation = "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetQueryResults.html"

    public let samples = [
        FormatSample(fileName: "query-results.json", lines: [
            #"{ "results": [ [ {"field": "@timestamp", "value": "2024-05-19 06:10:35.743"}, {"field": "@message", "value": "START RequestId: 4b142fc3-17b8-4cdb-a46b-a8dbe7918715 Version: $LATEST"}, {"field": "@logStream", "value": "2024/05/19/[$LATEST]abc1024"}, {"field": "@log", "value": "123456789012:/aws/lambda/my-function"}, {"field": "@ptr", "value": "ClQKGAoU"} ] ],"#,
            #"  "statistics": {"recordsMatched": 1.0, "recordsScanned": 3.0, "bytesScanned": 141.0}, "status": "Complete" }"#,
        ]),
        FormatSample(fileName: "logs-insights-results.csv", lines: [
            "@timestamp,@message,@logStream",
            "2024-05-19 06:10:35.743,\"(286364ab-3a83-11e9-8dc8-db3cf4c83204) Method completed with status: 502\",e369853df766fa44e1ed0ff613f563bd",
            "2024-05-19 06:10:35.744,\"(286364ab-3a83-11e9-8dc8-db3cf4c83204) X-ray Tracing ID : 1-5c7674f4-a3491d0a9c8012c191821b83\",e369853df766fa44e1ed0ff613f563bd",
        ]),
    ]

    public let fieldNotes = """
        `@timestamp` (UTC, `YYYY-MM-DD HH:MM:SS.mmm`) → the inner event's `time` when it has none, else \
        `alt_time`; `@message` → the inner importer, chosen for each log group (`@log`) by its own rows; `@logStream` → `extra.log_stream`; `@log` \
        (`account:group`) → `extra.log_group`; every other column → `extra.<field>` (without `@`). Rows \
        without `@message` become plain events of their columns. JSON results are held in memory up to 256 MB.
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        guard let first = lines.first?.trimmingCharacters(in: .whitespaces) else { return 0 }
        if first.hasPrefix("{") || first.hasPrefix("[") {
            let joined = lines.joined(separator: "\n")
            return joined.contains("\"results\"") && joined.contains("\"field\"") && joined.contains("\"@") ? 1 : 0
        }
        let header = CloudWatchInsightsParser.csvFields(first) ?? []
        return header.contains("@timestamp") || header.contains("@message") ? 1 : 0
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser {
        CloudWatchInsightsParser(router: InnerFormatRouter(context: context, wrapperID: id))
    }
}

struct CloudWatchInsightsParser: RecordParser {
    var router: InnerFormatRouter
    var document = JSONDocumentBuffer()
    private var mode: Mode = .undecided

    init(router: InnerFormatRouter) { self.router = router }
    /// One router per log group (`@log`): a query over several groups (nginx's beside a Lambda's)
    /// mixes formats row by row, and each group's rows are read in their own format.
    private var routers: [String: InnerFormatRouter] = [:]
    private var groupOrder: [String] = []
    private var header: [String] = []
    private var headerLine = 0
    private var csvRows = 0
    private var pendingRecord: (text: String, raw: [UInt8], line: Int, lineEnd: Int)?

    enum Mode { case undecided, json, csv }

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        // Not inside a quoted CSV field that spans lines: a `#` line is a comment (no JSON line
        // starts with one either).
        if line.isComment, pendingRecord == nil { return sink.rejectComment(line, notA: "a Logs Insights result") }
        if mode == .undecided {
            if line.isEmpty { return }
            let t = line.text.trimmingCharacters(in: .whitespaces)
            mode = t.hasPrefix("{") || t.hasPrefix("[") ? .json : .csv
        }
        switch mode {
        case .json: document.append(line, into: &sink)
        case .csv: consumeCSV(line, into: &sink)
        case .undecided: break
        }
    }

    mutating func finish(into sink: inout RecordSink) {
        if mode == .json { finishJSON(into: &sink) }
        if let p = pendingRecord {
            pendingRecord = nil
            sink.reject(line: p.line, reason: "unterminated quoted CSV field at end of file", raw: p.raw)
        }
        // A query that matched nothing exports only its header; say so rather than show nothing.
        if mode == .csv, !header.isEmpty, csvRows == 0 {
            sink.note("CSV export of a header (line \(headerLine)) and no result rows")
        }
        if groupOrder.isEmpty { router.finish(into: &sink) }
        for key in groupOrder { routers[key]?.finish(into: &sink) }
    }

    // MARK: CSV

    /// Splits one CSV record (RFC 4180); nil while a quoted field is still open.
    static func csvFields(_ text: String) -> [String]? {
        var fields: [String] = []
        var current = ""
        var quoted = false
        var iterator = Array(text).makeIterator()
        var pendingQuote = false
        while let c = iterator.next() {
            if pendingQuote {
                pendingQuote = false
                if c == "\"" { current.append("\""); continue }
                quoted = false
            }
            if quoted {
                if c == "\"" { pendingQuote = true } else { current.append(c) }
            } else if c == "\"" && current.isEmpty {
                quoted = true
            } else if c == "," {
                fields.append(current); current = ""
            } else {
                current.append(c)
            }
        }
        if pendingQuote { quoted = false }
        if quoted { return nil }
        fields.append(current)
        return fields
    }

    private mutating func consumeCSV(_ line: Line, into sink: inout RecordSink) {
        var record = (text: line.text, raw: line.copyBytes(), line: line.number, lineEnd: line.number)
        if let p = pendingRecord {
            record = (p.text + "\n" + record.text, p.raw + [0x0A] + record.raw, p.line, line.number)
        }
        if record.text.isEmpty { return }
        guard let fields = Self.csvFields(record.text) else {
            if record.raw.count > 4 << 20 {
                pendingRecord = nil
                return sink.reject(line: record.line, reason: "quoted CSV field runs past 4 MB: unterminated quote", raw: Array(record.raw.prefix(64 << 10)))
            }
            pendingRecord = record
            return
        }
        pendingRecord = nil
        if header.isEmpty {
            header = fields.map { $0.trimmingCharacters(in: .whitespaces) }
            headerLine = record.line
            sink.framing(lines: record.lineEnd - record.line + 1)
            return
        }
        csvRows += 1
        guard fields.count == header.count else {
            return sink.reject(line: record.line, reason: "\(fields.count) CSV fields where the header has \(header.count)", raw: record.raw)
        }
        emit(Dictionary(zip(header, fields), uniquingKeysWith: { a, _ in a }), line: record.line, lineEnd: record.lineEnd, raw: record.raw, into: &sink)
    }

    // MARK: JSON

    private mutating func finishJSON(into sink: inout RecordSink) {
        let doc = document
        document = JSONDocumentBuffer()
        doc.bytes.withUnsafeBufferPointer { b in
            let split = AWSJSON.splitConcatenated(b)
            var ranges = split.values
            if let t = split.truncated { ranges.append(t) }
            for value in ranges {
                // `{"results": [[…], […]]}`: the rows are arrays two levels down.
                let rows = AWSJSON.nestedContainers(b, in: value, depth: 2).filter { !$0.isObject }.map(\.range)
                var lastEnd = value.lowerBound
                defer {
                    // Lines between the rows: frame, or debris kept as rejected; in a truncated
                    // value, up to the last row (the rest is rejected whole below).
                    if !rows.isEmpty { doc.accountOutside(rows, in: value == split.truncated ? value.lowerBound..<max(value.lowerBound, lastEnd) : value, into: &sink) }
                }
                for row in rows {
                    // A row that cannot be read is kept as rejected, never skipped: it is evidence.
                    let raw = doc.slice(row)
                    let (first, last) = doc.lineRange(row)
                    lastEnd = row.upperBound
                    let cells: [Any]
                    switch AWSJSON.parse(raw) {
                    case .failure(let why):
                        doc.reject(row, "Logs Insights result row is not valid JSON (\(why.description))", into: &sink)
                        continue
                    case .success(let parsed):
                        cells = parsed as? [Any] ?? []
                    }
                    var fields: [String: String] = [:]
                    for case let cell as [String: Any] in cells {
                        if let name = AWSJSON.string(cell["field"]) { fields[name] = AWSJSON.string(cell["value"]) ?? "" }
                    }
                    guard !fields.isEmpty else {
                        doc.reject(row, "Logs Insights result row holds no {\"field\", \"value\"} cells", into: &sink)
                        continue
                    }
                    emit(fields, line: first, lineEnd: last, raw: raw, into: &sink)
                }
                if value == split.truncated {
                    let rest = lastEnd..<value.upperBound
                    doc.reject(rest, "truncated JSON document: rows before the cut were kept", into: &sink)
                } else if rows.isEmpty {
                    doc.reject(value, "JSON value holds no Logs Insights result rows", into: &sink)
                }
            }
            for g in split.garbage {
                doc.reject(g, "text outside any JSON value", into: &sink)
            }
        }
    }

    private mutating func emit(_ fields: [String: String], line: Int, lineEnd: Int, raw: [UInt8], into sink: inout RecordSink) {
        var extra: [String: String] = [:]
        for (k, v) in fields where !["@timestamp", "@message", "@logStream", "@log"].contains(k) && !v.isEmpty {
            extra[k.hasPrefix("@") ? String(k.dropFirst()) : k] = v
        }
        let group = fields["@log"].map { value -> String in
            guard let colon = value.firstIndex(of: ":") else { return value }
            return String(value[value.index(after: colon)...])
        }
        let message = fields["@message"] ?? extra.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let m = WrappedMessage(text: message, time: fields["@timestamp"].flatMap(AWSTime.iso8601), line: line, lineEnd: lineEnd, raw: raw,
                               logGroup: group, logStream: fields["@logStream"], extra: extra)
        let key = group ?? ""
        if routers[key] == nil {
            routers[key] = groupOrder.isEmpty ? router : InnerFormatRouter(context: router.context, wrapperID: router.wrapperID)
            groupOrder.append(key)
        }
        routers[key]?.add(m, into: &sink)
    }
}
