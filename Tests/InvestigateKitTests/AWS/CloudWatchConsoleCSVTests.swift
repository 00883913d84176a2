import Foundation
import Testing
@testable import InvestigateKit

/// The CloudWatch console's "Download as .csv": its layout is undocumented and no verified example
/// exists (see `CloudWatchConsoleCSV`), so a CSV whose header names CloudWatch metrics is recognised
/// and every line of it rejected with one reason saying what to export instead; never read by a
/// guessed layout, never skipped in silence.
///
/// The CSVs below are made up for these tests: they are not the console's layout, which is unknown.
/// What they share with it is the one thing certain, a CSV header that names metrics.
@Suite struct CloudWatchConsoleCSVTests {
    static let metrics = CloudWatchMetricsImporter()

    static let apiGateway = ["Time,4XXError,5XXError", "2026-01-22 03:54:00,149,0", "2026-01-22 03:55:00,12,1"]

    @Test func aCSVWhoseHeaderNamesMetricsIsRecognisedAndEveryLineRejected() throws {
        #expect(ImporterRegistry.standard.detect(Self.apiGateway, fileName: "metrics.csv").importer?.id == "cloudwatch-metrics")
        #expect(ImporterRegistry.standard.detect(Self.apiGateway, fileName: "metrics.csv", stopAtCertain: true).importer?.id == "cloudwatch-metrics")
        let sink = try parse(Self.metrics, Self.apiGateway + ["", "  "], path: "/var/log/investigate-test/metrics.csv")
        #expect(sink.events.isEmpty, "no datapoint is read from a guessed layout")
        #expect(sink.rejected.map(\.line) == [1, 2, 3])
        #expect(sink.rejected.allSatisfy { $0.reason == CloudWatchConsoleCSV.reason })
        #expect(sink.rejected.map { String(decoding: $0.raw, as: UTF8.self) } == Self.apiGateway, "each line is kept as written")
        #expect(CloudWatchConsoleCSV.reason.contains("aws cloudwatch get-metric-data"))
        let note = try #require(sink.notes.first { $0.contains("console CSV download") })
        #expect(note.contains("all 3 of its non-blank lines") && note.contains("`4XXError`, `5XXError`") && note.contains("get-metric-data"))
        #expect(FuzzHarness.checkOne(Self.metrics, Self.apiGateway) == nil)
    }

    @Test(arguments: [
        ["\"Label\",\"HTTPCode_ELB_5XX_Count (AWS/ApplicationELB)\"", "\"x\",\"1\""],
        ["\u{FEFF}timestamp,BlockedRequests WebACL=acl Rule=ALL,AllowedRequests", "1769054040,3,40"],
        ["Time,HTTPCode_Target_5XX_Count\r", "2026-01-22 03:54:00,2\r"],
        ["\"\",\"AWS/ApiGateway 4XXError ApiName: items-api\"", "\"2026/01/22 03:54\",\"149\""],
    ])
    func headersThatNameMetricsInOtherWaysAreRecognisedToo(_ lines: [String]) throws {
        #expect(CloudWatchConsoleCSV.metricNames(inHeader: lines[0]) != nil, "\(lines[0].debugDescription)")
        #expect(ImporterRegistry.standard.detect(lines, fileName: "graph.csv").importer?.id == "cloudwatch-metrics")
        let sink = try parse(Self.metrics, lines)
        #expect(sink.events.isEmpty && sink.rejected.count == lines.count && sink.rejected.allSatisfy { $0.reason == CloudWatchConsoleCSV.reason })
    }

