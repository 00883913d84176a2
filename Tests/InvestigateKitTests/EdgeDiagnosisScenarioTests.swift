import Foundation
import Testing
@testable import InvestigateKit

/// Incidents at the edge: CloudFront in front of the stack, and CloudTrail beside it. Written as
/// CloudFront writes its standard logs (the documented 33 fields, tab-separated, W3C header) and
/// read through the importers, like the other scenarios.
extension DiagnosisScenarioTests {
    /// A CloudFront record `s` seconds after the base, as the guide's example lines are written.
    static func cloudfront(_ s: Double, ip: String, _ path: String, _ status: Int, result: String = "Miss", detailed: String? = nil,
                           id: String, query: String = "-", taken: String = "0.012") -> String {
        let t = base + Int64(s * 1e6)
        let shown = TimeFormat.display(t, zone: .utc, millis: false).split(separator: " ")
        let fields = [String(shown[0]), String(shown[1]), "NRT57-P2", "1045", ip, "GET", "d111111abcdef8.cloudfront.net", path, String(status), "-",
                      "Mozilla/5.0%20(X11;%20Linux%20x86_64)%20Firefox/134.0", query, "-", result, id, "example.com", "https", "230", taken, "-",
                      "TLSv1.3", "TLS_AES_128_GCM_SHA256", result, "HTTP/2.0", "-", "-", "52113", taken, detailed ?? result, "text/html", "512", "-", "-"]
        return fields.joined(separator: "\t")
    }

    static func cloudfrontLog(_ extra: [String]) -> String {
        var lines: [String] = []
        for i in 0..<60 {
            lines.append(cloudfront(Double(-300 + i * 10), ip: "198.51.100.\(i % 20 + 1)", "/static/app.js", 200, result: "Hit", id: "bg\(i)AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="))
        }
        return (AWSCloudFrontImporterHeader.lines + (lines + extra)).joined(separator: "\n") + "\n"
    }

    static func albLine(_ s: Double, client: String, path: String, elb: Int, target: String, targetStatus: String, trace: String) -> String {
        let t = iso(s).replacingOccurrences(of: "Z", with: "000Z")
        let created = iso(s - 0.05).replacingOccurrences(of: "Z", with: "000Z")
        return "https \(t) app/web-prod/5f2c1a8e9b3d4c71 \(client):52113 \(target) 0.000 0.048 0.000 \(elb) \(targetStatus) 230 512 \"GET https://example.com:443\(path) HTTP/1.1\" \"Amazon CloudFront\" TLS_AES_128_GCM_SHA256 TLSv1.3 arn:aws:elasticloadbalancing:ap-northeast-1:111122223333:targetgroup/web/73e2d6bc24d8a067 \"Root=\(trace)\" \"example.com\" \"-\" 0 \(created) \"forward\" \"-\" \"-\" \"\(target)\" \"\(targetStatus)\" \"-\" \"-\""
    }

    /// ALB traffic from CloudFront's edge servers (the ALB's clients are CloudFront's addresses).
    static func albLog(_ extra: [String]) -> String {
        var lines: [String] = []
        for i in 0..<60 {
            lines.append(albLine(Double(-299 + i * 10), client: "130.176.0.\(i % 8 + 1)", path: "/api/items", elb: 200, target: "10.0.1.20:80",
                                 targetStatus: "200", trace: "1-67a44a04-\(String(format: "%024x", i))"))
        }
        return (lines + extra).joined(separator: "\n") + "\n"
    }

    // MARK: - CloudFront's own answers

