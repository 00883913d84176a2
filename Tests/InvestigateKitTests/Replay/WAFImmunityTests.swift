import Foundation
import Testing
@testable import InvestigateKit

/// CAPTCHA and CHALLENGE with token immunity times: a client that solved the puzzle passes the
/// rule (as with COUNT) until its token's timestamp is older than the immunity time, then is
/// challenged again; `--captcha-solved none` challenges every match.
@Suite struct WAFImmunityTests {
    typealias S = Synthetic

    static let visibility = #""VisibilityConfig": {"SampledRequestsEnabled": true, "CloudWatchMetricsEnabled": true, "MetricName": "m"}"#

    static func uriStartsWith(_ prefix: String) -> String {
        #"{"ByteMatchStatement": {"SearchString": "\#(prefix)", "PositionalConstraint": "STARTS_WITH", "FieldToMatch": {"UriPath": {}}, "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}}"#
    }

    /// A CAPTCHA on /login that labels what it matches, and a COUNT rule behind it on that label
    /// (it sees only the requests the CAPTCHA let through with a token).
    static let loginCaptcha = #"""
    {"WebACL": {"Name": "prod-acl", "DefaultAction": {"Allow": {}}, \#(visibility),
      "CaptchaConfig": {"ImmunityTimeProperty": {"ImmunityTime": 120}},
      "Rules": [
        {"Name": "CaptchaLogin", "Priority": 0, "Action": {"Captcha": {}}, \#(visibility),
         "RuleLabels": [{"Name": "site:login"}], "Statement": \#(uriStartsWith("/login"))},
        {"Name": "CountSolvedLogins", "Priority": 1, "Action": {"Count": {}}, \#(visibility),
         "Statement": {"LabelMatchStatement": {"Scope": "LABEL", "Key": "site:login"}}}
      ]}}
    """#

    static func decide(_ evaluator: WAFEvaluator, _ seconds: Double, _ ip: String, _ path: String) -> WAFAction {
        var alerts: [Alert] = []
        return evaluator.evaluate(S.request(seconds, ip, path), alerts: &alerts).action
    }

    @Test func captchaChallengesOnceThenPassesForTheImmunityTime() throws {
        let acl = try WebACLParser.parse(Data(Self.loginCaptcha.utf8))
        #expect(acl.captchaImmunity == 120 && acl.challengeImmunity == 300)
        let evaluator = WAFEvaluator(acl: acl)
        #expect(evaluator.solving == .all)
        let user = "192.0.2.10", other = "192.0.2.20"
        var got: [WAFAction] = []
        // Solved at 0 s: valid while no more than 120 s have passed (120 s exactly still counts).
        for t in [0.0, 30, 60, 120, 120.5, 125, 200, 240.5, 241] { got.append(Self.decide(evaluator, t, user, "/login")) }
        #expect(got == [.captcha, .allow, .allow, .allow, .captcha, .allow, .allow, .allow, .captcha])
        // The token is the client's: another address is challenged on its first request.
        #expect(Self.decide(evaluator, 30, other, "/login") == .captcha)
        // Requests the rule does not match neither need nor use a token.
        #expect(Self.decide(evaluator, 500, other, "/") == .allow)

        let captcha = evaluator.stats[0]
        #expect(captcha.matched == 10)
        #expect(captcha.challenged == 4 && captcha.blocked == 4 && captcha.terminated == 4)
        #expect(captcha.passedWithToken == 6)
        #expect(captcha.counted == 0)
        #expect(captcha.blockedIPs == [user, other])
        // With a token the evaluation went on, with the CAPTCHA rule's label.
        let count = evaluator.stats[1]
        #expect(count.evaluated == 7 && count.matched == 6 && count.counted == 6)
        #expect(evaluator.decisions == ["CAPTCHA": 4, "ALLOW": 7])
    }

    @Test func noneChallengesEveryMatch() throws {
        let evaluator = WAFEvaluator(acl: try WebACLParser.parse(Data(Self.loginCaptcha.utf8)), solving: .none)
        let got = [0.0, 1, 2, 200].map { Self.decide(evaluator, $0, "192.0.2.10", "/login") }
        #expect(got == [.captcha, .captcha, .captcha, .captcha])
        #expect(evaluator.stats[0].challenged == 4 && evaluator.stats[0].passedWithToken == 0)
        #expect(evaluator.stats[1].evaluated == 0)
    }

    /// A rule's own CaptchaConfig overrides the web ACL's; a rule without one inherits it. A
    /// rule checks the token's timestamp against its own immunity time, whichever rule set it.
    @Test func ruleImmunityOverridesTheWebACLs() throws {
        let json = #"""
        {"Name": "acl", "DefaultAction": {"Allow": {}}, \#(Self.visibility),
         "CaptchaConfig": {"ImmunityTimeProperty": {"ImmunityTime": 600}},
         "Rules": [
           {"Name": "CaptchaCheckout", "Priority": 0, "Action": {"Captcha": {}}, \#(Self.visibility),
            "CaptchaConfig": {"ImmunityTimeProperty": {"ImmunityTime": 60}}, "Statement": \#(Self.uriStartsWith("/checkout"))},
           {"Name": "CaptchaSearch", "Priority": 1, "Action": {"Captcha": {}}, \#(Self.visibility),
            "Statement": \#(Self.uriStartsWith("/search"))}
         ]}
        """#
        let acl = try WebACLParser.parse(Data(json.utf8))
        #expect(acl.captchaImmunity == 600)
        #expect(acl.rules.map(\.captchaImmunity) == [60, nil])
        #expect(acl.rules.map { acl.immunity(of: $0, for: .captcha) } == [60, 600])
        let evaluator = WAFEvaluator(acl: acl)
        // The rule's 60 s, not the web ACL's 600 s.
        #expect([0.0, 59, 61, 100].map { Self.decide(evaluator, $0, "192.0.2.1", "/checkout") } == [.captcha, .allow, .captcha, .allow])
        // The web ACL's 600 s for the rule without its own.
        #expect([0.0, 500, 600, 601].map { Self.decide(evaluator, $0, "192.0.2.2", "/search") } == [.captcha, .allow, .allow, .captcha])
        // Solved at /checkout at 1000 s: too old for /checkout at 1100 s, young enough for /search.
        #expect(Self.decide(evaluator, 1000, "192.0.2.3", "/checkout") == .captcha)
        #expect(Self.decide(evaluator, 1100, "192.0.2.3", "/search") == .allow)
        #expect(Self.decide(evaluator, 1100, "192.0.2.3", "/checkout") == .captcha)
        #expect(evaluator.stats.map(\.challenged) == [4, 2])
        #expect(evaluator.stats.map(\.passedWithToken) == [2, 3])
    }

    static let challenge = #"""
    {"Name": "acl", "DefaultAction": {"Allow": {}}, \#(visibility),
     "ChallengeConfig": {"ImmunityTimeProperty": {"ImmunityTime": 300}},
     "Rules": [
       {"Name": "ChallengeAPI", "Priority": 0, "Action": {"Challenge": {}}, \#(visibility),
        "ChallengeConfig": {"ImmunityTimeProperty": {"ImmunityTime": 400}}, "Statement": \#(uriStartsWith("/api"))},
       {"Name": "ChallengeCart", "Priority": 1, "Action": {"Challenge": {}}, \#(visibility),
        "Statement": \#(uriStartsWith("/cart"))},
       {"Name": "CaptchaLogin", "Priority": 2, "Action": {"Captcha": {}}, \#(visibility),
        "Statement": \#(uriStartsWith("/login"))}
     ]}
    """#

    @Test func challengeLikewise() throws {
        let acl = try WebACLParser.parse(Data(Self.challenge.utf8))
        #expect(acl.challengeImmunity == 300 && acl.rules[0].challengeImmunity == 400 && acl.rules[1].challengeImmunity == nil)
        let all = WAFEvaluator(acl: acl)
        #expect([0.0, 100, 400, 401, 500].map { Self.decide(all, $0, "192.0.2.1", "/api/items") } == [.challenge, .allow, .allow, .challenge, .allow])
        #expect([0.0, 300, 301].map { Self.decide(all, $0, "192.0.2.2", "/cart") } == [.challenge, .allow, .challenge])
        #expect(all.stats[0].challenged == 2 && all.stats[0].passedWithToken == 3)
        #expect(all.stats[1].challenged == 2 && all.stats[1].passedWithToken == 1)

        let none = WAFEvaluator(acl: acl, solving: .none)
        #expect([0.0, 100, 400].map { Self.decide(none, $0, "192.0.2.1", "/api/items") } == [.challenge, .challenge, .challenge])
        #expect(none.stats[0].passedWithToken == 0)
    }

    /// AWS WAF keeps a CAPTCHA and a challenge timestamp in one token. A CAPTCHA solved by a
    /// client without a token runs a challenge first, so it satisfies CHALLENGE rules too; a
    /// passed challenge never satisfies a CAPTCHA.
    @Test func captchaTokenCarriesAChallengeTimestamp() throws {
        let evaluator = WAFEvaluator(acl: try WebACLParser.parse(Data(Self.challenge.utf8)))
        // No token yet: the CAPTCHA at 0 s also sets the challenge timestamp.
        #expect(Self.decide(evaluator, 0, "192.0.2.1", "/login") == .captcha)
        #expect(Self.decide(evaluator, 10, "192.0.2.1", "/cart") == .allow)
        #expect(Self.decide(evaluator, 301, "192.0.2.1", "/cart") == .challenge)
        // A challenge passed at 0 s: the CAPTCHA still asks for its puzzle, which leaves the
        // token's challenge timestamp at 0 s (the client already had a token).
        #expect(Self.decide(evaluator, 0, "192.0.2.2", "/cart") == .challenge)
        #expect(Self.decide(evaluator, 10, "192.0.2.2", "/login") == .captcha)
        #expect(Self.decide(evaluator, 20, "192.0.2.2", "/login") == .allow)
        #expect(Self.decide(evaluator, 301, "192.0.2.2", "/cart") == .challenge)
    }

    /// A managed rule group's CAPTCHA recorded in the WAF log stands (the client had no valid
    /// token then), and under `all` gives the client a token for the rules that follow.
    @Test func recordedManagedCaptchaStandsAndIssuesAToken() throws {
        let json = #"""
        {"Name": "acl", "DefaultAction": {"Allow": {}}, "Rules": [
          {"Name": "Bots", "Priority": 0, "OverrideAction": {"None": {}}, \#(Self.visibility),
           "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": "AWSManagedRulesBotControlRuleSet"}}},
          {"Name": "CaptchaLogin", "Priority": 1, "Action": {"Captcha": {}}, \#(Self.visibility), "Statement": \#(Self.uriStartsWith("/login"))}
        ]}
        """#
        let evaluator = WAFEvaluator(acl: try WebACLParser.parse(Data(json.utf8)))
        var alerts: [Alert] = []
        let recorded = S.request(0, "192.0.2.5", "/", status: nil, layer: .waf, wafAction: "CAPTCHA", wafRule: "Bots")
        #expect(evaluator.evaluate(recorded, alerts: &alerts) == ("Bots", .captcha))
        #expect(evaluator.evaluate(S.request(5, "192.0.2.5", "/login", status: nil, layer: .waf, wafAction: "CAPTCHA", wafRule: "Bots"), alerts: &alerts) == ("Bots", .captcha))
        #expect(evaluator.evaluate(S.request(6, "192.0.2.5", "/login", status: nil, layer: .waf), alerts: &alerts).action == .allow)
        #expect(evaluator.stats[0].challenged == 2 && evaluator.stats[1].passedWithToken == 1)
    }

    /// The same web ACL as a CloudFormation template: the same immunity times, the same decisions.
    @Test func cloudFormationShapeParsesTheSame() throws {
        let template = #"""
        {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {
          "WebAcl": {"Type": "AWS::WAFv2::WebACL", "Properties": {"Name": "prod-acl", "Scope": "REGIONAL", "DefaultAction": {"Allow": {}}, \#(Self.visibility),
            "CaptchaConfig": {"ImmunityTimeProperty": {"ImmunityTime": 120}},
            "ChallengeConfig": {"ImmunityTimeProperty": {"ImmunityTime": 900}},
            "Rules": [
              {"Name": "CaptchaLogin", "Priority": 0, "Action": {"Captcha": {}}, \#(Self.visibility),
               "RuleLabels": [{"Name": "site:login"}], "Statement": \#(Self.uriStartsWith("/login"))},
              {"Name": "CountSolvedLogins", "Priority": 1, "Action": {"Count": {}}, \#(Self.visibility),
               "Statement": {"LabelMatchStatement": {"Scope": "LABEL", "Key": "site:login"}}},
              {"Name": "ChallengeAPI", "Priority": 2, "Action": {"Challenge": {}}, \#(Self.visibility),
               "ChallengeConfig": {"ImmunityTimeProperty": {"ImmunityTime": 300}}, "Statement": \#(Self.uriStartsWith("/api"))}]}}}}
        """#
        let cfn = try WebACLParser.parse(Data(template.utf8))
        #expect(cfn.captchaImmunity == 120 && cfn.challengeImmunity == 900)
        #expect(cfn.rules.map(\.challengeImmunity) == [nil, nil, 300])
        // The resource alone, as `{"Type","Properties"}`, reads the same.
        let resource = try #require((try JSONSerialization.jsonObject(with: Data(template.utf8)) as? [String: Any])?["Resources"] as? [String: Any])
        let lone = try WebACLParser.parse(try JSONSerialization.data(withJSONObject: try #require(resource["WebAcl"])))
        #expect(lone.captchaImmunity == 120 && lone.challengeImmunity == 900 && lone.rules.map(\.challengeImmunity) == [nil, nil, 300])

        let api = try WebACLParser.parse(Data(Self.loginCaptcha.utf8))
        let times = [0.0, 30, 120, 121, 200, 241]
        let fromAPI = WAFEvaluator(acl: api), fromCFN = WAFEvaluator(acl: cfn)
        #expect(times.map { Self.decide(fromCFN, $0, "192.0.2.1", "/login") } == times.map { Self.decide(fromAPI, $0, "192.0.2.1", "/login") })
        #expect(fromCFN.stats[0].passedWithToken == fromAPI.stats[0].passedWithToken)
        #expect([0.0, 300, 301].map { Self.decide(fromCFN, $0, "192.0.2.9", "/api") } == [.challenge, .allow, .challenge])
    }

    @Test func badImmunityTimesNameTheRuleAndTheField() throws {
        func rule(_ config: String) -> String {
            #"[{"Name": "r1", "Priority": 1, "Action": {"Captcha": {}}, \#(config), "Statement": {"LabelMatchStatement": {"Scope": "LABEL", "Key": "a"}}, "VisibilityConfig": {}}]"#
        }
        let cases: [(String, String, String)] = [
            (rule(#""CaptchaConfig": {"ImmunityTimeProperty": {"ImmunityTime": 30}}"#), "CaptchaConfig.ImmunityTimeProperty.ImmunityTime", "60 to 259200 seconds"),
            (rule(#""ChallengeConfig": {"ImmunityTimeProperty": {"ImmunityTime": 120}}"#), "ChallengeConfig.ImmunityTimeProperty.ImmunityTime", "300 to 259200 seconds"),
            (rule(#""CaptchaConfig": {"ImmunityTimeProperty": {"ImmunityTime": 259201}}"#), "CaptchaConfig.ImmunityTimeProperty.ImmunityTime", "got 259201"),
            (rule(#""CaptchaConfig": {"ImmunityTimeProperty": {"ImmunityTime": "300"}}"#), "CaptchaConfig.ImmunityTimeProperty.ImmunityTime", "must be an integer"),
            (rule(#""CaptchaConfig": {"ImmunityTimeProperty": {}}"#), "CaptchaConfig.ImmunityTimeProperty.ImmunityTime", "missing"),
            (rule(#""CaptchaConfig": 300"#), "CaptchaConfig", "must be an object"),
        ]
        for (json, field, message) in cases {
            let error = try #require(WAFRuleTests.error(json), "no error for \(json)")
            #expect(error.rule == "r1" && error.field == field, "\(error)")
            #expect(error.description.contains(message), "\(error)")
        }
        let aclLevel = try #require(WAFRuleTests.error(#"{"Rules": [], "ChallengeConfig": {"ImmunityTimeProperty": {"ImmunityTime": 60}}}"#))
        #expect(aclLevel.rule == nil && aclLevel.field == "ChallengeConfig.ImmunityTimeProperty.ImmunityTime")
        // A config without ImmunityTimeProperty keeps the default (the web ACL's, or 300 s).
        let bare = try WebACLParser.parse(Data(rule(#""CaptchaConfig": {}"#).utf8))
        #expect(bare.rules[0].captchaImmunity == nil && bare.captchaImmunity == 300)
    }

    /// Through the replay engine: the option reaches the evaluator, and the summary says what
    /// was challenged and what passed with a token, and under which assumption.
    @Test func replaySummaryReportsChallengedAndPassed() throws {
        let acl = try WebACLParser.parse(Data(Self.loginCaptcha.utf8))
        let requests = [0.0, 10, 20, 130].map { S.request($0, "192.0.2.10", "/login") }
        for (solving, challenged, passed) in [(PuzzleSolving.all, 2, 2), (.none, 4, 0)] {
            var options = S.options([])
            options.captchaSolved = solving
            let (_, engine, summary) = try S.replay(requests, options: options, acl: acl)
            let report = try #require(summary.rules)
            #expect(report["captchaSolved"]?.stringValue == solving.rawValue)
            #expect(report["immunityTime"]?["captcha"]?.intValue == 120)
            let rule = try #require(report["rules"]?.arrayValue?.first)
            #expect(rule["challenged"]?.intValue == challenged)
            #expect(rule["passedWithToken"]?.intValue == passed)
            #expect(rule["immunityTime"]?.intValue == 120)
            let text = try #require(engine.evaluator).renderReport(zone: .utc)
            #expect(text.contains("CAPTCHA: challenged \(challenged), passed with a valid token \(passed) (immunity 120 s)"))
            #expect(text.contains("--captcha-solved \(solving.rawValue)"))
        }
    }
}
