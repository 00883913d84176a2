import Foundation
import Testing
@testable import InvestigateKit

@Suite struct ReplayCorpusTests {
    /// Real traffic (semicomplete.com, May 2015): one client bursts 404s, dozens probe for
    /// scripts, one fetches a presentation's 101 assets in a minute.
    @Test(.enabled(if: Corpus.available && Corpus.exists("elastic-examples/apache_logs")))
    func apacheLogsReplay() throws {
        let store = try TimelineStore()
        let summary = try Ingester(store: store).ingest(paths: [Corpus.path("elastic-examples/apache_logs")])
        #expect(summary.events == 9999)
        var options = ReplayOptions()
        options.scan.threshold = 10
        options.scan.schedule = ScanSchedule()
        let engine = ReplayEngine(options: options)
        var alerts: [Alert] = []
        let result = try engine.run(store) { alerts.append($0) }
        #expect(result.requests == 9999)
        #expect(alerts.map(\.time) == alerts.map(\.time).sorted())
        let scans = alerts.filter { $0.detector == "scan" }
        #expect(scans.map(\.key) == ["144.76.95.39"])
        // The scheduled job (every 5 min over the last minute, 90 s behind) misses that burst.
        #expect(engine.detector(ScanDetector.self)?.scheduledKeys.isEmpty == true)
        let probe = try #require(result.detectors.first { $0.0 == "probe" }?.1)
        #expect(probe["requests"] == .int(65))
        #expect(probe["responsesByLayer"]?["nginx"]?["404"] == .int(45))
        #expect(alerts.filter { $0.detector == "rate" }.map(\.key) == ["75.97.9.59"])
        let blocks = alerts.filter { $0.detector == "blocklist" && $0.action == "unblock" }
        #expect(blocks.first { $0.key == "75.97.9.59" }?.count == 81)
    }

    /// The same log through a what-if rule list: the script-extension regex set and a 100-per-5-
    /// minutes rate limit, judged at nginx (the only layer), with collateral among real readers.
    @Test(.enabled(if: Corpus.available && Corpus.exists("elastic-examples/apache_logs")))
    func apacheLogsWhatIfRules() throws {
        let store = try TimelineStore()
        _ = try Ingester(store: store).ingest(paths: [Corpus.path("elastic-examples/apache_logs")])
        let rules = #"""
        [{"Name": "RateLimit", "Priority": 0, "Action": {"Block": {}}, "VisibilityConfig": {},
          "Statement": {"RateBasedStatement": {"Limit": 100, "EvaluationWindowSec": 300, "AggregateKeyType": "IP"}}},
         {"Name": "Scripts", "Priority": 1, "Action": {"Block": {}}, "VisibilityConfig": {},
          "Statement": {"RegexMatchStatement": {"RegexString": "\\.(php|asp|aspx|jsp|cgi|exe|dll|sh|bat)$",
            "FieldToMatch": {"UriPath": {}}, "TextTransformations": [{"Priority": 0, "Type": "LOWERCASE"}]}}}]
        """#
        let acl = try WebACLParser.parse(Data(rules.utf8))
        let engine = ReplayEngine(options: ReplayOptions(), acl: acl)
        var alerts: [Alert] = []
        let result = try engine.run(store) { alerts.append($0) }
        #expect(result.rulesLayer == .nginx)
        let stats = try #require(engine.evaluator?.stats)
        #expect(stats[0].rateBlockCount >= 1)
        #expect(stats[0].blockedIPs.contains("75.97.9.59"))
        #expect(stats[1].blocked > 0)
        #expect(stats[1].blocked <= 65)
        // Readers who downloaded a .sh or .exe file after browsing the site are collateral.
        #expect(stats[1].collateral > 0)
        #expect(alerts.contains { $0.detector == "waf-rule" && $0.key == "75.97.9.59" })
    }
}
