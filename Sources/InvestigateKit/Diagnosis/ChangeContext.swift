import Foundation
import GRDB

/// Changes to the infrastructure, read from CloudTrail, cited beside an answer as context: a
/// security group revoked ten minutes before CloudFront could not reach its origin, a function's
/// code updated before it began to fail, a web ACL edited before a new block. Never the answer:
/// CloudTrail records no request, so a change is only named when it concerns the layer that
/// answered or caused the error, and it happened in the hour before.
struct ChangeContext {
    /// What part of the stack an API call changes, from its `eventSource` and name.
    enum Area: String, CaseIterable {
        case waf, cloudfront, dns, certificate, loadBalancer, network, compute, api, function

        /// How the part is named in an explanation.
        var phrase: String {
            switch self {
            case .waf: return "AWS WAF"
            case .cloudfront: return "the CloudFront distribution"
            case .dns: return "DNS (Route 53)"
            case .certificate: return "a certificate (ACM)"
            case .loadBalancer: return "the load balancer"
            case .network: return "the network (security groups, ACLs, routes)"
            case .compute: return "the servers"
            case .api: return "the API (API Gateway)"
            case .function: return "the Lambda function"
            }
        }

        /// The area of a call, or nil when the call changes nothing on a request's path.
        static func of(source: String, name: String) -> Area? {
            switch source {
            case "waf.amazonaws.com", "waf-regional.amazonaws.com", "wafv2.amazonaws.com": return .waf
            case "cloudfront.amazonaws.com": return name == "CreateInvalidation" ? nil : .cloudfront
            case "route53.amazonaws.com": return .dns
            case "acm.amazonaws.com": return .certificate
            case "elasticloadbalancing.amazonaws.com": return .loadBalancer
            case "apigateway.amazonaws.com": return .api
            case "lambda.amazonaws.com": return name.hasPrefix("Invoke") ? nil : .function
            case "autoscaling.amazonaws.com", "ecs.amazonaws.com": return .compute
            case "ec2.amazonaws.com":
                if ["SecurityGroup", "NetworkAcl", "Route", "Subnet", "Vpc", "Gateway"].contains(where: name.contains) { return .network }
                if name.contains("Instance") { return .compute }
                return nil
            default: return nil
            }
        }

        /// Where a changed part is worth a look, by the layer that answered and the one that caused it.
        static func concerning(responder: String, cause: String, status: Int?) -> Set<Area> {
            var out: Set<Area> = []
            // CloudFront's 5xx is about its origin even when no origin log says which layer failed.
            let origin = cause != "client" && (cause != Layer.cloudfront.rawValue || (status ?? 0) >= 500)
            switch responder {
            case Layer.waf.rawValue: out = [.waf]
            case Layer.cloudfront.rawValue: out = origin ? [.cloudfront, .dns, .certificate, .loadBalancer, .network, .compute] : [.cloudfront]
            case Layer.alb.rawValue, "nlb": out = [.loadBalancer, .network, .certificate, .compute]
            case Layer.apigateway.rawValue: out = [.api, .function, .certificate]
            default: break
            }
            switch cause {
            case Layer.lambda.rawValue: out.insert(.function)
            case Layer.alb.rawValue: out.formUnion([.loadBalancer, .network])
            case Layer.nginx.rawValue, Layer.gunicorn.rawValue, Layer.app.rawValue: out.insert(.compute)
            default: break
            }
            // A client's own mistake (a probe, a bad token) is not explained by a change, except a
            // web ACL's, which decides what counts as one.
            if cause == "client" && responder != Layer.waf.rawValue { return [] }
            return out
        }
    }

    struct Change {
        let area: Area
        let record: StoredEvent
    }

    /// How long before an answer a change is mentioned.
    static let lookback: Int64 = 3_600_000_000

    /// Calls are read-only by name when CloudTrail does not say (`readOnly` is missing in older records).
    static let readVerbs = ["Get", "List", "Describe", "Check", "Lookup", "Test", "Preview"]

    let changes: [Change]

