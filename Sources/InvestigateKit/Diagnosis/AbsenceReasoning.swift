import Foundation
import GRDB

/// Reasoning when no layer's logs hold an error matching the question.
///
/// A response produced by a layer never reaches the layers behind it, and the layers in front of
/// it pass it on. So the layer that answered is one whose own logs cannot show its answer (it has
/// none for this window, or only a kind of log that leaves such answers out) and in front of which
/// no layer logs the status of what it passes on. Which layers qualify follows from what each kind
/// of log records (`LogKindModel`), not from which layers have files: API Gateway's execution log
/// never shows its own 403 `Missing Authentication Token`; a WAF log shows ALLOW but not the status
/// the client finally got; nginx's `combined` log behind a load balancer cannot pick out a client.
/// An inference from absence is never more than medium confidence, and when no layer qualifies the
/// answer says there is nothing to explain instead of guessing.
struct AbsenceReasoner {
    let query: DiagnosisQuery
    let coverage: [Layer: LayerCoverage]
    let window: [Layer: WindowCoverage]
    let stack: StackFacts
    let sources: SourceIndex

    enum Result {
        /// A layer inferred to have answered (medium or low confidence).
        case inferred(Finding)
        /// No layer could have answered unseen: nothing to explain (exit 2).
        case nothing(headline: String, detail: [String])
    }

    /// What one layer's logs can show in this window, for this question.
    struct LayerView {
        var layer: Layer
        /// The layer's logs would hold a response it produced itself.
        var showsOwnAnswers: Bool
        /// The layer's logs would hold the status of a response produced behind it, passed on.
        var showsPassedAnswers: Bool
        /// Why it cannot show them (for the explanation), when it cannot.
        var blindSpot: String?
        var hasLogs: Bool
    }

    /// "No error" read from logs some of whose lines could not be read is weaker than it looks:
    /// the error may be on one of those lines. Counts the rejected lines of files whose records
    /// reach into the window (±5 minutes), and names the file with most and one of its reasons.
    /// Comment lines are left out: a CloudFront object's `#Version:`/`#Fields:` header is kept as
    /// a rejected line too, and is no record.
    func unreadLinesNote(_ db: Database) throws -> String? {
        let rows = try Row.fetchAll(db, sql: """
            SELECT CAST(s.path AS BLOB) AS path, count(*) AS n, CAST(min(r.reason) AS BLOB) AS reason FROM rejected r JOIN source s ON s.id = r.source_id
            WHERE s.first_time <= ? AND s.last_time >= ? AND r.reason NOT LIKE ? GROUP BY s.id ORDER BY n DESC, s.id
            """, arguments: [query.to + 300_000_000, query.from - 300_000_000, RecordSink.commentReasonPrefix + "%"])
        guard !rows.isEmpty else { return nil }
        let total = rows.reduce(0) { $0 + ($1["n"] as Int) }
        let first = rows[0]
        // Notes are escaped where they are shown (terminal, Markdown), like every other note.
        let example = "\(StoredEvent.text(first, "path") ?? "?"): \(StoredEvent.text(first, "reason").map { String($0.prefix(120)) } ?? "")"
        return "\(total) line\(total == 1 ? "" : "s") of the logs covering this window could not be read and \(total == 1 ? "is" : "are") not in the timeline (e.g. \(example)); "
            + "an error response may be among them: `investigate sources` counts them per file, and the `rejected_lines` view holds each with its reason and bytes."
    }

