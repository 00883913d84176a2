import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// CloudWatch Logs wrappers around inner formats, and whole `AWSLogs/…` trees through the pipeline.
@Suite struct CloudWatchWrapperTests {
    static func importer(_ id: String) throws -> any Importer {
        try #require(ImporterRegistry.standard.importer(id: id))
    }

    static func ms(_ v: Int64) -> Int64 { v * 1000 }

    @Test func exportOfALambdaStreamKeepsStampsContinuationsAndRaw() throws {
        let importer = try Self.importer("cloudwatch-export")
        let sink = try parse(importer, importer.samples[0].lines,
                             path: "/logs/exportedlogs/5e0f5e0f/2020/01/31/[$LATEST]3893xmpl7fac/000000")
        #expect(sink.rejected.isEmpty)
        #expect(sink.events.count == 4)
        #expect(sink.events.allSatisfy { $0.layer == .lambda && $0.extra["inner_format"] == "lambda" })
        let start = sink.events[0]
        #expect(start.time == CivilTime.micros(year: 2020, month: 1, day: 31, hour: 22, minute: 12, second: 58, micro: 400_000))
        #expect(start.raw == Array(importer.samples[0].lines[0].utf8))
        #expect(start.extra["log_stream"] == "[$LATEST]3893xmpl7fac")
        let traceback = sink.events[1]
        #expect(traceback.line == 2 && traceback.lineEnd == 3)
        #expect(traceback.level == "ERROR")
        #expect(String(decoding: traceback.raw, as: UTF8.self) == importer.samples[0].lines[1...2].joined(separator: "\n"))
        let report = sink.events[3]
        #expect(report.duration == 15_740 && report.time != nil)
    }

    @Test func exportWithUnrecognisedMessagesKeepsThemAsPlainEvents() throws {
        let lines = ["2021-05-12T07:34:46.000Z hello world", "2021-05-12T07:34:45.000Z earlier, unsorted", "  continued"]
        let sink = try parse(try Self.importer("cloudwatch-export"), lines, path: "/x/exportedlogs/task/my-stream/000000")
        #expect(sink.rejected.isEmpty)
        #expect(sink.events.count == 2)
        #expect(sink.events.allSatisfy { $0.layer == .system && $0.extra["inner_format"] == "unrecognised" })
        #expect(sink.events[1].message == "earlier, unsorted\n  continued" && sink.events[1].lineEnd == 3)
        #expect(sink.events[1].time! < sink.events[0].time!)
        #expect(sink.notes.contains { $0.contains("not recognised") })
    }

    @Test func exportOfExecutionLogsUsesTheFirstLinesStamp() throws {
        let lines = [
            "2019-02-27T11:30:59.425Z (286364ab-3a83-11e9-8dc8-db3cf4c83204) Extended Request Id: Vwc2MGFUrPEFV_g=",
            "2019-02-27T11:30:59.430Z (4f3e3b0f-39db-11e9-9c2e-5bd7c2de5998) Key throttle limit exceeded for RestApi uwe3g5jm54, Stage Prod, Resource k0w8mc, HttpMethod POST. Limit: 1.00 Burst: 1",
            "2019-02-27T11:30:59.431Z (4f3e3b0f-39db-11e9-9c2e-5bd7c2de5998) Method completed with status: 429",
            "2019-02-27T11:31:11.457Z (286364ab-3a83-11e9-8dc8-db3cf4c83204) Method completed with status: 502",
        ]
        let sink = try parse(try Self.importer("cloudwatch-export"), lines,
                             path: "/x/exportedlogs/task/API-Gateway-Execution-Logs_uwe3g5jm54/Prod/e369853df766fa44/000000")
        #expect(sink.rejected.isEmpty)
        #expect(sink.events.count == 2)
        let slow = try #require(sink.events.first { $0.status == 502 })
        #expect(slow.time == CivilTime.micros(year: 2019, month: 2, day: 27, hour: 11, minute: 30, second: 59, micro: 425_000))
        #expect(slow.line == 1 && slow.lineEnd == 4)
        #expect(slow.layer == .apigateway)
    }

