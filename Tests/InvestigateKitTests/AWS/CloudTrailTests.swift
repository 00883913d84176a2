import Foundation
import Testing
@testable import InvestigateKit

/// CloudTrail records on the AWS WAF guide's examples (see `AWSCloudTrailImporter`), every field checked.
@Suite struct CloudTrailTests {
    static func importer() throws -> any Importer {
        try #require(ImporterRegistry.standard.importer(id: "cloudtrail"))
    }

    @Test func wafv2UpdateWebACLEveryField() throws {
        let importer = try Self.importer()
        let sink = try parse(importer, importer.samples[0].lines)
        #expect(sink.rejected.isEmpty)
        let e = try #require(sink.events.first)
        #expect(e.layer == .cloudtrail && e.kind == .log)
        #expect(e.time == AWSTime.iso8601("2019-11-06T19:20:56Z"))
        #expect(e.extra["event_source"] == "wafv2.amazonaws.com" && e.extra["event_name"] == "UpdateWebACL")
        #expect(e.extra["event_version"] == "1.05" && e.extra["aws_region"] == "us-west-2")
        #expect(e.extra["user_arn"] == "arn:aws:sts::112233445566:assumed-role/Admin" && e.extra["user_type"] == "AssumedRole")
        #expect(e.clientIP == "10.0.0.1")
        #expect(e.userAgent?.hasPrefix("Mozilla/5.0 (Macintosh;") == true)
        #expect(e.requestID == "41c96e12-9790-46ab-b145-a230f358f2c2")
        #expect(e.extra["event_id"] == "517a10e6-4ca9-4828-af90-a5cff9756594")
        #expect(e.extra["event_type"] == "AwsApiCall" && e.extra["account_id"] == "112233445566")
        #expect(e.extra["request_parameters"]?.contains("\"geoMatchStatement\"") == true)
        #expect(e.extra["resource"] == "foo")
        #expect(e.extra["waf_change"] == "UpdateWebACL")
        #expect(e.message == "wafv2.amazonaws.com UpdateWebACL name=foo id=ebbcb976-8d59-4d20-8ca8-4ab2f6b7c07b scope=CLOUDFRONT by arn:aws:sts::112233445566:assumed-role/Admin")
        #expect(e.error == nil && e.level == "info")
        #expect(e.line == 1 && e.lineEnd == 1)
    }

    @Test func wafClassicReadIsNotAChangeAndAServiceIsNoClient() throws {
        let importer = try Self.importer()
        let sink = try parse(importer, importer.samples[1].lines)
        #expect(sink.rejected.isEmpty)
        let e = try #require(sink.events.first)
        #expect(e.extra["event_name"] == "GetRule" && e.extra["waf_change"] == nil)
        #expect(e.clientIP == nil && e.extra["source_service"] == "AWS Internal")
        #expect(e.extra["user_arn"] == "arn:aws:iam::777777777777:user/nate")
        #expect(e.userAgent == "console.amazonaws.com")
        #expect(e.line == 3 && e.lineEnd == 28)
        #expect(sink.notes.isEmpty)
        // The frame around the record is framing, no more.
        #expect(sink.framingLines == 4)
    }

    @Test func oneRecordPerLineAndLookupEvents() throws {
        let importer = try Self.importer()
        let record = #"{"eventVersion":"1.08","eventTime":"2024-05-01T14:20:00Z","eventSource":"wafv2.amazonaws.com","eventName":"UpdateIPSet","awsRegion":"us-east-1","sourceIPAddress":"cloudformation.amazonaws.com","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/deploy/ci"},"requestParameters":{"name":"blocklist","scope":"REGIONAL","id":"a1b2"},"requestID":"r-1","eventID":"e-1"}"#
        let escaped = record.replacingOccurrences(of: "\"", with: "\\\"")
        let lookup = #"{"Events":[{"EventId":"e-1","EventName":"UpdateIPSet","ReadOnly":"false","EventTime":"2024-05-01T14:20:00+00:00","CloudTrailEvent":""# + escaped + #""}]}"#
        let lines = [record, "{\"eventTime\":\"2024-05-01T14:21:00Z\",\"eventSource\":\"s3.amazonaws.com\"}", "not json", lookup]
        #expect(ImporterRegistry.standard.detect([record], fileName: "trail.ndjson").importer?.id == "cloudtrail")
        #expect(ImporterRegistry.standard.detect([lookup], fileName: "lookup.json").importer?.id == "cloudtrail")
        let sink = try parse(importer, lines)
        #expect(sink.events.count == 2)
        let e = sink.events[0]
        #expect(e.clientIP == nil && e.extra["source_service"] == "cloudformation.amazonaws.com")
        #expect(e.extra["waf_change"] == "UpdateIPSet" && e.extra["resource"] == "blocklist")
        #expect(sink.events[1].extra["waf_change"] == "UpdateIPSet" && sink.events[1].line == 4)
        #expect(sink.rejected.map(\.reason).contains("CloudTrail record has no eventName"))
        #expect(sink.rejected.map(\.reason).contains("text outside any JSON value"))
    }

