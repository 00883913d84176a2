/// The application itself answered with the error (its Response line), or raised an exception.
public struct AppRule: DiagnosisRule {
    public init() {}
    public let id = "app-own-status"
    public let title = "The application answered the error itself"
    public let doc = RuleDoc(
        fires: "The app logged a Response with the error status the client got (or a 500 with an exception/traceback), or its lines name the request in free text: the path (at a word boundary, near the proxy's moment, no other client named) with the status (`GET /p -> 403`, a JSON record's `status`) or with a warning; or a warning at that moment names a part of the path (`Product 1234 not found`, medium); or gunicorn's access line carries the app's status.",
        evidence: "The app's Request/Response lines; its exception or traceback; the proxies' records passing the same status on. An exception that is a dependency failing (the database refusing connections or out of them: `could not connect to server`, `connection to server at … failed`, `Too many connections`, an `OperationalError`; a Redis or memcached `ConnectionError`) names the dependency (`dependency` in JSON, `caused by app (its database)`) and how many other app errors around it fail the same way. A 4xx the app logged as a CSRF refusal (`Forbidden (CSRF token missing.)`, `The CSRF token has expired.`) is caused by the client.",
        example: "403 for GET /app/settings: the app's own `Response: 403`; the WAF allowed it. An app 403 is the app's even when a WAF is in front.")

    public func diagnose(_ c: RequestCase) -> Verdict? {
        guard var verdict = judge(c) else { return nil }
        if let status = c.clientStatus, (400..<500).contains(status) { Self.clientMistake(&verdict) }
        return verdict
    }

    /// Refusals an app logs for what the request lacked rather than for its policy: a missing or
    /// stale CSRF token (Django's `Forbidden (CSRF token missing.)`, Flask-WTF's `The CSRF token has
    /// expired.`). The client (a stale form, a script sending no token, a blocked cookie) caused it.
    static let clientMistakes = ["CSRF token missing", "CSRF token incorrect", "CSRF cookie not set", "CSRF token from POST",
                                 "The CSRF token is missing", "The CSRF token has expired", "The CSRF tokens do not match", "CSRF session token is missing",
                                 "Referer checking failed", "Origin checking failed"]

    static func clientMistake(_ v: inout Verdict) {
        guard v.responder == .app || v.responder == .gunicorn,
              let line = v.evidence.first(where: { e in e.event.layer == .app && clientMistakes.contains { e.text.contains($0) } }) else { return }
        v.cause = .client
        v.explanation = v.explanation.replacingOccurrences(of: " This 403 is the application's own decision, not a WAF block.", with: "")
            .replacingOccurrences(of: " This 403 is the application's own decision.", with: "")
        v.explanation += " The app refused it for what the request lacked, not for who sent it: `\(line.messageText.prefix(160))` (cross-site request forgery protection); the client's page or script sent no valid token."
        v.nextSteps = ["Check why this client's request carried no valid CSRF token: a page loaded before the session or token changed, a script that does not send the token, or a blocked or missing cookie (and the Referer/Origin on HTTPS)."]
    }