    func reason(_ db: Database) throws -> Result {
        let what = describeQuestion()
        let span = "\(display(query.from)) and \(display(query.to))"
        let withData = window.filter { $0.value.requests + $0.value.messages > 0 }.map(\.key).filter { !Layer.offPath.contains($0) }.sorted()
        guard !withData.isEmpty else {
            let detail = ["The logs cover: " + coverageSpans() + "."]
            return .nothing(headline: "No log holds any record between \(span): the logs given do not cover this window.", detail: detail)
        }

        let path = requestPath()
        var views: [Layer: LayerView] = [:]
        for layer in path { views[layer] = try view(of: layer, db) }

        // Candidates: layers that could have answered without a trace, with no layer in front of
        // them that logs the status of what it passes on.
        var candidates: [Layer] = []
        var visibleInFront: Layer?
        for layer in path {
            guard let v = views[layer] else { continue }
            if !v.showsOwnAnswers && exists(layer, path: path, views: views) { candidates.append(layer) }
            if v.showsPassedAnswers { visibleInFront = layer; break }
        }

        let seen = try matchingRecords(db)
        var evidence = seen.prefix(3).map { Diagnoser.evidenceLine($0, sources) }
        let countsText = withData.map { "\($0.rawValue) \(window[$0].map { $0.requests + $0.messages } ?? 0)" }.joined(separator: ", ")
        var text = "No layer whose logs were given recorded \(what) between \(span). The logs do cover this window (records in it: \(countsText))."
        if !seen.isEmpty {
            text += " Requests matching the filters were logged around it with other outcomes (shown as evidence): "
                + Set(seen.map(\.event.layer.rawValue)).sorted().joined(separator: ", ") + " saw them."
        }

        guard let primary = primaryResponder(candidates, views: views) else {
            let front = visibleInFront ?? withData.first!
            var detail = ["The outermost layer with logs that would show such a response (\(front.rawValue)) has none in this window, and no layer in front of it is known to exist: the request may not have reached this system, or the time, zone or filters of the question are off."]
            detail += blindSpots(views, path: path)
            if let unread = try unreadLinesNote(db) { detail.append(unread) }
            detail.append("The logs cover: " + coverageSpans() + ".")
            let noun = [query.status.map { "\($0) response" } ?? "4xx/5xx response", query.clientIP.map { "for \($0)" }, query.pathPrefix.map { "on \($0)…" }]
                .compactMap { $0 }.joined(separator: " ")
            return .nothing(headline: "No \(noun) between \(span) in the logs given.", detail: detail)
        }

        var next: [String] = []
        var absent: [Absence] = []
        let lo = TimeFormat.isoUTC(query.from - 300_000_000), hi = TimeFormat.isoUTC(query.to + 300_000_000)
        let responder: Layer
        var cause: Layer
        let lead: String
        var unbounded = false
        switch primary {
        case .upstream:
            responder = .upstream
            cause = .upstream
            lead = "Something in front of nginx answered\(statusCode.map { " \($0)" } ?? ""), most likely the load balancer or the web ACL (AWS WAF) attached to it; nginx and the layers behind it never saw the request."
            let peers = stack.privatePeers.prefix(4).joined(separator: ", ")
            text += " nginx's clients in this window are only \(stack.privatePeers.count) private address\(stack.privatePeers.count == 1 ? "" : "es") (\(peers))"
            var signs: [String] = []
            if stack.forwardsClient { signs.append("requests carry X-Forwarded-For") }
            if stack.sawHealthChecker { signs.append("`ELB-HealthChecker` probes them") }
            if stack.sawAmznTraceID { signs.append("requests carry X-Amzn-Trace-Id") }
            if let last = signs.last { text += ", " + (signs.count > 1 ? signs.dropLast().joined(separator: ", ") + " and " : "") + last }
            text += ": they are a load balancer's nodes\(stack.sawHealthChecker || stack.sawAmznTraceID ? " (an AWS Elastic Load Balancer)" : ""), not the site's clients, and no logs of the load balancer or of a web ACL (AWS WAF) attached to it were given."
            for l in [Layer.nginx, .app] where views[l].map({ !$0.showsOwnAnswers && $0.hasLogs }) ?? false {
                if let why = views[l]?.blindSpot { text += " Caveat: \(why)." }
            }
            text += " A response produced in front of nginx (a WAF block, a load-balancer error) never reaches nginx, gunicorn or the app, so their silence is itself the evidence: something in front of nginx answered, most likely the load balancer or the web ACL attached to it\(isStatus(403) ? " (a 403 is what a WAF block returns)" : "")."
            evidence += try peerSamples(db).map { Diagnoser.evidenceLine($0, sources) }
            next += [
                "Fetch the AWS WAF logs for \(lo) to \(hi) (S3 `AWSLogs/<account-id>/WAFLogs/<region>/<web-acl-name>/YYYY/MM/dd/HH/mm/`, or the `aws-waf-logs-…` CloudWatch log group, or a Firehose bucket) and ingest them: a BLOCK names the rule.",
                "Fetch the ALB access logs for the same span (S3 `<bucket>/<prefix>/AWSLogs/<account-id>/elasticloadbalancing/<region>/YYYY/MM/DD/<account-id>_elasticloadbalancing_<region>_app.<lb-name>.<lb-id>_YYYYMMDDTHHMMZ_<ip>_<random>.log.gz`): `elb_status_code` with `target_status_code` `-` and `actions_executed` ending in `waf` is a WAF rejection; 460, 502, 503, 504 with target `-` are the load balancer's own answers.",
                "If a CDN (CloudFront) is in front, fetch its standard logs too.",
            ]
            if stack.forwardsClient == false {
                next.append("Log the client's address at nginx (`$http_x_forwarded_for` in `log_format`, or `real_ip_header X-Forwarded-For` with `set_real_ip_from` the load balancer's subnet) so the next question can be answered from nginx alone.")
            }
            absent.append(Absence(layer: "upstream", why: "not provided: the load balancer (and any web ACL on it) in front of nginx has no logs here; the answer is most likely there", expected: false))
        case .apigateway:
            responder = .apigateway
            cause = inferredAPIGatewayCause()
            lead = "API Gateway most likely answered\(statusCode.map { " \($0)" } ?? "") itself, before any integration: its execution log and the function's log cannot show such responses."
            let types = LogKindModel.gatewayResponses(for: query.status)
            text += " API Gateway's logs here are execution logs only\(views[.lambda]?.hasLogs ?? false ? ", with the Lambda function's logs" : ""): an execution log records only requests that entered method execution. API Gateway answers some requests itself before any integration and writes no execution log for them, and the function is never invoked, so an empty execution log covering this window says nothing about those responses."
            if !types.isEmpty { text += " Gateway responses that fit\(query.status.map { " \($0)" } ?? ""): " + types.joined(separator: "; ") + "." }
            if isStatus(403) { text += " The commonest by far is 403 `Missing Authentication Token` for a path or method the API does not have (scanners probing `.php` paths and the like)." }
            next += [
                "Fetch the stage's access log for \(lo) to \(hi) (its CloudWatch log group): it has a line for every response, including API Gateway's own.",
                "If access logging is off, enable it (stage → Logs and tracing → Custom access logging, or `aws apigateway update-stage --rest-api-id <id> --stage-name <stage> --patch-operations op=replace,path=/accessLogSettings/destinationArn,value=<log-group-arn> op=replace,path=/accessLogSettings/format,value='<format>'`) with a format that includes `$context.requestId`, `$context.identity.sourceIp`, `$context.httpMethod`, `$context.path`, `$context.status`, `$context.error.message`, `$context.error.responseType` and `$context.integrationStatus`.",
                "Check the API's 4XXError/5XXError CloudWatch metrics for the same minutes: they count these responses even when no log has them.",
            ]
            absent.append(Absence(layer: "apigateway", why: "not provided: no API Gateway access log was given; its execution log never records API Gateway's own responses", expected: false))
            if views[.lambda]?.hasLogs ?? false {
                absent.append(Absence(layer: "lambda", why: "expected: API Gateway's own responses never invoke the function", expected: true))
            }
        default:
            responder = primary
            cause = StatusMeaning.inferredCause(status: statusCode, answeredBy: primary)
            let name = primary == .alb ? "ALB" : primary.rawValue
            let deeper = candidates.filter { $0 > primary }
            if visibleInFront == nil, !deeper.isEmpty {
                // No logged layer behind bounds it: the answer came from this layer or one behind it.
                unbounded = true
                let loggedInFront = path.contains { $0 < primary && (views[$0].map { $0.hasLogs && $0.blindSpot == nil } ?? false) }
                lead = "The \(name) or a layer behind it (\(deeper.map(\.rawValue).joined(separator: ", "))) answered\(statusCode.map { " \($0)" } ?? ""): "
                    + (loggedInFront ? "the layers in front logged the traffic without such a response, and none of the layers behind them has logs here to say which."
                                     : "no layer in front logs every request here (error logs record failures, not the traffic), and none of the layers behind has logs to say which.")
            } else {
                lead = "The \(name) most likely answered\(statusCode.map { " \($0)" } ?? "") itself: it is the only layer between those that logged the traffic, and none of its logs were given."
            }
            // Only a layer that logs every request shows traffic passing: an error log alone does not.
            let front = path.filter { $0 < primary && (views[$0].map { $0.hasLogs && $0.blindSpot == nil } ?? false) }
            let behind = path.filter { $0 > primary && (views[$0]?.hasLogs ?? false) }
            if !front.isEmpty {
                text += " \(front.map(\.rawValue).joined(separator: ", ")) logged the traffic of this window without such a response (\(front.contains(.waf) ? "a WAF log shows its own decision, ALLOW here, not the status the client got" : "passing it on"))."
            }
            if !behind.isEmpty {
                text += " \(behind.map(\.rawValue).joined(separator: ", ")) would have logged it had the response come from there or passed through, and logged none."
            }
            if !unbounded {
                text += " The only layer in between is \(primary.rawValue), and no logs of it were given: \(primary.rawValue) most likely answered\(statusCode.map { " \($0)" } ?? "") itself\(albHint())."
            } else {
                text += " The first of them, \(primary.rawValue), is named\(albHint()); the logs of the layers behind the WAF would tell."
                next.append("Fetch the logs of the layers behind it (nginx's access and error logs, the app's) for \(lo) to \(hi).")
            }
            next.append("Fetch the \(primary.rawValue) logs for \(lo) to \(hi)\(primary == .alb ? " (S3 `<bucket>/<prefix>/AWSLogs/<account-id>/elasticloadbalancing/<region>/YYYY/MM/DD/`): `elb_status_code` with `target_status_code` `-` and `error_reason` name its answer" : "") and ingest them to confirm.")
            absent.append(Absence(layer: primary.rawValue, why: "not provided: \(views[primary]?.blindSpot ?? "no \(primary.rawValue) logs were given"); the answer is most likely there", expected: false))
        }

        // Every other layer of the path, and why it has no record.
        for layer in path where !absent.contains(where: { $0.layer == layer.rawValue }) {
            guard let v = views[layer] else { continue }
            if !v.hasLogs {
                if layer < (withData.first ?? .app) && primary != .upstream { continue }
                if responder == .upstream && (layer == .waf || layer == .alb) { continue }
                absent.append(Absence(layer: layer.rawValue, why: "not provided: \(v.blindSpot ?? "no \(layer.rawValue) logs were given")", expected: false))
            } else if responder != .upstream && layer < responder {
                absent.append(Absence(layer: layer.rawValue, why: "no error recorded: \(layer.rawValue) passed the request on (its logs cover this window)", expected: true))
            } else {
                absent.append(Absence(layer: layer.rawValue, why: "expected: \(responder.rawValue == "upstream" ? "something in front of nginx" : responder.rawValue) answered before the request reached \(layer.rawValue)", expected: true))
            }
        }
        let candidatesText = candidates.filter { $0 != primary && !(primary == .upstream && ($0 == .waf || $0 == .alb)) }
        if !candidatesText.isEmpty {
            text += " Less likely, since their logs cannot rule it out: \(candidatesText.map(\.rawValue).joined(separator: ", "))."
        }
        if cause == responder && responder == .upstream { cause = .upstream }
        let finding = Finding(status: statusCode, time: TimeFormat.isoUTCMillis(query.at), client_ip: query.clientIP, method: nil, path: query.pathPrefix,
                              responder: responder.rawValue, cause: cause.rawValue, confidence: unbounded ? .low : .medium, explanation: lead + " " + text,
                              evidence: evidence, absent: absent, next_steps: next, rule: "absence", count: 0,
                              first: nil, last: nil, paths: [], micros: query.at, reason: "absence-\(responder.rawValue)")
        return .inferred(finding)
    }