    /// A geo-blocked viewer: CloudFront's record names `ClientGeoBlocked`; nginx's log covers the
    /// moment and, as expected, holds nothing of it. CloudFront answered; its distribution's policy
    /// is the cause.
    @Test func aGeoBlockAtTheEdgeIsCloudFrontsAnswer() throws {
        let blocked = Self.cloudfront(20, ip: "203.0.113.45", "/app/admin", 403, result: "Error", detailed: "ClientGeoBlocked",
                                      id: "GEO1xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==")
        let d = try diagnose(["cf/E2EXAMPLE1ABCD.2025-02-06-05.a1b2c3d4": Self.cloudfrontLog([blocked]),
                              "var/log/nginx/access.log": Self.nginxBehindBalancer()],
                             at: 10, status: "403")
        #expect(d.outcome == .answered)
        let f = try #require(d.findings.first)
        #expect(f.responder == "cloudfront" && f.cause == "cloudfront" && f.confidence == .high)
        #expect(f.rule == "cloudfront-own-error")
        #expect(f.explanation.contains("ClientGeoBlocked") && f.explanation.contains("geographic location"))
        #expect(f.evidence.count == 1 && f.evidence[0].layer == "cloudfront" && f.evidence[0].line == 63)
        #expect(f.client_ip == "203.0.113.45" && f.path == "/app/admin")
        #expect(f.absent.contains { $0.layer == "nginx" && $0.expected })
        #expect(f.next_steps.contains { $0.contains("geographic restrictions") })
    }

    /// CloudFront 502 with `OriginConnectError`, and the ALB (its origin) logged the window without
    /// any record of the request. A connect error means no HTTP request ever reached the ALB, so the
    /// ALB's silence is expected, not suspicious: CloudFront sent the 502, the origin (the ALB, not
    /// accepting CloudFront's connections) is the cause.
    @Test func anOriginConnectErrorIsCloudFrontsAnswerAndTheAlbsSilenceIsExpected() throws {
        let failed = Self.cloudfront(20, ip: "203.0.113.45", "/api/items", 502, result: "Error", detailed: "OriginConnectError",
                                     id: "CONNxwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==", taken: "10.002")
        let d = try diagnose(["cf/E2EXAMPLE1ABCD.2025-02-06-05.a1b2c3d4": Self.cloudfrontLog([failed]),
                              "alb/111122223333_elasticloadbalancing_ap-northeast-1_app.web-prod.5f2c1a8e9b3d4c71_20250206T0530Z_10.0.0.5_x.log": Self.albLog([])],
                             at: 10, status: "502")
        let f = try #require(d.findings.first)
        #expect(f.responder == "cloudfront" && f.cause == "alb" && f.confidence == .high)
        #expect(f.explanation.contains("OriginConnectError") && f.explanation.contains("No HTTP request reached the origin"))
        let alb = try #require(f.absent.first { $0.layer == "alb" })
        #expect(alb.expected && alb.why.contains("could not connect"))
        #expect(f.next_steps.contains { $0.contains("security group") })
    }

    /// CloudFront 502 whose detailed result type is plain `Error`, and the ALB logged the same
    /// request with 502 and target `-`: the ALB answered (its target failed) and CloudFront only
    /// passed the 502 on. The CloudFront rule must not take the answer from the ALB.
    @Test func aRelayedOriginErrorIsTheDeeperLayersAnswer() throws {
        let relayed = Self.cloudfront(20, ip: "203.0.113.45", "/api/orders", 502, result: "Error", detailed: "Error",
                                      id: "RELAxwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==", taken: "0.060")
        let albRecord = Self.albLine(19.99, client: "130.176.0.9", path: "/api/orders", elb: 502, target: "10.0.1.20:80", targetStatus: "-",
                                     trace: "1-67a44a18-aaaaaaaaaaaaaaaaaaaaaaaa")
        let d = try diagnose(["cf/E2EXAMPLE1ABCD.2025-02-06-05.a1b2c3d4": Self.cloudfrontLog([relayed]),
                              "alb/111122223333_elasticloadbalancing_ap-northeast-1_app.web-prod.5f2c1a8e9b3d4c71_20250206T0530Z_10.0.0.5_x.log": Self.albLog([albRecord])],
                             at: 10, status: "502")
        let f = try #require(d.findings.first)
        #expect(f.rule == "alb-own-status", "\(f.rule): \(f.explanation)")
        #expect(f.responder == "alb")
        #expect(f.evidence.contains { $0.layer == "alb" })
    }

    // MARK: - CloudTrail beside the stack