    func judge(_ c: RequestCase) -> Verdict? {
        let status = c.clientStatus
        let appResponse = c.access(.app)
        let gunicornAccess = c.access(.gunicorn)
        let exceptions = (c.logs(.app) + c.nearby.filter { $0.event.layer == .app || $0.event.layer == .gunicorn }).filter {
            let m = $0.messageText
            return m.contains("Traceback") || m.contains("Exception on") || m.contains("Error handling request") || ($0.event.level ?? "").uppercased() == "ERROR"
        }
        guard let status, status >= 400 else { return nil }
        if let app = appResponse, app.event.status == status {
            let request = c.logs(.app).first { $0.messageText.hasPrefix("Request") }
            var evidence = [app]
            if let request { evidence.insert(request, at: 0) }
            evidence += exceptions.prefix(2)
            let proxies = c.records.filter { $0.event.kind == .access && $0.event.layer < .app }
                .sorted { $0.event.layer < $1.event.layer }
            let passing = proxies.filter { $0.event.status == status }
            evidence += proxies
            let passedOn = passing.isEmpty ? "" : " The \(passing.map(\.event.layer.rawValue).joined(separator: ", ")) record\(passing.count > 1 ? "s" : "") passed the same status on unchanged."
            // The app's own warning about this very request (same chain) says why it refused.
            let warning = c.logs(.app).first { ($0.event.level ?? "").uppercased().hasPrefix("WARN") }
            if let warning { evidence.append(warning) }
            let exc = exceptions.first.map { e in
                (ExceptionText.summary(e.text) ?? ExceptionText.summary(e.messageText)).map { " The application raised `\($0)` (the traceback's last line: \(firstLine(e.messageText)))." }
                    ?? " The app logged: `\(firstLine(e.messageText))`."
            } ?? warning.map { " The app logged for this request: `\(firstLine($0.messageText))`." } ?? ""
            var verdict = Verdict(
                responder: .app, cause: StatusMeaning.cause(of: status, answeredBy: .app), confidence: .high,
                explanation: "The application answered \(status) itself (`\(firstLine(app.messageText))`).\(exc)\(passedOn)\(status == 403 ? " This 403 is the application's own decision, not a WAF block." : "")",
                evidence: evidence,
                nextSteps: status >= 500 ? ["Read the application's traceback for this request and fix the exception."] :
                    ["Check the application's authorisation/validation logic for \(app.event.path ?? "this path") and this user."],
                expectedAbsent: [.gunicorn: "expected: gunicorn's access log is off by default"], reasonKey: "app-\(status)")
            if status >= 500 { Self.nameDependency(&verdict, errors: Array(exceptions.prefix(2)), in: c) }
            return verdict
        }
        // Not linked, but the app answered this status for this path at this very moment: under a
        // flood of identical requests no line can be tied to one request, yet all candidates agree
        // on who answered.
        if appResponse == nil, let proxy = c.access(.nginx) ?? c.access(.gunicorn), proxy.event.status == status,
           let path = proxy.event.path, let done = proxy.event.time {
            let start = done - (proxy.event.duration ?? 0) - 2_000_000
            let candidates = c.nearby.filter {
                $0.event.layer == .app && $0.event.kind == .access && $0.event.status == status && $0.event.path == path
                    && ($0.event.time ?? 0) >= start && ($0.event.time ?? 0) <= done + 2_000_000
            }
            if let first = candidates.first {
                return Verdict(
                    responder: .app, cause: StatusMeaning.cause(of: status, answeredBy: .app), confidence: .medium,
                    explanation: "The application answered \(status) for \(path) at this moment (`\(firstLine(first.messageText))`), and \(proxy.event.layer.rawValue) passed it on. \(candidates.count > 1 ? "\(candidates.count) identical app responses fit this request, so none could be linked to it with certainty; all of them were the app's own \(status)." : "The app's line could not be linked to this request with certainty.")",
                    evidence: [proxy] + candidates.prefix(2),
                    nextSteps: ["Check the application's handling of \(path) for this client."],
                    expectedAbsent: [.gunicorn: "expected: gunicorn's access log is off by default"], reasonKey: "app-\(status)-unlinked")
            }
        }
        // The app's own lines name this request in free text (`GET /p -> 403`, a JSON record with
        // `path` and `status`, a warning naming the path): the app answered, the proxy passed it on.
        if appResponse == nil, let proxy = c.access(.nginx) ?? c.access(.gunicorn), proxy.event.status == status {
            let mentions = AppMentions(c, for: proxy, status: status)
            if mentions.answers.isEmpty && mentions.reasons.isEmpty, let said = mentions.related.first {
                // A warning or error of the app at that very moment about a part of this path.
                return Verdict(
                    responder: .app, cause: StatusMeaning.cause(of: status, answeredBy: .app), confidence: .medium,
                    explanation: "The application answered \(status) itself, most likely: it logged `\(firstLine(said.messageText))` at that moment, and \(proxy.event.layer.rawValue) passed the \(status) on. The line does not name the whole path, so the link is by time\(mentions.related.count > 1 ? " (\(mentions.related.count) such lines)" : "").",
                    evidence: [proxy] + mentions.related.prefix(2),
                    nextSteps: ["Check the application's handling of \(proxy.event.path ?? "this path") (the line above)."],
                    expectedAbsent: [.gunicorn: "expected: gunicorn's access log is off by default",
                                     .app: "expected: the app's line cited above was logged at this moment; it names no identifier to link it by"],
                    reasonKey: "app-\(status)-related")
            }
            if !mentions.answers.isEmpty || (!mentions.reasons.isEmpty && status < 500) {
                let said = mentions.answers.first ?? mentions.reasons[0]
                // The exception a traceback (or a JSON record's `exc_info`) ends with says more than its head line.
                let reason = mentions.reasons.first.flatMap { r in
                    r.id == said.id ? nil : " Its reason: `\(ExceptionText.summary(r.text) ?? ExceptionText.summary(r.messageText) ?? firstLine(r.messageText))`."
                } ?? ""
                let others = mentions.answers.count > 1 ? " \(mentions.answers.count) such lines fit this moment; all name the same status." : ""
                var verdict = Verdict(
                    responder: .app, cause: StatusMeaning.cause(of: status, answeredBy: .app), confidence: mentions.answers.isEmpty ? .medium : .high,
                    explanation: "The application answered \(status) itself: its log names this request\(mentions.answers.isEmpty ? "" : " and the status") at this moment (`\(firstLine(said.messageText))`), and \(proxy.event.layer.rawValue) passed it on.\(reason)\(others)\(status == 403 ? " This 403 is the application's own decision." : "")",
                    evidence: [proxy] + mentions.answers.prefix(2) + mentions.reasons.prefix(2),
                    nextSteps: ["Check the application's handling of \(proxy.event.path ?? "this path") for this client\(mentions.reasons.isEmpty ? "" : " (the reason it logged)")."],
                    expectedAbsent: [.gunicorn: "expected: gunicorn's access log is off by default",
                                     .app: "expected: the app's lines cited above name this request's path\(mentions.answers.isEmpty ? "" : " and status") at this moment; they carry no identifier to link them by"],
                    reasonKey: "app-\(status)-named")
                if status >= 500 { Self.nameDependency(&verdict, errors: Array(mentions.reasons.prefix(2) + mentions.answers.prefix(1)), in: c) }
                return verdict
            }
        }
        // Errors logged while this request was in flight (the proxy's record bounds it) speak for
        // it; one naming the path twenty seconds earlier was another request's.
        let path = c.outermost?.event.path ?? c.records.lazy.compactMap(\.event.path).first
        let inFlight: [StoredEvent] = (c.access(.nginx) ?? c.access(.gunicorn)).flatMap { p -> [StoredEvent]? in
            guard let done = p.event.time else { return nil }
            let start = done - max(0, p.event.duration ?? 0) - 2_000_000
            return exceptions.filter { ($0.event.time ?? .min) >= start && ($0.event.time ?? .max) <= done + 2_000_000 }
        } ?? []
        let timed = Self.exceptions(inFlight, about: path).flatMap { $0.namesPath ? $0 : nil }
        if status == 500, appResponse == nil, let chosen = timed ?? Self.exceptions(exceptions, about: path) {
            let (errors, namesPath) = chosen
            let responder: Layer = errors.contains { $0.event.layer == .gunicorn && $0.messageText.contains("Error handling request") } ? .gunicorn : .app
            let named = errors.lazy.compactMap { ExceptionText.summary($0.text) ?? ExceptionText.summary($0.messageText) }.first
            let what = named.map { "`\($0)`" } ?? "an exception"
            let explanation = namesPath
                ? "The application raised \(what) while handling the request (`\(firstLine(errors[0].messageText))`); \(responder == .gunicorn ? "gunicorn caught it and answered 500" : "the application answered 500")."
                : "The application logged \(what) at this moment (`\(firstLine(errors[0].messageText))`), but the record names no path, so it may belong to another request; no error of the app names this one. If the app's stamps were read in the wrong zone (`investigate sources` says how), its error for this request lies elsewhere in its log."
            var verdict = Verdict(
                responder: responder, cause: .app, confidence: timed != nil ? .high : namesPath ? .medium : .low,
                explanation: explanation,
                evidence: c.records.filter { $0.event.kind == .access } + errors.prefix(3),
                nextSteps: ["Read the traceback\(named.map { " (`\($0)`)" } ?? "") and fix the exception."],
                expectedAbsent: namesPath ? [.app: "expected: the app's error cited above names this request's path at this moment; no identifier links it to the request"] : [:],
                reasonKey: "app-exception")
            Self.nameDependency(&verdict, errors: Array(errors.prefix(3)), in: c)
            return verdict
        }
        if let g = gunicornAccess, g.event.status == status {
            // gunicorn writes what the application returned; only a malformed request (400) or an
            // exception it caught (500) is its own answer.
            let own = status == 400 || status == 500
            let appLogged = c.hasData(.app)
            return Verdict(responder: own ? .gunicorn : .app, cause: StatusMeaning.cause(of: status, answeredBy: .app), confidence: .medium,
                           explanation: own ? "gunicorn's access log shows \(status) for this request; gunicorn answers \(status) itself for \(status == 400 ? "a malformed request" : "an exception the application did not handle")."
                               : "gunicorn's access log shows the application answered \(status): gunicorn passes on what the application returns.\(appLogged ? " No line of the application's log names this request." : "")",
                           evidence: [g], nextSteps: [appLogged ? "Read the application's log around this moment for the reason (its lines may not name the path)." : "Ingest the application's own log for the reason."],
                           expectedAbsent: own ? [:] : [.app: appLogged ? "expected: the application answered (gunicorn's access line carries its status), and logs only what its code chooses to" : "expected: the application answered (gunicorn's access line carries its status)"],
                           reasonKey: "gunicorn-\(status)")
        }
        return nil
    }