    // MARK: - The path and what each layer's logs show

    /// The layers a request of this system crosses, outermost first.
    func requestPath() -> [Layer] {
        let has: (Layer) -> Bool = { (coverage[$0]?.events ?? 0) > 0 }
        let api = has(.apigateway) || has(.lambda)
        let edge = has(.alb) || has(.nginx) || has(.gunicorn) || has(.app)
        let cdn: [Layer] = has(.cloudfront) ? [.cloudfront] : []
        if api && !edge { return cdn + [.waf, .apigateway, .lambda] }
        return cdn + [.waf, .alb, .nginx, .gunicorn, .app]
    }

    func view(of layer: Layer, _ db: Database) throws -> LayerView {
        let w = window[layer] ?? WindowCoverage()
        var v = LayerView(layer: layer, showsOwnAnswers: false, showsPassedAnswers: false, blindSpot: nil, hasLogs: w.requests + w.messages > 0)
        if layer == .alb, w.requests == 0, w.messages > 0 {
            // Connection logs only: TLS handshakes, never a request or a response. The ALB's
            // answers are as unseen as with no logs at all.
            v.hasLogs = false
            v.blindSpot = "the ALB's logs here are connection logs only, which record TLS connections, not requests or responses"
        }
        guard v.hasLogs else { return v }
        switch layer {
        case .waf:
            // A WAF record is the WAF's own decision; it never shows the status a layer behind it sent.
            v.showsOwnAnswers = w.seesEveryRequest
        case .apigateway where !w.seesEveryRequest:
            // Execution log only: the integration's answers show, API Gateway's own do not.
            v.showsPassedAnswers = true
            v.blindSpot = "API Gateway's execution log never records API Gateway's own responses"
        case .lambda:
            // Every invocation is logged, but not the status the function returned.
            v.showsOwnAnswers = false
            v.blindSpot = "Lambda's log records invocations, not the HTTP status the function returned"
        case .gunicorn:
            v.showsOwnAnswers = w.seesEveryRequest
            v.showsPassedAnswers = w.seesEveryRequest
        default:
            guard w.seesEveryRequest else {
                v.blindSpot = "\(layer.rawValue)'s logs here hold messages only (no record of every request)"
                return v
            }
            v.showsOwnAnswers = true
            v.showsPassedAnswers = true
        }
        // A client filter needs records that name the client. Without them, the layer can still
        // show that it sent no response of the asked status (or path) to anyone in the window.
        if query.clientIP != nil, !w.identifiesClients, v.showsOwnAnswers || v.showsPassedAnswers {
            let sameStatusToAnyone = try countMatching(layer, ignoringClient: true, db)
            if sameStatusToAnyone > 0 {
                v.showsOwnAnswers = false
                v.showsPassedAnswers = false
                let peers = layer == .nginx && !stack.privatePeers.isEmpty ? " (its peers are the load balancer's \(stack.privatePeers.prefix(3).joined(separator: ", ")))" : ""
                v.blindSpot = "\(layer.rawValue)'s log does not record the client's address\(peers), so it cannot show whether \(query.clientIP!)'s requests reached it; it logged \(sameStatusToAnyone) response\(sameStatusToAnyone == 1 ? "" : "s")\(query.status.map { " with status \($0)" } ?? " with an error status") to clients it cannot name in this window (`investigate timeline --layer \(layer.rawValue)\(query.status.map { " --status \($0)" } ?? "")`)"
            }
        }
        return v
    }

