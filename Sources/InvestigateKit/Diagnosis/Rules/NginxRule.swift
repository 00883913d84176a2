/// nginx answered on its own: its upstream (gunicorn) failed, or it refused the client.
public struct NginxRule: DiagnosisRule {
    public init() {}
    public let id = "nginx-own-status"
    public let title = "nginx answered on its own (upstream failure or its own refusal)"
    public let doc = RuleDoc(
        fires: "nginx's access record has an error status that no layer behind it produced; or, where no access log of nginx or of a layer in front reaches the moment, an error-log line names a request and a failure nginx answers for (the status is the one nginx sends for it: 504 for `upstream timed out`, 502 for other upstream failures, 503 or 429 for `limit_req`, 413, 414, 403, 404, 401, 500 for a rewrite cycle).",
        evidence: "The access line; the matching error-log line (`connect() failed (111: Connection refused)` or a missing socket `(2: No such file or directory)`, `upstream prematurely closed connection`, `recv() failed (104: Connection reset by peer)`, `upstream timed out`, `upstream sent too big header`, `upstream sent invalid header`, `No space left on device`, `Too many open files`, `client intended to send too large body`, `client sent too long URI`, `limiting requests`, `access forbidden by rule`, `rewrite or internal redirection cycle`, `directory index of … is forbidden`, auth_basic's `user \"…\" was not found in` / `password mismatch`); gunicorn's `WORKER TIMEOUT` or `was sent SIGKILL! Perhaps out of memory?`, the kernel's `Out of memory: Killed process`, why gunicorn would not start (an import error folded into `Exception in worker process`, `Worker failed to boot`, systemd's `Failed to start`) up to 15 minutes before, and the app's error naming the path after nginx gave up. An error-log line no rule knows is quoted and the cause left unknown; a 502/503/504 while nginx's error log is given and silent is the upstream's own status (the next rules judge it).",
        example: "502 with `upstream prematurely closed connection` and gunicorn `WORKER TIMEOUT (pid:5678)` a moment before: nginx answered, the gunicorn worker killed mid-request caused it.")

    public func diagnose(_ c: RequestCase) -> Verdict? {
        if let implied = c.nginxErrorAnswer {
            // nginx's access record is missing: its error-log line is the request's one record at
            // nginx, and the status is the one nginx sends for that failure.
            guard var v = diagnose(c, nginx: implied.record, status: implied.status,
                                   errors: [implied.record] + c.logs(.nginx).filter { $0.id != implied.record.id }) else { return nil }
            v.explanation += " (nginx's access log does not cover this moment: the status is the one nginx sends for this error-log line, unless an `error_page` changes it.)"
            return v
        }
        guard let nginx = c.access(.nginx), let status = nginx.event.status, status >= 400 else { return nil }
        // nginx's own record says its upstream sent this status: nginx relayed it.
        if UpstreamRelayRule.relayed(nginx, status: status) { return nil }
        return diagnose(c, nginx: nginx, status: status, errors: errorLines(for: nginx, in: c))
    }

