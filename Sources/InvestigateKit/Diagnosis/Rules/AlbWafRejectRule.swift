/// The ALB log alone shows a WAF rejection: `actions_executed` ends in `waf`, no target answered.
public struct AlbWafRejectRule: DiagnosisRule {
    public init() {}
    public let id = "alb-waf-reject"
    public let title = "The ALB log shows AWS WAF rejected the request (WAF log not available)"
    public let doc = RuleDoc(
        fires: "An ALB record whose `actions_executed` ends in `waf` with target `-`, and no WAF record in the chain.",
        evidence: "The ALB line (elb_status_code 403 or the custom code, target_status_code `-`).",
        example: "ALB 403 with actions_executed=waf: the web ACL attached to the ALB blocked it; fetch the WAF log to name the rule.")

    public func diagnose(_ c: RequestCase) -> Verdict? {
        guard c.access(.waf) == nil, let alb = c.access(.alb), let actions = alb.extra("actions_executed"),
              actions.split(separator: ",").last.map({ $0.trimmingCharacters(in: .whitespaces) }) == "waf",
              alb.event.targetStatus == nil else { return nil }
        let status = alb.event.elbStatus ?? alb.event.status
        // A request a target logged was forwarded, and 460 is the client leaving: not a WAF answer.
        if status == 460 || c.records.contains(where: { $0.event.layer == .nginx || $0.event.layer == .app }) { return nil }
        var absent: [Layer: String] = [:]
        for layer in [Layer.nginx, .gunicorn, .app] { absent[layer] = "expected: AWS WAF rejected the request at the load balancer" }
        absent[.waf] = c.hasData(.waf) ? "suspicious: WAF logs are present but none matches this request" : "not provided: no WAF logs were given; they name the rule"
        return Verdict(
            responder: .waf, cause: .waf, confidence: c.hasData(.waf) ? .medium : .high,
            explanation: "The load balancer's log shows `actions_executed` = `\(actions)`: WAF was the last action and no target was contacted, so AWS WAF rejected the request and the ALB returned \(status.map(String.init) ?? "its status"). Which rule did it is only in the WAF log.",
            evidence: [alb],
            nextSteps: ["Fetch the WAF logs (S3 `AWSLogs/<account>/WAFLogs/…` or the `aws-waf-logs-…` log group) for \(c.time.map { TimeFormat.isoUTC($0 - 300_000_000) } ?? "the window") to \(c.time.map { TimeFormat.isoUTC($0 + 300_000_000) } ?? "") and ingest them to name the rule."],
            expectedAbsent: absent, reasonKey: "alb-waf")
    }
}
