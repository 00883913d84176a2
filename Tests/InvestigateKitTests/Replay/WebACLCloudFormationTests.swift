import Foundation
import Testing
@testable import InvestigateKit

/// Web ACLs as CloudFormation and the CDK write them (`Arn`, not the API's `ARN`, in set
/// references; `AWS::WAFv2::WebACL` resources with `Properties`) load as the API's JSON does.
@Suite struct WebACLCloudFormationTests {
    typealias S = Synthetic

    static let visibility = #""VisibilityConfig": {"SampledRequestsEnabled": true, "CloudWatchMetricsEnabled": true, "MetricName": "m"}"#

    /// The ACL as `aws wafv2 get-web-acl` prints it, its sets given beside it.
    static let api = #"""
    {"WebACL": {"Name": "prod-acl", "DefaultAction": {"Allow": {}}, \#(visibility), "Rules": [
      {"Name": "BlockBadIPs", "Priority": 0, "Action": {"Block": {}}, \#(visibility),
       "Statement": {"IPSetReferenceStatement": {"ARN": "arn:aws:wafv2:us-east-1:111122223333:regional/ipset/bad-ips/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"}}},
      {"Name": "BlockScripts", "Priority": 1, "Action": {"Block": {}}, \#(visibility),
       "Statement": {"RegexPatternSetReferenceStatement": {"ARN": "arn:aws:wafv2:us-east-1:111122223333:regional/regexpatternset/scripts/a1b2c3d4-5678-90ab-cdef-EXAMPLE22222",
         "FieldToMatch": {"UriPath": {}}, "TextTransformations": [{"Priority": 0, "Type": "LOWERCASE"}]}}},
      {"Name": "RatePerIP", "Priority": 2, "Action": {"Block": {}}, \#(visibility),
       "Statement": {"RateBasedStatement": {"Limit": 10, "EvaluationWindowSec": 60, "AggregateKeyType": "IP"}}}
    ]}, "LockToken": "x"}
    """#

    static let apiSets = #"""
    [{"IPSet": {"Name": "bad-ips", "Id": "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111", "ARN": "arn:aws:wafv2:us-east-1:111122223333:regional/ipset/bad-ips/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
       "IPAddressVersion": "IPV4", "Addresses": ["203.0.113.0/24"]}, "LockToken": "y"},
     {"RegexPatternSet": {"Name": "scripts", "Id": "a1b2c3d4-5678-90ab-cdef-EXAMPLE22222", "ARN": "arn:aws:wafv2:us-east-1:111122223333:regional/regexpatternset/scripts/a1b2c3d4-5678-90ab-cdef-EXAMPLE22222",
       "RegularExpressionList": [{"RegexString": "\\.(php|cgi)$"}]}, "LockToken": "z"}]
    """#

    /// The same ACL as a CDK-synthesized template (cdk.out/*.template.json): sets and ACL as
    /// resources, references by `Fn::GetAtt … Arn`, the CDK's metadata, parameters and its
    /// bootstrap-version `Rules` section beside them.
    static let cdk = #"""
    {"Resources": {
      "BadIPs5A1B2C3D": {"Type": "AWS::WAFv2::IPSet", "Properties": {"Addresses": ["203.0.113.0/24"], "IPAddressVersion": "IPV4", "Name": "bad-ips", "Scope": "REGIONAL"},
        "Metadata": {"aws:cdk:path": "WafStack/BadIPs"}},
      "Scripts7E8F9A0B": {"Type": "AWS::WAFv2::RegexPatternSet", "Properties": {"Name": "scripts", "RegularExpressionList": ["\\.(php|cgi)$"], "Scope": "REGIONAL"},
        "Metadata": {"aws:cdk:path": "WafStack/Scripts"}},
      "WebAcl1A2B3C4D": {"Type": "AWS::WAFv2::WebACL", "Properties": {"DefaultAction": {"Allow": {}}, "Name": "prod-acl", "Scope": "REGIONAL", \#(visibility),
        "Rules": [
          {"Action": {"Block": {}}, "Name": "BlockBadIPs", "Priority": 0, \#(visibility),
           "Statement": {"IPSetReferenceStatement": {"Arn": {"Fn::GetAtt": ["BadIPs5A1B2C3D", "Arn"]}}}},
          {"Action": {"Block": {}}, "Name": "BlockScripts", "Priority": 1, \#(visibility),
           "Statement": {"RegexPatternSetReferenceStatement": {"Arn": {"Fn::GetAtt": ["Scripts7E8F9A0B", "Arn"]},
             "FieldToMatch": {"UriPath": {}}, "TextTransformations": [{"Priority": 0, "Type": "LOWERCASE"}]}}},
          {"Action": {"Block": {}}, "Name": "RatePerIP", "Priority": 2, \#(visibility),
           "Statement": {"RateBasedStatement": {"AggregateKeyType": "IP", "EvaluationWindowSec": 60, "Limit": 10}}}]},
        "Metadata": {"aws:cdk:path": "WafStack/WebAcl"}},
      "CDKMetadata": {"Type": "AWS::CDK::Metadata", "Properties": {"Analytics": "v2:deflate64:H4sIAAAAAAAA"}}},
     "Parameters": {"BootstrapVersion": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/cdk-bootstrap/hnb659fds/version"}},
     "Rules": {"CheckBootstrapVersion": {"Assertions": [{"Assert": {"Fn::Not": [{"Fn::Contains": [["1", "2", "3", "4", "5"], {"Ref": "BootstrapVersion"}]}]},
       "AssertDescription": "CDK bootstrap stack version 6 required."}]}}}
    """#

    /// What the ACL decides for a fixed set of requests: the same for every form of it.
    static func decisions(_ acl: WebACL) -> [String] {
        let evaluator = WAFEvaluator(acl: acl)
        var alerts: [Alert] = []
        var out: [String] = []
        for (i, (ip, path)) in [("203.0.113.9", "/"), ("192.0.2.1", "/index.PHP"), ("192.0.2.1", "/ok")].enumerated() {
            out.append("\(evaluator.evaluate(S.request(Double(i), ip, path), alerts: &alerts))")
        }
        for i in 0..<12 { out.append("\(evaluator.evaluate(S.request(10 + Double(i), "198.51.100.4", "/"), alerts: &alerts))") }
        return out
    }

    func apiACL() throws -> WebACL {
        var sets = WAFSets()
        try sets.load(json: Data(Self.apiSets.utf8), source: "sets.json")
        return try WebACLParser.parse(Data(Self.api.utf8), sets: sets)
    }

    @Test func cdkTemplateLoadsAsTheAPIJSON() throws {
        let api = try apiACL()
        let cdk = try WebACLParser.parse(Data(Self.cdk.utf8))
        #expect(cdk.name == "prod-acl" && cdk.defaultAction == api.defaultAction)
        #expect(cdk.rules.map(\.name) == api.rules.map(\.name))
        #expect(cdk.rules.allSatisfy { $0.unsupported.isEmpty })
        let expected = Self.decisions(api)
        #expect(expected.first?.contains("BlockBadIPs") == true && expected[1].contains("BlockScripts") && expected.last?.contains("RatePerIP") == true)
        #expect(Self.decisions(cdk) == expected)
    }

    /// The WebACL resource alone (`{"Type":…,"Properties":…}`, as a template's resource is copied
    /// out), with literal `Arn`s; the sets as lone resources, as a `Resources` section without its
    /// key, or as `get-ip-set` output, given with --sets.
    @Test func loneResourceDocumentsWithArn() throws {
        let acl = #"""
        {"Type": "AWS::WAFv2::WebACL", "Properties": {"DefaultAction": {"Allow": {}}, "Name": "prod-acl", "Scope": "REGIONAL", \#(Self.visibility),
          "Rules": [
            {"Action": {"Block": {}}, "Name": "BlockBadIPs", "Priority": 0, \#(Self.visibility),
             "Statement": {"IPSetReferenceStatement": {"Arn": "arn:aws:wafv2:us-east-1:111122223333:regional/ipset/bad-ips/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"}}},
            {"Action": {"Block": {}}, "Name": "BlockScripts", "Priority": 1, \#(Self.visibility),
             "Statement": {"RegexPatternSetReferenceStatement": {"Arn": {"Fn::Sub": "arn:aws:wafv2:${AWS::Region}:${AWS::AccountId}:regional/regexpatternset/scripts/${ScriptsId}"},
               "FieldToMatch": {"UriPath": {}}, "TextTransformations": [{"Priority": 0, "Type": "LOWERCASE"}]}}},
            {"Action": {"Block": {}}, "Name": "RatePerIP", "Priority": 2, \#(Self.visibility),
             "Statement": {"RateBasedStatement": {"AggregateKeyType": "IP", "EvaluationWindowSec": 60, "Limit": 10}}}]}}
        """#
        let expected = Self.decisions(try apiACL())
        let ipSetForms = [
            #"{"Type": "AWS::WAFv2::IPSet", "Properties": {"Addresses": ["203.0.113.0/24"], "IPAddressVersion": "IPV4", "Name": "bad-ips", "Scope": "REGIONAL"}}"#,
            #"{"BadIPs": {"Type": "AWS::WAFv2::IPSet", "Properties": {"Addresses": ["203.0.113.0/24"], "IPAddressVersion": "IPV4", "Name": "bad-ips", "Scope": "REGIONAL"}}}"#,
            #"{"IPSet": {"Name": "bad-ips", "ARN": "arn:aws:wafv2:us-east-1:111122223333:regional/ipset/bad-ips/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111", "Addresses": ["203.0.113.0/24"]}}"#,
        ]
        for ipSet in ipSetForms {
            var sets = WAFSets()
            try sets.load(json: Data(ipSet.utf8), source: "ipset.json")
            try sets.load(json: Data(#"{"Type": "AWS::WAFv2::RegexPatternSet", "Properties": {"Name": "scripts", "RegularExpressionList": ["\\.(php|cgi)$"], "Scope": "REGIONAL"}}"#.utf8), source: "regex.json")
            let parsed = try WebACLParser.parse(Data(acl.utf8), sets: sets)
            #expect(Self.decisions(parsed) == expected, "\(ipSet)")
        }
        // `aws cloudformation get-template` output: the template under TemplateBody.
        let wrapped = #"{"TemplateBody": \#(Self.cdk), "StagesAvailable": ["Original", "Processed"]}"#
        #expect(Self.decisions(try WebACLParser.parse(Data(wrapped.utf8))) == expected)
    }

    @Test func missingSetsAndArnsNameTheCloudFormationField() throws {
        let rule = { (statement: String) in
            #"{"Type": "AWS::WAFv2::WebACL", "Properties": {"DefaultAction": {"Allow": {}}, "Rules": [{"Name": "r1", "Priority": 1, "Action": {"Block": {}}, "Statement": \#(statement), "VisibilityConfig": {}}]}}"#
        }
        let unknown = try #require(WAFRuleTests.error(rule(#"{"IPSetReferenceStatement": {"Arn": {"Fn::GetAtt": ["Nowhere", "Arn"]}}}"#)))
        #expect(unknown.field == "Statement.IPSetReferenceStatement.Arn" && unknown.description.contains("'Nowhere' is not defined"))
        let regex = try #require(WAFRuleTests.error(rule(#"{"RegexPatternSetReferenceStatement": {"Arn": "arn:aws:wafv2:us-east-1:1:regional/regexpatternset/none/1", "FieldToMatch": {"UriPath": {}}, "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}}"#)))
        #expect(regex.field == "Statement.RegexPatternSetReferenceStatement.Arn")
        let missing = try #require(WAFRuleTests.error(rule(#"{"IPSetReferenceStatement": {}}"#)))
        #expect(missing.field == "Statement.IPSetReferenceStatement.ARN" && missing.description.contains("Arn as CloudFormation writes it"))
        // A rule group referenced by Arn is reported by its name, as with ARN.
        let group = try WebACLParser.parse(Data(rule(#"{"RuleGroupReferenceStatement": {"Arn": "arn:aws:wafv2:us-east-1:1:regional/rulegroup/my-group/1"}}"#)
            .replacingOccurrences(of: #""Action": {"Block": {}}"#, with: #""OverrideAction": {"None": {}}"#).utf8))
        #expect(group.rules.first?.unsupported.first?.contains("my-group") == true)
    }
}