    @Test func truncatedDocumentKeepsCompleteRecords() throws {
        let importer = try Self.importer()
        let whole = importer.samples[0].lines[0]
        let doubled = whole.replacingOccurrences(of: "}]}", with: "},") + String(whole.dropFirst(#"{"Records":["#.count).prefix(200))
        let sink = try parse(importer, [doubled])
        #expect(sink.events.count == 1)
        #expect(sink.rejected.count == 1)
        #expect(sink.rejected.first?.reason.hasPrefix("truncated CloudTrail document: 1 complete record(s)") == true)
    }

    @Test func hostileSourceIPIsKeptAsTextWithANote() throws {
        let importer = try Self.importer()
        let sink = try parse(importer, [#"{"eventTime":"2024-05-01T14:20:00Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","sourceIPAddress":"\u001b[31m1.2.3.4; DROP TABLE"}"#])
        let e = try #require(sink.events.first)
        #expect(e.clientIP == nil && e.extra["client_text"]?.contains("DROP TABLE") == true)
        #expect(sink.notes.contains { $0.contains("sourceIPAddress") })
    }
}

extension CloudTrailTests {
    /// `investigate timeline` shows a change to AWS WAF as its own line, headed by its summary, its
    /// hostile text escaped.
    @Test func aWafChangeIsOnTheTimeline() throws {
        let dir = try TemporaryDirectory()
        let record = #"{"eventTime":"2019-11-06T19:20:56Z","eventSource":"wafv2.amazonaws.com","eventName":"UpdateIPSet","sourceIPAddress":"10.0.0.1","userIdentity":{"arn":"arn:aws:iam::1:user/\u001b[2Jmallory"},"requestParameters":{"name":"blocklist","id":"a1"}}"#
        try dir.write("111122223333_CloudTrail_us-west-2_20191106T1925Z_x.json", "{\"Records\":[" + record + "]}\n")
        let store = try TimelineStore()
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        let at = AWSTime.iso8601("2019-11-06T19:21:00Z")!
        let (chains, _) = try TimelineView.build(store, TimelineQuery(from: at - 600_000_000, to: at + 600_000_000))
        let text = TimelineView.render(chains, zone: .utc, truncated: false)
        #expect(text.contains("wafv2.amazonaws.com UpdateIPSet name=blocklist id=a1 by arn:aws:iam::1:user/"))
        #expect(text.contains("cloudtrail"))
        #expect(!text.contains("\u{1b}"))
    }
}

extension CloudTrailTests {
    /// A trail delivered to CloudWatch Logs and read back with `filter-log-events`: each message
    /// is a record, read by this importer through the wrapper.
    @Test func cloudTrailInsideCloudWatchLogs() throws {
        let record = #"{\"eventVersion\":\"1.08\",\"eventTime\":\"2024-05-01T14:20:00Z\",\"eventSource\":\"wafv2.amazonaws.com\",\"eventName\":\"UpdateIPSet\",\"sourceIPAddress\":\"198.51.100.20\",\"requestParameters\":{\"name\":\"blocklist\",\"id\":\"a1b2\"}}"#
        let lines = ["{", "  \"events\": [", "    {\"logStreamName\": \"111122223333_CloudTrail_us-east-1\", \"timestamp\": 1714573200000, \"message\": \"\(record)\", \"ingestionTime\": 1714573201000, \"eventId\": \"1\"}", "  ]", "}"]
        let detected = try #require(ImporterRegistry.standard.detect(lines, fileName: "filter-log-events.json").importer)
        #expect(detected.id == "cloudwatch-json")
        let sink = try parse(detected, lines)
        #expect(sink.rejected.isEmpty, "\(sink.rejected.map(\.reason))")
        let e = try #require(sink.events.first)
        #expect(e.layer == .cloudtrail && e.extra["waf_change"] == "UpdateIPSet" && e.clientIP == "198.51.100.20")
    }
}
