import Foundation
import Testing
@testable import InvestigateKit

/// CloudWatch metrics, GuardDuty and Inspector findings: read in their documented JSON shapes,
/// damaged exports rejected per record with a reason, and cited by the diagnosis without ever
/// counting as a layer's logs or as requests.
@Suite struct ContextSignalTests {
    static let metrics = CloudWatchMetricsImporter()
    static let guardDuty = GuardDutyFindingsImporter()
    static let inspector = InspectorFindingsImporter()

    /// get-metric-data output as the CLI prints it (the shape of the CLI reference's examples).
    static func metricData(id: String = "m1", label: String = "4XXError", points: [(String, String)], status: String = "Complete") -> String {
        """
        {
            "MetricDataResults": [
                {
                    "Id": "\(id)",
                    "Label": "\(label)",
                    "Timestamps": [
        \(points.map { "                \"\($0.0)\"" }.joined(separator: ",\n"))
                    ],
                    "Values": [
        \(points.map { "                \($0.1)" }.joined(separator: ",\n"))
                    ],
                    "StatusCode": "\(status)"
                }
            ],
            "Messages": []
        }

        """
    }

    static let queries = """
        [
            {
                "Id": "m1",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/ApiGateway",
                        "MetricName": "4XXError",
                        "Dimensions": [
                            { "Name": "ApiName", "Value": "items-api" },
                            { "Name": "Stage", "Value": "prod" }
                        ]
                    },
                    "Period": 60,
                    "Stat": "Sum"
                }
            }
        ]

        """

    func lines(_ text: String) -> [String] {
        var l = text.components(separatedBy: "\n")
        if l.last == "" { l.removeLast() }
        return l
    }

    @Test func aQueryFileBesideTheOutputNamesTheMetricAndItsLayer() throws {
        let dir = try TemporaryDirectory()
        try dir.write("queries.json", Self.queries)
        let path = try dir.write("4xx.json", Self.metricData(points: [("2025-02-06T05:31:00+00:00", "40.0"), ("2025-02-06T05:32:00+00:00", "120.0")]))
        let sink = try parse(Self.metrics, lines(try String(contentsOfFile: path, encoding: .utf8)), path: path)
        #expect(sink.rejected.isEmpty, "\(sink.rejected)")
        #expect(sink.events.count == 2)
        let e = try #require(sink.events.last)
        #expect(e.kind == .metric && e.layer == .apigateway)
        #expect(e.extra["namespace"] == "AWS/ApiGateway" && e.extra["metric"] == "4XXError" && e.extra["stat"] == "Sum")
        #expect(e.extra["dimensions"] == "ApiName=items-api,Stage=prod" && e.extra["period"] == "60" && e.extra["value"] == "120")
        #expect(e.time == AWSTime.iso8601("2025-02-06T05:32:00Z"))
        #expect(e.status == nil && e.clientIP == nil, "a datapoint is not a request")
        #expect(String(decoding: e.raw, as: UTF8.self) == "\"2025-02-06T05:32:00+00:00\" 120.0")
        // The query file itself is read, not skipped: framing and a note.
        let q = try parse(Self.metrics, lines(Self.queries), path: dir.url.appendingPathComponent("queries.json").path)
        #expect(q.events.isEmpty && q.rejected.isEmpty && q.framingLines > 0)
        #expect(q.notes.contains { $0.contains("query file") })
        #expect(ImporterRegistry.standard.detect(lines(Self.queries), fileName: "queries.json").importer?.id == "cloudwatch-metrics")
    }

    @Test func withoutTheQueryAnAmbiguousMetricNameIsNotGuessed() throws {
        let sink = try parse(Self.metrics, lines(Self.metricData(points: [("2025-02-06T05:31:00+00:00", "3.0")])), path: "/nonexistent/dir/4xx.json")
        let e = try #require(sink.events.first)
        #expect(e.layer == .system && e.extra["namespace"] == nil && e.extra["stat"] == nil && e.extra["metric"] == "4XXError")
        #expect(sink.notes.contains { $0.contains("layer is unknown") })
        // A name only the ALB uses names its layer, still without a namespace or statistic.
        let alb = try parse(Self.metrics, lines(Self.metricData(label: "HTTPCode_ELB_5XX_Count", points: [("2025-02-06T05:31:00+00:00", "3.0")])))
        #expect(alb.events.first?.layer == .alb && alb.events.first?.extra["namespace"] == nil)
    }