    /// Successful changing calls in a span, oldest first.
    static func load(_ db: Database, from: Int64, to: Int64) throws -> ChangeContext {
        let records = try StoredEvent.fetchAll(db, sql: """
            SELECT \(StoredEvent.columns) FROM event WHERE layer = 'cloudtrail' AND time >= ? AND time <= ? AND copy_of IS NULL
            ORDER BY time, id LIMIT 5000
            """, arguments: [from, to])
        var out: [Change] = []
        for r in records {
            let x = r.event.extra
            guard let name = x["event_name"], let source = x["event_source"], x["error_code"] == nil, x["read_only"] != "true",
                  !readVerbs.contains(where: name.hasPrefix), let area = Area.of(source: source, name: name) else { continue }
            out.append(Change(area: area, record: r))
        }
        return ChangeContext(changes: out)
    }

    /// The resource a call concerns, from its request parameters: the importer's `resource` for
    /// AWS WAF, else the first identifying parameter.
    static func resource(of e: Event) -> String? {
        if let r = e.extra["resource"] { return r }
        guard let text = e.extra["request_parameters"], let data = text.data(using: .utf8),
              let p = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return nil }
        for key in ["groupId", "groupName", "loadBalancerArn", "targetGroupArn", "listenerArn", "functionName", "restApiId", "apiId",
                    "id", "hostedZoneId", "certificateArn", "autoScalingGroupName", "service", "name"] {
            if let v = p[key] as? String, !v.isEmpty { return v }
        }
        if let ids = (p["instancesSet"] as? [String: Any])?["items"] as? [[String: Any]] {
            let names = ids.compactMap { $0["instanceId"] as? String }
            if !names.isEmpty { return names.prefix(3).joined(separator: ", ") }
        }
        return nil
    }

    /// The answer with the changes that concern it, as context: what changed, when and by whom.
    /// The CloudTrail lines join the evidence.
    func annotate(_ f: Finding, _ sources: SourceIndex, zone: ZoneSpec) -> Finding {
        guard let t = f.micros else { return f }
        let areas = Area.concerning(responder: f.responder, cause: f.cause, status: f.status)
        let before = changes.filter { c in
            let at = c.record.event.time ?? .min
            return areas.contains(c.area) && at <= t && at >= t - Self.lookback
        }
        guard !before.isEmpty else { return f }
        var out = f
        var parts: [String] = []
        for change in before.suffix(3).reversed() {
            let e = change.record.event
            let name = e.extra["event_name"] ?? "a change"
            let resource = Self.resource(of: e)
            var what: String
            if change.area == .waf {
                // The web ACL the WAF record names (`…/webacl/<name>/<id>`): by name or by id, not by any substring.
                let concerns = resource.map { r in
                    f.evidence.contains { $0.layer == Layer.waf.rawValue && ($0.text.contains("/webacl/\(r)/") || $0.text.contains("/webacl/") && $0.text.contains("/\(r)\"")) }
                } ?? false
                what = (concerns ? "this web ACL " : "") + (resource.map { "`\($0)`" } ?? "a WAF resource")
            } else {
                what = change.area.phrase + (resource.map { " (`\($0)`)" } ?? "")
            }
            let minutes = max(0, (t - (e.time ?? t)) / 60_000_000)
            var part = "\(what) changed (\(name)) at \(e.time.map { TimeFormat.display($0, zone: zone, millis: false) } ?? "?")"
            if let who = e.extra["user_arn"] { part += " by \(who)" }
            part += ", \(minutes) min before"
            parts.append(part)
            out.evidence.append(Diagnoser.evidenceLine(change.record, sources))
        }
        let more = before.count > 3 ? " (\(before.count) changes in that hour; the latest 3 shown)" : ""
        out.explanation += " Context from CloudTrail, not the answer: " + parts.joined(separator: "; ") + more + "."
        if before.contains(where: { $0.area == .waf }) {
            out.next_steps.append("Compare the web ACL before and after the change (CloudTrail requestParameters: `investigate timeline --layer cloudtrail`); if the block is new since then, the change is the first suspect.")
        }
        if before.contains(where: { $0.area != .waf }) {
            out.next_steps.append("Read the change's requestParameters (`investigate timeline --layer cloudtrail`): if the errors began after it, revert or fix it first.")
        }
        return out
    }
}
