import Foundation
import Testing
@testable import InvestigateKit

/// A WAF record's request headers are kept whole in `extra["headers"]` (names in their case, in
/// order, repeats kept), by both readers alike, and what-if rules inspect and aggregate by them.
@Suite struct WAFHeaderTests {
    /// A WAF record (the documentation's ALB sample's shape) with these headers and this time.
    static func record(ms: Int64 = 1_684_825_816_966, ip: String = "185.254.196.186", uri: String = "/.env", headers: String) -> String {
        #"{"timestamp":\#(ms),"formatVersion":1,"webaclId":"arn:aws:wafv2:us-east-1:944697335072:regional/webacl/cloudmonitoring-waf/8acf338d-9594-449d-b99a-f4e88a4cbac5","terminatingRuleId":"Default_Action","terminatingRuleType":"REGULAR","action":"ALLOW","terminatingRuleMatchDetails":[],"httpSourceName":"ALB","httpSourceId":"944697335072-app/alb/1e3b6eac51c9c245","ruleGroupList":[],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[],"requestHeadersInserted":null,"responseCodeSent":null,"httpRequest":{"clientIp":"\#(ip)","country":"US","headers":\#(headers),"uri":"\#(uri)","args":"","httpVersion":"HTTP/1.1","httpMethod":"GET","requestId":"1-646c66d8-23174f95617bd0c633b81f3a"}}"#
    }

