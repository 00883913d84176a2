/// The load balancer produced the status itself (no target answered, or it answered differently).
public struct AlbOwnStatusRule: DiagnosisRule {
    public init() {}
    public let id = "alb-own-status"
    public let title = "The ALB answered on its own"
    public let doc = RuleDoc(
        fires: "An ALB record with an error `elb_status_code` and no `target_status_code` (or a different one).",
        evidence: "The ALB line (status codes, processing times of -1, `error_reason`); nginx records at the same moment (499 when the ALB gave up first).",
        example: "504 with target `-` and nginx 499 at the same moment: the app was slower than the ALB's idle timeout; the ALB gave up and nginx logged the client (the ALB) closing.")

    public func diagnose(_ c: RequestCase) -> Verdict? {
        guard let alb = c.access(.alb), let elb = alb.event.elbStatus ?? alb.event.status, elb >= 400 else { return nil }
        if let target = alb.event.targetStatus, target == elb { return nil } // the target's own answer, passed on
        let reason = alb.event.error ?? alb.extra("error_reason")
        let nginx = c.access(.nginx)
        var evidence = [alb]
        if let nginx { evidence.append(nginx) }
        let reasonText = reason.map { " (`error_reason` \($0))" } ?? ""
        var cause: Layer = .alb
        var confidence = Confidence.high
        var text: String
        var next: [String] = []
        switch elb {
        case 504:
            if let n = nginx, n.event.status == 499 {
                cause = c.access(.app) != nil || c.hasData(.app) ? .app : .nginx
                // The app's own lines for this request (its start, a minute before the ALB gave up).
                evidence += c.records.filter { $0.event.layer == .app }.prefix(2)
                text = "The ALB returned 504: its target did not answer before the idle timeout, and nginx logged 499 at the same moment (the ALB, nginx's client, closed the connection). The application behind nginx was slower than the ALB's idle timeout\(n.event.duration.map { "; nginx had waited \(Double($0) / 1e6) s" } ?? "")."
                next = ["Find why the app was slow for \(alb.event.path ?? "this path") (its log around this time), or raise the ALB idle timeout above the app's worst case and keep gunicorn's timeout below it."]
            } else {
                cause = .nginx
                confidence = nginx == nil ? .medium : .high
                text = "The ALB returned 504\(reasonText): the target did not answer in time (connection timeout or idle timeout)."
                next = ["Check the target's health and response times at that moment (nginx access and error logs)."]
            }
        case 502 where !Self.targetDeaths(c).isEmpty:
            let deaths = Self.targetDeaths(c)
            cause = .nginx
            evidence += deaths.prefix(2)
            let named = deaths.first { $0.messageText.contains("Killed process") } ?? deaths[0]
            text = "The ALB returned 502\(reasonText): the target's web server had died and not started again, so the connection was refused or closed: `\(firstLine(named.messageText))`\(named.event.time.map { " at \(TimeFormat.isoUTC($0))" } ?? "")."
            next = ["Find why nginx was killed or stopped (the kernel log for OOM kills, `journalctl -u nginx`), and whether it came back."]
        case 502:
            cause = .nginx
            text = "The ALB returned 502\(reasonText): the target closed or reset the connection, sent a malformed response, or was deregistered."
            next = ["Check the target (nginx) error log and keep-alive settings (the target's keep-alive must outlast the ALB idle timeout)."]
        case 503:
            text = "The ALB returned 503\(reasonText): the target group had no registered (healthy) targets."
            next = ["Check target-group health checks and registrations at that time."]
        case 460:
            cause = .client
            text = "The ALB logged 460: the client closed the connection before the ALB could answer (ALB's counterpart of nginx 499)."
            if let n = nginx, n.event.status == 499 {
                // Both ends of one departure: the client left the ALB, and the ALB (nginx's client)
                // then left nginx; nothing failed. 460 is the ALB's own code and the status the
                // client's request ended with, so the ALB's record answers for it.
                let app = c.records.first { $0.event.layer == .app && $0.event.kind == .access }
                return Verdict(
                    responder: .alb, cause: .client, confidence: .high,
                    explanation: "The client closed the connection before any answer: the ALB logged 460 (its client left) and nginx logged 499 (its client, the ALB, closed the connection)\(n.event.duration.map { " after \(Double($0) / 1e6) s" } ?? "").\(app.map { " The application finished the request later (`\($0.messageText)`); its answer went nowhere." } ?? "") No component failed; a slow response may have made the client give up.",
                    evidence: [alb, n] + (app.map { [$0] } ?? []),
                    nextSteps: ["If clients leave because the response is slow, find why \(alb.event.path ?? "this path") took \(n.event.duration.map { "\(Double($0) / 1e6) s" } ?? "long") (the app's log for this request)."],
                    expectedAbsent: [:], reasonKey: "client-closed")
            }
        case 400, 408, 413, 414, 463, 464:
            cause = .client
            let what: [Int: String] = [400: "a malformed request", 408: "no data before the idle timeout", 413: "a body too large for a Lambda target",
                                       414: "a URL or query string too large", 463: "an X-Forwarded-For header with more than 30 addresses",
                                       464: "a protocol version incompatible with the target group"]
            text = "The ALB refused the request itself with \(elb): \(what[elb] ?? "a client error")\(reasonText)."
        case 561:
            text = "The ALB returned 561: the identity provider returned an error during authentication\(reasonText)."
        case 500:
            text = "The ALB returned 500\(reasonText): a WAF web ACL execution error or an unreachable identity provider."
        default:
            confidence = .medium
            text = "The ALB returned \(elb)\(reasonText) and no target answered."
        }
        if elb == 503 || (elb == 504 && nginx?.event.status != 499), let death = Self.targetDeaths(c).first {
            evidence.append(death)
            text += " The target host's log shows its web server down (no start since): `\(firstLine(death.messageText))`."
        }
        var absent: [Layer: String] = [:]
        if alb.event.targetStatus == nil, nginx == nil {
            for l in [Layer.nginx, .gunicorn, .app] { absent[l] = "expected: no target answered this request" }
        }
        return Verdict(responder: .alb, cause: cause, confidence: confidence, explanation: text, evidence: evidence,
                       nextSteps: next, expectedAbsent: absent, reasonKey: "alb-\(elb)-\(reason ?? "")")
    }

    /// Host-log lines saying the target's web server died or stopped and had not started again
    /// by the request: the kernel's OOM kill of nginx, systemd's `nginx.service: Main process exited`.
    static func targetDeaths(_ c: RequestCase) -> [StoredEvent] {
        guard let t = c.time else { return [] }
        return ServiceLifecycle.downAt(t, service: "nginx", in: c.serviceEvents + c.nearby.filter { $0.event.layer == .system })
    }

    func firstLine(_ s: String) -> String {
        String(s.split(separator: "\n", omittingEmptySubsequences: true).first ?? "").trimmingCharacters(in: .whitespaces)
    }
}
