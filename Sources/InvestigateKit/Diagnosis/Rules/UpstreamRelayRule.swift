/// nginx's own access record says its upstream sent the status (`$upstream_status`): nginx
/// relayed the answer, and the upstream made it, even when no record of it behind nginx exists.
public struct UpstreamRelayRule: DiagnosisRule {
    public init() {}
    public let id = "upstream-relay"
    public let title = "nginx relayed its upstream's status ($upstream_status)"
    public let doc = RuleDoc(
        fires: "nginx's access record logs `$upstream_status` equal to the status it sent (not 502/504, which nginx also writes there for its own upstream failures) and no record behind nginx answered it: the upstream made the status. With gunicorn's and the app's logs covering the moment and silent, gunicorn answered before the application: it refuses a request line or header over its limits (`limit_request_line` 4094, `limit_request_field_size` 8190 bytes by default) without an access line. Otherwise the application answered (gunicorn's own answers are 400 for what it cannot parse), and its silence is no gap (Flask logs no 404).",
        evidence: "nginx's access line with `$upstream_addr`, `$upstream_status` and, when logged, `$request_length`.",
        example: "400 with `$upstream_status 400`, `$request_length 10540`, and no gunicorn or app line: gunicorn refused an oversized header; the client (its token or cookies) caused it.")

    /// Whether nginx's record says its upstream answered with `status` (the last upstream tried,
    /// for `0.004, 0.010`-style lists). 502 and 504 are nginx's own codes for upstream failures.
    static func relayed(_ nginx: StoredEvent, status: Int) -> Bool {
        guard status != 502, status != 504, let logged = nginx.extra("upstream_status") else { return false }
        let last = logged.split(whereSeparator: { $0 == "," || $0 == ":" }).last.map { $0.trimmingCharacters(in: .whitespaces) }
        return last.flatMap { Int($0) } == status
    }

    public func diagnose(_ c: RequestCase) -> Verdict? {
        guard let nginx = c.access(.nginx), let status = nginx.event.status, status >= 400, Self.relayed(nginx, status: status) else { return nil }
        if c.records.contains(where: { $0.event.kind == .access && $0.event.layer > .nginx && $0.event.status == status }) { return nil }
        let upstream = nginx.extra("upstream_addr").map { " `\($0)`" } ?? ""
        let size = nginx.extra("request_length").flatMap { Int($0) }
        let silentBehind = c.hasData(.gunicorn) && c.covers(.gunicorn) && c.stack.gunicornRequestsLogged
            && (!c.hasData(.app) || c.covers(.app)) && !c.layersPresent.contains(.gunicorn) && !c.layersPresent.contains(.app)
        var text = "nginx relayed the \(status) its upstream\(upstream) sent (its access line logs `$upstream_status` \(status)); nginx did not make it."
        var cause: Layer? = StatusMeaning.clientFaults.contains(status) ? .client : nil
        var confidence: Confidence = .medium
        var next: [String] = []
        if silentBehind {
            text += " Neither gunicorn's access log nor the application's log, which cover this moment, has a record of it: gunicorn answered before the application saw it, as it does for a request line or header over its limits or a malformed request, which it logs only at debug level."
            if let size, size > 8190 {
                text += " The request was \(size) bytes (`$request_length`), more than gunicorn's default `limit_request_field_size` of 8190 bytes allows in one header: an oversized header (a token or cookies) is the likely reason."
                cause = .client
                confidence = .high
                next.append("Find which header of this client grew (Authorization, Cookie); raise gunicorn's `--limit-request-field_size` (and nginx's `large_client_header_buffers`) if such requests are legitimate, or shrink the header.")
            } else {
                next.append("Run gunicorn with `--log-level debug` for the message on the refused request (`Invalid request from ip=…`).")
            }
        } else {
            // gunicorn answers on its own only for requests it cannot parse (400) and exceptions
            // the application let through (500); any other status is the application's (a Flask
            // router's 404, which Flask does not log).
            let gunicornsOwn = status == 400
            text += gunicornsOwn
                ? " gunicorn itself answers 400 for a request it cannot parse; no line behind nginx names this one."
                : " Behind gunicorn, the application made it (gunicorn passes on what the application returns); an application logs only what its code chooses to (Flask logs no 404), so its silence here is no gap."
            if !c.hasData(.gunicorn) && !c.hasData(.app) { next.append("Ingest the upstream's logs (gunicorn's, the app's) for this time to see why.") }
            var v = Verdict(responder: gunicornsOwn ? .gunicorn : .app, cause: cause ?? (status >= 500 ? nil : .app), confidence: .medium,
                            explanation: text, evidence: [nginx], nextSteps: next.isEmpty ? ["Check the application's handling of \(nginx.event.path ?? "this path")."] : next,
                            expectedAbsent: gunicornsOwn ? [:] : [.app: "expected: the application answered (nginx's `$upstream_status` says the upstream sent it) and logged nothing for it"],
                            reasonKey: "upstream-relay-\(status)")
            v.reached = gunicornsOwn ? [.gunicorn] : []
            if !c.stack.gunicornRequestsLogged { v.expectedAbsent[.gunicorn] = "expected: gunicorn's access log is off by default" }
            return v
        }
        var v = Verdict(responder: .gunicorn, cause: cause, confidence: confidence, explanation: text, evidence: [nginx], nextSteps: next,
                        expectedAbsent: [.app: "expected: gunicorn answered before the application saw the request"],
                        reasonKey: "upstream-relay-\(status)")
        v.expectedAbsent[.gunicorn] = "expected: gunicorn writes no access line for a request it refuses while parsing it"
        return v
    }
}
