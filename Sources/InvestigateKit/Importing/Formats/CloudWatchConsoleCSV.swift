import Foundation

/// The CSV the CloudWatch console downloads from a metrics graph (Actions → "Download as .csv") or a
/// dashboard widget: recognised by a header that names CloudWatch metrics, and rejected line by line
/// with one reason that tells the user what to export instead. The `cloudwatch-metrics` importer
/// routes such a file here (`CloudWatchMetricsImporter`).
///
/// Why it is not read: no description or verified example of its layout could be found, so which
/// column holds the time, in which zone the console writes it (a browser page may write the
/// browser's local time; the file may or may not say), and which statistic, period, namespace and dimensions each value column
/// stands for are unknown. A reader would have to guess every one of them, and a guessed statistic
/// turns an Average of `4XXError` into a count of errors. Searched on 2026-12-05:
/// - the CloudWatch User Guide source (github.com/awsdocs/amazon-cloudwatch-user-guide,
///   `doc_source/graph_a_metric.md`: the graph's Actions are Share and Add to dashboard, no CSV; the
///   guide names CSV only for Contributor Insights' Export and API Gateway's access log formats) and
///   the excerpts of its current pages on docs.aws.amazon.com that search returns (graph_a_metric,
///   working_with_metrics);
/// - the API reference (GetMetricData, MetricDataResult, LabelOptions' `Timezone`, which applies to
///   dynamic labels only, not to a download);
/// - public repositories' code and issues for CSV files whose headers name `4XXError`,
///   `HTTPCode_ELB_5XX_Count`, `HTTPCode_Target_5XX_Count` or `BlockedRequests`, and for code that
///   parses a console download: only CSVs that scripts write from get-metric-statistics output
///   (their own layouts), and CloudFront's console report CSV (a different, documented report:
///   awsdocs/amazon-cloudfront-developer-guide `doc_source/cloudwatch-csv.md`);
/// - Q&A and blog pages on exporting CloudWatch metrics to CSV: all use the CLI or an SDK.
///
/// What is certain is narrow, and recognition keeps to it: a first line that splits as CSV (RFC 4180
/// quoting) into two or more short fields, one of which names a metric of a layer this tool reads
/// (`4XXError`, `HTTPCode_ELB_5XX_Count`, `BlockedRequests`, …) as a word of its own. A header that
/// holds a clock time (`08:00`), a bracket or a stray quote is a log line, not a header: an attacker
/// who puts a metric's name in a request path cannot make a log file look like a metrics download.
enum CloudWatchConsoleCSV {
    /// The reason every line of such a file is rejected with: one text, so `rejected_lines` counts
    /// them together. It quotes nothing from the file.
    static let reason = "CloudWatch console CSV download (a metrics graph's or dashboard widget's \"Download as .csv\") is not read: "
        + "no description or verified example of its layout could be found, so the time zone of its times and the statistic, period, "
        + "namespace and dimensions of its columns would be guesses; export the same metrics with `aws cloudwatch get-metric-data` "
        + "(or get-metric-statistics) and ingest that JSON, with the --metric-data-queries file beside it"

    /// Metric names that belong to the layers this tool reads and are not ordinary words: a CSV
    /// header naming one of them is about CloudWatch metrics. (`Count`, `Latency`, `Errors` are too
    /// common to tell anything.)
    static let distinctiveNames: Set<String> = [
        "4XXError", "5XXError", "IntegrationLatency", "CacheHitCount", "CacheMissCount",
        "RejectedConnectionCount", "TargetConnectionErrorCount", "TargetResponseTime", "UnHealthyHostCount", "HealthyHostCount",
        "BlockedRequests", "AllowedRequests", "CountedRequests", "PassedRequests", "CaptchaRequests", "ChallengeRequests",
    ]

    static let namespaces = ["AWS/ApiGateway", "AWS/ApplicationELB", "AWS/ELB", "AWS/WAFV2", "AWS/Lambda"]

    /// Longest header field read as a column name; longer ones are not a header's.
    static let maxFieldLength = 512

    /// The known metric names and namespaces a CSV header names, in the order found, or nil when
    /// the line is not such a header. The names come from the lists above, never from the file.
    static func metricNames(inHeader line: String) -> [String]? {
        guard let fields = headerFields(line) else { return nil }
        var found: [String] = []
        for field in fields {
            guard field.count <= maxFieldLength, !looksLikeLogText(field) else { return nil }
            for word in words(field) where (distinctiveNames.contains(word) || isLoadBalancerCode(word)) && !found.contains(word) {
                found.append(word)
            }
            for ns in namespaces where field.contains(ns) && !found.contains(ns) { found.append(ns) }
        }
        return found.contains { !$0.hasPrefix("AWS/") } ? found : nil
    }