    static func cloudtrail(_ s: Double, _ name: String, resource: String, arn: String) -> String {
        #"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","arn":"\#(arn)"},"eventTime":"\#(iso(s).replacingOccurrences(of: ".000", with: ""))","eventSource":"wafv2.amazonaws.com","eventName":"\#(name)","awsRegion":"ap-northeast-1","sourceIPAddress":"192.0.2.10","userAgent":"aws-cli/2.15.0","requestParameters":{"name":"\#(resource)","scope":"REGIONAL","id":"4f7d2c1a"},"responseElements":{"nextLockToken":"x"},"requestID":"r-\#(name)","eventID":"e-\#(name)","eventType":"AwsApiCall","recipientAccountId":"111122223333"}"#
    }

    /// A WAF block 20 minutes after the web ACL was updated: the WAF's rule is the answer, the
    /// update is context (when, by whom), cited from CloudTrail.
    @Test func aWafChangeInTheHourBeforeABlockIsContext() throws {
        let waf = [Self.waf(-30, ip: "198.51.100.4", uri: "/api/items"),
                   Self.waf(20, ip: "203.0.113.45", uri: "/app/admin", action: "BLOCK", rule: "block-admin")].joined(separator: "\n") + "\n"
        let trail = "{\"Records\":[" + [Self.cloudtrail(-1200, "UpdateWebACL", resource: "web-acl-prod", arn: "arn:aws:sts::111122223333:assumed-role/ops/alice"),
                                        Self.cloudtrail(-5000, "UpdateIPSet", resource: "old-change", arn: "arn:aws:sts::111122223333:assumed-role/ops/bob")].joined(separator: ",") + "]}\n"
        let d = try diagnose(["waf/waf.log": waf, "trail/111122223333_CloudTrail_ap-northeast-1_20250206T0530Z_x.json": trail],
                             at: 10, status: "403")
        let f = try #require(d.findings.first)
        #expect(f.responder == "waf" && f.rule == "waf-terminating-action")
        #expect(f.explanation.contains("Context from CloudTrail, not the answer: this web ACL `web-acl-prod` changed (UpdateWebACL)"))
        #expect(f.explanation.contains("by arn:aws:sts::111122223333:assumed-role/ops/alice, 20 min before"))
        #expect(!f.explanation.contains("old-change"))
        #expect(f.evidence.contains { $0.layer == "cloudtrail" })
        #expect(!f.evidence.contains { $0.text.contains("old-change") })
    }

    /// Asked about the block's window only, a change 40 minutes before it is still read: context
    /// files are stored whole, not cut to the window's margin.
    @Test func aWindowedQuestionStillSeesAChangeAnHourBefore() throws {
        let waf = [Self.waf(-30, ip: "198.51.100.4", uri: "/api/items"),
                   Self.waf(20, ip: "203.0.113.45", uri: "/app/admin", action: "BLOCK", rule: "block-admin")].joined(separator: "\n") + "\n"
        let trail = "{\"Records\":[" + Self.cloudtrail(-2400, "UpdateWebACL", resource: "web-acl-prod", arn: "arn:aws:sts::111122223333:assumed-role/ops/alice") + "]}\n"
        let d = try diagnose(["waf/waf.log": waf, "trail/111122223333_CloudTrail_ap-northeast-1_20250206T0500Z_x.json": trail],
                             at: 10, status: "403", asked: true)
        let f = try #require(d.findings.first)
        #expect(f.responder == "waf")
        #expect(f.explanation.contains("by arn:aws:sts::111122223333:assumed-role/ops/alice, 40 min before"))
    }

    /// A CloudTrail file is not a WAF log: beside nginx behind a load balancer, the 403 in no log is
    /// still inferred in front of nginx, and the WAF is still named as not provided.
    @Test func aCloudTrailFileDoesNotCountAsWafLogs() throws {
        let trail = "{\"Records\":[" + Self.cloudtrail(-100, "UpdateIPSet", resource: "blocklist", arn: "arn:aws:iam::111122223333:user/ci") + "]}\n"
        let d = try diagnose(["var/log/nginx/access.log": Self.nginxBehindBalancer(errorsAt: [(20, "GET /app/admin", 403)]),
                              "trail/111122223333_CloudTrail_ap-northeast-1_20250206T0530Z_x.json": trail],
                             at: 10, status: "403", ip: "203.0.113.45")
        #expect(d.outcome == .inferred)
        let f = try #require(d.findings.first)
        #expect(f.responder == "upstream")
        #expect(f.next_steps.contains { $0.contains("WAFLogs") })
        #expect(!d.coverage.contains { $0.layer == "waf" })
    }
}

