/// nginx answered on its own: its upstream (gunicorn) failed, or it refused the client.
public struct NginxRule: DiagnosisRule {
    public init() {}
    public let id = "nginx-own-status"
    public let title = "nginx answered on its own (upstream failure or its own refusal)"
    public let doc = RuleDoc(
        fires: "nginx's access record has an error status that no layer behind it produced.",
        evidence: "The access line; the matching error-log line (`connect() failed (111: Connection refused)`, `upstream prematurely closed connection`, `upstream timed out`, `client intended to send too large body`, `limiting requests`, `access forbidden by rule`); gunicorn's `WORKER TIMEOUT` or `was sent SIGKILL! Perhaps out of memory?`, the kernel's `Out of memory: Killed process`, and systemd lines at that moment.",
        example: "502 with `upstream prematurely closed connection` and gunicorn `WORKER TIMEOUT (pid:5678)` a moment before: nginx answered, the gunicorn worker killed mid-request caused it.")

    public func diagnose(_ c: RequestCase) -> Verdict? {
        guard let nginx = c.access(.nginx), let status = nginx.event.status, status >= 400 else { return nil }
        // An inner layer that answered the same status is the real responder.
        if let app = c.access(.app), app.event.status == status { return nil }
        if let gun = c.access(.gunicorn), gun.event.status == status { return nil }
        let errors = errorLines(for: nginx, in: c)
        let message = errors.map(\.messageText).joined(separator: "\n")
        let gunicornLines = c.nearby.filter { $0.event.layer == .gunicorn }
        let timeouts = gunicornLines.filter { $0.messageText.contains("WORKER TIMEOUT") }
        // A worker killed by the kernel's OOM killer: gunicorn's arbiter says "was sent SIGKILL!
        // Perhaps out of memory?", the kernel "Out of memory: Killed process N (gunicorn)".
        // gunicorn writes the same SIGKILL line when it kills a worker that ignored the abort after
        // a WORKER TIMEOUT: then it was a timeout, unless the kernel says it killed for memory.
        let kernelKills = c.nearby.filter { e in
            let m = e.messageText
            return e.event.layer == .system && (m.contains("Out of memory: Killed process") || m.contains("oom-kill")) && (m.contains("gunicorn") || m.contains("python"))
        }
        let arbiterKills = c.nearby.filter { e in
            e.event.layer == .gunicorn && (e.messageText.contains("Perhaps out of memory") || e.messageText.contains("was sent SIGKILL"))
        }
        // The kernel's "Killed process N (gunicorn)" says most; "invoked oom-killer" only who asked.
        let memoryKills = kernelKills.sorted { ($0.messageText.contains("Killed process") ? 0 : 1) < ($1.messageText.contains("Killed process") ? 0 : 1) }
            + (timeouts.isEmpty ? arbiterKills : [])
        let stops = (c.nearby.filter { $0.event.layer == .gunicorn || $0.event.layer == .system }).filter {
            let m = $0.messageText
            return m.contains("Stopped") || m.contains("Stopping") || m.contains("Main process exited") || m.contains("Failed with result")
                || m.contains("Shutting down") || m.contains("Killed") || m.contains("killed")
        }
        var evidence = [nginx] + errors.prefix(2)
        let innerAbsent: [Layer: String] = [
            .gunicorn: "expected: nginx answered on its own", .app: "expected: the application never answered this request",
        ]
        let client = nginx.event.peerIP.map { " (nginx's client was \($0))" } ?? ""

        if message.contains("Connection refused") || message.contains("connect() failed") || message.contains("no live upstreams") {
            evidence += stops.prefix(3)
            return Verdict(
                responder: .nginx, cause: .gunicorn, confidence: errors.isEmpty ? .medium : .high,
                explanation: "nginx answered \(status) because it could not connect to its upstream: `\(firstLine(message))`. gunicorn was not accepting connections\(stops.isEmpty ? "" : "; systemd/gunicorn show the service stopping: `\(firstLine(stops[0].messageText))`").",
                evidence: evidence,
                nextSteps: ["Check why the gunicorn service was down at that time (`journalctl -u gunicorn`, syslog around it) and whether it restarted.",
                            "Ingest the syslog/journal of the app host if it is not in the timeline yet."],
                expectedAbsent: innerAbsent, reasonKey: "nginx-upstream-refused")
        }
        if message.contains("upstream prematurely closed"), !memoryKills.isEmpty {
            evidence += memoryKills.prefix(2)
            return Verdict(
                responder: .nginx, cause: .gunicorn, confidence: .high,
                explanation: "nginx answered \(status): the upstream closed the connection before sending a response (`upstream prematurely closed connection`). The worker handling it was killed for lack of memory: `\(firstLine(memoryKills[0].messageText))`.",
                evidence: evidence,
                nextSteps: ["Find what grew the worker's memory on \(nginx.event.path ?? "this path") (the app's log for this request), or give the workers more memory / fewer workers per host; check the kernel log for other OOM kills."],
                expectedAbsent: [.gunicorn: "expected: gunicorn logs no request line for a request whose worker was killed", .app: "expected: the app never finished this request"],
                reasonKey: "nginx-upstream-oom")
        }
        if message.contains("upstream prematurely closed") {
            evidence += timeouts.prefix(2)
            // A killed worker is the commonest reason, but only gunicorn's own line proves it.
            let worker = timeouts.first.map { "gunicorn's arbiter logged `\(firstLine($0.messageText))`: the worker handling this request was killed for exceeding gunicorn's timeout, which is shorter than nginx's proxy_read_timeout." }
                ?? "No gunicorn line about a timed-out or killed worker was found nearby\(c.hasData(.gunicorn) ? "" : " (no gunicorn logs were given)"): the upstream process most likely died or was killed mid-request (a worker timeout, an out-of-memory kill or a crash), which its own logs would show."
            return Verdict(
                responder: .nginx, cause: .gunicorn, confidence: timeouts.isEmpty ? .medium : .high,
                explanation: "nginx answered \(status): the upstream closed the connection before sending a response (`upstream prematurely closed connection`). \(worker)",
                evidence: evidence,
                nextSteps: ["Find what made \(nginx.event.path ?? "the request") slow in the app, or raise gunicorn's `--timeout` (keep it below nginx's `proxy_read_timeout` and the ALB idle timeout)."],
                expectedAbsent: [.gunicorn: "expected: gunicorn logs no request line when a worker is killed on timeout", .app: "expected: the app never finished this request"],
                reasonKey: "nginx-upstream-closed")
        }
        if message.contains("upstream timed out") {
            // The app had the request and was still at it: it may log the request's end later.
            var verdict = Verdict(
                responder: .nginx, cause: .app, confidence: .high,
                explanation: "nginx answered \(status): its upstream did not answer within proxy_read_timeout (`\(firstLine(message))`). The application was too slow for this request; it may have finished it later, with nobody listening.",
                evidence: evidence, nextSteps: ["Find what made the app slow for \(nginx.event.path ?? "this path") at that time (its log, database)."],
                expectedAbsent: [:], reasonKey: "nginx-upstream-timeout")
            verdict.reached = [.app]
            return verdict
        }
        // `limit_req_status`/`limit_conn_status` choose the code (503 by default, 429 often): the
        // error-log line, not the status, says a limit refused the request.
        if let limit = ["limiting requests", "limiting connections"].first(where: { message.contains($0) }) {
            let directive = limit == "limiting requests" ? "limit_req" : "limit_conn"
            return Verdict(responder: .nginx, cause: .client, confidence: .high,
                           explanation: "nginx's `\(directive)` rejected the request with \(status) (`\(firstLine(message))`): the client exceeded the configured \(directive == "limit_req" ? "request rate" : "number of connections").",
                           evidence: evidence, nextSteps: ["Check the \(directive) zone and the client's request rate (`investigate replay --detect rate`)."],
                           expectedAbsent: innerAbsent, reasonKey: "nginx-\(directive.replacingOccurrences(of: "_", with: "-"))")
        }
        switch status {
        case 413:
            return Verdict(responder: .nginx, cause: .client, confidence: .high,
                           explanation: "nginx refused the request body as too large (\(errors.isEmpty ? "413" : "`\(firstLine(message))`")): it exceeded `client_max_body_size`.",
                           evidence: evidence, nextSteps: ["Raise `client_max_body_size` if such uploads are legitimate."],
                           expectedAbsent: innerAbsent, reasonKey: "nginx-413")
        case 499 where c.stack.somethingInFrontOfNginx && !c.hasData(.alb) && (nginx.event.duration ?? 0) >= 30_000_000:
            // nginx's client is a load balancer; one that gives up after tens of seconds has hit its
            // idle timeout (60 s by default on an ALB) and answered the real client itself (504).
            return Verdict(responder: .upstream, cause: .app, confidence: .medium,
                           explanation: "nginx logged 499 after \(Double(nginx.event.duration ?? 0) / 1e6) s: its client, the load balancer in front (\(nginx.event.peerIP ?? "a private address")), closed the connection while the application was still working. A load balancer that gives up like this has reached its idle timeout and answers the real client itself (an ALB sends 504), so the error the client saw came from there; the slow application caused it.",
                           evidence: evidence, nextSteps: ["Fetch the load balancer's access logs for this time (an ALB logs 504 with target_status_code `-`).",
                                                           "Find why the app was slow for \(nginx.event.path ?? "this path"), or raise the idle timeout above the app's worst case."],
                           expectedAbsent: [:], reasonKey: "nginx-499-idle-timeout")
        case 499:
            return Verdict(responder: .nginx, cause: .client, confidence: .medium,
                           explanation: "nginx logged 499: its client\(client) closed the connection before nginx answered; the client got no response from nginx.\(c.records.first { $0.event.layer == .app && $0.event.kind == .access }.map { " The application finished later (`\($0.messageText)`); its answer went nowhere." } ?? "")",
                           evidence: evidence, nextSteps: ["If a load balancer is nginx's client, look for its timeout (ALB 504/460) at the same moment."],
                           expectedAbsent: [:], reasonKey: "nginx-499")
        case 403 where message.contains("forbidden by rule"):
            return Verdict(responder: .nginx, cause: .nginx, confidence: .high,
                           explanation: "nginx's access rules (`deny`) refused the request: `\(firstLine(message))`.",
                           evidence: evidence, nextSteps: ["Check the allow/deny rules of the matching location."],
                           expectedAbsent: innerAbsent, reasonKey: "nginx-forbidden")
        case 444, 494, 400:
            return Verdict(responder: .nginx, cause: .client, confidence: .medium,
                           explanation: "nginx refused the request itself with \(status) (\(status == 444 ? "connection closed without a response" : status == 494 ? "request header too large" : "a malformed request")).",
                           evidence: evidence, nextSteps: [], expectedAbsent: innerAbsent, reasonKey: "nginx-\(status)")
        case 502, 503, 504:
            return Verdict(responder: .nginx, cause: .gunicorn, confidence: .low,
                           explanation: "nginx answered \(status), an upstream failure, but no error-log line explains it\(c.hasData(.nginx) ? "" : " (no nginx error log was given)").",
                           evidence: evidence + timeouts.prefix(1) + stops.prefix(1),
                           nextSteps: ["Ingest nginx's error.log for this time; it names the upstream failure."],
                           expectedAbsent: innerAbsent, reasonKey: "nginx-\(status)-unexplained")
        default:
            return nil
        }
    }

    /// Error-log lines about this request: linked to it, or naming the same client (nginx's peer)
    /// and request line within the request's time.
    func errorLines(for nginx: StoredEvent, in c: RequestCase) -> [StoredEvent] {
        let linked = c.logs(.nginx)
        if !linked.isEmpty { return linked }
        return c.nearby.filter { e in
            guard e.event.layer == .nginx, e.event.kind == .log else { return false }
            if let path = e.event.path, path != nginx.event.path { return false }
            if let ip = e.event.clientIP, let peer = nginx.event.peerIP, ip != peer { return false }
            guard let t = e.event.time, let done = nginx.event.time else { return false }
            let start = done - (nginx.event.duration ?? 0) - 2_000_000
            return t >= start && t <= done + 2_000_000 && e.event.path != nil
        }
    }

    func firstLine(_ s: String) -> String {
        String(s.split(separator: "\n", omittingEmptySubsequences: true).first ?? "").trimmingCharacters(in: .whitespaces)
    }
}