    /// Whether a layer without logs is known to be on the path at all.
    func exists(_ layer: Layer, path: [Layer], views: [Layer: LayerView]) -> Bool {
        if views[layer]?.hasLogs ?? false { return true }
        let logged = path.filter { views[$0]?.hasLogs ?? false }
        guard let outermost = logged.first else { return false }
        if layer > outermost { return true }                       // behind a logged layer: it forwards somewhere
        if logged.contains(where: { $0 < layer }) { return true }  // between two logged layers
        // In front of every logged layer: only when the data shows something there.
        if outermost >= .nginx && (layer == .waf || layer == .alb) { return stack.somethingInFrontOfNginx }
        return false
    }

    /// The layer named as responder among the candidates (nil: none).
    func primaryResponder(_ candidates: [Layer], views: [Layer: LayerView]) -> Layer? {
        let unlogged = candidates.filter { !(views[$0]?.hasLogs ?? false) }
        let logged = candidates.filter { views[$0]?.hasLogs ?? false }
        let front = unlogged.filter { $0 < .nginx }
        if front.count > 1 || (front.count == 1 && front[0] != .alb && front[0] != .waf) { return .upstream }
        if let only = front.first {
            // One unlogged layer in front of nginx. With no logged layer in front of it, it is the
            // load balancer or its web ACL, which the data cannot tell apart.
            if views.filter({ $0.key < only && $0.value.hasLogs }).isEmpty { return .upstream }
            return only
        }
        if let apigw = logged.first(where: { $0 == .apigateway }) ?? unlogged.first(where: { $0 == .apigateway }) { return apigw }
        if let inner = unlogged.first { return inner }
        return nil
    }