/// The W3C header CloudFront writes at the top of every standard log file.
enum AWSCloudFrontImporterHeader {
    static let lines = ["#Version: 1.0", "#Fields: " + AWSCloudFrontParser.documentedFields.joined(separator: " ")]
}

extension DiagnosisScenarioTests {
    /// A web ACL on the distribution: its WAF record carries CloudFront's x-edge-request-id as
    /// `httpRequest.requestId`, and the two are linked by it (clients differ: WAF names the viewer
    /// CloudFront saw, and the paths agree, but the id decides).
    @Test func aCloudFrontRecordAndItsWebACLsRecordShareTheEdgeRequestID() throws {
        let id = "LINKxwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ=="
        let blocked = Self.cloudfront(20, ip: "203.0.113.45", "/app/admin", 403, result: "Error", detailed: "Error", id: id)
        let ms = (Self.base + 19_990_000) / 1000
        let waf = #"{"timestamp":\#(ms),"formatVersion":1,"webaclId":"arn:aws:wafv2:us-east-1:111122223333:global/webacl/cf-acl/0d1f","terminatingRuleId":"block-admin","terminatingRuleType":"REGULAR","action":"BLOCK","terminatingRuleMatchDetails":[],"httpSourceName":"CF","httpSourceId":"E2EXAMPLE1ABCD","ruleGroupList":[],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[],"requestHeadersInserted":null,"responseCodeSent":null,"httpRequest":{"clientIp":"203.0.113.45","country":"JP","headers":[{"name":"Host","value":"example.com"}],"uri":"/app/admin","args":"","httpVersion":"HTTP/2.0","httpMethod":"GET","requestId":"\#(id)"}}"#
        let dir = try TemporaryDirectory()
        try dir.write("cf/E2EXAMPLE1ABCD.2025-02-06-05.a1b2c3d4", Self.cloudfrontLog([blocked]))
        try dir.write("waf/cf-waf.log", waf + "\n")
        let store = try TimelineStore()
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        let keys = try store.read { db in
            try String.fetchAll(db, sql: """
                SELECT l.key FROM link l JOIN event e ON e.id = l.event_id WHERE e.request_id = ? ORDER BY e.layer
                """, arguments: [id])
        }
        #expect(keys.count == 2)
        #expect(keys.contains("x_edge_request_id"), "\(keys)")
        // And the WAF's decision answers the 403 the viewer got from CloudFront.
        let q = DiagnosisQuery(at: Self.base + 10_000_000, halfWindow: 120_000_000, zone: .utc, status: StatusFilter("403"), clientIP: nil)
        let f = try #require(try Diagnoser(store: store).diagnose(q).findings.first)
        #expect(f.responder == "waf" && f.explanation.contains("block-admin"))
        #expect(f.evidence.contains { $0.layer == "waf" })
    }
}

