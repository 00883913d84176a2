import Foundation

/// A web ACL (or a bare rule list) in AWS WAF's JSON, as the console, `aws wafv2 get-web-acl` and
/// CloudFormation (`AWS::WAFv2::WebACL` properties) write it, parsed into typed statements.
/// https://docs.aws.amazon.com/waf/latest/APIReference/API_Rule.html
public struct WebACL: Sendable {
    public var name: String?
    public var defaultAction: WAFAction
    /// In evaluation order (ascending `Priority`).
    public var rules: [WAFRule]
    /// `CaptchaConfig` / `ChallengeConfig` `ImmunityTimeProperty.ImmunityTime`, in seconds: how long
    /// a solved CAPTCHA / passed challenge exempts the client, for every rule without its own.
    public var captchaImmunity: Int = WebACL.defaultImmunity
    public var challengeImmunity: Int = WebACL.defaultImmunity

    /// AWS WAF's default for both immunity times.
    public static let defaultImmunity = 300
    /// The range AWS WAF accepts (seconds): CAPTCHA 60 s, challenge 300 s, both at most three days.
    public static let captchaImmunityRange = 60...259_200
    public static let challengeImmunityRange = 300...259_200

    /// The immunity time a CAPTCHA or CHALLENGE rule checks a token against: the rule's own
    /// setting, else the web ACL's (nil for other actions).
    public func immunity(of rule: WAFRule, for action: WAFAction) -> Int? {
        switch action {
        case .captcha: return rule.captchaImmunity ?? captchaImmunity
        case .challenge: return rule.challengeImmunity ?? challengeImmunity
        default: return nil
        }
    }
}

public enum WAFAction: String, Sendable, Equatable {
    case allow = "ALLOW", block = "BLOCK", count = "COUNT", captcha = "CAPTCHA", challenge = "CHALLENGE"

    /// Everything but COUNT ends the evaluation (CAPTCHA/CHALLENGE only without a valid token:
    /// `WAFEvaluator` decides that per client, see `PuzzleSolving`).
    public var terminates: Bool { self != .count }
    /// CAPTCHA or CHALLENGE: a client with a valid token passes as with COUNT.
    public var isPuzzle: Bool { self == .captcha || self == .challenge }
    /// The request did not reach the application.
    public var stops: Bool { self == .block || self == .captcha || self == .challenge }
}

public struct WAFRule: Sendable {
    public var name: String
    public var priority: Int
    public var statement: WAFStatement
    /// nil for a rule group reference whose `OverrideAction` is `None` (its own rules decide).
    public var action: WAFAction?
    /// `OverrideAction`: "NONE" or "COUNT" for rule groups.
    public var overrideAction: String?
    /// `RuleLabels` names, added to the request when the rule matches.
    public var labels: [String]
    /// What replay cannot evaluate in this rule, by name (managed groups, statements, fields).
    public var unsupported: [String]
    /// The rule's own `CaptchaConfig` / `ChallengeConfig` immunity time in seconds; nil: the web ACL's.
    public var captchaImmunity: Int? = nil
    public var challengeImmunity: Int? = nil
}

public enum PositionalConstraint: String, Sendable {
    case exactly = "EXACTLY", startsWith = "STARTS_WITH", endsWith = "ENDS_WITH", contains = "CONTAINS", containsWord = "CONTAINS_WORD"
}

public enum SizeComparison: String, Sendable {
    case eq = "EQ", ne = "NE", le = "LE", lt = "LT", ge = "GE", gt = "GT"
}

public struct ForwardedIPConfig: Sendable {
    public var header: String
    /// MATCH or NO_MATCH when the header is missing or not an address.
    public var fallbackMatches: Bool
}

public enum FieldToMatch: Sendable {
    case uriPath, queryString, method, allQueryArguments
    case singleHeader(String)
    case singleQueryArgument(String)
    /// A field the logs do not carry (Body, JsonBody, Cookies, Headers, JA3Fingerprint, …).
    case unsupported(String)
}

public struct TextMatch: Sendable {
    public var field: FieldToMatch
    public var transforms: [TextTransform]
    /// A transformation replay does not implement, by name (the statement is then undecidable).
    public var unsupportedTransform: String?
}

public struct CompiledRegex: @unchecked Sendable {
    public let pattern: String
    let regex: NSRegularExpression
}

public enum AggregateKey: Sendable {
    case ip, forwardedIP(ForwardedIPConfig), method, queryString(TextMatch)
    case header(String, TextMatch), queryArgument(String, TextMatch), cookie(String, TextMatch), uriPath(TextMatch)
    case labelNamespace(String)
}

public struct RateRule: Sendable {
    public var limit: Int
    public var window: Int64
    /// Empty: CONSTANT (every request counts in one bucket).
    public var keys: [AggregateKey]
    public var scopeDown: WAFStatement?
    public var keyDescription: String
}

public indirect enum WAFStatement: Sendable {
    case byteMatch(TextMatch, PositionalConstraint, [UInt8])
    case regex(TextMatch, [CompiledRegex], setName: String?)
    case geo(Set<String>, ForwardedIPConfig?)
    case ipSet([IPRange], ForwardedIPConfig?, name: String)
    case size(TextMatch, SizeComparison, Int)
    case not(WAFStatement)
    case and([WAFStatement])
    case or([WAFStatement])
    case label(namespace: Bool, key: String)
    case rateBased(RateRule)
    /// A managed rule group (vendor, name): evaluated offline only through a WAF log's recorded decision.
    case managedGroup(String, String)
    /// A statement replay cannot evaluate (SqliMatchStatement, XssMatchStatement, …), by name.
    case unsupported(String)
}

/// A rule file problem, naming the rule and the field, found before any replay starts.
public struct WebACLError: Error, CustomStringConvertible, Equatable {
    public var rule: String?
    public var field: String
    public var message: String

    public var description: String {
        "\(rule.map { "rule '\($0)'" } ?? "rule file"): \(field): \(message)"
    }
}
