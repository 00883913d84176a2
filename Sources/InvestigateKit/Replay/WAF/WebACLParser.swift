import Foundation

/// IP sets and regex pattern sets that rules reference by ARN, loaded from side files
/// (`aws wafv2 get-ip-set` / `get-regex-pattern-set` output, `{"IPSets":[…],"RegexPatternSets":[…]}`,
/// or CloudFormation `AWS::WAFv2::IPSet` / `RegexPatternSet` resources) or from the rule file.
public struct WAFSets: Sendable {
    /// Keyed by ARN, by name and by CloudFormation logical id.
    public var ipSets: [String: [IPRange]] = [:]
    public var regexSets: [String: [String]] = [:]

    public init() {}

    public mutating func load(json data: Data, source: String) throws {
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: data) } catch {
            throw WebACLError(rule: nil, field: source, message: "not JSON: \(error.localizedDescription)")
        }
        try load(root, source: source)
    }

    mutating func load(_ value: Any, source: String) throws {
        if let list = value as? [Any] {
            for item in list { try load(item, source: source) }
            return
        }
        guard var object = value as? [String: Any] else { return }
        // `aws cloudformation get-template` output holds the template under TemplateBody.
        if let body = object["TemplateBody"] as? [String: Any] { object = body }
        for (logicalID, resource) in CloudFormation.resources(object) {
            guard let type = resource["Type"] as? String, let props = resource["Properties"] else { continue }
            if type == "AWS::WAFv2::IPSet" { try addIPSet(props, logicalID: logicalID, source: source) }
            if type == "AWS::WAFv2::RegexPatternSet" { try addRegexSet(props, logicalID: logicalID, source: source) }
        }
        if let set = object["IPSet"] { try addIPSet(set, logicalID: nil, source: source) }
        if let set = object["RegexPatternSet"] { try addRegexSet(set, logicalID: nil, source: source) }
        for set in object["IPSets"] as? [Any] ?? [] { try addIPSet(set, logicalID: nil, source: source) }
        for set in object["RegexPatternSets"] as? [Any] ?? [] { try addRegexSet(set, logicalID: nil, source: source) }
        if object["Addresses"] != nil, object["Name"] != nil { try addIPSet(object, logicalID: nil, source: source) }
        if object["RegularExpressionList"] != nil, object["Name"] != nil { try addRegexSet(object, logicalID: nil, source: source) }
    }

    private func names(_ o: [String: Any], _ logicalID: String?) -> [String] {
        [o["ARN"] as? String, o["Arn"] as? String, o["Name"] as? String, o["Id"] as? String, logicalID].compactMap { $0 }
    }

    mutating func addIPSet(_ value: Any, logicalID: String?, source: String) throws {
        guard let o = value as? [String: Any] else { throw WebACLError(rule: nil, field: "\(source): IPSet", message: "must be an object") }
        let name = (o["Name"] as? String) ?? logicalID ?? "?"
        guard let list = o["Addresses"] as? [Any] else {
            throw WebACLError(rule: nil, field: "\(source): IPSet '\(name)'.Addresses", message: "missing or not a list")
        }
        let ranges = try list.map { item -> IPRange in
            guard let text = item as? String, let range = IPRange(text) else {
                throw WebACLError(rule: nil, field: "\(source): IPSet '\(name)'.Addresses", message: "'\(item)' is not an address or CIDR block")
            }
            return range
        }
        for key in names(o, logicalID) { ipSets[key] = ranges }
    }

    mutating func addRegexSet(_ value: Any, logicalID: String?, source: String) throws {
        guard let o = value as? [String: Any] else { throw WebACLError(rule: nil, field: "\(source): RegexPatternSet", message: "must be an object") }
        let name = (o["Name"] as? String) ?? logicalID ?? "?"
        guard let list = o["RegularExpressionList"] as? [Any] else {
            throw WebACLError(rule: nil, field: "\(source): RegexPatternSet '\(name)'.RegularExpressionList", message: "missing or not a list")
        }
        let patterns = try list.map { item -> String in
            if let s = item as? String { return s }
            if let o = item as? [String: Any], let s = o["RegexString"] as? String { return s }
            throw WebACLError(rule: nil, field: "\(source): RegexPatternSet '\(name)'.RegularExpressionList", message: "entries need RegexString")
        }
        for key in names(o, logicalID) { regexSets[key] = patterns }
    }

    /// An ARN (`arn:aws:wafv2:…:regional/ipset/NAME/ID`), a name, or a CloudFormation
    /// `{"Fn::GetAtt":[logicalId,"Arn"]}` / `{"Ref":logicalId}`, or an ARN built with `Fn::Sub`
    /// or `Fn::Join` (`arn:aws:wafv2:${AWS::Region}:${AWS::AccountId}:regional/ipset/NAME/${Id}`:
    /// found by its NAME).
    static func lookupKeys(_ reference: Any) -> [String] {
        if let s = reference as? String {
            var keys = [s]
            let parts = s.split(separator: "/")
            if s.hasPrefix("arn:"), parts.count >= 3 { keys.append(String(parts[parts.count - 2])) }
            return keys
        }
        if let o = reference as? [String: Any] {
            if let getAtt = o["Fn::GetAtt"] as? [Any], let id = getAtt.first as? String { return [id] }
            if let getAtt = o["Fn::GetAtt"] as? String, let id = getAtt.split(separator: ".").first { return [String(id)] }
            if let id = o["Ref"] as? String { return [id] }
            // The name part of an ARN assembled from pieces (the pieces not written out: `${}`).
            var text: String?
            if let sub = o["Fn::Sub"] as? String { text = sub }
            if let sub = o["Fn::Sub"] as? [Any], let first = sub.first as? String { text = first }
            if let join = o["Fn::Join"] as? [Any], join.count == 2, let separator = join[0] as? String, let pieces = join[1] as? [Any] {
                text = pieces.map { ($0 as? String) ?? "${}" }.joined(separator: separator)
            }
            if let text, text.hasPrefix("arn:") {
                let parts = text.split(separator: "/")
                if parts.count >= 3, !parts[parts.count - 2].contains("${") { return [String(parts[parts.count - 2])] }
            }
        }
        return []
    }
}