extension DiagnosisScenarioTests {
    /// The detailed result types, each on its own: who answered, and whose fault it was.
    @Test(arguments: [
        // (status, result type, detailed type, expected rule, expected cause)
        (403, "Error", "ClientGeoBlocked", "cloudfront-own-error", "cloudfront"),
        (400, "Error", "InvalidRequestHeader", "cloudfront-own-error", "client"),
        (429, "LimitExceeded", "LimitExceeded", "cloudfront-own-error", "client"),
        (503, "CapacityExceeded", "CapacityExceeded", "cloudfront-own-error", "cloudfront"),
        (502, "Error", "OriginDnsError", "cloudfront-own-error", "cloudfront"),
        (504, "Error", "OriginCommError", "cloudfront-own-error", "cloudfront"),
        // An error passed on from the origin: not CloudFront's own. The origin answered (whatever
        // it is: CloudFront's log does not say); with no logs of it, why is unknown, not guessed.
        (500, "Error", "Error", "cloudfront-own-error", "unknown"),
        (403, "Error", "Error", "cloudfront-own-error", "upstream"),
        // Served from the cache: CloudFront answered, and a 404 is the client's.
        (404, "Hit", "Hit", "innermost-record", "client"),
    ])
    func eachDetailedResultType(_ c: (Int, String, String, String, String)) throws {
        let (status, result, detailed, rule, cause) = c
        let line = Self.cloudfront(20, ip: "203.0.113.45", "/x", status, result: result, detailed: detailed,
                                   id: "TYPExwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==")
        let d = try diagnose(["cf/E2EXAMPLE1ABCD.2025-02-06-05.a1b2c3d4": Self.cloudfrontLog([line])], at: 10, status: String(status))
        let f = try #require(d.findings.first)
        #expect(f.rule == rule, "\(detailed): \(f.rule) \(f.explanation)")
        #expect(f.cause == cause, "\(detailed): \(f.cause)")
        #expect(f.responder == (detailed == "Error" ? "upstream" : "cloudfront"))
        if detailed == "Error" {
            #expect(f.confidence == .medium && f.explanation.contains("passed on an error its origin answered"))
            #expect(f.next_steps.contains { $0.contains("origin's logs") })
        } else if rule == "innermost-record" {
            // Only CloudFront's logs: a layer behind it may have produced the status, and it says so.
            #expect(f.confidence == .low && f.explanation.contains("a layer behind it may have produced the status"))
        } else {
            #expect(f.explanation.contains(detailed))
        }
    }

    /// Hostile text in a CloudFront line (an escape sequence URL-encoded in the path) reaches the
    /// terminal escaped, and the Markdown report escaped.
    @Test func hostileCloudFrontTextIsEscaped() throws {
        let line = Self.cloudfront(20, ip: "203.0.113.45", "/%1B%5B2J%7C%60x%60", 403, result: "Error", detailed: "ClientGeoBlocked",
                                   id: "HOSTxwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==")
        let d = try diagnose(["cf/E2EXAMPLE1ABCD.2025-02-06-05.a1b2c3d4": Self.cloudfrontLog([line])], at: 10, status: "403")
        let f = try #require(d.findings.first)
        #expect(f.path == "/\u{1b}[2J|`x`")
        let text = d.renderText(zone: .utc)
        #expect(!text.contains("\u{1b}"))
    }
}

extension DiagnosisScenarioTests {
    /// The Markdown report cites the change as evidence, and a CloudTrail file with no call in the
    /// window is context, not a gap in the logs.
    @Test func theReportCitesTheChangeAndCountsNoCloudTrailGap() throws {
        let dir = try TemporaryDirectory()
        try dir.write("waf/waf.log", Self.waf(20, ip: "203.0.113.45", uri: "/app/admin", action: "BLOCK", rule: "block-admin") + "\n")
        try dir.write("trail/111122223333_CloudTrail_ap-northeast-1_20250206T0530Z_x.json",
                      "{\"Records\":[" + Self.cloudtrail(-1200, "UpdateWebACL", resource: "web-acl-prod", arn: "arn:aws:sts::111122223333:assumed-role/ops/alice") + "]}\n")
        let store = try TimelineStore()
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        let q = DiagnosisQuery(at: Self.base + 10_000_000, halfWindow: 120_000_000, zone: .utc, status: StatusFilter("403"), clientIP: nil)
        let d = try Diagnoser(store: store).diagnose(q)
        let md = try ReportBuilder(store: store).build(d, query: q, options: ReportOptions(generatedAt: 0, commandLine: "investigate report"))
        #expect(md.contains("| cloudtrail |") && md.contains("context (API calls, not traffic)"))
        #expect(!md.contains("**cloudtrail**: gap"))
        #expect(md.contains("Context from CloudTrail, not the answer"))
        #expect(md.contains("**cloudtrail** ·"))
    }
}

extension DiagnosisScenarioTests {
    /// CloudFront logs every viewer request, its own refusals included: when its log covers the
    /// window and holds no 403 for the client, no layer behind it can have sent one unseen.
    @Test func cloudFrontLogsWithoutTheErrorLeaveNothingToExplain() throws {
        let d = try diagnose(["cf/E2EXAMPLE1ABCD.2025-02-06-05.a1b2c3d4": Self.cloudfrontLog([]),
                              "var/log/nginx/access.log": Self.nginxBehindBalancer()],
                             at: 10, status: "403", ip: "198.51.100.3")
        #expect(d.findings.isEmpty)
        #expect(d.outcome == .nothingToExplain)
        #expect(([d.headline ?? ""] + d.notes).joined(separator: " ").contains("cloudfront"))
    }
}

