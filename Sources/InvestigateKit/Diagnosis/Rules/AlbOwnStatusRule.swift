/// The load balancer produced the status itself (no target answered, or it answered differently).
public struct AlbOwnStatusRule: DiagnosisRule {
    public init() {}
    public let id = "alb-own-status"
    public let title = "The ALB answered on its own"
    public let doc = RuleDoc(
        fires: "An ALB record with an error `elb_status_code` and no `target_status_code` (or a different one). With a Lambda target (`error_reason` Lambda…), the function's invocation is found by the trace id it logged and the function, not nginx, is the cause (`LambdaInvalidResponse`, `LambdaUnhandled`, throttling); the client for `LambdaRequestTooLarge`, the ALB's configuration for a missing function or permission. A listener rule's fixed response (`actions_executed` fixed-response) is the ALB's own answer; a 503 cites the targets' failed health checks (ELB-HealthChecker answered 5xx) when nginx logged them, and the application's error as the latest check reached it (a database refusing connections names the database).",
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
        if let reason, reason.hasPrefix("Lambda") { return lambdaTarget(alb, status: elb, reason: reason, c) }
        var cause: Layer = .alb
        var confidence = Confidence.high
        var text: String
        var next: [String] = []
        var dependency: String?
        var lateFinish: Layer?
        switch elb {
        case 504:
            if let n = nginx, n.event.status == 499 {
                cause = c.access(.app) != nil || c.hasData(.app) ? .app : .nginx
                // The app's own lines for this request (its start, a minute before the ALB gave up).
                evidence += c.records.filter { $0.event.layer == .app }.prefix(2)
                text = "The ALB returned 504: its target did not answer before the idle timeout, and nginx logged 499 at the same moment (the ALB, nginx's client, closed the connection). The application behind nginx was slower than the ALB's idle timeout\(n.event.duration.map { "; nginx had waited \(Double($0) / 1e6) s" } ?? "")."
                // What the app and gunicorn logged as they went on, and when they finished.
                let mentions = AppMentions(c, for: n, status: nil, after: 30_000_000)
                let said = (mentions.reasons + mentions.related).filter { r in !evidence.contains { $0.id == r.id } }
                let finished = c.nearby.filter { e in
                    e.event.kind == .access && (e.event.layer == .gunicorn || e.event.layer == .app) && e.event.path == n.event.path
                        && (e.event.time ?? 0) > (n.event.time ?? .max) && (e.event.time ?? 0) <= (n.event.time ?? 0) + 30_000_000
                }.first ?? mentions.later.first
                evidence += said.prefix(2) + [finished].compactMap { $0 }
                if let why = said.first { text += " The application's log says what held it: `\(firstLine(why.messageText).prefix(200))`." }
                if let f = finished {
                    text += " The request was finished after all, with nobody listening: \(f.event.layer.rawValue) logged `\(f.event.kind == .access ? "\(f.event.method ?? "") \(f.event.path ?? "") \(f.event.status.map(String.init) ?? "")" : String(f.messageText.prefix(160)))`\(f.event.time.flatMap { t in n.event.time.map { " \(String(format: "%.1f", Double(t - $0) / 1e6)) s after the ALB gave up" } } ?? "")."
                    lateFinish = f.event.layer
                }
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
        case 502 where nginx == nil && c.covers(.nginx) && alb.extra("target") != nil && alb.extra("target_processing_time") == "-1":
            // The ALB picked a target and got no response, and nginx, whose logs span the moment,
            // logged nothing: nginx never read a whole request on that connection.
            cause = .nginx
            text = "The ALB returned 502\(reasonText): it sent the request to its target \(alb.extra("target") ?? "") and the connection failed before any response (target_processing_time -1). nginx's logs cover this moment and hold no record of it, so nginx never read a whole request: the signature of a keep-alive connection nginx closed just as the ALB reused it (nginx's `keepalive_timeout`, 75 s by default, must exceed the ALB's idle timeout, 60 s by default), or of nginx's workers restarting."
            next = ["Set nginx's `keepalive_timeout` above the ALB's idle timeout; check nginx's error log for restarts or reloads at that moment."]
            var v = Verdict(responder: .alb, cause: cause, confidence: confidence, explanation: text, evidence: evidence, nextSteps: next,
                            expectedAbsent: [.nginx: "expected: the connection failed before a whole request reached nginx, and nginx logs a request only once it has read it",
                                             .gunicorn: "expected: nginx never passed the request on", .app: "expected: nginx never passed the request on"],
                            reasonKey: "alb-502-target-connection")
            v.evidence += c.nearby.filter { $0.event.layer == .nginx && $0.event.kind == .log && ($0.messageText.contains("SIGHUP") || $0.messageText.contains("reopening") || $0.messageText.contains("exiting")) }.prefix(1)
            return v
        case 502:
            cause = .nginx
            text = "The ALB returned 502\(reasonText): the target closed or reset the connection, sent a malformed response, or was deregistered."
            next = ["Check the target (nginx) error log and keep-alive settings (the target's keep-alive must outlast the ALB idle timeout)."]
        case _ where (alb.extra("actions_executed") ?? "").contains("fixed-response"):
            // A listener rule answered with a fixed response: no target was asked.
            text = "The ALB answered \(elb) itself with a listener rule's fixed response (`actions_executed` fixed-response\(alb.extra("matched_rule_priority").map { ", rule priority \($0)" } ?? "")): no target was involved."
            next = ["Check the listener's rules for a fixed-response action on this path (a maintenance or block rule); CloudTrail's CreateRule/ModifyRule say who added it."]
        case 503:
            text = "The ALB returned 503\(reasonText): the target group had no registered (healthy) targets."
            // Targets that failed their health checks: the checker's probes answered with errors.
            let failedChecks = (c.serviceEvents + Array(c.nearby)).filter {
                ($0.event.userAgent ?? "").hasPrefix("ELB-HealthChecker") && ($0.event.status ?? 0) >= 500 && ($0.event.time ?? .max) <= (c.time ?? .max)
            }.sorted { ($0.event.time ?? 0) < ($1.event.time ?? 0) }
            if let check = failedChecks.last {
                cause = c.hasData(.app) ? .app : .nginx
                evidence.append(check)
                text += " The targets were failing their health checks: `\(check.event.method ?? "GET") \(check.event.path ?? "/")` answered \(check.event.status ?? 500) to ELB-HealthChecker."
                // Why the health path failed: the app's own error there, often its database.
                let healthPath = check.event.path ?? "/"
                let appErrors = (c.serviceEvents + Array(c.nearby)).filter { e in
                    e.event.layer == .app && ((e.event.level ?? "").uppercased().hasPrefix("ERR") || e.messageText.contains("Traceback"))
                        && (e.event.path.map { $0 == healthPath } ?? true)
                }
                if let failure = appErrors.lazy.compactMap({ e in DependencyFailure.classify(e.text).map { (e, $0) } }).first {
                    evidence.append(failure.0)
                    dependency = failure.1.dependency
                    text += " The application's error there is its \(failure.1.dependency) that \(failure.1.what): `\(ExceptionText.summary(failure.0.text) ?? String(failure.0.messageText.prefix(160)))`."
                }
            }
            next = dependency.map { ["Check the \($0) the health check depends on (its own logs, restarts, connection limits): the targets fail their checks until it is back."] }
                ?? ["Check target-group health checks and registrations at that time\(failedChecks.isEmpty ? "" : " (the health-check path's errors above)")."]
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
            // HTTP desync mitigation's verdict on the request, when it logged one.
            if let verdict = alb.extra("classification"), verdict != "-", verdict != "Compliant" {
                text += " Its desync mitigation classified the request `\(verdict)`\(alb.extra("classification_reason").map { " (`\($0)`)" } ?? ""): the request's framing (Content-Length, Transfer-Encoding, header syntax) broke HTTP's rules, as the client sent it."
                next = ["Find which client software sends such requests (the user agent of these records) and fix it; the ALB's `routing.http.desync_mitigation_mode` decides what it refuses."]
            }
        case 561:
            // The listener's authenticate-oidc/-cognito action could not complete the sign-in: the
            // identity provider (its token or user-info endpoint) failed, not the ALB.
            text = "The ALB returned 561: the identity provider returned an error during authentication\(reasonText), so the listener's authenticate action could not sign the user in; no target was asked. Users already signed in (with a session cookie) are not affected while it lasts."
            dependency = "identity provider"
            next = ["Check the identity provider's token and user-info endpoints at that time (their status, the client secret, the network path from the ALB to them: `AuthTokenEpRequestFailed`, `AuthTokenEpRequestTimeout`, `AuthUserinfoEpRequestFailed` say which failed)."]
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
        if elb == 504, nginx?.event.status == 499 {
            // gunicorn and the app log a request when they finish it: after the ALB and nginx had
            // given up, beyond this moment, and with the status they made (200, often).
            absent[.gunicorn] = lateFinish == .gunicorn ? "expected: gunicorn logged the request when it finished, after the ALB and nginx had given up (cited above)"
                : "expected: gunicorn logs a request when it finishes, after the ALB and nginx had given up; its line, if any, comes later and with the app's own status"
            absent[.app] = "expected: the app finished (if at all) after the ALB and nginx had given up; its lines for this request are cited where found"
        }
        if alb.event.targetStatus == nil, nginx == nil {
            for l in [Layer.nginx, .gunicorn, .app] { absent[l] = "expected: no target answered this request" }
        }
        var verdict = Verdict(responder: .alb, cause: cause, confidence: confidence, explanation: text, evidence: evidence,
                              nextSteps: next, expectedAbsent: absent, reasonKey: "alb-\(elb)-\(reason ?? "")")
        verdict.dependency = dependency
        return verdict
    }

    /// The target is a Lambda function (`error_reason` Lambda…): its invocation, found by the
    /// trace id the function logged or, failing that, not at all, says what it did.
    func lambdaTarget(_ alb: StoredEvent, status: Int, reason: String, _ c: RequestCase) -> Verdict {
        let invocation = Self.lambdaInvocation(for: alb, c)
        let errors = invocation.filter { e in
            let m = e.messageText
            return (e.event.level ?? "").uppercased().hasPrefix("ERR") || m.contains("Traceback") || m.contains("Task timed out") || m.hasPrefix("[ERROR]") || e.event.error != nil
        }
        let report = invocation.first { $0.messageText.hasPrefix("REPORT") }
        var cause: Layer = .lambda
        var text: String
        var next: String
        switch reason {
        case "LambdaInvalidResponse":
            text = "The ALB returned \(status) because its Lambda target's response was not one it can use (`error_reason` LambdaInvalidResponse): the function must return a JSON object with a numeric `statusCode` and string `headers` values and `body` (binary bodies base64-encoded, with `isBase64Encoded`)."
            if !invocation.isEmpty && errors.isEmpty {
                text += " The function's own log shows the invocation ending without an error\(report.map { " (`\(firstLine($0.messageText))`)" } ?? ""): it returned normally, in the wrong shape."
            }
            next = "Check what the function returns for \(alb.event.path ?? "this path") (a body that is not a string, a statusCode given as text, missing fields); a deploy just before the errors began is the first suspect."
        case "LambdaUnhandled", "LambdaUnhandledException":
            let summary = errors.lazy.compactMap { ExceptionText.summary($0.text) ?? ExceptionText.summary($0.messageText) }.first
            text = "The ALB returned \(status) because its Lambda target raised an unhandled exception (`error_reason` \(reason))\(summary.map { ": `\($0)`" } ?? "")."
            next = "Read the function's error for this invocation and fix it."
        case "LambdaThrottling", "LambdaEC2ThrottledException", "LambdaENILimitReachedException", "LambdaSubnetIPAddressLimitReachedException":
            text = "The ALB returned \(status) because Lambda refused to run its target (`error_reason` \(reason)): concurrency or network capacity was exhausted."
            next = "Check the function's reserved/account concurrency and its VPC subnets' free addresses at that moment."
        case "LambdaRequestTooLarge", "LambdaBadRequest":
            cause = .client
            text = "The ALB could not pass the request to its Lambda target (`error_reason` \(reason)): the request was too large or malformed for a Lambda event (the body is limited to 1 MB)."
            next = "Nothing to fix unless such requests are legitimate."
        case "LambdaAccessDenied", "LambdaFunctionNotFound", "LambdaResourceNotFound", "LambdaKMSAccessDeniedException", "LambdaKMSDisabledException",
             "LambdaKMSInvalidStateException", "LambdaKMSNotFoundException", "LambdaInvalidSecurityGroupIDException", "LambdaInvalidSubnetIDException":
            cause = .alb
            text = "The ALB could not invoke its Lambda target (`error_reason` \(reason)): the target group's function, its permission for the ALB, or the function's configuration is wrong."
            next = "Check the target group's registered function and the function's resource policy and configuration."
        default:
            text = "The ALB returned \(status) because its Lambda target failed (`error_reason` \(reason))."
            next = "Read the function's log for this invocation."
        }
        if invocation.isEmpty && cause == .lambda {
            text += c.hasData(.lambda) ? " No invocation in the function's log carries this request's trace id (`\(alb.event.traceID ?? "-")`)." : " No Lambda logs were given."
        }
        let nonTargets: [Layer: String] = [.nginx: "expected: the ALB's target is a Lambda function", .gunicorn: "expected: the ALB's target is a Lambda function",
                                            .app: "expected: the ALB's target is a Lambda function"]
        var absent = nonTargets
        if cause != .lambda { absent[.lambda] = "expected: the function was not invoked" }
        else if !invocation.isEmpty { absent[.lambda] = "found by content: the invocation cited above logged this request's trace id; no field of the ALB record links it" }
        return Verdict(responder: .alb, cause: cause, confidence: .high, explanation: text,
                       evidence: [alb] + errors.prefix(3) + (errors.isEmpty ? invocation.filter { !$0.messageText.hasPrefix("START") }.prefix(3) : []) + (report.map { [$0] } ?? []),
                       nextSteps: [next], expectedAbsent: absent, reasonKey: "alb-\(status)-\(reason)")
    }

    /// The Lambda invocation behind an ALB record: the function's lines naming the request's
    /// trace id, and every line of the same request id.
    static func lambdaInvocation(for alb: StoredEvent, _ c: RequestCase) -> [StoredEvent] {
        guard let trace = alb.event.traceID.map({ $0.replacingOccurrences(of: "Root=", with: "") }), trace.count > 10 else { return [] }
        let lines = c.records.filter { $0.event.layer == .lambda } + c.nearby.filter { $0.event.layer == .lambda }
        let ids = Set(lines.filter { $0.messageText.contains(trace) || $0.event.traceID?.contains(trace) == true }.compactMap(\.event.requestID))
        guard !ids.isEmpty else { return [] }
        var seen = Set<Int64>()
        let own = lines.filter { $0.event.requestID.map(ids.contains) ?? false && seen.insert($0.id).inserted }
        // The runtime's unhandled-error lines carry no request id: those of the same log stream
        // between the invocation's first and last line are its own (one stream runs one at a time).
        let streams = Set(own.compactMap { $0.extra("log_stream") })
        let times = own.compactMap(\.event.time)
        let inside = lines.filter { e in
            guard e.event.requestID == nil, let stream = e.extra("log_stream"), streams.contains(stream), let t = e.event.time,
                  let lo = times.min(), let hi = times.max() else { return false }
            return t >= lo && t <= hi && seen.insert(e.id).inserted
        }
        return (own + inside).sorted { ($0.event.time ?? 0, $0.id) < ($1.event.time ?? 0, $1.id) }
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