    @Test func filterLogEventsPagesAndTruncation() throws {
        let importer = try Self.importer("cloudwatch-json")
        let page = importer.samples[0].lines
        var sink = try parse(importer, page + page)
        #expect(sink.rejected.isEmpty)
        #expect(sink.events.count == 4)
        let first = sink.events[0]
        #expect(first.time == Self.ms(1_712_568_068_991) && first.requestID == "4b142fc3-17b8-4cdb-a46b-a8dbe7918715")
        #expect(first.line == 3 && first.lineEnd == 9)
        #expect(first.extra["log_stream"] == "2024/05/09/[$LATEST]abc1024")
        #expect(first.extra["ingestion_time"] == "2024-04-08T09:21:10.017Z")
        #expect(sink.events[3].line == 29 && sink.events[3].lineEnd == 35)
        #expect(sink.events[1].duration == 11_640)

        // Cut inside the second event: the first is kept, the rest rejected with the reason.
        sink = try parse(importer, Array(page.prefix(12)))
        #expect(sink.events.count == 1)
        #expect(sink.rejected.count == 1 && sink.rejected[0].reason.contains("truncated") && sink.rejected[0].line == 9)

        sink = try parse(importer, importer.samples[1].lines + ["not json"])
        #expect(sink.events.first?.level == "INFO" && sink.events.first?.message == "hello")
        #expect(sink.rejected.map(\.line) == [2])

        // An event object that is not valid JSON is rejected with its bytes, not skipped, and only once.
        var broken = page
        let timestamp = try #require(broken.lastIndex { $0.contains("\"timestamp\"") })
        broken[timestamp] = broken[timestamp].replacingOccurrences(of: "\"timestamp\":", with: "\"timestamp\"")
        sink = try parse(importer, broken)
        #expect(sink.events.count == 1)
        #expect(sink.rejected.count == 1 && sink.rejected[0].reason.hasPrefix("log event object is not valid JSON"))
        #expect(sink.rejected.first.map { String(decoding: $0.raw, as: UTF8.self).contains("REPORT RequestId") } == true)
    }