extension DiagnosisScenarioTests {
    /// ALB connection logs record TLS connections, not requests: given beside nginx, they do not
    /// stand for the ALB's access log, and the 403 in no log is inferred in front of nginx as it is
    /// without them.
    @Test func albConnectionLogsDoNotStandForItsAccessLog() throws {
        let connections = (0..<40).map { i in
            "\(Self.iso(Double(-200 + i * 10)).replacingOccurrences(of: "Z", with: "000Z")) 198.51.100.\(i % 9 + 1) \(40000 + i) 443 TLSv1.3 TLS_AES_128_GCM_SHA256 0.004 \"-\" - - Success TID_\(String(format: "%032x", i))"
        }.joined(separator: "\n") + "\n"
        let d = try diagnose(["var/log/nginx/access.log": Self.nginxBehindBalancer(errorsAt: [(20, "GET /app/admin", 403)]),
                              "alb/111122223333_elasticloadbalancing_ap-northeast-1_app.web-prod.5f2c1a8e9b3d4c71_20250206T0530Z_10.0.0.5_conn.log": connections],
                             at: 10, status: "403", ip: "203.0.113.45")
        #expect(d.outcome == .inferred)
        let f = try #require(d.findings.first)
        #expect(f.responder == "upstream" && f.confidence == .medium)
        #expect(d.coverage.contains { $0.layer == "alb" && $0.in_window > 0 })
    }
}

extension DiagnosisScenarioTests {
    /// A 502 nginx logged, with only ALB connection logs beside it: the ALB's silence about the
    /// request is "not provided", never "suspicious" (connection logs record no request).
    @Test func albConnectionLogsNeverMakeTheAlbsSilenceSuspicious() throws {
        let connections = (0..<40).map { i in
            "\(Self.iso(Double(-200 + i * 10)).replacingOccurrences(of: "Z", with: "000Z")) 198.51.100.\(i % 9 + 1) \(40000 + i) 443 TLSv1.3 TLS_AES_128_GCM_SHA256 0.004 \"-\" - - Success TID_\(String(format: "%032x", i))"
        }.joined(separator: "\n") + "\n"
        let d = try diagnose(["var/log/nginx/access.log": Self.nginxBehindBalancer(errorsAt: [(20, "GET /api/orders", 502)]),
                              "alb/111122223333_elasticloadbalancing_ap-northeast-1_app.web-prod.5f2c1a8e9b3d4c71_20250206T0530Z_10.0.0.5_conn.log": connections],
                             at: 10, status: "502")
        let f = try #require(d.findings.first)
        #expect(f.responder == "nginx")
        #expect(!f.absent.contains { $0.layer == "alb" && $0.why.hasPrefix("suspicious") }, "\(f.absent)")
    }
}

