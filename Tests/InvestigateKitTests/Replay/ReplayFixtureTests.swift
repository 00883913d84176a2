import Foundation
import Testing
@testable import InvestigateKit

/// Replay on the simulator's incident fixtures, whose ground truth says who scanned and what the
/// WAF blocked.
@Suite struct ReplayFixtureTests {
    @Test func theBotScanIsCaughtByScanAndProbe() throws {
        let store = try FixtureTimelines.store("apigw-bot-scan-2026-01-22")
        let engine = ReplayEngine(options: ReplayOptions())
        var alerts: [Alert] = []
        let summary = try engine.run(store) { alerts.append($0) }
        #expect(summary.requests > 0)
        #expect(alerts.map(\.time) == alerts.map(\.time).sorted())
        let scans = alerts.filter { $0.detector == "scan" }
        #expect(scans.contains { $0.key == "20.171.207.31" && $0.layer == .apigateway })
        let probes = alerts.filter { $0.detector == "probe" }
        #expect(probes.contains { $0.key == "20.171.207.31" })
        #expect(probes.allSatisfy { $0.sample.allSatisfy { !$0.isEmpty } })
        // The scanner is blocked by the simulated automation, ordinary API clients are not.
        let blocked = Set(alerts.filter { $0.detector == "blocklist" }.map(\.key))
        #expect(blocked.contains("20.171.207.31"))
        let truth = try FixtureTimelines.truth("apigw-bot-scan-2026-01-22")
        #expect(truth.filter { $0.reason == "missing-authentication-token" }.count >= 320)
    }

    @Test func aScriptRuleWouldHaveBlockedTheScannerWithoutCollateral() throws {
        let store = try FixtureTimelines.store("apigw-bot-scan-2026-01-22")
        let rules = #"""
        [{"Name": "Scripts", "Priority": 0, "Action": {"Block": {}}, "VisibilityConfig": {},
          "Statement": {"RegexMatchStatement": {"RegexString": "\\.(php|asp|aspx|jsp|cgi|exe|dll|sh|bat)$",
            "FieldToMatch": {"UriPath": {}}, "TextTransformations": [{"Priority": 0, "Type": "LOWERCASE"}]}}}]
        """#
        let engine = ReplayEngine(options: ReplayOptions(), acl: try WebACLParser.parse(Data(rules.utf8)))
        _ = try engine.run(store) { _ in }
        let stats = try #require(engine.evaluator?.stats.first)
        #expect(stats.blocked > 100)
        #expect(stats.blockedIPs.contains("20.171.207.31"))
        #expect(stats.collateral == 0)
    }

    @Test func theWafFalsePositiveIsCollateralOfTheRuleThatFiredIt() throws {
        // Re-create the managed rule's effect as a custom rule on the `next=` argument and replay the
        // edge fixture: the admin at 203.0.113.45, a real user with earlier successful requests, is
        // collateral.
        let store = try FixtureTimelines.store("waf-block-2025-02-06")
        let rules = #"""
        [{"Name": "RFIInQuery", "Priority": 0, "Action": {"Block": {}}, "VisibilityConfig": {},
          "Statement": {"ByteMatchStatement": {"SearchString": "https://", "PositionalConstraint": "CONTAINS",
            "FieldToMatch": {"QueryString": {}}, "TextTransformations": [{"Priority": 0, "Type": "URL_DECODE"}]}}}]
        """#
        var options = ReplayOptions()
        options.rulesLayer = .alb
        let engine = ReplayEngine(options: options, acl: try WebACLParser.parse(Data(rules.utf8)))
        _ = try engine.run(store) { _ in }
        let stats = try #require(engine.evaluator?.stats.first)
        #expect(stats.blockedIPs.contains("203.0.113.45"))
        #expect(stats.collateral >= 3)
    }
}