    // MARK: - Queries

    /// Access records matching the client and path filters (any status) in the window.
    func matchingRecords(_ db: Database) throws -> [StoredEvent] {
        guard query.clientIP != nil || query.pathPrefix != nil else { return [] }
        var conditions = ["time >= ?", "time <= ?", "kind = 'access'", "copy_of IS NULL"]
        var args: [DatabaseValueConvertible] = [query.from, query.to]
        if let ip = query.clientIP { conditions.append("client_ip = ?"); args.append(ip) }
        if let p = query.pathPrefix { conditions.append("substr(path, 1, ?) = ?"); args += [p.utf8.count, p] }
        return try StoredEvent.fetchAll(db, sql: "SELECT \(StoredEvent.columns) FROM event WHERE \(conditions.joined(separator: " AND ")) ORDER BY abs(time - ?) LIMIT 3",
                                        arguments: StatementArguments(args + [query.at]))
    }

    /// A layer's error records in the window matching the status and path filters, any client.
    func countMatching(_ layer: Layer, ignoringClient: Bool, _ db: Database) throws -> Int {
        var conditions = ["time >= ?", "time <= ?", "kind = 'access'", "copy_of IS NULL", "layer = ?", "status >= 400"]
        var args: [DatabaseValueConvertible] = [query.from, query.to, layer.rawValue]
        if let s = query.status { conditions.append(s.sql("status")) }
        if let p = query.pathPrefix { conditions.append("substr(path, 1, ?) = ?"); args += [p.utf8.count, p] }
        return try Int.fetchOne(db, sql: "SELECT count(*) FROM event WHERE \(conditions.joined(separator: " AND "))", arguments: StatementArguments(args)) ?? 0
    }