extension DiagnosisScenarioTests {
    /// A web ACL on the distribution (`httpSourceName` CF) names the viewer, while the ALB behind
    /// CloudFront names CloudFront's edge address: the WAF record joins CloudFront's by the edge
    /// request id, and CloudFront's record joins the ALB's as it would with no WAF at all. Before,
    /// the WAF stood between CloudFront and the ALB on the matching path, and its client never
    /// equalled the ALB's, so the origin's record was left out of the chain.
    @Test func aDistributionsWebACLDoesNotCutCloudFrontFromItsOrigin() throws {
        let id = "ORIGxwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ=="
        let relayed = Self.cloudfront(20, ip: "203.0.113.45", "/api/orders", 502, result: "Error", detailed: "Error", id: id, taken: "0.060")
        let ms = (Self.base + 19_940_000) / 1000
        let waf = #"{"timestamp":\#(ms),"formatVersion":1,"webaclId":"arn:aws:wafv2:us-east-1:111122223333:global/webacl/cf-acl/0d1f","terminatingRuleId":"Default_Action","terminatingRuleType":"REGULAR","action":"ALLOW","terminatingRuleMatchDetails":[],"httpSourceName":"CF","httpSourceId":"E2EXAMPLE1ABCD","ruleGroupList":[],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[],"requestHeadersInserted":null,"responseCodeSent":null,"httpRequest":{"clientIp":"203.0.113.45","country":"JP","headers":[{"name":"Host","value":"example.com"}],"uri":"/api/orders","args":"","httpVersion":"HTTP/2.0","httpMethod":"GET","requestId":"\#(id)"}}"#
        let albRecord = Self.albLine(19.99, client: "130.176.0.9", path: "/api/orders", elb: 502, target: "10.0.1.20:80", targetStatus: "-",
                                     trace: "1-67a44a18-bbbbbbbbbbbbbbbbbbbbbbbb")
        let dir = try TemporaryDirectory()
        try dir.write("cf/E2EXAMPLE1ABCD.2025-02-06-05.a1b2c3d4", Self.cloudfrontLog([relayed]))
        try dir.write("waf/cf-waf.log", waf + "\n")
        try dir.write("alb/111122223333_elasticloadbalancing_ap-northeast-1_app.web-prod.5f2c1a8e9b3d4c71_20250206T0530Z_10.0.0.5_x.log",
                      Self.albLog([albRecord]))
        let store = try TimelineStore()
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        let layers = try store.read { db in
            try String.fetchAll(db, sql: """
                SELECT e.layer FROM link l JOIN event e ON e.id = l.event_id
                WHERE l.chain_id = (SELECT l2.chain_id FROM link l2 JOIN event e2 ON e2.id = l2.event_id WHERE e2.request_id = ? AND e2.layer = 'cloudfront')
                ORDER BY e.layer
                """, arguments: [id])
        }
        #expect(layers == ["alb", "cloudfront", "waf"], "\(layers)")
        let q = DiagnosisQuery(at: Self.base + 10_000_000, halfWindow: 120_000_000, zone: .utc, status: StatusFilter("502"), clientIP: "203.0.113.45")
        let f = try #require(try Diagnoser(store: store).diagnose(q).findings.first)
        #expect(f.responder == "alb", "\(f.rule): \(f.explanation)")
        #expect(f.evidence.contains { $0.layer == "alb" })
    }
}