    /// An error that is the app's dependency failing (its database refusing connections) names
    /// the dependency and how widely it failed: the route's code is not what to fix.
    static func nameDependency(_ v: inout Verdict, errors: [StoredEvent], in c: RequestCase) {
        guard let failure = errors.lazy.compactMap({ DependencyFailure.classify($0.text) }).first else { return }
        let spread = DependencyFailure.spread(of: failure, in: c, excluding: Set(v.evidence.map(\.id)))
        v.dependency = failure.dependency
        v.explanation += " The error is the application's \(failure.dependency) that \(failure.what), not a bug in this route"
            + (spread.count > 0 ? ": \(spread.count) other application error\(spread.count == 1 ? "" : "s") around this moment fail on the \(failure.dependency) the same way\(spread.paths.count > 1 ? ", on \(spread.paths.count) paths" : "")." : ".")
        v.nextSteps = ["Check the \(failure.dependency) for this time (its own logs, a restart or failover, its connection limit, the network to it): every request that needs it fails the same way until it is back."]
            + v.nextSteps.filter { !$0.contains("fix the exception") }
    }

    /// The application errors that can speak for a request on `path`: those naming it (a record's
    /// path, or `Exception on /path [POST]`); else those naming no path at all, flagged as such.
    /// An error about another path is another request's.
    static func exceptions(_ errors: [StoredEvent], about path: String?) -> (errors: [StoredEvent], namesPath: Bool)? {
        guard let path, !path.isEmpty else { return errors.isEmpty ? nil : (errors, false) }
        let bare = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        let naming = errors.filter { e in
            e.event.path.map { $0 == path || $0 == bare } ?? (bare.count > 1 && e.messageText.contains(bare))
        }
        if !naming.isEmpty { return (naming, true) }
        let unnamed = errors.filter { $0.event.path == nil && !$0.messageText.contains(" on /") }
        return unnamed.isEmpty ? nil : (unnamed, false)
    }

    func firstLine(_ s: String) -> String {
        String(s.split(separator: "\n", omittingEmptySubsequences: true).first ?? "").trimmingCharacters(in: .whitespaces)
    }
}