    @Test func getMetricStatisticsDatapointsAreRecords() throws {
        let text = """
            {
                "Label": "HTTPCode_ELB_5XX_Count",
                "Datapoints": [
                    {
                        "Timestamp": "2025-02-06T05:31:00Z",
                        "Sum": 7.0,
                        "Unit": "Count"
                    },
                    {
                        "Timestamp": "2025-02-06T05:32:00Z",
                        "Unit": "Count"
                    },
                    {
                        "Sum": 2.0,
                        "Unit": "Count"
                    }
                ]
            }
            """
        let sink = try parse(Self.metrics, lines(text))
        #expect(sink.events.count == 1)
        #expect(sink.events.first?.layer == .alb && sink.events.first?.extra["stat"] == "Sum" && sink.events.first?.extra["value"] == "7")
        #expect(sink.rejected.map(\.reason).sorted() == ["metric datapoint has no ISO-8601 Timestamp",
                                                          "metric datapoint has no statistic (Sum, SampleCount, Average, Maximum, Minimum or ExtendedStatistics)"])
    }

    @Test func damagedMetricExportsAreRejectedPerRecordWithAReason() throws {
        // A value that is not a number: that datapoint only.
        let bad = try parse(Self.metrics, lines(Self.metricData(points: [("2025-02-06T05:31:00+00:00", "\"x\""), ("2025-02-06T05:32:00+00:00", "1.0")])))
        #expect(bad.events.count == 1)
        #expect(bad.rejected.count == 1 && bad.rejected[0].reason.contains("value is not a number"))
        // Timestamps and values that cannot be paired: the whole result, said so.
        let unpaired = Self.metricData(points: [("2025-02-06T05:31:00+00:00", "1.0")]).replacingOccurrences(of: "                1.0", with: "                1.0,\n                2.0")
        let u = try parse(Self.metrics, lines(unpaired))
        #expect(u.events.isEmpty && u.rejected.count == 1 && u.rejected[0].reason.contains("1 timestamps but 2 values"))
        // PartialData is read, with a note.
        let partial = try parse(Self.metrics, lines(Self.metricData(points: [("2025-02-06T05:31:00+00:00", "1.0")], status: "PartialData")))
        #expect(partial.events.count == 1 && partial.notes.contains { $0.contains("PartialData") })
        // A truncated document: the results before the cut are kept, the rest rejected.
        let whole = lines(Self.metricData(points: [("2025-02-06T05:31:00+00:00", "1.0")]))
        let cut = Array(whole.prefix(14))
        let t = try parse(Self.metrics, cut)
        #expect(t.rejected.contains { $0.reason.contains("truncated") })
        #expect(FuzzHarness.checkOne(Self.metrics, cut) == nil)
        #expect(FuzzHarness.checkOne(Self.metrics, whole) == nil)
    }

    @Test func guardDutyFindingsInEveryShape() throws {
        for sample in Self.guardDuty.samples {
            let sink = try parse(Self.guardDuty, sample.lines)
            #expect(sink.rejected.isEmpty && sink.events.count == 1)
            #expect(sink.events.allSatisfy { $0.kind == .finding })
        }
        let probe = try parse(Self.guardDuty, Self.guardDuty.samples[0].lines).events[0]
        #expect(probe.extra["finding_type"] == "Recon:EC2/PortProbeUnprotectedPort" && probe.clientIP == "198.51.100.7")
        #expect(probe.extra["resource"] == "i-0abcdef1234567890" && probe.extra["local_ports"] == "443" && probe.level == "Low")
        #expect(probe.time == AWSTime.iso8601("2026-01-22T03:56:10.000Z") && probe.altTime == AWSTime.iso8601("2026-01-22T03:40:00.000Z"))
        let bridge = try parse(Self.guardDuty, Self.guardDuty.samples[2].lines).events[0]
        #expect(bridge.clientIP == "203.0.113.99" && bridge.extra["finding_type"] == "Recon:EC2/Portscan")
        // A finding without a type, one without any stamp, and an empty page.
        let damaged = [
            #"{"schemaVersion":"2.0","id":"a1","arn":"arn:aws:guardduty:us-east-1:1:detector/d/finding/a1","type":"Recon:EC2/Portscan","severity":5,"service":{"serviceName":"guardduty"}}"#,
            #"{"schemaVersion":"2.0","id":"a2","arn":"arn:aws:guardduty:us-east-1:1:detector/d/finding/a2","severity":5,"service":{"serviceName":"guardduty","eventLastSeen":"2026-01-22T03:56:10Z"},"type":null}"#,
            #"{"findings":[]}"#,
        ]
        let d = try parse(Self.guardDuty, damaged)
        #expect(d.events.isEmpty)
        #expect(Set(d.rejected.map(\.reason)) == ["GuardDuty finding has no Type",
                                                    "GuardDuty finding Recon:EC2/Portscan has no EventLastSeen, EventFirstSeen, UpdatedAt or CreatedAt stamp"])
    }

    @Test func inspectorFindingsNameTheLayerOfThePackage() throws {
        let sink = try parse(Self.inspector, Self.inspector.samples[0].lines)
        let e = try #require(sink.events.first)
        #expect(e.layer == .nginx && e.kind == .finding && e.extra["vulnerability_id"] == "CVE-2021-23017")
        #expect(e.extra["packages"] == "nginx 1.18.0 (fixed in 1.20.1)" && e.extra["resource"] == "i-0abcdef1234567890")
        #expect(e.message?.contains("nginx 1.18.0") ?? false)
        let lines = try parse(Self.inspector, Self.inspector.samples[1].lines)
        #expect(lines.events.map(\.layer) == [.system, .system])
        #expect(lines.events[1].extra["open_ports"] == "80-443")
        #expect(lines.events[1].time == 1_663_703_546_405_000)
        let damaged = try parse(Self.inspector, [#"{"findingArn":"arn:aws:inspector2:us-east-1:1:finding/x","type":"PACKAGE_VULNERABILITY","title":"t"}"#])
        #expect(damaged.events.isEmpty && damaged.rejected.first?.reason.contains("no lastObservedAt") == true)
    }

    // MARK: - Diagnosis

    func diagnose(_ files: [String: String], at: Double = 0, status: String? = nil, ip: String? = nil) throws -> (Diagnosis, TimelineStore) {
        let dir = try TemporaryDirectory()
        for (name, text) in files { try dir.write(name, text) }
        let store = try TimelineStore()
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        let q = DiagnosisQuery(at: DiagnosisScenarioTests.base + Int64(at * 1e6), halfWindow: 120_000_000, zone: .utc,
                               status: status.flatMap(StatusFilter.init), clientIP: ip)
        return (try Diagnoser(store: store).diagnose(q), store)
    }

    static let executionDir = "exportedlogs/b41e7d08-2c9a-4f63-8e15-6a0d93c2f7b4/4b5c1d8e7f3a2b6c9d0e1f2a3b4c5d6e/000000"
    static let lambdaDir = "exportedlogs/e8a05c3d-7f21-4b96-a3d8-2c6f1e9b5a47/2026/01/22/[$LATEST]0bb31d65cff80345e3e9e2e1e9a513a2/000000"

    /// The API Gateway case: the 4XXError metric spikes while the execution log (all the team had)
    /// shows nothing; the metric file answers the first question.
    @Test func a4XXErrorMetricNoLogShowsIsCitedWithWhatApiGatewayLeavesUnlogged() throws {
        let reqs = (0..<40).map { (Double($0 * 6 - 120), String(format: "0c6035f8-2c56-42a5-a9b2-%012d", $0)) }
        let (d, store) = try diagnose([
            Self.executionDir: DiagnosisScenarioTests.executionLog(requests: reqs.map { ($0.0, $0.1, "/items/{id}") }),
            Self.lambdaDir: DiagnosisScenarioTests.lambdaLog(requests: reqs.map { ($0.0 + 0.01, "aa" + $0.1.dropFirst(2)) }),
            "metrics/queries.json": Self.queries,
            "metrics/4xx.json": Self.metricData(points: [("2025-02-06T05:30:00+00:00", "0.0"), ("2025-02-06T05:31:00+00:00", "40.0"),
                                                         ("2025-02-06T05:32:00+00:00", "120.0")]),
        ])
        // No --status: the metric alone says there were 4xx to explain.
        #expect(d.outcome == .inferred, "\(d.headline ?? "") \(d.notes)")
        let f = try #require(d.findings.first)
        #expect(f.responder == "apigateway" && f.confidence == .medium)
        #expect(f.explanation.contains("AWS/ApiGateway 4XXError (ApiName=items-api,Stage=prod) counted 160"), "\(f.explanation)")
        #expect(f.explanation.contains("05:31:00 40, 05:32:00 120"))
        #expect(f.explanation.contains("show 0 such responses"))
        #expect(f.explanation.contains("never reach its execution log"))
        #expect(f.evidence.contains { $0.text.contains("4XXError Sum 120") && $0.source.hasSuffix("4xx.json") })
        #expect(d.signals.contains { $0.kind == "metric" && $0.unlogged != nil })
        // The metric is not API Gateway's access log, nor any request.
        let requests = try store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM event WHERE kind = 'access'") ?? -1 }
        #expect(requests == 0)
        let apigwEvents = d.coverage.first { $0.layer == "apigateway" }?.events
        #expect(apigwEvents == 40, "only the execution log's records count, not the 3 datapoints: \(d.coverage)")
    }

    @Test func aMetricsFileIsNotALayersLogs() throws {
        let (d, _) = try diagnose([
            "metrics/queries.json": Self.queries,
            "metrics/4xx.json": Self.metricData(points: [("2025-02-06T05:31:00+00:00", "40.0")]),
        ], status: "403")
        #expect(!d.coverage.contains { $0.layer == "apigateway" })
        #expect(d.outcome == .noEvidence || d.outcome == .nothingToExplain)
        #expect(d.notes.contains { $0.contains("4XXError") && $0.contains("no apigateway logs were given") })
    }

    @Test func aMetricNeverOverridesAnAnswerProvenByALogLine() throws {
        // nginx logged the 502s itself; an ALB metric of ELB 5xx beside it changes nothing of who answered.
        let nginx = (0..<10).map { DiagnosisScenarioTests.combined(Double($0 * 5), peer: "203.0.113.\($0 + 1)", "GET /api/items", $0 < 3 ? 502 : 200) }
        let metric = Self.metricData(label: "HTTPCode_ELB_5XX_Count", points: [("2025-02-06T05:32:00+00:00", "9.0")])
        let (with, _) = try diagnose(["access.log": nginx.joined(separator: "\n") + "\n", "alb-5xx.json": metric], at: 10)
        let (without, _) = try diagnose(["access.log": nginx.joined(separator: "\n") + "\n"], at: 10)
        #expect(with.findings.map(\.responder) == without.findings.map(\.responder))
        #expect(with.findings.map(\.confidence) == without.findings.map(\.confidence))
        #expect(with.outcome == without.outcome)
    }

    @Test func aGuardDutyFindingForTheSameClientIsEvidence() throws {
        let nginx = (0..<10).map { DiagnosisScenarioTests.combined(Double($0 * 5), peer: "198.51.100.7", "GET /wp-login.php", 404) }
        var finding = Self.guardDuty.samples[0].lines.joined(separator: "\n")
        finding = finding.replacingOccurrences(of: "2026-01-22T03:40:00.000Z", with: "2025-02-06T05:20:00.000Z")
            .replacingOccurrences(of: "2026-01-22T03:56:10.000Z", with: "2025-02-06T05:33:00.000Z")
        let (d, _) = try diagnose(["access.log": nginx.joined(separator: "\n") + "\n", "guardduty.json": finding + "\n"], at: 20)
        let f = try #require(d.findings.first)
        #expect(f.client_ip == "198.51.100.7")
        #expect(f.explanation.contains("GuardDuty also reported this client"))
        #expect(f.evidence.contains { $0.text.contains("Recon:EC2/PortProbeUnprotectedPort") })
        #expect(d.signals.contains { $0.kind == "guardduty" })
    }

    // MARK: - The API Gateway fixture, as the team first had it

    /// The fixture without its access log (execution log, Lambda log and the metrics file): the
    /// 4XXError metric is what says API Gateway answered errors none of those logs show.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: Corpus.repositoryRoot.appendingPathComponent("Fixtures/incidents/apigw-bot-scan-2026-01-22/metrics").path)))
    func theFixtureWithoutItsAccessLogIsAnsweredFromItsMetric() throws {
        let fixture = Corpus.repositoryRoot.appendingPathComponent("Fixtures/incidents/apigw-bot-scan-2026-01-22")
        let files = try FileManager.default.subpathsOfDirectory(atPath: fixture.path)
            .filter { !$0.hasPrefix("exportedlogs/3f9c2a71") && ($0.hasSuffix(".gz") || $0.hasSuffix(".json")) }
        let store = try TimelineStore()
        _ = try TimelineUpdate.run(store: store, paths: files.map { fixture.appendingPathComponent($0).path }, options: ImportOptions())
        let at = try #require(UserTime.parse("2026-01-22 03:55", zone: .utc))
        // Asked about the window alone, the execution log's own 404s (Lambda's) are the answer, and
        // the metric's count that no log shows is said beside it, never in its place.
        let all = try Diagnoser(store: store).diagnose(DiagnosisQuery(at: at, halfWindow: 120_000_000, zone: .utc))
        #expect(all.outcome == .answered && !all.findings.contains { $0.responder == "apigateway" })
        #expect(all.notes.contains { $0.contains("4XXError") && $0.contains("leaves this unlogged") }, "\(all.notes)")
        // Asked about the 403s, as the team did.
        let d = try Diagnoser(store: store).diagnose(DiagnosisQuery(at: at, halfWindow: 120_000_000, zone: .utc, status: StatusFilter("403")))
        #expect(d.outcome == .inferred, "\(d.headline ?? "") \(d.notes)")
        let f = try #require(d.findings.first)
        #expect(f.responder == "apigateway")
        #expect(f.explanation.contains("4XXError") && f.explanation.contains("03:54:00 149"), "\(f.explanation)")
        #expect(f.explanation.contains("leaves this unlogged"))
        #expect(f.evidence.contains { $0.source.hasSuffix("get-metric-data.json") })
    }

    // MARK: - timeline, report, export

    @Test func timelineForAClientShowsItsGuardDutyFindingActiveInTheWindow() throws {
        let nginx = (0..<4).map { DiagnosisScenarioTests.combined(Double($0 * 5), peer: "198.51.100.7", "GET /wp-login.php", 404) }
        var finding = Self.guardDuty.samples[0].lines.joined(separator: "\n")
        // Active from long before the window until after it: its last-seen stamp lies outside the window.
        finding = finding.replacingOccurrences(of: "2026-01-22T03:40:00.000Z", with: "2025-02-06T04:00:00.000Z")
            .replacingOccurrences(of: "2026-01-22T03:56:10.000Z", with: "2025-02-06T07:00:00.000Z")
        let dir = try TemporaryDirectory()
        try dir.write("access.log", nginx.joined(separator: "\n") + "\n")
        try dir.write("guardduty.json", finding + "\n")
        let store = try TimelineStore()
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        var q = TimelineQuery(from: DiagnosisScenarioTests.base - 60_000_000, to: DiagnosisScenarioTests.base + 60_000_000)
        q.clientIP = "198.51.100.7"
        let (chains, _) = try TimelineView.build(store, q)
        #expect(chains.flatMap(\.members).contains { $0.event.event.kind == .finding })
        #expect(chains.flatMap(\.members).filter { $0.event.event.kind == .access }.count == 4)
        // Without --ip the window is read as before: by time alone.
        let all = try TimelineView.build(store, TimelineQuery(from: DiagnosisScenarioTests.base - 60_000_000, to: DiagnosisScenarioTests.base + 60_000_000))
        #expect(!all.chains.flatMap(\.members).contains { $0.event.event.kind == .finding })
    }

    @Test func hostileMetricAndFindingTextIsEscapedInTheReport() throws {
        let hostileQueries = Self.queries.replacingOccurrences(of: "\"Value\": \"items-api\"", with: #""Value": "x|y`</td>\u001b[2J\n```%%-->;""#)
        let nginx = (0..<10).map { DiagnosisScenarioTests.combined(Double($0 * 5), peer: "198.51.100.7", "GET /wp-login.php", 404) }
        var finding = Self.guardDuty.samples[0].lines.joined(separator: "\n")
        finding = finding.replacingOccurrences(of: "2026-01-22T03:40:00.000Z", with: "2025-02-06T05:20:00.000Z")
            .replacingOccurrences(of: "2026-01-22T03:56:10.000Z", with: "2025-02-06T05:33:00.000Z")
            .replacingOccurrences(of: "is being probed.", with: #"is being probed.\u001b]8;;http://evil\u0007 | ``` <script>""#.dropLast())
        let dir = try TemporaryDirectory()
        try dir.write("access.log", nginx.joined(separator: "\n") + "\n")
        try dir.write("guardduty.json", finding + "\n")
        try dir.write("metrics/queries.json", hostileQueries)
        try dir.write("metrics/4xx.json", Self.metricData(points: [("2025-02-06T05:32:00+00:00", "10.0")]))
        let store = try TimelineStore()
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        let q = DiagnosisQuery(at: DiagnosisScenarioTests.base + 20_000_000, halfWindow: 120_000_000, zone: .utc)
        let d = try Diagnoser(store: store).diagnose(q)
        #expect(d.signals.contains { $0.kind == "metric" } && d.signals.contains { $0.kind == "guardduty" })
        let md = try ReportBuilder(store: store).build(d, query: q, options: ReportOptions(generatedAt: 0, commandLine: "investigate report"))
        #expect(md.contains("## Other signals"))
        #expect(!md.contains("\u{1b}") && !md.contains("\u{07}"))
        let (prose, blocks) = ReportEscapingTests.split(md)
        var header: Int?
        for line in prose {
            #expect(!line.contains("<script") && !line.contains("</td>"), "raw HTML: \(line)")
            guard line.hasPrefix("|") else { header = nil; continue }
            let n = ReportEscapingTests.cellSeparators(line)
            if let h = header { #expect(n == h, "row splits differently from its header: \(line)") } else { header = n }
        }
        // No log text opened a mermaid comment or arrow.
        for block in blocks where block.info == "mermaid" {
            #expect(!block.lines.contains { $0.contains("%%") || $0.contains("-->;") })
        }
    }

    /// WAF blocks that a logging filter kept out of the WAF log: the BlockedRequests metric counts
    /// them; the log's own BLOCK stays the answer, the metric is evidence beside it.
    @Test func blockedRequestsBeyondTheWafLogsBlocksAreCitedWithTheLoggingFilter() throws {
        let blocked = DiagnosisScenarioTests.waf(0, ip: "203.0.113.9", uri: "/app/admin", action: "BLOCK",
                                                 rule: "AWS-AWSManagedRulesCommonRuleSet", type: "MANAGED_RULE_GROUP")
        let allowed = (1..<6).map { DiagnosisScenarioTests.waf(Double($0 * 3), ip: "198.51.100.\($0)", uri: "/") }
        let statistics = """
            {
                "Label": "BlockedRequests",
                "Datapoints": [
                    { "Timestamp": "2025-02-06T05:32:00Z", "Sum": 30.0, "Unit": "Count" }
                ]
            }
            """
        let (d, _) = try diagnose(["waf.log": ([blocked] + allowed).joined(separator: "\n") + "\n", "blocked.json": statistics], status: "403")
        let f = try #require(d.findings.first)
        #expect(f.responder == "waf" && f.confidence == .high, "the WAF's own BLOCK record stays the proof")
        #expect(f.explanation.contains("BlockedRequests counted 30") && f.explanation.contains("show 1 such response"), "\(f.explanation)")
        #expect(f.explanation.contains("logging filter"))
    }

    @Test func inspectorFindingsAboutTheLayerThatAnsweredAreListed() throws {
        let nginx = (0..<6).map { DiagnosisScenarioTests.combined(Double($0 * 5), peer: "203.0.113.\($0 + 1)", "GET /api/items", $0 < 2 ? 502 : 200) }
        let (d, store) = try diagnose(["access.log": nginx.joined(separator: "\n") + "\n",
                                       "inspector.json": Self.inspector.samples[0].lines.joined(separator: "\n") + "\n"], at: 10)
        #expect(d.findings.contains { $0.responder == "nginx" })
        #expect(d.signals.contains { $0.kind == "inspector" && $0.text.contains("CVE-2021-23017") && $0.text.contains("nginx 1.18.0") })
        let q = DiagnosisQuery(at: DiagnosisScenarioTests.base + 10_000_000, halfWindow: 120_000_000, zone: .utc)
        let md = try ReportBuilder(store: store).build(d, query: q, options: ReportOptions(generatedAt: 0, commandLine: "investigate report"))
        #expect(md.contains("### Inspector findings about the layers in the answer"))
        #expect(md.contains("CVE-2021-23017"))
    }
}