    func event(_ line: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Event {
        // Typed and generic readings agree (where the typed reader takes the record at all).
        WAFRecordTests.check(line, sourceLocation: sourceLocation)
        let sink = try parse(AWSWAFImporter(), [line])
        #expect(sink.rejected.isEmpty, sourceLocation: sourceLocation)
        return try #require(sink.events.first, sourceLocation: sourceLocation)
    }

    @Test func everyHeaderOfTheDocumentationSample() throws {
        let sample = try #require(AWSWAFImporter().samples.first?.lines.first)
        #expect(WAFRecordTests.check(sample), "the typed reader left the usual record to the generic one")
        #expect(WAFRecordTests.check(Self.record(headers: #"[{"name":"cookie","value":"a=1"},{"name":"Cookie","value":"b=2"}]"#)))
        let e = try event(sample)
        #expect(e.extra["headers"] == #"[{"name":"Host","value":"52.54.199.152"},{"name":"User-agent","value":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.129 Safari/537.36"},{"name":"Accept-Encoding","value":"gzip, deflate"},{"name":"Accept","value":"*/*"},{"name":"Connection","value":"keep-alive"}]"#)
        // The columns still come from their headers.
        #expect(e.host == "52.54.199.152" && e.userAgent?.hasPrefix("Mozilla/5.0") == true)
    }

    @Test func repeatsOrderCaseAndOddElements() throws {
        let e = try event(Self.record(headers: #"[{"name":"cookie","value":"a=1"},{"name":"X-Forwarded-For","value":"203.0.113.7"},{"name":"Cookie","value":"session=s1; b=2"},{"name":"x-forwarded-for","value":"198.51.100.2"},{"name":"X-Num","value":5},{"name":"NoValue"},"not an object",{"name":"Q","value":"say \"hi\" \u00e9\u0001"}]"#))
        let headers = try #require(e.extra["headers"])
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(headers.utf8)) as? [[String: String]])
        #expect(parsed.map { $0["name"]! } == ["cookie", "X-Forwarded-For", "Cookie", "x-forwarded-for", "X-Num", "Q"])
        #expect(parsed.map { $0["value"]! } == ["a=1", "203.0.113.7", "session=s1; b=2", "198.51.100.2", "5", "say \"hi\" é\u{1}"])
        #expect(e.forwardedFor == "203.0.113.7")
        // No header at all is recorded as such; a record without the array records nothing.
        #expect(try event(Self.record(headers: "[]")).extra["headers"] == "[]")
        #expect(try event(Self.record(headers: "null")).extra["headers"] == nil)
    }

    /// Hostile shapes of the headers array: both readers give the same event.
    @Test(arguments: [
        #"[{"name":"A","value":"1","value":"2"},{"name":"B","name":"C","value":"3"}]"#,
        #"[{"name":null,"value":"x"},{"name":"D","value":null},{"name":"E","value":true},{"name":"F","value":{"g":1}}]"#,
        #"[{"name":"\u0000","value":"\ud83d\ude00"},{"name":"H","value":"\\"}]"#,
        #"{"name":"Host","value":"x"}"#,
        #"[[{"name":"Host","value":"x"}]]"#,
    ])
    func bothReadersAgree(_ headers: String) {
        WAFRecordTests.check(Self.record(headers: headers))
        let generic = WAFRecordTests.generic(Array(Self.record(headers: headers).utf8))
        if case .event(let e) = generic, let h = e.extra["headers"] {
            #expect((try? JSONSerialization.jsonObject(with: Data(h.utf8))) is [Any])
        }
    }

    /// End to end: WAF records ingested, replayed under rules that inspect headers the columns do
    /// not hold: a SingleHeader match, and rate rules keyed by a header and by a cookie.
    @Test func rulesInspectAndAggregateByStoredHeaders() throws {
        var lines: [String] = []
        let t0: Int64 = 1_738_800_000_000
        // 12 requests with API key k1 from four addresses in 12 s, compressed; 3 with key k2.
        for i in 0..<12 {
            lines.append(Self.record(ms: t0 + Int64(i) * 1000, ip: "192.0.2.\(i % 4 + 1)", uri: "/api",
                                     headers: #"[{"name":"Host","value":"api.example.com"},{"name":"X-Api-Key","value":"k1"},{"name":"Accept-Encoding","value":"gzip"},{"name":"Cookie","value":"theme=dark"},{"name":"cookie","value":"session=alice"}]"#))
        }
        for i in 0..<3 {
            lines.append(Self.record(ms: t0 + 20_000 + Int64(i) * 1000, ip: "198.51.100.9", uri: "/api",
                                     headers: #"[{"name":"Host","value":"api.example.com"},{"name":"x-api-key","value":"k2"}]"#))
        }
        let dir = try TemporaryDirectory()
        try dir.write("111122223333_waflogs_us-east-1_prod-acl_20250206T0000Z_abcd.log", lines.joined(separator: "\n") + "\n")
        let store = try TimelineStore()
        _ = try Ingester(store: store).ingest(paths: [dir.path])

        let rules = #"""
        [
          {"Name": "GzipClients", "Priority": 0, "Action": {"Count": {}},
           "Statement": {"ByteMatchStatement": {"SearchString": "gzip", "FieldToMatch": {"SingleHeader": {"Name": "accept-encoding"}},
             "PositionalConstraint": "CONTAINS", "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}},
           "VisibilityConfig": {"SampledRequestsEnabled": true, "CloudWatchMetricsEnabled": true, "MetricName": "GzipClients"}},
          {"Name": "PerSession", "Priority": 1, "Action": {"Count": {}},
           "Statement": {"RateBasedStatement": {"Limit": 10, "EvaluationWindowSec": 60, "AggregateKeyType": "CUSTOM_KEYS",
             "CustomKeys": [{"Cookie": {"Name": "session", "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}}]}},
           "VisibilityConfig": {"SampledRequestsEnabled": true, "CloudWatchMetricsEnabled": true, "MetricName": "PerSession"}},
          {"Name": "PerApiKey", "Priority": 2, "Action": {"Block": {}},
           "Statement": {"RateBasedStatement": {"Limit": 10, "EvaluationWindowSec": 60, "AggregateKeyType": "CUSTOM_KEYS",
             "CustomKeys": [{"Header": {"Name": "X-Api-Key", "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}}]}},
           "VisibilityConfig": {"SampledRequestsEnabled": true, "CloudWatchMetricsEnabled": true, "MetricName": "PerApiKey"}}
        ]
        """#
        let acl = try WebACLParser.parse(Data(rules.utf8))
        #expect(acl.rules.allSatisfy { $0.unsupported.isEmpty }, "\(acl.rules.map(\.unsupported))")
        var options = ReplayOptions()
        options.detectors = []
        let engine = ReplayEngine(options: options, acl: acl)
        var alerts: [Alert] = []
        _ = try engine.run(store) { alerts.append($0) }
        let stats = Dictionary(uniqueKeysWithValues: try #require(engine.evaluator).stats.map { ($0.name, $0) })
        let gzip = try #require(stats["GzipClients"])
        #expect(gzip.matched == 12 && gzip.undecided == 0)
        // The session cookie sits in the second of two Cookie headers.
        let session = try #require(stats["PerSession"])
        #expect(session.matched == 2 && session.undecided == 0, "\(session.undecidedReasons)")
        let perKey = try #require(stats["PerApiKey"])
        #expect(perKey.blocked == 2 && perKey.undecided == 0, "\(perKey.undecidedReasons)")
        #expect(perKey.blockedIPs.count == 2)
        #expect(alerts.contains { $0.detector == "waf-rule" && $0.key == "k1" })
    }
}