extension DiagnosisScenarioTests {
    /// A CloudTrail call as CloudTrail writes it, from any service.
    static func cloudtrailCall(_ s: Double, source: String, _ name: String, parameters: String, readOnly: Bool = false, error: String? = nil) -> String {
        let failed = error.map { #","errorCode":"\#($0)","errorMessage":"denied""# } ?? ""
        return #"{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/deploy/carol"},"eventTime":"\#(iso(s).replacingOccurrences(of: ".000", with: ""))","eventSource":"\#(source)","eventName":"\#(name)","awsRegion":"ap-northeast-1","sourceIPAddress":"192.0.2.10","userAgent":"terraform/1.9","requestParameters":\#(parameters),"responseElements":null,"requestID":"r-\#(name)","eventID":"e-\#(name)-\#(Int(s))","readOnly":\#(readOnly),"eventType":"AwsApiCall","recipientAccountId":"111122223333"\#(failed)}"#
    }

    /// CloudFront could not connect to its origin twelve minutes after someone revoked the ALB's
    /// security group rule: the connect error is the answer, the revoke is cited as context, with
    /// who and when. Read-only calls, failed calls and changes to unrelated services are not.
    @Test func anOriginConnectErrorCitesTheNetworkChangeBeforeIt() throws {
        let failed = Self.cloudfront(20, ip: "203.0.113.45", "/api/items", 502, result: "Error", detailed: "OriginConnectError",
                                     id: "SGRVxwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==", taken: "10.002")
        let calls = [
            Self.cloudtrailCall(-720, source: "ec2.amazonaws.com", "RevokeSecurityGroupIngress",
                                parameters: #"{"groupId":"sg-0a1b2c3d4e5f67890","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":443,"toPort":443}]}}"#),
            Self.cloudtrailCall(-600, source: "ec2.amazonaws.com", "DescribeSecurityGroups", parameters: #"{"groupId":"sg-0a1b2c3d4e5f67890"}"#, readOnly: true),
            Self.cloudtrailCall(-500, source: "ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", parameters: #"{"groupId":"sg-0fail"}"#, error: "UnauthorizedOperation"),
            Self.cloudtrailCall(-400, source: "s3.amazonaws.com", "PutBucketPolicy", parameters: #"{"bucketName":"logs"}"#),
        ]
        let d = try diagnose(["cf/E2EXAMPLE1ABCD.2025-02-06-05.a1b2c3d4": Self.cloudfrontLog([failed]),
                              "trail/111122223333_CloudTrail_ap-northeast-1_20250206T0520Z_x.json": "{\"Records\":[" + calls.joined(separator: ",") + "]}\n"],
                             at: 10, status: "502")
        let f = try #require(d.findings.first)
        #expect(f.responder == "cloudfront" && f.rule == "cloudfront-own-error")
        #expect(f.explanation.contains("Context from CloudTrail, not the answer: the network (security groups, ACLs, routes) (`sg-0a1b2c3d4e5f67890`) changed (RevokeSecurityGroupIngress)"),
                "\(f.explanation)")
        #expect(f.explanation.contains("by arn:aws:sts::111122223333:assumed-role/deploy/carol, 12 min before"))
        #expect(!f.explanation.contains("DescribeSecurityGroups") && !f.explanation.contains("sg-0fail") && !f.explanation.contains("PutBucketPolicy"))
        #expect(f.evidence.filter { $0.layer == "cloudtrail" }.count == 1)
    }

    /// A client's own mistake is not explained by a change: a geo-blocked viewer's 403 has no
    /// CloudTrail context even after a load balancer change.
    @Test func aClientFaultCitesNoChange() throws {
        let blocked = Self.cloudfront(20, ip: "203.0.113.45", "/x", 400, result: "Error", detailed: "InvalidRequestHeader",
                                      id: "CLNTxwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==")
        let call = Self.cloudtrailCall(-300, source: "elasticloadbalancing.amazonaws.com", "ModifyListener",
                                       parameters: #"{"listenerArn":"arn:aws:elasticloadbalancing:ap-northeast-1:111122223333:listener/app/web-prod/5f2c/9a"}"#)
        let d = try diagnose(["cf/E2EXAMPLE1ABCD.2025-02-06-05.a1b2c3d4": Self.cloudfrontLog([blocked]),
                              "trail/111122223333_CloudTrail_ap-northeast-1_20250206T0520Z_x.json": "{\"Records\":[" + call + "]}\n"],
                             at: 10, status: "400")
        let f = try #require(d.findings.first)
        #expect(f.cause == "client")
        #expect(!f.explanation.contains("CloudTrail"))
    }
}

extension DiagnosisScenarioTests {
    /// A signed URL whose `Expires` lies before the request: CloudFront's own 403, the client's
    /// stale link (round 11: "cause unknown", a layer behind "may have produced" it).
    @Test(arguments: [true, false]) func anExpiredSignedURLIsRefusedAtTheEdge(expired: Bool) throws {
        let expires = (Self.base + 20_000_000) / 1_000_000 + (expired ? -97_200 : 3_600)
        let line = Self.cloudfront(20, ip: "91.64.202.17", "/downloads/q1.pdf", 403, result: "Error", detailed: "Error",
                                   id: "SIGNxwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==",
                                   query: "Expires=\(expires)&Signature=645s~DTNG3UR4Eqnm&Key-Pair-Id=K2JCJMDEHXQW5F", taken: "0.001")
        let d = try diagnose(["cf/E2EXAMPLE1ABCD.2025-02-06-05.a1b2c3d4": Self.cloudfrontLog([line])], at: 10, status: "403")
        let f = try #require(d.findings.first)
        #expect(f.responder == "cloudfront", "\(f.rule): \(f.explanation)")
        if expired {
            #expect(f.cause == "client" && f.confidence == .high && f.explanation.contains("27.0 h before the request"))
        } else {
            #expect(f.cause == Finding.unknownCause && f.explanation.contains("had not expired"))
        }
        #expect(f.absent.allSatisfy { $0.layer == "waf" || $0.expected })
    }
}