    @Test func getLogEventsShapeIsDetected() throws {
        let lines = ["{", #"    "events": ["#, #"        {"timestamp": 1712568068991, "message": "(286364ab-3a83-11e9-8dc8-db3cf4c83204) Method completed with status: 504", "ingestionTime": 1712568070017}"#,
                     "    ],", #"    "nextForwardToken": "f/1", "nextBackwardToken": "b/1""#, "}"]
        #expect(ImporterRegistry.standard.detect(lines, fileName: "get-log-events.json").importer?.id == "cloudwatch-json")
        let sink = try parse(try Self.importer("cloudwatch-json"), lines)
        #expect(sink.rejected.isEmpty && sink.events.first?.status == 504 && sink.events.first?.line == 3)
    }

    @Test func logGroupBreaksTheTieBetweenNginxAndAPIGatewayCLF() throws {
        let clf = #"203.0.113.7 - - [06/Feb/2025:05:32:45 +0000] \"GET /pets HTTP/1.1\" 502 36 fbcaf9e5-d535-40a1-891c-7b70118cf7e8 K2G9wEbUoAMEvag="#
        let payload = #"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"API-Gateway-Access-Logs_uwe3g5jm54/Prod","logStream":"s","subscriptionFilters":[],"logEvents":[{"id":"1","timestamp":1738819965000,"message":"\#(clf)"}]}"#
        let sink = try parse(try Self.importer("cloudwatch-subscription"), [payload])
        #expect(sink.rejected.isEmpty)
        let e = try #require(sink.events.first)
        #expect(e.layer == .apigateway && e.extra["inner_format"] == "apigateway-access")
        #expect(e.requestID == "fbcaf9e5-d535-40a1-891c-7b70118cf7e8" && e.extra["extended_request_id"] == "K2G9wEbUoAMEvag=")
    }

    @Test func lambdaGroupWithMostlyPrintOutputIsStillReadAsLambda() throws {
        var lines = (0..<30).map { "2020-01-31T22:12:58.\(String(format: "%03d", $0))Z print output \($0)" }
        lines.insert("2020-01-31T22:12:58.000Z START RequestId: 8f507cfc-xmpl-4697-b07a-ac58fc914c95 Version: $LATEST", at: 0)
        let sink = try parse(try Self.importer("cloudwatch-export"), lines, path: "/x/exportedlogs/t/aws/lambda/my-fn/2020/01/31/[$LATEST]abc/000000")
        #expect(sink.rejected.isEmpty)
        #expect(sink.events.count == 31)
        #expect(sink.events.allSatisfy { $0.layer == .lambda && $0.extra["inner_format"] == "lambda" })
        #expect(sink.events[0].requestID == "8f507cfc-xmpl-4697-b07a-ac58fc914c95")
    }

    @Test func tailDetailedAndShort() throws {
        let importer = try Self.importer("cloudwatch-tail")
        var sink = try parse(importer, importer.samples[0].lines)
        #expect(sink.rejected.isEmpty)
        let e = try #require(sink.events.first)
        #expect(sink.events.count == 1 && e.status == 502 && e.method == "GET" && e.path == "/echo")
        #expect(e.extra["log_stream"] == "e369853df766fa44e1ed0ff613f563bd")
        #expect(e.time == CivilTime.micros(year: 2019, month: 2, day: 27, hour: 11, minute: 30, second: 59, micro: 425_000))
        sink = try parse(importer, importer.samples[1].lines)
        #expect(sink.events.count == 2 && sink.events.allSatisfy { $0.layer == .lambda && $0.time != nil })
    }

    @Test func insightsJSONAndCSV() throws {
        let importer = try Self.importer("cloudwatch-insights")
        var sink = try parse(importer, importer.samples[0].lines)
        #expect(sink.rejected.isEmpty)
        let e = try #require(sink.events.first)
        #expect(e.layer == .lambda && e.extra["log_group"] == "/aws/lambda/my-function" && e.extra["ptr"] == "ClQKGAoU")
        #expect(e.time == CivilTime.micros(year: 2024, month: 5, day: 19, hour: 6, minute: 10, second: 35, micro: 743_000))
        sink = try parse(importer, importer.samples[1].lines + ["2024-05-19 06:10:36.000,\"(aaaaaaaa-1111) Method request body before transformations: {\"\"a\"\":", "1}\",s"])
        #expect(sink.rejected.isEmpty)
        #expect(sink.events.count == 2)
        #expect(sink.events[0].status == 502 && sink.events[0].traceID == "1-5c7674f4-a3491d0a9c8012c191821b83")
        #expect(sink.events[1].requestID == "aaaaaaaa-1111" && sink.events[1].line == 4 && sink.events[1].lineEnd == 5)
    }

    @Test func insightsRowsThatCannotBeReadAreRejectedNotSkipped() throws {
        let importer = try Self.importer("cloudwatch-insights")
        let good = #"[ {"field": "@timestamp", "value": "2024-05-19 06:10:35.743"}, {"field": "@message", "value": "hello"} ]"#
        let lines = [
            #"{ "results": ["#,
            "  " + good + ",",
            #"  [ {"field": "@message" "value": "colon missing"} ],"#,
            #"  [ {"name": "@message", "value": "not a cell"} ]"#,
            "] }",
        ]
        let sink = try parse(importer, lines)
        #expect(sink.events.count == 1)
        #expect(sink.rejected.map(\.line) == [3, 4])
        #expect(sink.rejected.first?.reason.hasPrefix("Logs Insights result row is not valid JSON") == true)
        #expect(sink.rejected.last?.reason.contains("no {\"field\", \"value\"} cells") == true)
        #expect(sink.rejected.last.map { String(decoding: $0.raw, as: UTF8.self).contains("not a cell") } == true)

        let headerOnly = try parse(importer, ["@timestamp,@message,@logStream"])
        #expect(headerOnly.events.isEmpty && headerOnly.rejected.isEmpty)
        #expect(headerOnly.notes == ["CSV export of a header (line 1) and no result rows"])
    }

    @Test func subscriptionPayloads() throws {
        let importer = try Self.importer("cloudwatch-subscription")
        var sink = try parse(importer, importer.samples[0].lines)
        #expect(sink.rejected.isEmpty)
        #expect(sink.events.count == 2)
        #expect(sink.events.allSatisfy { $0.layer == .lambda && $0.level == "ERROR" && $0.extra["log_group"] == "testLogGroup" })
        #expect(sink.events[0].time == Self.ms(1_440_442_987_000) && sink.events[0].message == "First test message")
        #expect(sink.events.allSatisfy { $0.line == 1 && $0.lineEnd == 5 })

        sink = try parse(importer, importer.samples[1].lines + importer.samples[1].lines)
        #expect(sink.events.count == 1 || sink.events.count == 2)
        #expect(sink.events.allSatisfy { $0.status == 429 && $0.layer == .apigateway })

        sink = try parse(importer, [#"{"awslogs":{"data":"!!!!"}}"#, #"{"awslogs":{"data":"aGVsbG8="}}"#, #"{"messageType":"CONTROL_MESSAGE","logEvents":[]}"#, #"{"awslogs":"#])
        #expect(sink.events.isEmpty)
        #expect(sink.rejected.count == 3)
        #expect(sink.rejected.allSatisfy { !$0.reason.isEmpty })
    }

    @Test(.enabled(if: Corpus.available)) func subscriptionCorpusEvent() throws {
        let text = try String(contentsOfFile: Corpus.path("aws-lambda-go/cloudwatch-logs-event.json"), encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(ImporterRegistry.standard.detect(lines, fileName: "cloudwatch-logs-event.json").importer?.id == "cloudwatch-subscription")
        let sink = try parse(try Self.importer("cloudwatch-subscription"), lines)
        #expect(sink.rejected.isEmpty)
        #expect(sink.events.map(\.message) == ["First test message", "Second test message"])
    }

    // MARK: - Through the pipeline

    struct StoredCounts { var events: Int; var rejected: Int }

    static func ingest(_ root: String) throws -> (IngestSummary, TimelineStore) {
        let store = try TimelineStore()
        let summary = try Ingester(store: store).ingest(paths: [root])
        return (summary, store)
    }

    @Test func awsLogsTreeOfGzippedObjects() throws {
        let dir = try TemporaryDirectory()
        let alb = try Self.importer("alb").samples[0].lines.joined(separator: "\n") + "\n"
        let waf = try Self.importer("waf").samples[0].lines.joined(separator: "\n") + "\n"
        let export = try Self.importer("cloudwatch-export").samples[0].lines.joined(separator: "\n") + "\n"
        try dir.write("AWSLogs/123456789012/elasticloadbalancing/us-east-2/2018/07/02/123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.50dc6c495c0c9188_20180702T2225Z_192.168.131.39_2j4gl2fo.log.gz",
                      bytes: GzipInflater.gzip(Array(("#\n" + alb).utf8)))
        try dir.write("AWSLogs/123456789012/WAFLogs/us-east-1/TEST-WEBACL/2023/05/23/07/10/123456789012_waflogs_us-east-1_TEST-WEBACL_20230523T0710Z_e0ca43b5.log.gz",
                      bytes: GzipInflater.gzip(Array(waf.utf8)))
        try dir.write("exportedlogs/0f3a5e0f-task/2020/01/31/[$LATEST]3893xmpl7fac/000000.gz", bytes: GzipInflater.gzip(Array(export.utf8)))
        try dir.write("exportedlogs/aws-logs-write-test", "Permission Check Successful")
        try dir.write("cli/filter-log-events.json", try Self.importer("cloudwatch-json").samples[0].lines.joined(separator: "\n") + "\n")

        let (summary, store) = try Self.ingest(dir.path)
        let byFormat = Dictionary(summary.files.map { ($0.format ?? "skipped:\($0.path)", $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byFormat["alb"]?.events == 3 && byFormat["alb"]?.rejected == 1)
        #expect(byFormat["waf"]?.events == 2 && byFormat["waf"]?.rejected == 0)
        #expect(byFormat["cloudwatch-export"]?.events == 4 && byFormat["cloudwatch-export"]?.rejected == 0)
        #expect(byFormat["cloudwatch-json"]?.events == 2 && byFormat["cloudwatch-json"]?.rejected == 0)
        #expect(summary.files.filter { $0.status == .ingested }.count == 4)
        #expect(summary.files.first { $0.path.hasSuffix("aws-logs-write-test") }?.status == .skipped)
        let layers = try store.read { db in try String.fetchAll(db, sql: "SELECT DISTINCT layer FROM event ORDER BY layer") }
        #expect(layers == ["alb", "lambda", "waf"])
        let reject = try store.read { db in try Row.fetchOne(db, sql: "SELECT line, reason FROM rejected") }
        #expect((reject?["line"] as Int?) == 1)
        let reports = try store.read { db in try Int64.fetchAll(db, sql: "SELECT duration FROM event WHERE message LIKE 'REPORT%' AND time IS NOT NULL ORDER BY duration") }
        #expect(reports == [11_640, 15_740])
    }

    @Test(.enabled(if: Corpus.available)) func corpusGzipObjectsThroughThePipeline() throws {
        let dir = try TemporaryDirectory()
        // Symbolic links keep the corpus files where they are (never copied into the repository).
        let files = ["aws-waf-security-automations/test_waf_log.gz",
                     "aws-waf-security-automations/XXXXXXXXXXXX_elasticloadbalancing_us-east-1_app.ApplicationLoadBalancer.fa87e1db7badc175_20230424T2110Z_X.X.X.X_4c8scnzy.log.gz",
                     "aws-lambda-go/cloudwatch-logs-event.json", "crowdsec-hub/aws-alb-logs.log",
                     "elastic-integrations/test-alb.log", "elastic-integrations/test-waf.log",
                     "elastic-integrations/test-apigateway-rest.log", "elastic-integrations/test-apigateway.log"]
        for file in files {
            let link = dir.url.appendingPathComponent(file)
            try FileManager.default.createDirectory(at: link.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: Corpus.path(file))
        }
        let (summary, _) = try Self.ingest(dir.path)
        func result(_ suffix: String) -> FileResult? { summary.files.first { $0.path.hasSuffix(suffix) } }
        let waf = try #require(result("test_waf_log.gz"))
        #expect(waf.format == "waf" && waf.events == 228 && waf.rejected == 0)
        let alb = try #require(result("4c8scnzy.log.gz"))
        #expect(alb.format == "alb" && alb.events == 100 && alb.rejected == 1)
        let sub = try #require(result("cloudwatch-logs-event.json"))
        #expect(sub.format == "cloudwatch-subscription" && sub.events == 2 && sub.rejected == 0)
        let crowdsec = try #require(result("aws-alb-logs.log"))
        #expect(crowdsec.format == "alb" && crowdsec.rejected == 1)
        let mixed = try #require(result("test-alb.log"))
        #expect(mixed.format == "alb" && mixed.events == 3 && mixed.rejected == 7)
        #expect(result("test-waf.log")?.events == 4)
        #expect(result("test-apigateway-rest.log")?.format == "apigateway-access")
        #expect(result("test-apigateway.log")?.events == 2)
        for file in summary.files {
            print("CORPUS \(file.path.split(separator: "/").last ?? "") format=\(file.format ?? "-") events=\(file.events) rejected=\(file.rejected) status=\(file.status)")
        }
    }

    /// A 5 MB header list is a record WAF can write (Firehose objects are longer still): it is read,
    /// and the records around it too.
    @Test func aFiveMegabyteHeaderListIsReadWithTheRecordsAroundIt() throws {
        let dir = try TemporaryDirectory()
        let waf = try Self.importer("waf").samples[0].lines
        let header = #"{"name":"X-Pad","value":"\#(String(repeating: "a", count: 1000))"}"#
        let huge = #"{"timestamp":1700000000000,"webaclId":"x","action":"BLOCK","httpRequest":{"clientIp":"192.0.2.1","uri":"/big","headers":[\#(Array(repeating: header, count: 5200).joined(separator: ","))]}}"#
        try dir.write("waf.log", (waf + [huge] + waf).joined(separator: "\n") + "\n")
        let (summary, _) = try Self.ingest(dir.path)
        let file = try #require(summary.files.first)
        #expect(file.format == "waf" && file.events == 5 && file.rejected == 0)
    }

    /// Past the WAF importer's 32 MiB record limit, the line is rejected with the reason and its
    /// first 64 KiB kept; the rest of the file still ingests.
    @Test func aLineBeyondTheRecordLimitIsRejectedAndTheRestIngests() throws {
        let dir = try TemporaryDirectory()
        let waf = try Self.importer("waf").samples[0].lines
        var bytes = Array((waf.joined(separator: "\n") + "\n").utf8)
        bytes += Array(#"{"timestamp":1700000000000,"httpRequest":{"uri":""#.utf8) + [UInt8](repeating: 0x61, count: 33 << 20) + [0x0A]
        bytes += Array((waf.joined(separator: "\n") + "\n").utf8)
        try dir.write("waf.log", bytes: bytes)
        let (summary, _) = try Self.ingest(dir.path)
        let file = try #require(summary.files.first)
        #expect(file.format == "waf" && file.events == 4 && file.rejected == 1)
    }
}

extension CloudWatchWrapperTests {
    /// A query over several log groups: each group's rows are read in their own format, whichever
    /// comes first (round 15 stored nginx's 502 as a Lambda log line when Lambda's rows led).
    @Test(arguments: [false, true]) func insightsRowsOfSeveralGroupsAreEachReadInTheirFormat(lambdaFirst: Bool) throws {
        let importer = try Self.importer("cloudwatch-insights")
        let nginx = #"2025-02-06 05:32:45.123,"10.0.0.5 - - [06/Feb/2025:14:32:45 +0900] ""GET /api/orders HTTP/1.1"" 502 157 ""-"" ""curl/8.0""",i-0abc/nginx/access.log,123456789012:/ec2/nginx"#
        let lambda = "2025-02-06 05:32:46.000,\"START RequestId: 8f507cfc-xmpl-4697-b07a-ac58fc914c95 Version: $LATEST\",2025/02/06/[$LATEST]abc,123456789012:/aws/lambda/fn"
        let sink = try parse(importer, ["@timestamp,@message,@logStream,@log"] + (lambdaFirst ? [lambda, nginx] : [nginx, lambda]))
        #expect(sink.rejected.isEmpty)
        let byLayer = Dictionary(grouping: sink.events, by: \.layer)
        #expect(byLayer[.nginx]?.first?.status == 502 && byLayer[.nginx]?.first?.kind == .access)
        #expect(byLayer[.lambda]?.first?.requestID == "8f507cfc-xmpl-4697-b07a-ac58fc914c95")
    }
}