    /// A first line's CSV fields, without a byte order mark before it or a CR after it; nil when it
    /// is not a CSV line of two or more fields, or starts as JSON, a Logs Insights header (`@`) or a comment.
    static func headerFields(_ line: String) -> [String]? {
        guard line.utf8.count <= 64 << 10 else { return nil }
        var text = Substring(line)
        if text.first == "\u{FEFF}" { text = text.dropFirst() }
        if text.last == "\r" { text = text.dropLast() }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let first = trimmed.first, first != "{", first != "[", first != "@", first != "#",
              let fields = CloudWatchInsightsParser.csvFields(String(text)), fields.count >= 2 else { return nil }
        return fields
    }

    /// `HTTPCode_ELB_5XX_Count`, `HTTPCode_Target_502_Count`, `HTTPCode_Backend_4XX`: the load
    /// balancers' response-code metrics, a class (`2XX`…`5XX`) or a code after the prefix and an
    /// optional `_Count`; nothing else, so a matched word is one of a closed set, not the file's text.
    static func isLoadBalancerCode(_ word: String) -> Bool {
        guard let prefix = ["HTTPCode_ELB_", "HTTPCode_Target_", "HTTPCode_Backend_"].first(where: word.hasPrefix) else { return false }
        var rest = Array(word.utf8.dropFirst(prefix.utf8.count))
        if rest.count == 9, String(decoding: rest.suffix(6), as: UTF8.self) == "_Count" { rest.removeLast(6) }
        guard rest.count == 3, (0x32...0x35).contains(rest[0]) else { return false }
        let digits = rest.dropFirst().allSatisfy { (0x30...0x39).contains($0) }
        return digits || rest.dropFirst().allSatisfy { $0 == 0x58 }
    }

    /// Runs of letters, digits and underscores (a metric name's characters).
    static func words(_ field: String) -> [String] {
        var out: [String] = []
        var current = ""
        for c in field.unicodeScalars {
            if c.isASCII, c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" {
                current.unicodeScalars.append(c)
            } else if !current.isEmpty {
                out.append(current); current = ""
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// What a column name does not hold and a log line does: a clock time, brackets, a quote left
    /// inside the field, control characters.
    static func looksLikeLogText(_ field: String) -> Bool {
        var digitsBefore = 0
        for c in field.unicodeScalars {
            if c == "[" || c == "]" || c == "{" || c == "}" || c == "\"" || c == "<" || c == ">" { return true }
            if c.value < 0x20 && c != "\t" || c.value == 0x7F { return true }
            if c == ":", digitsBefore >= 2 { return true }
            digitsBefore = ("0"..."9").contains(c) ? digitsBefore + 1 : 0
        }
        return false
    }

    /// Share (0…1) of the leading non-blank lines that belong to such a CSV: the header, and rows
    /// with as many fields as it. 0 when the first line is not such a header.
    static func recognize(_ lines: [String]) -> Double {
        guard let header = lines.first, metricNames(inHeader: header) != nil, let width = headerFields(header)?.count else { return 0 }
        let rows = lines.dropFirst()
        guard !rows.isEmpty else { return 1 }
        let matching = rows.filter { CloudWatchInsightsParser.csvFields($0.hasSuffix("\r") ? String($0.dropLast()) : $0)?.count == width }.count
        return Double(1 + matching) / Double(lines.count)
    }

    /// Inputs for the fuzzer's seeds (`FuzzHarness.seeds`): CSVs whose header names metrics, in
    /// layouts made up for the fuzzer; they are not the console's layout, which is unknown.
    static let fuzzSeeds: [[String]] = [
        ["Time,4XXError,5XXError", "2026-01-22 03:54:00,149,0", "2026-01-22 03:55:00,12,1"],
        ["\"Label\",\"HTTPCode_ELB_5XX_Count (AWS/ApplicationELB)\"", "\"x\",\"1\""],
        ["\u{FEFF}timestamp,BlockedRequests WebACL=acl Rule=ALL,AllowedRequests", "1769054040,3,40"],
    ]
}

/// Rejects every non-blank line of a console CSV download with `CloudWatchConsoleCSV.reason` and
/// says once, at the end, how many there were and which metrics the header named: a note that makes
/// the file an input problem (`InputProblems.refused`), named on stderr with exit status 1.
struct CloudWatchConsoleCSVParser: RecordParser {
    /// The metric names the header named (from `CloudWatchConsoleCSV`'s lists, not the file's text).
    var metrics: [String]
    var rejectedLines = 0

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if line.bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return }
        sink.reject(line, CloudWatchConsoleCSV.reason)
        rejectedLines += 1
    }

    mutating func finish(into sink: inout RecordSink) {
        let names = metrics.prefix(8).map { "`\($0)`" }.joined(separator: ", ") + (metrics.count > 8 ? ", …" : "")
        // Starts with `InputProblems.refused`: ingest and diagnose name the file on stderr and exit 1.
        sink.note(InputProblems.refused + "a CloudWatch console CSV download (its header names \(names)): all \(rejectedLines) of its "
            + "non-blank lines were rejected and none read as metric records, because its times' zone and its columns' statistic and period are "
            + "not known; run `aws cloudwatch get-metric-data --metric-data-queries file://queries.json --start-time … --end-time …` "
            + "for the same metrics and ingest its output with queries.json beside it")
    }
}