    func peerSamples(_ db: Database) throws -> [StoredEvent] {
        try StoredEvent.fetchAll(db, sql: """
            SELECT \(StoredEvent.columns) FROM event WHERE layer = 'nginx' AND kind = 'access' AND time >= ? AND time <= ? AND copy_of IS NULL AND peer_ip IS NOT NULL
            ORDER BY abs(time - ?) LIMIT 2
            """, arguments: [query.from, query.to, query.at])
    }

    func coverageSpans() -> String {
        coverage.values.filter { $0.events > 0 }.sorted { (Layer(rawValue: $0.layer) ?? .system) < (Layer(rawValue: $1.layer) ?? .system) }
            .map { "\($0.layer) \($0.firstMicros.map(display) ?? "?") to \($0.lastMicros.map(display) ?? "?")" }.joined(separator: "; ")
    }

    func blindSpots(_ views: [Layer: LayerView], path: [Layer]) -> [String] {
        path.compactMap { views[$0]?.blindSpot }.map { "Caveat: \($0)." }
    }

    // MARK: - Wording

    var statusCode: Int? { if case .code(let c)? = query.status { return c } else { return nil } }

    func isStatus(_ code: Int) -> Bool { query.status?.matches(code) ?? false }

    func describeQuestion() -> String {
        [query.status.map { "a \($0) response" } ?? "an error response", query.clientIP.map { "for \($0)" }, query.pathPrefix.map { "on \($0)…" }]
            .compactMap { $0 }.joined(separator: " ")
    }

    func inferredAPIGatewayCause() -> Layer {
        guard let s = query.status else { return .client }
        if s.matches(403) || s.matches(429) || s.matches(413) || s.matches(431) || s.matches(401) || s.matches(400) || s.matches(404) { return .client }
        return .apigateway
    }

    func albHint() -> String {
        guard let s = statusCode else { return "" }
        let meaning: [Int: String] = [503: "a 503 from an ALB means its target group had no healthy or registered target",
                                      502: "an ALB sends 502 when its target closes or resets the connection",
                                      504: "an ALB sends 504 when its target does not answer before the idle timeout",
                                      460: "460: the client closed the connection first", 500: "an ALB sends 500 on a WAF or authentication failure",
                                      403: "an ALB 403 comes from its web ACL or a fixed-response listener rule"]
        return meaning[s].map { " (\($0))" } ?? ""
    }

    func display(_ micros: Int64) -> String { TimeFormat.display(micros, zone: query.zone, millis: false) }
}

extension StatusMeaning {
    /// The cause of a status a layer answered unseen: the client's own request for client errors and
    /// configured limits (see `clientFaults`), the layer's target for gateway errors, else the layer.
    static func inferredCause(status: Int?, answeredBy layer: Layer) -> Layer {
        guard let status else { return layer }
        if clientFaults.contains(status) { return .client }
        if layer == .alb && (status == 502 || status == 504) { return .nginx }
        return layer
    }
}