/// Reading CloudFormation (and CDK-synthesized) templates: the resources of a template, of a
/// lone resource document (`{"Type":"AWS::WAFv2::WebACL","Properties":{…}}`), or of a
/// `Resources` section copied without its key (logical ids → resources).
enum CloudFormation {
    static func resources(_ o: [String: Any]) -> [(logicalID: String?, resource: [String: Any])] {
        if let resources = o["Resources"] as? [String: Any] {
            return resources.sorted { $0.key < $1.key }.compactMap { id, r in (r as? [String: Any]).map { (id, $0) } }
        }
        if let type = o["Type"] as? String, type.hasPrefix("AWS::"), o["Properties"] != nil { return [(nil, o)] }
        let fragment = o.sorted { $0.key < $1.key }.compactMap { id, r -> (String?, [String: Any])? in
            guard let r = r as? [String: Any], let type = r["Type"] as? String, type.hasPrefix("AWS::") else { return nil }
            return (id, r)
        }
        return fragment.count == o.count ? fragment : []
    }
}

/// Turns rule JSON into a `WebACL`, or a `WebACLError` naming the rule and the field.
public enum WebACLParser {
    public static func parse(_ data: Data, sets: WAFSets = WAFSets()) throws -> WebACL {
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: data) } catch {
            throw WebACLError(rule: nil, field: "(file)", message: "not JSON: \(error.localizedDescription)")
        }
        var sets = sets
        // Sets defined beside the rules (CloudFormation resources, `IPSets`) are usable by them.
        try sets.load(root, source: "rule file")
        return try parse(root, sets: sets)
    }

    static func parse(_ root: Any, sets: WAFSets) throws -> WebACL {
        var acl: [String: Any]
        var rulesValue: Any?
        if let list = root as? [Any] {
            acl = [:]
            rulesValue = list
        } else if var o = root as? [String: Any] {
            if let body = o["TemplateBody"] as? [String: Any] { o = body }
            acl = o
            let webACLs = CloudFormation.resources(o).filter { ($0.resource["Type"] as? String) == "AWS::WAFv2::WebACL" }
            if let w = o["WebACL"] as? [String: Any] { acl = w }
            else if let first = webACLs.first {
                guard let p = first.resource["Properties"] as? [String: Any] else {
                    throw WebACLError(rule: nil, field: "\(first.logicalID.map { "Resources.\($0)." } ?? "")Properties", message: "missing or not an object")
                }
                acl = p
            } else if let p = o["Properties"] as? [String: Any] { acl = p }
            rulesValue = acl["Rules"]
        } else {
            throw WebACLError(rule: nil, field: "(file)", message: "expected a web ACL object or a list of rules")
        }
        guard let rulesList = rulesValue as? [Any] else {
            throw WebACLError(rule: nil, field: "Rules", message: "missing or not a list (expected a web ACL, its Rules, or a CloudFormation template)")
        }
        var defaultAction = WAFAction.allow
        if let d = acl["DefaultAction"] {
            defaultAction = try action(d, rule: nil, field: "DefaultAction", allowed: [.allow, .block])
        }
        var rules: [WAFRule] = []
        var seenNames = Set<String>()
        for (i, item) in rulesList.enumerated() {
            let rule = try parseRule(item, index: i, sets: sets)
            guard seenNames.insert(rule.name).inserted else {
                throw WebACLError(rule: rule.name, field: "Name", message: "two rules have this name")
            }
            rules.append(rule)
        }
        rules.sort { $0.priority < $1.priority }
        var webACL = WebACL(name: acl["Name"] as? String, defaultAction: defaultAction, rules: rules)
        webACL.captchaImmunity = try immunity(acl, "CaptchaConfig", rule: nil) ?? WebACL.defaultImmunity
        webACL.challengeImmunity = try immunity(acl, "ChallengeConfig", rule: nil) ?? WebACL.defaultImmunity
        return webACL
    }

    /// `CaptchaConfig` / `ChallengeConfig` (`{"ImmunityTimeProperty":{"ImmunityTime":N}}`) of the
    /// web ACL or a rule, in the same shape in the API's JSON and in CloudFormation: the seconds,
    /// or nil when not given (the rule inherits the web ACL's, the web ACL has AWS's 300).
    static func immunity(_ o: [String: Any], _ key: String, rule: String?) throws -> Int? {
        guard let config = o[key] else { return nil }
        guard let c = config as? [String: Any] else {
            throw WebACLError(rule: rule, field: key, message: "must be an object, got \(describe(config))")
        }
        guard let property = c["ImmunityTimeProperty"] else { return nil }
        let field = "\(key).ImmunityTimeProperty"
        guard let p = property as? [String: Any] else {
            throw WebACLError(rule: rule, field: field, message: "must be an object, got \(describe(property))")
        }
        guard let value = p["ImmunityTime"] else { throw WebACLError(rule: rule, field: "\(field).ImmunityTime", message: "missing") }
        guard let seconds = integer(value) else {
            throw WebACLError(rule: rule, field: "\(field).ImmunityTime", message: "must be an integer (seconds), got \(describe(value))")
        }
        let range = key == "ChallengeConfig" ? WebACL.challengeImmunityRange : WebACL.captchaImmunityRange
        guard range.contains(seconds) else {
            throw WebACLError(rule: rule, field: "\(field).ImmunityTime",
                              message: "must be \(range.lowerBound) to \(range.upperBound) seconds (AWS WAF's range), got \(seconds)")
        }
        return seconds
    }

    static func parseRule(_ value: Any, index: Int, sets: WAFSets) throws -> WAFRule {
        guard let o = value as? [String: Any] else {
            throw WebACLError(rule: "#\(index + 1)", field: "Rules[\(index)]", message: "a rule must be an object")
        }
        guard let name = o["Name"] as? String, !name.isEmpty else {
            throw WebACLError(rule: "#\(index + 1)", field: "Name", message: o["Name"] == nil ? "missing" : "must be a non-empty string")
        }
        guard let priorityValue = o["Priority"] else { throw WebACLError(rule: name, field: "Priority", message: "missing") }
        guard let priority = integer(priorityValue), priority >= 0 else {
            throw WebACLError(rule: name, field: "Priority", message: "must be a non-negative integer, got \(describe(priorityValue))")
        }
        guard let statementValue = o["Statement"] else { throw WebACLError(rule: name, field: "Statement", message: "missing") }
        var context = Context(rule: name, sets: sets)
        let statement = try context.statement(statementValue, path: "Statement")
        let isGroup: Bool
        if case .managedGroup = statement { isGroup = true } else { isGroup = false }
        let isReference = (statementValue as? [String: Any])?["RuleGroupReferenceStatement"] != nil
        var ruleAction: WAFAction?
        var override: String?
        if isGroup || isReference {
            if o["Action"] != nil { throw WebACLError(rule: name, field: "Action", message: "a rule group takes OverrideAction, not Action") }
            guard let ov = o["OverrideAction"] as? [String: Any], let key = ov.keys.first, ov.count == 1 else {
                throw WebACLError(rule: name, field: "OverrideAction", message: "missing or not one of {\"None\":{}} / {\"Count\":{}}")
            }
            switch key.lowercased() {
            case "none": override = "NONE"
            case "count": override = "COUNT"; ruleAction = .count
            default: throw WebACLError(rule: name, field: "OverrideAction", message: "unknown '\(key)' (expected None or Count)")
            }
        } else {
            guard let a = o["Action"] else { throw WebACLError(rule: name, field: "Action", message: "missing") }
            ruleAction = try action(a, rule: name, field: "Action", allowed: [.allow, .block, .count, .captcha, .challenge])
        }
        var labels: [String] = []
        if let list = o["RuleLabels"] {
            guard let items = list as? [Any] else { throw WebACLError(rule: name, field: "RuleLabels", message: "must be a list") }
            for item in items {
                guard let label = (item as? [String: Any])?["Name"] as? String else {
                    throw WebACLError(rule: name, field: "RuleLabels", message: "entries need a Name string")
                }
                labels.append(label)
            }
        }
        if let v = o["VisibilityConfig"], !(v is [String: Any]) {
            throw WebACLError(rule: name, field: "VisibilityConfig", message: "must be an object")
        }
        return WAFRule(name: name, priority: priority, statement: statement, action: ruleAction, overrideAction: override,
                       labels: labels, unsupported: context.unsupported,
                       captchaImmunity: try immunity(o, "CaptchaConfig", rule: name),
                       challengeImmunity: try immunity(o, "ChallengeConfig", rule: name))
    }

    static func action(_ value: Any, rule: String?, field: String, allowed: [WAFAction]) throws -> WAFAction {
        guard let o = value as? [String: Any], o.count == 1, let key = o.keys.first else {
            throw WebACLError(rule: rule, field: field, message: "must be an object with one of \(allowed.map { $0.rawValue.capitalized }.joined(separator: ", "))")
        }
        guard let a = WAFAction(rawValue: key.uppercased()), allowed.contains(a) else {
            throw WebACLError(rule: rule, field: field, message: "unknown action '\(key)' (expected \(allowed.map { $0.rawValue.capitalized }.joined(separator: ", ")))")
        }
        return a
    }

    static func integer(_ v: Any) -> Int? {
        // JSON booleans and fractions are not integers, even though NSNumber would convert them.
        if v is String { return nil }
        guard let n = v as? NSNumber else { return nil }
        let type = String(cString: n.objCType)
        if type == "c" || type == "B" { return nil }
        if type == "d" || type == "f" { return Int(exactly: n.doubleValue) }
        return n.intValue
    }

    static func describe(_ v: Any) -> String {
        if let s = v as? String { return "the string \"\(s)\"" }
        if v is [Any] { return "a list" }
        if v is [String: Any] { return "an object" }
        return "\(v)"
    }

    /// Statement names WAF has that replay cannot evaluate from logs.
    static let unsupportedStatements: Set<String> = ["SqliMatchStatement", "XssMatchStatement", "AsnMatchStatement"]

    struct Context {
        let rule: String
        let sets: WAFSets
        var unsupported: [String] = []

        func fail(_ path: String, _ message: String) -> WebACLError { WebACLError(rule: rule, field: path, message: message) }

        func object(_ v: Any?, _ path: String) throws -> [String: Any] {
            guard let v else { throw fail(path, "missing") }
            guard let o = v as? [String: Any] else { throw fail(path, "must be an object, got \(WebACLParser.describe(v))") }
            return o
        }

        func string(_ o: [String: Any], _ key: String, _ path: String) throws -> String {
            guard let v = o[key] else { throw fail("\(path).\(key)", "missing") }
            guard let s = v as? String else { throw fail("\(path).\(key)", "must be a string, got \(WebACLParser.describe(v))") }
            return s
        }

        func int(_ o: [String: Any], _ key: String, _ path: String) throws -> Int {
            guard let v = o[key] else { throw fail("\(path).\(key)", "missing") }
            guard let i = WebACLParser.integer(v) else { throw fail("\(path).\(key)", "must be an integer, got \(WebACLParser.describe(v))") }
            return i
        }

        mutating func statement(_ value: Any, path: String) throws -> WAFStatement {
            let o = try object(value, path)
            guard o.count == 1, let (type, body) = o.first else {
                throw fail(path, o.isEmpty ? "empty statement" : "one statement expected, got \(o.keys.sorted().joined(separator: ", "))")
            }
            let p = "\(path).\(type)"
            switch type {
            case "ByteMatchStatement":
                let b = try object(body, p)
                let match = try textMatch(b, p)
                let positional = try string(b, "PositionalConstraint", p)
                guard let constraint = PositionalConstraint(rawValue: positional) else {
                    throw fail("\(p).PositionalConstraint", "unknown '\(positional)' (expected EXACTLY, STARTS_WITH, ENDS_WITH, CONTAINS, CONTAINS_WORD)")
                }
                var search: [UInt8]
                if let s = b["SearchString"] as? String { search = Array(s.utf8) }
                else if let s = b["SearchStringBase64"] as? String {
                    guard let d = Data(base64Encoded: s) else { throw fail("\(p).SearchStringBase64", "not base64") }
                    search = Array(d)
                } else { throw fail("\(p).SearchString", b["SearchString"] == nil ? "missing" : "must be a string") }
                if search.isEmpty { throw fail("\(p).SearchString", "must not be empty") }
                return .byteMatch(match, constraint, search)
            case "RegexMatchStatement":
                let b = try object(body, p)
                let match = try textMatch(b, p)
                let pattern = try string(b, "RegexString", p)
                return .regex(match, [try compile(pattern, "\(p).RegexString")], setName: nil)
            case "RegexPatternSetReferenceStatement":
                let b = try object(body, p)
                let match = try textMatch(b, p)
                var patterns: [String]
                var setName = "inline"
                if let inline = b["RegularExpressionList"] as? [Any] {
                    patterns = inline.compactMap { ($0 as? String) ?? (($0 as? [String: Any])?["RegexString"] as? String) }
                } else {
                    // The API writes ARN, CloudFormation and the CDK Arn.
                    let arnKey = b["ARN"] != nil ? "ARN" : "Arn"
                    guard let arn = b[arnKey] else { throw fail("\(p).ARN", "missing (ARN, or Arn as CloudFormation writes it)") }
                    let keys = WAFSets.lookupKeys(arn)
                    let regexSets = sets.regexSets
                    guard let found = keys.compactMap({ regexSets[$0] }).first else {
                        throw fail("\(p).\(arnKey)", "regex pattern set \(keys.first.map { "'\($0)'" } ?? "reference") is not defined: give it with --sets FILE or inline RegularExpressionList")
                    }
                    patterns = found
                    setName = keys.last ?? setName
                }
                let compiled = try patterns.enumerated().map { try compile($0.element, "\(p).RegularExpressionList[\($0.offset)]") }
                return .regex(match, compiled, setName: setName)
            case "GeoMatchStatement":
                let b = try object(body, p)
                guard let codes = b["CountryCodes"] as? [Any], !codes.isEmpty else { throw fail("\(p).CountryCodes", "missing or empty") }
                var set = Set<String>()
                for c in codes {
                    guard let s = c as? String, s.count == 2 else { throw fail("\(p).CountryCodes", "'\(c)' is not a two-letter country code") }
                    set.insert(s.uppercased())
                }
                return .geo(set, try forwardedIP(b["ForwardedIPConfig"], "\(p).ForwardedIPConfig"))
            case "IPSetReferenceStatement":
                let b = try object(body, p)
                var ranges: [IPRange]
                var name = "inline"
                if let inline = b["Addresses"] as? [Any] {
                    ranges = try inline.map { item in
                        guard let s = item as? String, let r = IPRange(s) else { throw fail("\(p).Addresses", "'\(item)' is not an address or CIDR block") }
                        return r
                    }
                } else {
                    let arnKey = b["ARN"] != nil ? "ARN" : "Arn"
                    guard let arn = b[arnKey] else { throw fail("\(p).ARN", "missing (ARN, or Arn as CloudFormation writes it)") }
                    let keys = WAFSets.lookupKeys(arn)
                    let ipSets = sets.ipSets
                    guard let found = keys.compactMap({ ipSets[$0] }).first else {
                        throw fail("\(p).\(arnKey)", "IP set \(keys.first.map { "'\($0)'" } ?? "reference") is not defined: give it with --sets FILE or inline Addresses")
                    }
                    ranges = found
                    name = keys.last ?? name
                }
                let config = try forwardedIP(b["IPSetForwardedIPConfig"], "\(p).IPSetForwardedIPConfig")
                return .ipSet(ranges, config, name: name)
            case "SizeConstraintStatement":
                let b = try object(body, p)
                let match = try textMatch(b, p)
                let op = try string(b, "ComparisonOperator", p)
                guard let comparison = SizeComparison(rawValue: op) else {
                    throw fail("\(p).ComparisonOperator", "unknown '\(op)' (expected EQ, NE, LE, LT, GE, GT)")
                }
                let size = try int(b, "Size", p)
                guard size >= 0 else { throw fail("\(p).Size", "must not be negative") }
                return .size(match, comparison, size)
            case "NotStatement":
                let b = try object(body, p)
                return .not(try statement(b["Statement"] as Any, path: "\(p).Statement"))
            case "AndStatement", "OrStatement":
                let b = try object(body, p)
                guard let list = b["Statements"] as? [Any] else { throw fail("\(p).Statements", "missing or not a list") }
                guard list.count >= 2 else { throw fail("\(p).Statements", "needs at least two statements") }
                let parts = try list.enumerated().map { try statement($0.element, path: "\(p).Statements[\($0.offset)]") }
                return type == "AndStatement" ? .and(parts) : .or(parts)
            case "LabelMatchStatement":
                let b = try object(body, p)
                let scope = try string(b, "Scope", p)
                guard scope == "LABEL" || scope == "NAMESPACE" else { throw fail("\(p).Scope", "unknown '\(scope)' (expected LABEL or NAMESPACE)") }
                let key = try string(b, "Key", p)
                guard !key.isEmpty else { throw fail("\(p).Key", "must not be empty") }
                return .label(namespace: scope == "NAMESPACE", key: key)
            case "RateBasedStatement":
                guard path == "Statement" else { throw fail(p, "a RateBasedStatement must be the rule's top-level statement") }
                return .rateBased(try rateBased(try object(body, p), p))
            case "ManagedRuleGroupStatement":
                let b = try object(body, p)
                let vendor = try string(b, "VendorName", p)
                let name = try string(b, "Name", p)
                unsupported.append("ManagedRuleGroupStatement \(vendor)/\(name) (managed rules cannot be evaluated offline; only decisions recorded in WAF logs count)")
                return .managedGroup(vendor, name)
            case "RuleGroupReferenceStatement":
                let b = try object(body, p)
                let arn = WAFSets.lookupKeys((b["ARN"] ?? b["Arn"]) as Any).last ?? "?"
                unsupported.append("RuleGroupReferenceStatement \(arn) (rule group contents are not in the file)")
                return .managedGroup("rule-group", arn)
            default:
                if WebACLParser.unsupportedStatements.contains(type) {
                    _ = try object(body, p)
                    unsupported.append("\(type) (not evaluable from logs)")
                    return .unsupported(type)
                }
                throw fail(p, "unknown statement type '\(type)'")
            }
        }

        func compile(_ pattern: String, _ path: String) throws -> CompiledRegex {
            do { return CompiledRegex(pattern: pattern, regex: try NSRegularExpression(pattern: pattern)) } catch {
                throw fail(path, "invalid regular expression '\(pattern)'")
            }
        }

        func forwardedIP(_ value: Any?, _ path: String) throws -> ForwardedIPConfig? {
            guard let value else { return nil }
            let o = try object(value, path)
            let header = try string(o, "HeaderName", path)
            let fallback = try string(o, "FallbackBehavior", path)
            guard fallback == "MATCH" || fallback == "NO_MATCH" else { throw fail("\(path).FallbackBehavior", "unknown '\(fallback)' (expected MATCH or NO_MATCH)") }
            return ForwardedIPConfig(header: header.lowercased(), fallbackMatches: fallback == "MATCH")
        }

        mutating func transforms(_ value: Any?, _ path: String) throws -> ([TextTransform], String?) {
            guard let value else { throw fail(path, "missing (use [{\"Priority\":0,\"Type\":\"NONE\"}])") }
            guard let list = value as? [Any] else { throw fail(path, "must be a list") }
            var items: [(Int, String)] = []
            for (i, item) in list.enumerated() {
                let o = try object(item, "\(path)[\(i)]")
                items.append((try int(o, "Priority", "\(path)[\(i)]"), try string(o, "Type", "\(path)[\(i)]")))
            }
            var result: [TextTransform] = []
            var unimplemented: String?
            for (_, type) in items.sorted(by: { $0.0 < $1.0 }) {
                if let t = TextTransform(rawValue: type) { result.append(t) }
                else if TextTransform.unimplemented.contains(type) {
                    unimplemented = type
                    unsupported.append("text transformation \(type) at \(path)")
                } else {
                    throw fail(path, "unknown text transformation '\(type)'")
                }
            }
            return (result, unimplemented)
        }

        mutating func textMatch(_ b: [String: Any], _ p: String) throws -> TextMatch {
            let f = try field(b["FieldToMatch"], "\(p).FieldToMatch")
            let (t, missing) = try transforms(b["TextTransformations"], "\(p).TextTransformations")
            return TextMatch(field: f, transforms: t, unsupportedTransform: missing)
        }

        mutating func field(_ value: Any?, _ path: String) throws -> FieldToMatch {
            let o = try object(value, path)
            guard o.count == 1, let (name, body) = o.first else { throw fail(path, "one field expected, got \(o.keys.sorted().joined(separator: ", "))") }
            switch name {
            case "UriPath": return .uriPath
            case "QueryString": return .queryString
            case "Method": return .method
            case "AllQueryArguments": return .allQueryArguments
            case "SingleHeader":
                return .singleHeader(try string(try object(body, "\(path).SingleHeader"), "Name", "\(path).SingleHeader").lowercased())
            case "SingleQueryArgument":
                return .singleQueryArgument(try string(try object(body, "\(path).SingleQueryArgument"), "Name", "\(path).SingleQueryArgument").lowercased())
            case "Body", "JsonBody", "Cookies", "Headers", "HeaderOrder", "JA3Fingerprint", "JA4Fingerprint", "UriFragment":
                unsupported.append("field \(name) at \(path) (not in access logs)")
                return .unsupported(name)
            default:
                throw fail("\(path).\(name)", "unknown field to match")
            }
        }

        mutating func rateBased(_ b: [String: Any], _ p: String) throws -> RateRule {
            let limit = try int(b, "Limit", p)
            guard limit >= 10 else { throw fail("\(p).Limit", "must be at least 10 (WAF's minimum), got \(limit)") }
            var window = 300
            if b["EvaluationWindowSec"] != nil {
                window = try int(b, "EvaluationWindowSec", p)
                guard [60, 120, 300, 600].contains(window) else { throw fail("\(p).EvaluationWindowSec", "must be 60, 120, 300 or 600, got \(window)") }
            }
            let type = try string(b, "AggregateKeyType", p)
            var keys: [AggregateKey] = []
            var description = type
            switch type {
            case "IP": keys = [.ip]
            case "CONSTANT": keys = []
            case "FORWARDED_IP":
                guard let config = try forwardedIP(b["ForwardedIPConfig"], "\(p).ForwardedIPConfig") else {
                    throw fail("\(p).ForwardedIPConfig", "missing (required for FORWARDED_IP)")
                }
                keys = [.forwardedIP(config)]
            case "CUSTOM_KEYS":
                guard let list = b["CustomKeys"] as? [Any], !list.isEmpty else { throw fail("\(p).CustomKeys", "missing or empty (required for CUSTOM_KEYS)") }
                var names: [String] = []
                for (i, item) in list.enumerated() {
                    let kp = "\(p).CustomKeys[\(i)]"
                    let o = try object(item, kp)
                    guard o.count == 1, let (name, body) = o.first else { throw fail(kp, "one key expected") }
                    switch name {
                    case "IP": keys.append(.ip); names.append("IP")
                    case "ForwardedIP":
                        guard let config = try forwardedIP(b["ForwardedIPConfig"], "\(p).ForwardedIPConfig") else {
                            throw fail("\(p).ForwardedIPConfig", "missing (required for a ForwardedIP key)")
                        }
                        keys.append(.forwardedIP(config)); names.append("ForwardedIP")
                    case "HTTPMethod": keys.append(.method); names.append("HTTPMethod")
                    case "Header", "QueryArgument", "Cookie":
                        let k = try object(body, "\(kp).\(name)")
                        let keyName = try string(k, "Name", "\(kp).\(name)")
                        let (t, missing) = try transforms(k["TextTransformations"], "\(kp).\(name).TextTransformations")
                        let match = TextMatch(field: .singleHeader(keyName.lowercased()), transforms: t, unsupportedTransform: missing)
                        if name == "Header" { keys.append(.header(keyName.lowercased(), match)) }
                        else if name == "QueryArgument" { keys.append(.queryArgument(keyName.lowercased(), match)) }
                        else {
                            // Read from the Cookie header a WAF log records; unknown at other layers.
                            keys.append(.cookie(keyName, match))
                        }
                        names.append("\(name):\(keyName)")
                    case "QueryString", "UriPath":
                        let k = try object(body, "\(kp).\(name)")
                        let (t, missing) = try transforms(k["TextTransformations"], "\(kp).\(name).TextTransformations")
                        let match = TextMatch(field: name == "UriPath" ? .uriPath : .queryString, transforms: t, unsupportedTransform: missing)
                        keys.append(name == "UriPath" ? .uriPath(match) : .queryString(match))
                        names.append(name)
                    case "LabelNamespace":
                        let k = try object(body, "\(kp).LabelNamespace")
                        let ns = try string(k, "Namespace", "\(kp).LabelNamespace")
                        keys.append(.labelNamespace(ns)); names.append("LabelNamespace:\(ns)")
                    default:
                        throw fail("\(kp).\(name)", "unknown aggregate key")
                    }
                }
                description = names.joined(separator: "+")
            default:
                throw fail("\(p).AggregateKeyType", "unknown '\(type)' (expected IP, FORWARDED_IP, CONSTANT, CUSTOM_KEYS)")
            }
            var scopeDown: WAFStatement?
            if let s = b["ScopeDownStatement"] { scopeDown = try statement(s, path: "\(p).ScopeDownStatement") }
            return RateRule(limit: limit, window: Int64(window) * 1_000_000, keys: keys, scopeDown: scopeDown, keyDescription: description)
        }
    }
}