    @Test func theNoteNamesOnlyKnownMetricsNeverTheHeadersText() throws {
        let hostile = ["Time,4XXError \u{1B}[31m$(rm -rf /),BlockedRequests", "1,2,3"]
        // A control character is not a column name's: that header is not recognised at all.
        #expect(CloudWatchConsoleCSV.metricNames(inHeader: hostile[0]) == nil)
        let labelled = ["Time,4XXError `owned` ApiName=<script>,5XXError rm -rf", "1,2,3"]
        #expect(CloudWatchConsoleCSV.metricNames(inHeader: labelled[0]) == nil, "a bracket is a log line's, not a header's")
        let plain = ["Time,4XXError owned by rm -rf,5XXError", "1,2,3"]
        let sink = try parse(Self.metrics, plain)
        let note = try #require(sink.notes.first)
        #expect(note.contains("`4XXError`, `5XXError`") && !note.contains("owned") && !note.contains("rm -rf"))
        #expect(sink.rejected.allSatisfy { !$0.reason.contains("owned") })
        // Load balancer codes are matched by their closed shape, not by prefix alone.
        #expect(CloudWatchConsoleCSV.metricNames(inHeader: "t,HTTPCode_ELB_5XX_Count,HTTPCode_Target_502_Count,HTTPCode_Backend_4XX")
                == ["HTTPCode_ELB_5XX_Count", "HTTPCode_Target_502_Count", "HTTPCode_Backend_4XX"])
        #expect(CloudWatchConsoleCSV.metricNames(inHeader: "t,HTTPCode_ELB_owned_Count,HTTPCode_Target_9XX_Count,HTTPCode_ELB_5X") == nil)
    }

    @Test func partialAndMalformedDownloadsAreRejectedLineByLine() throws {
        // The header alone.
        let header = try parse(Self.metrics, ["Time,4XXError"])
        #expect(header.events.isEmpty && header.rejected.count == 1 && header.notes.contains { $0.contains("all 1 of") })
        // Rows of every shape after it: ragged, an unterminated quote, a NUL, invalid UTF-8, a
        // 100 KB field, a JSON line. Each is rejected with the same reason, none is read.
        let bytes: [[UInt8]] = [
            Array("Time,4XXError,5XXError".utf8),
            Array("2026-01-22 03:54:00,149".utf8),
            Array("2026-01-22 03:55:00,\"12,1".utf8),
            Array("2026-01-22 03:56:00,1,0,9,9".utf8),
            [0x32, 0x00, 0x2C, 0x31],
            [0xFF, 0xFE, 0x2C, 0xC3],
            Array((String(repeating: "9", count: 100_000) + ",1,2").utf8),
            Array("{\"MetricDataResults\": []}".utf8),
        ]
        var sink = RecordSink()
        var parser = try Self.metrics.makeParser(ParseContext(path: "/nonexistent/metrics.csv"))
        for (i, b) in bytes.enumerated() { Line.with(bytes: b, number: i + 1) { parser.consume($0, into: &sink) } }
        parser.finish(into: &sink)
        #expect(sink.events.isEmpty)
        #expect(sink.rejected.map(\.line) == Array(1...bytes.count))
        #expect(sink.rejected.allSatisfy { $0.reason == CloudWatchConsoleCSV.reason })
        #expect(sink.rejected.map(\.raw) == bytes, "every line kept byte for byte")
        #expect(sink.notes.contains { $0.contains("all \(bytes.count) of") })
        // A comment and blank lines before the header: the comment rejected as a comment, the
        // blanks left as blanks, the rest as a download.
        let commented = try parse(Self.metrics, ["# exported by hand", "", "Time,BlockedRequests", "1,2"])
        #expect(commented.rejected.map(\.line) == [1, 3, 4])
        #expect(commented.rejected[0].reason.hasPrefix("comment line"))
        #expect(commented.rejected.dropFirst().allSatisfy { $0.reason == CloudWatchConsoleCSV.reason })
        #expect(FuzzHarness.checkOne(Self.metrics, ["# exported by hand", "", "Time,BlockedRequests", "1,2"]) == nil)
    }

    @Test func notEveryCSVIsAMetricsDownload() throws {
        // No metric named: not this importer's (skipped as unrecognised, with the reason ingest gives).
        let plain = ["time,count,latency", "2026-01-22 03:54:00,3,0.2"]
        #expect(CloudWatchConsoleCSV.metricNames(inHeader: plain[0]) == nil)
        #expect(ImporterRegistry.standard.detect(plain, fileName: "data.csv").importer?.id != "cloudwatch-metrics")
        // A Logs Insights CSV stays Logs Insights', even with a metric's name among its fields.
        let insights = ["@timestamp,@message,4XXError", "2024-05-19 06:10:35.743,hello,1"]
        #expect(ImporterRegistry.standard.detect(insights, fileName: "logs-insights-results.csv").importer?.id == "cloudwatch-insights")
        // One column only: not a table of values over time.
        #expect(CloudWatchConsoleCSV.metricNames(inHeader: "4XXError") == nil)
        // Forced onto a CSV that names no metric, the importer reads it as JSON and rejects it:
        // still not silent.
        let forced = try parse(Self.metrics, plain)
        #expect(forced.events.isEmpty && !forced.rejected.isEmpty)
        #expect(!forced.rejected.contains { $0.reason == CloudWatchConsoleCSV.reason })
    }

    @Test func aMetricsNameInALogLineDoesNotMakeTheLogADownload() throws {
        // Request paths and messages are attacker-controlled: a log whose first line names metrics
        // keeps its own format and its lines.
        let nginx = [
            #"203.0.113.9 - - [22/Jan/2026:03:54:00 +0000] "GET /4XXError,BlockedRequests HTTP/1.1" 404 153 "-" "curl/8.5.0""#,
            #"203.0.113.9 - - [22/Jan/2026:03:54:01 +0000] "GET /a,b HTTP/1.1" 404 153 "-" "curl/8.5.0""#,
        ]
        #expect(CloudWatchConsoleCSV.metricNames(inHeader: nginx[0]) == nil)
        #expect(ImporterRegistry.standard.detect(nginx, fileName: "access.log").importer?.id == "nginx-access")
        for line in ["Jan 22 03:54:00 web1 app: 4XXError,5XXError", "2026-01-22T03:54:00Z 4XXError,5XXError",
                     "ERROR 4XXError, \"BlockedRequests\" rose"] {
            #expect(CloudWatchConsoleCSV.metricNames(inHeader: line) == nil, "\(line)")
        }
        // The JSON outputs are read as before.
        let json = Self.metrics.samples[0].lines
        #expect(ImporterRegistry.standard.detect(json, fileName: "apigw-4xx.json").importer?.id == "cloudwatch-metrics")
        let sink = try parse(Self.metrics, [""] + json)
        #expect(sink.rejected.isEmpty && sink.events.count == 2)
    }

    @Test func ingestCountsTheRejectedLinesAndSaysWhatToExport() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("metrics.csv", Self.apiGateway.joined(separator: "\n") + "\n")
        let store = try TimelineStore()
        let outcome = try TimelineUpdate.run(store: store, paths: [path], options: ImportOptions())
        let file = try #require(outcome.ingest.files.first)
        #expect(file.format == "cloudwatch-metrics" && file.status == .ingested)
        #expect(file.events == 0 && file.rejected == 3 && file.lines == 3)
        #expect(file.notes.contains { $0.contains("console CSV download") && $0.contains("get-metric-data") }, "\(file.notes)")
        #expect(outcome.ingest.renderTable(zone: .utc).contains("rejected and kept with their reasons"))
        // An input the run could not read: named with the reason, as a truncated gzip is.
        let problems = InputProblems.of(outcome.ingest)
        #expect(problems.count == 1 && problems[0].path == path)
        #expect(problems[0].reason.hasPrefix("not read: a CloudWatch console CSV download") && problems[0].reason.contains("get-metric-data"))
    }

    /// On the command line: ingest and the one-shot question both say on stderr why the file was
    /// not read and exit 1; the JSON beside it is read as before.
    @Test func theCommandLineNamesTheRefusedFileAndExitsOne() throws {
        let dir = try TemporaryDirectory(), db = try TemporaryDirectory()
        try dir.write("metrics.csv", Self.apiGateway.joined(separator: "\n") + "\n")
        try dir.write("apigw-4xx.json", Self.metrics.samples[0].lines.joined(separator: "\n") + "\n")
        guard let r = try CLIRun.investigate(["ingest", "--db", db.url.appendingPathComponent("x.db").path, dir.path]) else { return }
        #expect(r.status == 1, "\(r.err)")
        #expect(r.err.contains("metrics.csv: not read: a CloudWatch console CSV download"))
        #expect(!r.err.contains("apigw-4xx.json"))
        guard let d = try CLIRun.investigate(["--db", db.url.appendingPathComponent("y.db").path, "--at", "2024-09-29 22:10", dir.url.appendingPathComponent("metrics.csv").path]) else { return }
        #expect(d.status == 1 || d.status == 2, "\(d.status) \(d.err)")
        #expect(d.err.contains("metrics.csv: not read: a CloudWatch console CSV download") && d.err.contains("get-metric-data"))
    }

    @Test func theFuzzerStartsFromTheDownloadsToo() throws {
        let seeds = FuzzHarness.seeds(for: Self.metrics)
        #expect(seeds.count == Self.metrics.samples.count + CloudWatchConsoleCSV.fuzzSeeds.count)
        for seed in CloudWatchConsoleCSV.fuzzSeeds {
            #expect(ImporterRegistry.standard.detect(seed, fileName: "fuzz.log").importer?.id == "cloudwatch-metrics")
            #expect(FuzzHarness.check(Array((seed.joined(separator: "\n") + "\n").utf8), importerID: nil) == nil)
        }
        #expect(FuzzHarness.seeds(for: NginxAccessImporter()).count == NginxAccessImporter().samples.count)
    }

    @Test func mutatedDownloadsNeverCrashNorVanish() {
        var generator = SystemRandomNumberGenerator()
        for seed in CloudWatchConsoleCSV.fuzzSeeds {
            for (n, line) in seed.enumerated() {
                for (k, mutant) in HostileMutationTests.mutants(of: line, count: 100, using: &generator).enumerated() {
                    var lines = seed
                    lines[n] = mutant
                    #expect(FuzzHarness.checkOne(Self.metrics, lines) == nil, "\(lines.debugDescription)")
                    if k % 10 == 0 {
                        #expect(FuzzHarness.check(Array((lines.joined(separator: "\n") + "\n").utf8), importerID: nil) == nil, "\(lines.debugDescription)")
                    }
                }
            }
        }
    }
}