    /// `nginx` is the request's access record, or the error-log line standing for it.
    func diagnose(_ c: RequestCase, nginx: StoredEvent, status: Int, errors: [StoredEvent]) -> Verdict? {
        // An inner layer that answered the same status is the real responder.
        if let app = c.access(.app), app.event.status == status { return nil }
        if let gun = c.access(.gunicorn), gun.event.status == status { return nil }
        let message = errors.map(\.messageText).joined(separator: "\n")
        let gunicornLines = c.nearby.filter { $0.event.layer == .gunicorn }
        // The worker that handled this request timed out just before nginx saw its upstream go:
        // the nearest timeout to nginx's error line first (another request's worker is further off).
        let closedAt = errors.first?.event.time ?? nginx.event.time ?? 0
        let timeouts = gunicornLines.filter { $0.messageText.contains("WORKER TIMEOUT") }
            .sorted { abs(($0.event.time ?? 0) - closedAt) < abs(($1.event.time ?? 0) - closedAt) }
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
        var evidence = [nginx] + errors.prefix(2).filter { $0.id != nginx.id }
        let innerAbsent: [Layer: String] = [
            .gunicorn: "expected: nginx answered on its own", .app: "expected: the application never answered this request",
        ]
        let client = nginx.event.peerIP.map { " (nginx's client was \($0))" } ?? ""

        let connecting = message.contains("connect() failed") || message.contains("no live upstreams")
            || message.contains("while connecting to upstream") || (message.contains("connect() to ") && message.contains(" failed"))
        if connecting {
            let t = nginx.event.time ?? 0
            let lifecycle = c.serviceEvents + Array(c.nearby)
            // The service's last death with no start since, and why it would not start (an import
            // error after a deploy, "Worker failed to boot").
            let down = ServiceLifecycle.downAt(t, service: "gunicorn", in: lifecycle)
            let bootFailures = ServiceLifecycle.bootFailures(before: t, in: lifecycle)
            let said = bootFailures.first ?? down.last ?? stops.first
            evidence += bootFailures.prefix(2) + down.suffix(2)
            if bootFailures.isEmpty && down.isEmpty { evidence += stops.prefix(3) }
            let how: String
            if message.contains("(2: No such file or directory)") {
                how = "its upstream's socket file does not exist: gunicorn was not running (its master had exited or never started)"
            } else if message.contains("timed out") {
                how = "it could not connect within `proxy_connect_timeout`: the upstream host was unreachable or its listen queue was full"
            } else if message.contains("no live upstreams") {
                how = "every server of its upstream group had been marked failed"
            } else {
                how = "it could not connect to its upstream: gunicorn was not accepting connections"
            }
            // gunicorn folds a worker's traceback into its "Exception in worker process" line.
            let bootReason = bootFailures.first.map { ExceptionText.summary($0.text) ?? firstLine($0.messageText) }
            let why = bootReason.map { "; the host's logs say why it was not running: `\($0)`" }
                ?? said.map { "; the host's logs show the service \(down.isEmpty ? "stopping" : "down"): `\(firstLine($0.messageText))`" } ?? ""
            return Verdict(
                responder: .nginx, cause: .gunicorn, confidence: errors.isEmpty ? .medium : .high,
                explanation: "nginx answered \(status) because \(how) (`\(firstLine(message))`)\(why).",
                evidence: evidence,
                nextSteps: bootFailures.isEmpty
                    ? ["Check why the gunicorn service was down at that time (`journalctl -u gunicorn`, syslog around it) and whether it restarted.",
                       "Ingest the syslog/journal of the app host if it is not in the timeline yet."]
                    : ["Fix what stops the application from loading (`\(bootReason ?? "")`), or roll back the deploy, then restart gunicorn."],
                expectedAbsent: [.gunicorn: "expected: gunicorn was not accepting connections, so it logged no request", .app: "expected: the request never reached the application"],
                reasonKey: "nginx-upstream-refused")
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
        if message.contains("upstream prematurely closed") || ((message.contains("reset by peer") || message.contains("Broken pipe"))
            && (message.contains("from upstream") || message.contains("to upstream"))) {
            evidence += timeouts.prefix(2)
            // A killed worker is the commonest reason, but only gunicorn's own line proves it. A
            // request that failed within seconds was no timeout: the upstream crashed or restarted.
            // nginx's $request_time, else the time the ALB in front says its target (nginx) took.
            let took = nginx.event.duration
                ?? c.access(.alb)?.extra("target_processing_time").flatMap(Double.init).flatMap { $0 >= 0 ? Int64($0 * 1e6) : nil }
            let quick = timeouts.isEmpty && (took.map { $0 < 5_000_000 } ?? false)
            let upstream = errors.lazy.compactMap { Self.upstreamAddress($0.text) }.first
            let refusedThere = upstream.map { address in
                c.nearby.filter { $0.event.layer == .nginx && $0.event.kind == .log && $0.text.contains(address)
                    && ($0.messageText.contains("Connection refused") || $0.messageText.contains("temporarily disabled")) }
            } ?? []
            evidence += refusedThere.prefix(1)
            let worker = timeouts.first.map { "gunicorn's arbiter logged `\(firstLine($0.messageText))`: the worker handling this request was killed for exceeding gunicorn's timeout, which is shorter than nginx's proxy_read_timeout." }
                ?? (quick ? "It failed after \(Double(took ?? 0) / 1e6) s, too soon for a timeout: the upstream process crashed or was restarting\(refusedThere.isEmpty ? "" : "; nginx also failed to connect to the same upstream \(refusedThere.count) time\(refusedThere.count == 1 ? "" : "s") around then (`\(firstLine(refusedThere[0].messageText))`), so it was going up and down")."
                    : "No gunicorn line about a timed-out or killed worker was found nearby\(c.hasData(.gunicorn) ? "" : " (no gunicorn logs were given)"): the upstream process most likely died or was killed mid-request (a worker timeout, an out-of-memory kill or a crash), which its own logs would show.")
            let which = upstream.map { " The upstream was `\($0)`; if the gunicorn and app logs given are another backend's, that host's logs hold the rest." } ?? ""
            return Verdict(
                responder: .nginx, cause: .gunicorn, confidence: timeouts.isEmpty ? .medium : .high,
                explanation: "nginx answered \(status): the upstream closed the connection before sending a response (`\(firstLine(message))`). \(worker)\(which)",
                evidence: evidence,
                nextSteps: quick ? ["Find why the upstream\(upstream.map { " `\($0)`" } ?? "") crashed or restarted at that moment (its gunicorn log and journal)."]
                    : ["Find what made \(nginx.event.path ?? "the request") slow in the app, or raise gunicorn's `--timeout` (keep it below nginx's `proxy_read_timeout` and the ALB idle timeout)."],
                expectedAbsent: [.gunicorn: quick ? "expected: gunicorn logs no request line for a request its worker died on" : "expected: gunicorn logs no request line when a worker is killed on timeout",
                                 .app: "expected: the app never finished this request"],
                reasonKey: "nginx-upstream-closed")
        }
        if message.contains("upstream timed out") {
            // The app had the request and was still at it: it may log the request's failure or end
            // later (a database timeout longer than nginx's), naming the path.
            let mentions = AppMentions(c, for: nginx, status: nil, after: 15_000_000)
            let said = mentions.reasons + mentions.related.filter { r in !mentions.reasons.contains { $0.id == r.id } }
            let later = mentions.later
            evidence += said.prefix(2) + later.prefix(1)
            var why = said.first.map { e in
                " The application's log says what held it: `\(ExceptionText.summary(e.text) ?? ExceptionText.summary(e.messageText) ?? String(firstLine(e.messageText).prefix(200)))`."
            } ?? ""
            why += later.first.map { " It finished the request after nginx had given up (`\(firstLine($0.messageText).prefix(160))`), with nobody listening." }
                ?? (said.isEmpty ? " The application was too slow for this request; it may have finished it later, with nobody listening." : "")
            var verdict = Verdict(
                responder: .nginx, cause: .app, confidence: .high,
                explanation: "nginx answered \(status): its upstream did not answer within proxy_read_timeout (`\(firstLine(message))`).\(why)",
                evidence: evidence, nextSteps: [said.isEmpty ? "Find what made the app slow for \(nginx.event.path ?? "this path") at that time (its log, database)."
                                                             : "Fix what the application waited on (the line above), and keep its own timeouts below nginx's proxy_read_timeout so it fails fast and says so."],
                expectedAbsent: later.isEmpty ? [:] : [.app: "expected: the application's line for this request came after nginx had answered (cited above); no identifier links it"],
                reasonKey: "nginx-upstream-timeout")
            // The upstream accepted the request and held it: gunicorn and the app had it.
            verdict.reached = [.gunicorn, .app]
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
        if let known = ownRefusal(message, status: status, nginx: nginx, c: c, evidence: evidence, innerAbsent: innerAbsent) { return known }
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
        case 401 where errors.isEmpty && !authRefusals(near: nginx, in: c).isEmpty:
            // auth_basic logs the refusals of credentials it was sent, not the challenge to a
            // client that sent none: the same location's refusals show whose 401 it is.
            return Verdict(responder: .nginx, cause: .client, confidence: .medium,
                           explanation: "nginx's `auth_basic` answered 401 without an error-log line: the client sent no credentials, and nginx challenged it for them (nginx logs only refused credentials, such as `\(firstLine(authRefusals(near: nginx, in: c)[0].messageText))` for this location).",
                           evidence: evidence + authRefusals(near: nginx, in: c).prefix(1), nextSteps: ["A browser then asks the user and retries; a script must send credentials from the start."],
                           expectedAbsent: innerAbsent, reasonKey: "nginx-auth-challenge")
        case 444, 494, 400:
            return Verdict(responder: .nginx, cause: .client, confidence: .medium,
                           explanation: "nginx refused the request itself with \(status) (\(status == 444 ? "connection closed without a response" : status == 494 ? "request header too large" : "a malformed request")).",
                           evidence: evidence, nextSteps: [], expectedAbsent: innerAbsent, reasonKey: "nginx-\(status)")
        case 500...599 where !errors.isEmpty:
            // An error-log line these rules do not know: quoted, not interpreted.
            return Verdict(responder: .nginx, cause: nil, confidence: .medium,
                           explanation: "nginx answered \(status); its error log says `\(firstLine(message))` at that moment, which names no cause these rules know, so which layer caused it is left open.",
                           evidence: evidence + timeouts.prefix(1) + stops.prefix(1),
                           nextSteps: ["Read nginx's error-log line above and the upstream's logs at that moment."],
                           expectedAbsent: [:], reasonKey: "nginx-\(status)-error-line")
        case 502...504 where c.stack.nginxErrorLogGiven && c.covers(.nginx):
            // nginx writes every upstream failure it answers for to its error log: with that log
            // given and silent, the upstream sent this status itself (an app's own 503).
            return nil
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

    /// nginx's own refusals and failures that its error log names, whatever the status: the
    /// request line and the message decide, not the code (`error_page` and `auth_basic` remap).
    func ownRefusal(_ message: String, status: Int, nginx: StoredEvent, c: RequestCase, evidence: [StoredEvent],
                    innerAbsent: [Layer: String]) -> Verdict? {
        let line = firstLine(message)
        let path = nginx.event.path ?? "this path"
        func verdict(_ cause: Layer, _ explanation: String, _ next: String, _ key: String, absent: [Layer: String]? = nil) -> Verdict {
            Verdict(responder: .nginx, cause: cause, confidence: .high, explanation: explanation, evidence: evidence,
                    nextSteps: [next], expectedAbsent: absent ?? innerAbsent, reasonKey: key)
        }
        if message.contains("upstream sent too big header") {
            // The application answered; nginx could not hold its response headers.
            let inner = c.records.filter { $0.event.kind == .access && ($0.event.layer == .gunicorn || $0.event.layer == .app) }
            let answered = inner.compactMap { r in r.event.status.map { "\(r.event.layer.rawValue) logged \($0)" } }.first
            var v = verdict(.app, "nginx answered \(status) because the upstream's response headers did not fit its buffer (`\(line)`): the application answered\(answered.map { " (\($0))" } ?? ""), but with headers larger than `proxy_buffer_size` (a big cookie or a long header), so nginx discarded the response.",
                            "Find which response header of \(path) grew (Set-Cookie, Location, Link), or raise `proxy_buffer_size`/`proxy_buffers`.", "nginx-upstream-big-header",
                            absent: [:])
            v.evidence += inner + AppMentions(c, for: nginx, status: nil).reasons.prefix(1)
            v.reached = [.gunicorn, .app]
            return v
        }
        if message.contains("upstream sent invalid") || message.contains("upstream sent no valid") || message.contains("upstream sent unexpected") {
            var v = verdict(.app, "nginx answered \(status) because the upstream's response was malformed (`\(line)`).",
                            "Check what the application (or whatever listens on the upstream address) sends back for \(path).", "nginx-upstream-invalid", absent: [:])
            v.reached = [.gunicorn]
            return v
        }
        if message.contains("No space left on device") {
            return verdict(.nginx, "nginx failed the request with \(status) because the disk it writes to is full (`\(line)`): nginx buffers request bodies and large responses in temporary files (`client_body_temp_path`, `proxy_temp_path`).",
                           "Free space on nginx's host (`df -h`), find what filled it, and alert on disk use.", "nginx-disk-full")
        }
        if message.contains("Too many open files") || message.contains("worker_connections are not enough") {
            return verdict(.nginx, "nginx failed the request with \(status): it ran out of \(message.contains("Too many open files") ? "file descriptors" : "worker connections") (`\(line)`).",
                           "Raise `worker_rlimit_nofile`/`worker_connections` (and the system's limit), or find what holds connections open.", "nginx-resources")
        }
        if message.contains("was not found in \"") || message.contains("password mismatch") || message.contains("no user/password was provided for basic authentication") {
            return verdict(.client, "nginx's `auth_basic` refused the request (`\(line)`): the client's credentials were \(message.contains("no user/password") ? "missing" : message.contains("password mismatch") ? "wrong (password mismatch)" : "for a user not in the password file").",
                           "Check the client's credentials against the password file named in the line; a 401 with no error-log line is the usual challenge before a browser sends credentials.", "nginx-auth-basic")
        }
        if message.contains("rewrite or internal redirection cycle") {
            return verdict(.nginx, "nginx failed the request with \(status) on its own configuration: a `rewrite`, `try_files` or `error_page` sends the request back to itself until nginx gives up (`\(line)`); it never reached the upstream.",
                           "Fix the location that handles \(path): the URI its `try_files`/`rewrite`/`error_page` falls back to must exist or be served by another location (`nginx -T` shows the configuration).", "nginx-redirect-cycle")
        }
        if message.contains("directory index of") && message.contains("is forbidden") {
            return verdict(.nginx, "nginx refused to list a directory (`\(line)`): there is no index file and `autoindex` is off.",
                           "Add an index file or route \(path) to the application.", "nginx-directory-index")
        }
        if message.contains("open()") && message.contains("(13: Permission denied)") {
            return verdict(.nginx, "nginx could not read the file it was to serve (`\(line)`): file permissions deny nginx's worker user.",
                           "Fix the ownership or mode of the file and its directories for nginx's worker user.", "nginx-permission")
        }
        if message.contains("open()") && message.contains("(2: No such file or directory)") && status == 404 {
            return verdict(.client, "nginx answered 404 itself: the file the request maps to does not exist (`\(line)`).",
                           "If \(path) should exist, check the location's `root`/`alias`; if not, the client asked for something that is not there.", "nginx-no-file")
        }
        if message.contains("client sent") || message.contains("client intended to send too large") {
            return verdict(.client, "nginx refused the request itself with \(status): `\(line)`.",
                           "Nothing to fix unless such requests are legitimate (then the matching size limit: `large_client_header_buffers`, `client_max_body_size`).", "nginx-client-sent")
        }
        return nil
    }

    /// The upstream an error-log line names (`upstream: "http://10.0.1.12:8000/p"` → `10.0.1.12:8000`).
    static func upstreamAddress(_ message: String) -> String? {
        guard let r = message.range(of: "upstream: \"") else { return nil }
        var rest = message[r.upperBound...]
        for scheme in ["http://", "https://", "uwsgi://", "fastcgi://", "grpc://"] where rest.hasPrefix(scheme) { rest = rest.dropFirst(scheme.count) }
        if rest.hasPrefix("unix:") {
            // `unix:/run/gunicorn.sock:/p`: the socket's path ends at the colon before the URI.
            let socket = rest.dropFirst(5).prefix { $0 != ":" && $0 != "\"" }
            return socket.isEmpty ? nil : "unix:" + socket
        }
        let address = rest.prefix { $0 != "/" && $0 != "\"" }
        return address.isEmpty || address.count > 200 ? nil : String(address)
    }

    /// auth_basic's refusals of credentials on the same path prefix around this request.
    func authRefusals(near nginx: StoredEvent, in c: RequestCase) -> [StoredEvent] {
        guard let path = nginx.event.path else { return [] }
        let folder = path.split(separator: "/").first.map { "/\($0)" } ?? "/"
        return c.nearby.filter { e in
            e.event.layer == .nginx && e.event.kind == .log && (e.event.path?.hasPrefix(folder) ?? false)
                && (e.messageText.contains("was not found in \"") || e.messageText.contains("password mismatch"))
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
