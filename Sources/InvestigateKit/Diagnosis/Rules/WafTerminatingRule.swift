/// AWS WAF ended the request: BLOCK (403 or a custom code), CAPTCHA (405), CHALLENGE (202).
public struct WafTerminatingRule: DiagnosisRule {
    public init() {}
    public let id = "waf-terminating-action"
    public let title = "AWS WAF blocked, challenged or CAPTCHA'd the request"
    public let doc = RuleDoc(
        fires: "The request's WAF record has action BLOCK, CAPTCHA or CHALLENGE.",
        evidence: "The WAF record (terminatingRuleId, the managed group's sub-rule, rate-based rule, labels); the ALB record if present (`actions_executed` ending in `waf`, no target). A rate-based block of an address that at least 5 different user agents came from in that time says the address looks shared (a NAT or carrier gateway) and puts scoping the rule first.",
        example: "403 for GET /app/admin: WAF rule AWS-AWSManagedRulesCommonRuleSet (sub-rule AWS#AWSManagedRulesCommonRuleSet:SizeRestrictions_QUERYSTRING) BLOCKed it; nginx and the app never saw it.")

    public func diagnose(_ c: RequestCase) -> Verdict? {
        guard let waf = c.access(.waf), let action = waf.event.wafAction?.uppercased(),
              ["BLOCK", "CAPTCHA", "CHALLENGE"].contains(action) else { return nil }
        let rule = waf.event.wafRule ?? "an unnamed rule"
        var detail = "AWS WAF's web ACL ended the request with \(action) by rule `\(rule)`"
        if let type = waf.extra("terminating_rule_type") ?? waf.extra("terminatingRuleType") { detail += " (\(type))" }
        if let sub = waf.extra("waf_subrule") { detail += ", sub-rule `\(sub)`" }
        if let rate = waf.extra("rate_based_rules") ?? waf.extra("rateBasedRuleList"), !rate.isEmpty, rate != "[]" { detail += "; rate-based rule state: \(rate)" }
        if let labels = waf.extra("labels"), !labels.isEmpty { detail += "; labels: \(labels)" }
        let status = waf.event.status ?? c.clientStatus
        detail += ". The client got \(status.map(String.init) ?? "WAF's response")"
        if let code = waf.extra("response_code_sent") ?? waf.extra("responseCodeSent") { detail += " (responseCodeSent \(code))" }
        detail += "; the request was never forwarded, so no layer behind the WAF logged it."
        var evidence = [waf]
        if let alb = c.access(.alb) { evidence.append(alb) }
        var absent: [Layer: String] = [:]
        for layer in [Layer.alb, .apigateway, .nginx, .gunicorn, .app, .lambda] {
            absent[layer] = "expected: the WAF \(action == "BLOCK" ? "blocked" : "answered") the request before it reached \(layer.rawValue)"
        }
        // A web ACL on a load balancer or an API stage is evaluated there: the resource logs the
        // WAF's answer itself (an ALB: 403 with actions_executed `waf`), so its silence is no
        // more expected than any missing log.
        let source = (waf.extra("http_source_name") ?? waf.extra("httpSourceName") ?? "").uppercased()
        for (name, layer) in [("ALB", Layer.alb), ("APIGW", Layer.apigateway)] where source == name {
            absent.removeValue(forKey: layer)
        }
        if let alb = c.access(.alb) {
            _ = alb
            absent.removeValue(forKey: .alb)
        }
        let subrule = waf.extra("waf_subrule")
        // The limits convention (StatusMeaning): a rate-based rule refused the client's own traffic.
        let type = (waf.extra("terminating_rule_type") ?? waf.extra("terminatingRuleType") ?? "").uppercased()
        let rateList = waf.extra("rate_based_rules") ?? waf.extra("rateBasedRuleList") ?? ""
        let rateBased = type == "RATE_BASED" || (rateList.contains(rule) && rule != "an unnamed rule")
        if rateBased { detail += " A rate-based rule refused the client's own traffic: it exceeded the configured request rate, so the cause is the client." }
        return Verdict(
            responder: .waf, cause: rateBased ? .client : .waf, confidence: .high, explanation: detail, evidence: evidence,
            nextSteps: [
                "Check whether this request was legitimate; if so, tune rule `\(rule)`: add a scope-down statement, set \(subrule.map { "the sub-rule `\($0)`" } ?? "the rule") to COUNT (rule action override), or exclude the path.",
                "Replay the archived traffic against the changed web ACL before deploying it: `investigate replay --rules WEBACL.json` shows which other requests it would still block.",
            ],
            expectedAbsent: absent, reasonKey: "waf:\(rule):\(subrule ?? "")")
    }
}
