import Foundation
import Testing
@testable import InvestigateKit

@Suite struct WAFRuleTests {
    typealias S = Synthetic

    /// The typical five rules, as `aws wafv2 get-web-acl` prints them.
    static let typicalWebACL = #"""
    {"WebACL": {"Name": "prod-acl", "DefaultAction": {"Allow": {}},
      "VisibilityConfig": {"SampledRequestsEnabled": true, "CloudWatchMetricsEnabled": true, "MetricName": "prod-acl"},
      "Rules": [
        {"Name": "RateLimitPerIP", "Priority": 0, "Action": {"Block": {}},
         "Statement": {"RateBasedStatement": {"Limit": 100, "EvaluationWindowSec": 300, "AggregateKeyType": "IP"}},
         "VisibilityConfig": {"SampledRequestsEnabled": true, "CloudWatchMetricsEnabled": true, "MetricName": "RateLimitPerIP"}},
        {"Name": "BlockNonJP", "Priority": 1, "Action": {"Block": {}},
         "Statement": {"NotStatement": {"Statement": {"GeoMatchStatement": {"CountryCodes": ["JP"]}}}},
         "VisibilityConfig": {"SampledRequestsEnabled": true, "CloudWatchMetricsEnabled": true, "MetricName": "BlockNonJP"}},
        {"Name": "AWS-AWSManagedRulesAmazonIpReputationList", "Priority": 2, "OverrideAction": {"None": {}},
         "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": "AWSManagedRulesAmazonIpReputationList"}},
         "VisibilityConfig": {"SampledRequestsEnabled": true, "CloudWatchMetricsEnabled": true, "MetricName": "ipreputation"}},
        {"Name": "AWS-AWSManagedRulesKnownBadInputsRuleSet", "Priority": 3, "OverrideAction": {"None": {}},
         "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": "AWSManagedRulesKnownBadInputsRuleSet"}},
         "VisibilityConfig": {"SampledRequestsEnabled": true, "CloudWatchMetricsEnabled": true, "MetricName": "badinputs"}},
        {"Name": "BlockScriptExtensions", "Priority": 4, "Action": {"Block": {}},
         "Statement": {"RegexPatternSetReferenceStatement": {
            "ARN": "arn:aws:wafv2:ap-northeast-1:111122223333:regional/regexpatternset/script-extensions/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
            "FieldToMatch": {"UriPath": {}},
            "TextTransformations": [{"Priority": 0, "Type": "LOWERCASE"}]}},
         "VisibilityConfig": {"SampledRequestsEnabled": true, "CloudWatchMetricsEnabled": true, "MetricName": "scripts"}}
      ]}}
    """#

    /// `aws wafv2 get-regex-pattern-set` output for the set the last rule references.
    static let scriptSet = #"""
    {"RegexPatternSet": {"Name": "script-extensions", "Id": "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
      "ARN": "arn:aws:wafv2:ap-northeast-1:111122223333:regional/regexpatternset/script-extensions/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
      "RegularExpressionList": [{"RegexString": "\\.(php|asp|aspx|jsp|cgi|exe|dll|sh|bat)$"}]}, "LockToken": "x"}
    """#

    static func typicalACL() throws -> WebACL {
        var sets = WAFSets()
        try sets.load(json: Data(scriptSet.utf8), source: "sets.json")
        return try WebACLParser.parse(Data(typicalWebACL.utf8), sets: sets)
    }

    static func waf(_ t: Double, _ ip: String, _ path: String, country: String = "JP", action: String = "ALLOW",
                    rule: String = "Default_Action") -> ReplayRequest {
        S.request(t, ip, path, status: nil, layer: .waf, extra: ["country": country], wafAction: action, wafRule: rule)
    }

    @Test func typicalFiveRuleSetup() throws {
        let acl = try Self.typicalACL()
        #expect(acl.name == "prod-acl")
        #expect(acl.rules.map(\.priority) == [0, 1, 2, 3, 4])
        #expect(acl.rules[2].unsupported.first?.contains("AWSManagedRulesAmazonIpReputationList") == true)

        var requests: [ReplayRequest] = []
        let user = "192.0.2.10", flood = "192.0.2.66", foreign = "198.51.100.1", scanner = "203.0.113.9"
        // A real user in Japan: successful sessions (seen at nginx), then a false positive on /app/admin/run.sh.
        for i in 0..<5 {
            requests.append(Self.waf(Double(i), user, "/app/"))
            requests.append(S.request(Double(i) + 0.01, user, "/app/", status: 200))
        }
        requests.append(Self.waf(100, user, "/app/admin/Export.SH"))
        // A flood from Japan: 150 requests in 75 s, of which the last 50 go over the limit.
        for i in 0..<150 { requests.append(Self.waf(200 + Double(i) * 0.5, flood, "/search")) }
        // A client outside Japan.
        requests.append(Self.waf(400, foreign, "/", country: "US"))
        // A scanner in Japan that had one successful page first; the probe detector flags it.
        requests.append(Self.waf(500, scanner, "/index.html"))
        requests.append(S.request(500.01, scanner, "/index.html", status: 200))
        requests.append(Self.waf(510, scanner, "/wp-login.php"))
        requests.append(Self.waf(511, scanner, "/cgi-bin/test.cgi"))
        // A request the real WAF blocked with the IP reputation group (recorded in its log).
        requests.append(Self.waf(600, "203.0.113.200", "/", action: "BLOCK", rule: "AWS-AWSManagedRulesAmazonIpReputationList"))

        let (alerts, engine, summary) = try S.replay(requests, options: S.options(["scan", "probe"]), acl: acl, rulesLayer: .waf)
        let evaluator = try #require(engine.evaluator)
        let stats = Dictionary(uniqueKeysWithValues: evaluator.stats.map { ($0.name, $0) })

        let rate = try #require(stats["RateLimitPerIP"])
        #expect(rate.blocked == 50)
        #expect(rate.blockedIPs == [flood])
        #expect(rate.rateBlockCount == 1)
        let block = try #require(rate.rateBlocks.first)
        #expect(block.key == flood)
        #expect(block.start == S.at(250))
        #expect(block.requests == 50)
        // The count falls back to 100 once the first 50 requests (200-224.5 s) leave the window.
        #expect(block.end == S.at(225 + 300))
        #expect(alerts.contains { $0.detector == "waf-rule" && $0.action == "BLOCK" && $0.time == S.at(250) })
        #expect(alerts.contains { $0.detector == "waf-rule" && $0.action == "BLOCK-end" && $0.time == S.at(525) })

        let geo = try #require(stats["BlockNonJP"])
        #expect(geo.blocked == 1)
        #expect(geo.blockedIPs == [foreign])

        let reputation = try #require(stats["AWS-AWSManagedRulesAmazonIpReputationList"])
        #expect(reputation.matched == 1)  // only the decision the WAF log recorded
        #expect(reputation.undecided == reputation.evaluated - 1)
        #expect(reputation.undecidedReasons.keys.contains("managed rule group AWSManagedRulesAmazonIpReputationList not evaluable offline"))
        let badInputs = try #require(stats["AWS-AWSManagedRulesKnownBadInputsRuleSet"])
        #expect(badInputs.matched == 0)
        #expect(badInputs.undecided == badInputs.evaluated)

        let scripts = try #require(stats["BlockScriptExtensions"])
        #expect(scripts.blocked == 3)
        #expect(scripts.blockedIPs == [user, scanner])
        // Collateral: the real user (one odd path after successful sessions), not the scanner,
        // who also had a successful page but then probed twice.
        #expect(scripts.collateral == 1)
        #expect(scripts.collateralIPs == [user])
        #expect(scripts.collateralSamples.first?.contains("/app/admin/Export.SH") == true)

        #expect(alerts.map(\.time) == alerts.map(\.time).sorted())
        #expect(evaluator.comparison["BLOCK→BLOCK"] == 1)
        #expect(evaluator.comparison["ALLOW→BLOCK"] == 54)
        let report = try #require(summary.rules)
        #expect(report["rules"]?.arrayValue?.count == 5)
        let text = evaluator.renderReport(zone: .utc)
        #expect(text.contains("collateral: 1 blocked requests from 1 clients"))
        #expect(text.contains("not evaluable: ManagedRuleGroupStatement AWS/AWSManagedRulesKnownBadInputsRuleSet"))
    }

    @Test func geoIsUnknownWithoutCountryAndSaidSo() throws {
        let acl = try Self.typicalACL()
        let evaluator = WAFEvaluator(acl: acl)
        var alerts: [Alert] = []
        evaluator.evaluate(S.request(0, "192.0.2.1", "/", status: 200, layer: .nginx), alerts: &alerts)
        let geo = try #require(evaluator.stats.first { $0.name == "BlockNonJP" })
        #expect(geo.undecided == 1)
        #expect(geo.undecidedReasons.keys.contains("GeoMatchStatement: country unknown (only WAF logs carry it)"))
    }

    static let customKeyRules = #"""
    [
      {"Name": "PerClientID", "Priority": 10, "Action": {"Block": {}},
       "Statement": {"RateBasedStatement": {"Limit": 10, "EvaluationWindowSec": 60, "AggregateKeyType": "CUSTOM_KEYS",
         "CustomKeys": [{"Header": {"Name": "ID", "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}}]}},
       "VisibilityConfig": {"SampledRequestsEnabled": true, "CloudWatchMetricsEnabled": true, "MetricName": "PerClientID"}},
      {"Name": "ContactFormAll", "Priority": 20, "Action": {"Count": {}},
       "RuleLabels": [{"Name": "site:contact-flood"}],
       "Statement": {"RateBasedStatement": {"Limit": 10, "EvaluationWindowSec": 60, "AggregateKeyType": "CONSTANT",
         "ScopeDownStatement": {"ByteMatchStatement": {"SearchString": "/contact", "FieldToMatch": {"UriPath": {}},
           "PositionalConstraint": "STARTS_WITH", "TextTransformations": [{"Priority": 0, "Type": "LOWERCASE"}]}}}},
       "VisibilityConfig": {"SampledRequestsEnabled": true, "CloudWatchMetricsEnabled": true, "MetricName": "ContactFormAll"}},
      {"Name": "NoUserAgent", "Priority": 30, "Action": {"Block": {}},
       "Statement": {"RateBasedStatement": {"Limit": 10, "EvaluationWindowSec": 60, "AggregateKeyType": "IP",
         "ScopeDownStatement": {"NotStatement": {"Statement": {"SizeConstraintStatement": {
           "FieldToMatch": {"SingleHeader": {"Name": "user-agent"}}, "ComparisonOperator": "GT", "Size": 0,
           "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}}}}}},
       "VisibilityConfig": {"SampledRequestsEnabled": true, "CloudWatchMetricsEnabled": true, "MetricName": "NoUserAgent"}},
      {"Name": "ChallengeContactFlood", "Priority": 40, "Action": {"Challenge": {}},
       "Statement": {"LabelMatchStatement": {"Scope": "LABEL", "Key": "awswaf:111122223333:webacl:prod-acl:site:contact-flood"}},
       "VisibilityConfig": {"SampledRequestsEnabled": true, "CloudWatchMetricsEnabled": true, "MetricName": "ChallengeContactFlood"}}
    ]
    """#

    @Test func customKeyRateRules() throws {
        let acl = try WebACLParser.parse(Data(Self.customKeyRules.utf8))
        #expect(acl.defaultAction == .allow)
        let evaluator = WAFEvaluator(acl: acl)
        var alerts: [Alert] = []
        // 15 requests with header ID alice from three addresses; 5 without an ID (headers logged).
        for i in 0..<15 {
            evaluator.evaluate(S.request(Double(i), "192.0.2.\(i % 3)", "/api", layer: .waf, extra: ["header.id": "alice", "country": "JP"]), alerts: &alerts)
        }
        for i in 0..<5 {
            evaluator.evaluate(S.request(20 + Double(i), "192.0.2.9", "/api", layer: .waf, extra: ["header.accept": "*/*"]), alerts: &alerts)
        }
        // 12 contact-form posts from 12 addresses, and 5 other pages.
        for i in 0..<12 { evaluator.evaluate(S.request(100 + Double(i), "198.51.100.\(i)", "/Contact/send", method: "POST"), alerts: &alerts) }
        for i in 0..<5 { evaluator.evaluate(S.request(120 + Double(i), "198.51.100.99", "/about"), alerts: &alerts) }
        // 12 requests with no User-Agent from one address, 12 with one from another.
        for i in 0..<12 { evaluator.evaluate(S.request(200 + Double(i), "203.0.113.50", "/", userAgent: nil), alerts: &alerts) }
        for i in 0..<12 { evaluator.evaluate(S.request(200 + Double(i), "203.0.113.51", "/", userAgent: "curl/8"), alerts: &alerts) }

        let stats = Dictionary(uniqueKeysWithValues: evaluator.stats.map { ($0.name, $0) })
        let perID = try #require(stats["PerClientID"])
        #expect(perID.blocked == 5)
        #expect(perID.blockedIPs.count == 3)
        #expect(perID.rateBlocks.isEmpty && perID.rateBlockCount == 1)
        // Requests at nginx carry no headers but User-Agent: the ID key is undecidable there, and said.
        #expect(perID.undecided == 12 + 5 + 24)
        #expect(perID.undecidedReasons["aggregate key SingleHeader id not in the logs"] == 41)

        let contact = try #require(stats["ContactFormAll"])
        #expect(contact.matched == 2)
        #expect(contact.counted == 2)
        #expect(contact.blocked == 0)
        // COUNT adds the label; the label rule then challenges those two requests.
        let challenge = try #require(stats["ChallengeContactFlood"])
        #expect(challenge.blocked == 2)
        #expect(evaluator.decisions["CHALLENGE"] == 2)

        let noUA = try #require(stats["NoUserAgent"])
        #expect(noUA.blocked == 2)
        #expect(noUA.blockedIPs == ["203.0.113.50"])
        #expect(alerts.filter { $0.detector == "waf-rule" }.map(\.key).sorted() == ["*", "203.0.113.50", "alice"])
        evaluator.finish(alerts: &alerts)
        #expect(evaluator.stats.first { $0.name == "PerClientID" }?.rateBlocks.first?.end == S.at(65))
    }

    @Test func forwardedIPAndIPSetsFromSideFiles() throws {
        let rules = #"""
        {"Name": "acl", "DefaultAction": {"Block": {}}, "Rules": [
          {"Name": "AllowOffice", "Priority": 1, "Action": {"Allow": {}},
           "Statement": {"IPSetReferenceStatement": {"ARN": "arn:aws:wafv2:us-east-1:111122223333:regional/ipset/office/1234"}},
           "VisibilityConfig": {}},
          {"Name": "AllowPartnerViaProxy", "Priority": 2, "Action": {"Allow": {}},
           "Statement": {"IPSetReferenceStatement": {"ARN": "partners", "Addresses": ["2001:db8::/32"],
             "IPSetForwardedIPConfig": {"HeaderName": "X-Forwarded-For", "FallbackBehavior": "NO_MATCH", "Position": "FIRST"}}},
           "VisibilityConfig": {}}
        ]}
        """#
        var sets = WAFSets()
        try sets.load(json: Data(#"{"IPSet": {"Name": "office", "ARN": "arn:aws:wafv2:us-east-1:111122223333:regional/ipset/office/1234", "Addresses": ["192.0.2.0/24", "198.51.100.7/32"]}}"#.utf8), source: "office.json")
        let acl = try WebACLParser.parse(Data(rules.utf8), sets: sets)
        let evaluator = WAFEvaluator(acl: acl)
        var alerts: [Alert] = []
        func decide(_ ip: String, xff: String? = nil) -> WAFAction {
            var r = S.request(0, ip, "/")
            r.forwardedFor = xff
            return evaluator.evaluate(r, alerts: &alerts).action
        }
        #expect(decide("192.0.2.200") == .allow)
        #expect(decide("198.51.100.7") == .allow)
        #expect(decide("198.51.100.8", xff: "-") == .block)
        #expect(decide("10.0.0.1", xff: "2001:db8::1, 10.0.0.2") == .allow)
        #expect(decide("10.0.0.1", xff: "203.0.113.1") == .block)
        #expect(IPRange("10.0.0.0/8")?.contains(IPRange.parse("10.255.0.1") ?? []) == true)
        #expect(IPRange("10.0.0.0/33") == nil)
        #expect(IPRange("10.0.0.0/7")?.contains(IPRange.parse("11.0.0.1") ?? []) == true)
    }

    @Test func cloudFormationTemplatesResolveSetsByLogicalID() throws {
        let template = #"""
        {"Resources": {
          "BadIPs": {"Type": "AWS::WAFv2::IPSet", "Properties": {"Name": "bad-ips", "Scope": "REGIONAL", "IPAddressVersion": "IPV4", "Addresses": ["203.0.113.0/24"]}},
          "Acl": {"Type": "AWS::WAFv2::WebACL", "Properties": {"Name": "cfn-acl", "Scope": "REGIONAL", "DefaultAction": {"Allow": {}},
            "Rules": [{"Name": "BlockBad", "Priority": 0, "Action": {"Block": {}},
              "Statement": {"IPSetReferenceStatement": {"Arn": {"Fn::GetAtt": ["BadIPs", "Arn"]}}},
              "VisibilityConfig": {"SampledRequestsEnabled": true, "CloudWatchMetricsEnabled": true, "MetricName": "BlockBad"}}]}}
        }}
        """#
        let acl = try WebACLParser.parse(Data(template.utf8))
        #expect(acl.name == "cfn-acl")
        let evaluator = WAFEvaluator(acl: acl)
        var alerts: [Alert] = []
        #expect(evaluator.evaluate(S.request(0, "203.0.113.4", "/"), alerts: &alerts).action == .block)
        #expect(evaluator.evaluate(S.request(0, "192.0.2.4", "/"), alerts: &alerts).action == .allow)
    }

    static func error(_ json: String) -> WebACLError? {
        do { _ = try WebACLParser.parse(Data(json.utf8)); return nil } catch let e as WebACLError { return e } catch { return nil }
    }

    static func rule(_ statement: String, extra: String = #""Action": {"Block": {}}"#) -> String {
        #"[{"Name": "r1", "Priority": 1, \#(extra), "Statement": \#(statement), "VisibilityConfig": {}}]"#
    }

    static let uri = #""FieldToMatch": {"UriPath": {}}, "TextTransformations": [{"Priority": 0, "Type": "NONE"}]"#

    @Test func badRuleFilesNameTheRuleAndTheField() throws {
        let cases: [(String, String, String)] = [
            (Self.rule(#"{"FooStatement": {}}"#), "Statement.FooStatement", "unknown statement type 'FooStatement'"),
            (Self.rule(#"{"RegexMatchStatement": {"RegexString": "([a-z", \#(Self.uri)}}"#), "Statement.RegexMatchStatement.RegexString", "invalid regular expression"),
            (#"[{"Name": "r1", "Priority": "1", "Action": {"Block": {}}, "Statement": {}}]"#, "Priority", "the string \"1\""),
            (#"[{"Name": "r1", "Priority": 1, "Statement": {"LabelMatchStatement": {"Scope": "LABEL", "Key": "x"}}}]"#, "Action", "missing"),
            (Self.rule(#"{"RateBasedStatement": {"Limit": 5, "AggregateKeyType": "IP"}}"#), "Statement.RateBasedStatement.Limit", "at least 10"),
            (Self.rule(#"{"RateBasedStatement": {"Limit": 100, "EvaluationWindowSec": 30, "AggregateKeyType": "IP"}}"#), "Statement.RateBasedStatement.EvaluationWindowSec", "60, 120, 300 or 600"),
            (Self.rule(#"{"RateBasedStatement": {"Limit": "100", "AggregateKeyType": "IP"}}"#), "Statement.RateBasedStatement.Limit", "must be an integer"),
            (Self.rule(#"{"ByteMatchStatement": {"SearchString": "x", "PositionalConstraint": "CONTAINS", "TextTransformations": []}}"#), "Statement.ByteMatchStatement.FieldToMatch", "missing"),
            (Self.rule(#"{"ByteMatchStatement": {"SearchString": "x", "PositionalConstraint": "SOMEWHERE", \#(Self.uri)}}"#), "Statement.ByteMatchStatement.PositionalConstraint", "unknown 'SOMEWHERE'"),
            (Self.rule(#"{"ByteMatchStatement": {"SearchString": "x", "PositionalConstraint": "CONTAINS", "FieldToMatch": {"UriPath": {}}, "TextTransformations": [{"Priority": 0, "Type": "LOWER"}]}}"#), "Statement.ByteMatchStatement.TextTransformations", "unknown text transformation 'LOWER'"),
            (Self.rule(#"{"IPSetReferenceStatement": {"ARN": "arn:aws:wafv2:us-east-1:1:regional/ipset/missing/1"}}"#), "Statement.IPSetReferenceStatement.ARN", "--sets"),
            (Self.rule(#"{"AndStatement": {"Statements": [{"NotStatement": {"Statement": {"BogusStatement": {}}}}, {"LabelMatchStatement": {"Scope": "LABEL", "Key": "a"}}]}}"#), "Statement.AndStatement.Statements[0].NotStatement.Statement.BogusStatement", "unknown statement type"),
            (Self.rule(#"{"NotStatement": {"Statement": {"RateBasedStatement": {"Limit": 100, "AggregateKeyType": "IP"}}}}"#), "Statement.NotStatement.Statement.RateBasedStatement", "top-level"),
            (Self.rule(#"{"RateBasedStatement": {"Limit": 100, "AggregateKeyType": "CUSTOM_KEYS", "CustomKeys": [{"Body": {}}]}}"#), "Statement.RateBasedStatement.CustomKeys[0].Body", "unknown aggregate key"),
            (Self.rule(#"{"GeoMatchStatement": {"CountryCodes": ["JPN"]}}"#), "Statement.GeoMatchStatement.CountryCodes", "two-letter"),
            (Self.rule(#"{"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": "AWSManagedRulesCommonRuleSet"}}"#), "Action", "OverrideAction"),
            (Self.rule(#"{"LabelMatchStatement": {"Scope": "LABEL", "Key": "a"}}"#, extra: #""Action": {"Deny": {}}"#), "Action", "unknown action 'Deny'"),
        ]
        for (json, field, message) in cases {
            let error = try #require(Self.error(json), "no error for \(json)")
            #expect(error.rule == "r1", "\(error)")
            #expect(error.field == field, "\(error)")
            #expect(error.description.contains(message), "\(error)")
            #expect(error.description.hasPrefix("rule 'r1': \(field): "))
        }
        #expect(Self.error(#"[{"Priority": 1}]"#)?.description == "rule '#1': Name: missing")
        #expect(Self.error("{not json")?.field == "(file)")
        #expect(Self.error(#"{"Name": "x"}"#)?.field == "Rules")
        #expect(Self.error(#"[{"Name": "a", "Priority": 1, "Action": {"Block": {}}, "Statement": {"LabelMatchStatement": {"Scope": "LABEL", "Key": "a"}}}, {"Name": "a", "Priority": 2, "Action": {"Block": {}}, "Statement": {"LabelMatchStatement": {"Scope": "LABEL", "Key": "a"}}}]"#)?.description == "rule 'a': Name: two rules have this name")
    }

    @Test func unsupportedStatementsAndFieldsAreReportedByName() throws {
        let json = #"""
        [{"Name": "sqli", "Priority": 1, "Action": {"Block": {}}, "VisibilityConfig": {},
          "Statement": {"SqliMatchStatement": {"FieldToMatch": {"Body": {}}, "TextTransformations": [{"Priority": 0, "Type": "URL_DECODE"}]}}},
         {"Name": "body", "Priority": 2, "Action": {"Block": {}}, "VisibilityConfig": {},
          "Statement": {"ByteMatchStatement": {"SearchString": "x", "PositionalConstraint": "CONTAINS", "FieldToMatch": {"Body": {}},
            "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}}},
         {"Name": "md5", "Priority": 3, "Action": {"Block": {}}, "VisibilityConfig": {},
          "Statement": {"ByteMatchStatement": {"SearchString": "x", "PositionalConstraint": "CONTAINS", "FieldToMatch": {"UriPath": {}},
            "TextTransformations": [{"Priority": 0, "Type": "MD5"}]}}}]
        """#
        let acl = try WebACLParser.parse(Data(json.utf8))
        #expect(acl.rules[0].unsupported == ["SqliMatchStatement (not evaluable from logs)"])
        #expect(acl.rules[1].unsupported == ["field Body at Statement.ByteMatchStatement.FieldToMatch (not in access logs)"])
        #expect(acl.rules[2].unsupported == ["text transformation MD5 at Statement.ByteMatchStatement.TextTransformations"])
        let evaluator = WAFEvaluator(acl: acl)
        var alerts: [Alert] = []
        #expect(evaluator.evaluate(S.request(0, "192.0.2.1", "/x"), alerts: &alerts).action == .allow)
        #expect(evaluator.stats.map(\.undecided) == [1, 1, 1])
        #expect(evaluator.stats[1].undecidedReasons == ["Body not in the logs": 1])
    }

    @Test func textTransformations() {
        func t(_ type: TextTransform, _ s: String) -> String { String(decoding: type.apply(Array(s.utf8)), as: UTF8.self) }
        #expect(t(.none, "A b") == "A b")
        #expect(t(.lowercase, "/App/ADMIN.PHP") == "/app/admin.php")
        #expect(t(.urlDecode, "%2e%2E/%41+b%zz%") == "../A+b%zz%")
        #expect(t(.urlDecodeUni, "%u0041%41") == "AA")
        #expect(t(.htmlEntityDecode, "&lt;script&gt;&#x41;&#66;&amp;&unknown;") == "<script>AB&&unknown;")
        #expect(t(.compressWhiteSpace, "a \t\n  b  ") == "a b ")
        #expect(t(.cmdLine, "C:\\Win^dows, \"x\"  /c") == "c:windows x/c")
        #expect(t(.normalizePath, "/a//b/./c/../d") == "/a/b/d")
        #expect(t(.normalizePath, "/../../etc/passwd") == "/etc/passwd")
        #expect(t(.normalizePathWin, "\\a\\..\\b") == "/b")
        #expect(t(.removeNulls, "a\u{0}b") == "ab")
        #expect(t(.replaceNulls, "a\u{0}b") == "a b")
        #expect(t(.hexDecode, "414243") == "ABC")
        #expect(t(.base64Decode, "YWJj") == "abc")
        #expect(String(decoding: TextTransform.apply([.urlDecode, .lowercase], to: Array("%2FADMIN".utf8)), as: UTF8.self) == "/admin")
        // Malformed input never traps.
        for type in TextTransform.allCases { _ = type.apply([0xFF, 0x25, 0x26, 0x3B, 0x00]) }

        #expect(WAFEvaluator.byteMatch(Array("a select b".utf8), .containsWord, Array("select".utf8)))
        #expect(!WAFEvaluator.byteMatch(Array("selected".utf8), .containsWord, Array("select".utf8)))
        #expect(WAFEvaluator.byteMatch(Array("select".utf8), .containsWord, Array("select".utf8)))
        #expect(WAFEvaluator.byteMatch(Array("/admin/x".utf8), .startsWith, Array("/admin".utf8)))
        #expect(WAFEvaluator.byteMatch(Array("/x.php".utf8), .endsWith, Array(".php".utf8)))
        #expect(!WAFEvaluator.byteMatch(Array("/x.php".utf8), .exactly, Array(".php".utf8)))
        #expect(WAFEvaluator.byteMatch(Array("/x.php".utf8), .contains, Array("x.p".utf8)))
    }

    @Test func managedLabelsRecordedInWAFLogsAreMatched() throws {
        let json = #"""
        [{"Name": "BlockHostingProviders", "Priority": 5, "Action": {"Block": {}}, "VisibilityConfig": {},
          "Statement": {"LabelMatchStatement": {"Scope": "LABEL", "Key": "awswaf:managed:aws:anonymous-ip-list:HostingProviderIPList"}}}]
        """#
        let evaluator = WAFEvaluator(acl: try WebACLParser.parse(Data(json.utf8)))
        var alerts: [Alert] = []
        let labelled = S.request(0, "185.254.196.186", "/.env", status: nil, layer: .waf,
                                 extra: ["labels": #"[{"name":"awswaf:managed:aws:anonymous-ip-list:HostingProviderIPList"}]"#])
        #expect(evaluator.evaluate(labelled, alerts: &alerts).action == .block)
        #expect(evaluator.evaluate(S.request(1, "192.0.2.1", "/", status: nil, layer: .waf, extra: ["labels": "[]"]), alerts: &alerts).action == .allow)
        #expect(evaluator.evaluate(S.request(2, "192.0.2.1", "/"), alerts: &alerts).action == .allow)
        #expect(evaluator.stats[0].undecided == 1)
        #expect(evaluator.stats[0].undecidedReasons.keys.first?.contains("only in WAF logs") == true)
    }

    @Test func queryArgumentsAndMethods() throws {
        let json = #"""
        {"Rules": [
          {"Name": "DebugParam", "Priority": 1, "Action": {"Block": {}}, "VisibilityConfig": {},
           "Statement": {"AndStatement": {"Statements": [
             {"ByteMatchStatement": {"SearchString": "post", "PositionalConstraint": "EXACTLY", "FieldToMatch": {"Method": {}},
               "TextTransformations": [{"Priority": 0, "Type": "LOWERCASE"}]}},
             {"ByteMatchStatement": {"SearchString": "<script", "PositionalConstraint": "CONTAINS", "FieldToMatch": {"SingleQueryArgument": {"Name": "Q"}},
               "TextTransformations": [{"Priority": 1, "Type": "LOWERCASE"}, {"Priority": 0, "Type": "URL_DECODE"}]}}]}}},
          {"Name": "LongQuery", "Priority": 2, "Action": {"Count": {}}, "VisibilityConfig": {},
           "Statement": {"SizeConstraintStatement": {"FieldToMatch": {"QueryString": {}}, "ComparisonOperator": "GT", "Size": 20,
             "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}}}
        ], "DefaultAction": {"Allow": {}}}
        """#
        let evaluator = WAFEvaluator(acl: try WebACLParser.parse(Data(json.utf8)))
        var alerts: [Alert] = []
        #expect(evaluator.evaluate(S.request(0, "192.0.2.1", "/s", method: "POST", query: "q=%3CSCRIPT%3Ealert(1)"), alerts: &alerts) == ("DebugParam", .block))
        #expect(evaluator.evaluate(S.request(0, "192.0.2.1", "/s", method: "GET", query: "q=%3CSCRIPT%3Ealert(1)"), alerts: &alerts).action == .allow)
        #expect(evaluator.evaluate(S.request(0, "192.0.2.1", "/s", method: "POST", query: "other=1"), alerts: &alerts).action == .allow)
        // The first request was blocked by the first rule, so the second never saw it.
        #expect(evaluator.stats[1].counted == 1)
    }
}
