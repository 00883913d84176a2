/// API Gateway answers many errors itself (gateway responses) and leaves some of them out of its
/// execution log; for integration errors the cause is the Lambda function behind it.
public struct ApiGatewayRule: DiagnosisRule {
    public init() {}
    public let id = "apigateway-response"
    public let title = "API Gateway answered on its own, or reported its integration's failure"
    public let doc = RuleDoc(
        fires: "The request's API Gateway access record has an error status (or, when only execution logs were given, its execution record ends `Method completed with status:` 4xx/5xx).",
        evidence: "The access record (`$context.error.message`, `integrationStatus`), execution-log lines (`Malformed Lambda proxy response`, `customer function error`, `Execution failed due to a timeout error`), the function's lines for the same invocation (the exception it raised, `Task timed out after N seconds`, the REPORT duration; the runtime killed for memory, `Runtime exited with error: signal: killed` or Max Memory Used at Memory Size, with its last line before); Lambda's throttling (integration status 429, `Rate Exceeded.`: the function never started); a usage plan's quota used up (`QUOTA_EXCEEDED`, `Limit Exceeded`) told from a rate limit (`THROTTLED`, `Too Many Requests`); a request validator's 400 (`Request body does not match model schema`, `Missing required request parameters`: cause client); an HTTP API authorizer's reason in the access log (`authorizerError`: an expired or invalid token is the client's); for a Lambda authorizer's 401/403, the authorizer's own invocation, started between `Starting authorizer` and the answer, and the reason it logged (an expired token: cause client).",
        example: "403 `Missing Authentication Token` for GET /aa.php: no such resource in the REST API; API Gateway answered without invoking Lambda and wrote no execution log for it.")

    public func diagnose(_ c: RequestCase) -> Verdict? {
        // The access record, else the execution-log record ("Method completed with status: 502")
        // when only execution logs were given.
        guard let gw = c.access(.apigateway) ?? c.logs(.apigateway).first(where: { $0.event.status != nil }),
              let status = gw.event.status, status >= 400 else { return nil }
        let message = gw.event.error ?? gw.extra("error_message") ?? c.logs(.apigateway).compactMap(\.event.error).first
        let responseType = gw.extra("error_response_type") ?? gw.extra("responseType")
        let lambdaRecords = lambdaRecordsOf(c, around: gw)
        let execution = c.logs(.apigateway)
        let window = c.time.map { "\(TimeFormat.isoUTC($0 - 300_000_000)) to \(TimeFormat.isoUTC($0 + 300_000_000))" } ?? "the window"
        let lower = (message ?? "").lowercased()
        let evidence = [gw] + execution.prefix(4) + lambdaRecords.prefix(4)

        if lower.contains("missing authentication token") || responseType == "MISSING_AUTHENTICATION_TOKEN" {
            return Verdict(
                responder: .apigateway, cause: .client, confidence: .high,
                explanation: "API Gateway answered \(status) `Missing Authentication Token` itself: the REST API has no resource or method for \(gw.event.method ?? "") \(gw.event.path ?? "this path") (or the request was unsigned for an IAM-authorised method). It is typical of scanners probing paths that do not exist. Lambda was not invoked, and API Gateway writes no execution log for this response.",
                evidence: evidence,
                nextSteps: [
                    "If the path should exist, check the API's resources and the deployed stage; otherwise it is noise from a scanner: consider a WAF rule (rate limit or a regex set on script paths such as .php) on the API stage.",
                    "Keep `$context.error.message` and `$context.error.responseType` in the access-log format: the execution log never shows these responses.",
                ],
                expectedAbsent: [.lambda: "expected: API Gateway answered before any integration; Lambda was not invoked",
                                 .app: "expected: no backend was called"],
                reasonKey: "apigw-missing-token")
        }
        if status == 429, responseType == "QUOTA_EXCEEDED" || (responseType == nil && message == "Limit Exceeded") {
            // The usage plan's quota, not its rate: `Limit Exceeded` is the QUOTA_EXCEEDED gateway
            // response's message, `Too Many Requests` the THROTTLED one's.
            let key = gw.extra("apiKeyId") ?? gw.extra("api_key_id")
            return Verdict(
                responder: .apigateway, cause: .client, confidence: .high,
                explanation: "API Gateway refused the request with 429 `\(message ?? "Limit Exceeded")` because the usage plan's quota\(key.map { " for API key `\($0)`" } ?? "") is used up (`QUOTA_EXCEEDED`\(responseType == nil ? ", by its message" : "")): not a burst or a rate, but the requests allowed per day, week or month. Every request with this key is refused the same way until the quota period resets, however slowly it is sent.",
                evidence: evidence,
                nextSteps: ["Check the usage plan's quota and what used it up (this key's requests since the period began); raise the quota or move the key to another plan if the use is legitimate."],
                expectedAbsent: [.lambda: "expected: requests over quota never reach the integration"], reasonKey: "apigw-quota")
        }
        if status == 429 {
            return Verdict(
                responder: .apigateway, cause: .client, confidence: .high,
                explanation: "API Gateway throttled the request (\(status)\(message.map { " `\($0)`" } ?? "")): the client exceeded the stage, method or usage-plan rate or burst limit. Excessive 429s may be missing from the logs entirely.",
                evidence: evidence,
                nextSteps: ["Check the stage/method throttling settings and usage plans; look for the client's request rate around \(window) (`investigate replay --detect rate`)."],
                expectedAbsent: [.lambda: "expected: throttled requests never reach the integration"], reasonKey: "apigw-throttled")
        }
        if status == 413 || status == 431 {
            return Verdict(
                responder: .apigateway, cause: .client, confidence: .high,
                explanation: "API Gateway refused the request with \(status) (\(status == 413 ? "request body too large" : "request header fields too large")); such errors may not be logged at all.",
                evidence: evidence, nextSteps: ["Check the client's request size."],
                expectedAbsent: [.lambda: "expected: refused before the integration"], reasonKey: "apigw-\(status)")
        }
        if responseType == "WAF_FILTERED" || lower.contains("waf") || gw.extra("waf_response_code") == "WAF_BLOCK" {
            return Verdict(
                responder: .waf, cause: .waf, confidence: c.hasData(.waf) ? .medium : .high,
                explanation: "API Gateway reports the request was filtered by AWS WAF (WAF_FILTERED): the web ACL on the stage blocked it.",
                evidence: evidence,
                nextSteps: ["Ingest the WAF logs for \(window) to name the rule."],
                expectedAbsent: [.lambda: "expected: blocked before the integration"], reasonKey: "apigw-waf")
        }
        if status == 401 || (status == 403 && (lower.contains("not authorized") || lower.contains("unauthorized") || lower.contains("forbidden") || lower.contains("explicit deny"))) {
            // A Lambda authorizer's own invocation says why it refused (an expired token, a wrong
            // audience): the client's credentials, not API Gateway, are then the cause.
            let authorizer = authorizerInvocation(c, execution: execution)
            let said = authorizer.first { e in
                let level = (e.event.level ?? "").uppercased()
                return (level.hasPrefix("WARN") || level.hasPrefix("INFO") || level.hasPrefix("ERR")) && !e.messageText.hasPrefix("START")
                    && !e.messageText.hasPrefix("END") && !e.messageText.hasPrefix("REPORT") && ExceptionText.summary(e.messageText).map { !$0.contains("Unauthorized") } ?? true
            }
            if !authorizer.isEmpty {
                return Verdict(
                    responder: .apigateway, cause: .client, confidence: .high,
                    explanation: "API Gateway answered \(status)\(message.map { " `\($0)`" } ?? ""): its Lambda authorizer refused the request's credentials\(said.map { ", saying `\(firstLine($0.messageText))`" } ?? ""). The backend integration was not called.",
                    evidence: [gw] + execution.filter { $0.text.contains("authorizer") || $0.text.contains("Unauthorized") || $0.text.contains("Authorizer") }.prefix(3)
                        + authorizer.filter { !$0.messageText.hasPrefix("START") && !$0.messageText.hasPrefix("END") }.prefix(4),
                    nextSteps: ["Check the client's token (expiry, issuer, audience) against what the authorizer expects; if many clients fail at once, the authorizer's keys or configuration changed."],
                    expectedAbsent: [.lambda: "expected: the integration runs only after authorization (the authorizer's own invocation is cited above)"], reasonKey: "apigw-authorizer")
            }
            // `$context.authorizer.error` (an HTTP API's JWT authorizer says why it refused the token).
            if let said = gw.extra("authorizerError") ?? gw.extra("authorizer_error") ?? gw.extra("authorizer.error"), said != "-", !said.isEmpty {
                let lower = said.lowercased()
                let clients = ["expired", "invalid", "malformed", "missing", "not valid", "signature", "audience", "issuer", "no token", "not yet valid"]
                let byClient = clients.contains { lower.contains($0) }
                return Verdict(
                    responder: .apigateway, cause: byClient ? .client : .apigateway, confidence: .high,
                    explanation: "API Gateway's authorizer refused the request with \(status): `\(said)` (its access log's authorizer error). \(byClient ? "The client's token was at fault, not the API." : "")The integration was not called.",
                    evidence: evidence,
                    nextSteps: [byClient ? "Have the client obtain a fresh token (check its expiry, issuer and audience against the authorizer's configuration)."
                                         : "Check the authorizer's configuration (issuer, audience, JWKS endpoint) for this route."],
                    expectedAbsent: [.lambda: "expected: the integration runs only after authorization"], reasonKey: "apigw-authorizer-error")
            }
            return Verdict(
                responder: .apigateway, cause: .apigateway, confidence: .medium,
                explanation: "API Gateway's authorizer or resource policy refused the request (\(status)\(message.map { " `\($0)`" } ?? "")).",
                evidence: evidence,
                nextSteps: ["Check the method's authorizer (its logs and cache), the API key, or the resource policy."],
                expectedAbsent: [.lambda: "expected: the integration runs only after authorization"], reasonKey: "apigw-auth")
        }
        // The method's request validator refused the request (BAD_REQUEST_BODY/_PARAMETERS): the
        // execution log says what did not match, before any integration ran.
        let validation = execution.filter { e in Self.validatorPhrases.contains { e.text.contains($0) } }
        if status == 400, !validation.isEmpty || responseType == "BAD_REQUEST_BODY" || responseType == "BAD_REQUEST_PARAMETERS" {
            let said = validation.first.map { e -> String in
                let text = e.messageText
                // From the validator's words on: the execution line's stamp and request id are noise here.
                let start = Self.validatorPhrases.compactMap { text.range(of: $0)?.lowerBound }.min() ?? text.startIndex
                let line = text[start...].split(separator: "\n").first.map(String.init) ?? ""
                return ": `\(line.prefix(300))`"
            } ?? " (`\(responseType ?? "BAD_REQUEST")`)"
            return Verdict(
                responder: .apigateway, cause: .client, confidence: .high,
                explanation: "API Gateway's request validator refused the request with 400 before calling the integration\(said). The client sent a body or parameters the method's model does not accept.",
                evidence: [gw] + (validation.isEmpty ? execution.prefix(2) : validation.prefix(2)) + execution.filter { $0.text.contains("Method completed with status") }.prefix(1),
                nextSteps: ["Compare the client's request with the method's request model and required parameters (the validator's message above names the mismatch)."],
                expectedAbsent: [.lambda: "expected: the validator refused the request before the integration, so the function was not invoked"], reasonKey: "apigw-validation")
        }
        // A Lambda proxy integration that ran and returned this status: the function answered.
        let proxied = execution.first { $0.text.contains("\"statusCode\":\(status)") || $0.text.contains("statusCode\": \(status)") }
        let lambdaRan = lambdaRecords.contains { $0.text.hasPrefix("START") || $0.text.contains("REPORT RequestId") } || proxied != nil
        if status < 500, lambdaRan, status != 429, gw.event.error == nil || proxied != nil {
            let said = lambdaRecords.first { $0.event.kind == .log && ($0.event.message ?? "").contains("\(status)") }
            return Verdict(
                responder: .lambda, cause: StatusMeaning.cause(of: status, answeredBy: .lambda), confidence: .high,
                explanation: "The Lambda function behind API Gateway answered \(status) itself (a proxy integration: API Gateway passed the function's status on)\(said.map { ": `\($0.messageText)`" } ?? "").",
                evidence: [gw] + (proxied.map { [$0] } ?? []) + lambdaRecords.prefix(4),
                nextSteps: ["Check the function's handling of \(gw.event.method ?? "") \(gw.event.path ?? "this path") and the request it got."],
                expectedAbsent: [:], reasonKey: "lambda-\(status)")
        }
        if status >= 500 {
            return integrationFailure(c, gw: gw, status: status, execution: execution, lambda: lambdaRecords, window: window)
        }
        return nil
    }

    /// The function's runtime killed for memory: `Runtime exited with error: signal: killed` (or
    /// `Runtime.OutOfMemory`) in its log or in what API Gateway says the integration returned, or
    /// a REPORT whose Max Memory Used reached its Memory Size.
    static func outOfMemory(_ lambda: [StoredEvent], report: StoredEvent?, said: String) -> (record: StoredEvent?, said: String)? {
        let phrases = ["Runtime exited with error: signal: killed", "Runtime.OutOfMemory", "Runtime exited with error: signal: 9"]
        if let line = lambda.first(where: { e in phrases.contains { e.text.contains($0) } }) {
            return (line, phrases.first { line.text.contains($0) } ?? "signal: killed")
        }
        if let phrase = phrases.first(where: { said.contains($0) }) { return (nil, phrase) }
        if let r = report, let used = r.extra("max_memory_used_mb").flatMap(Int.init), let size = r.extra("memory_size_mb").flatMap(Int.init),
           size > 0, used >= size {
            return (r, "Max Memory Used \(used) MB of \(size) MB")
        }
        return nil
    }

    /// What API Gateway's execution log says when a request validator refuses a request.
    static let validatorPhrases = ["Request body does not match model schema", "Request validation failed", "Missing required request parameters",
                                   "Invalid request body"]

    /// A 5xx from API Gateway: the integration (the Lambda function) failed, timed out, or returned
    /// what API Gateway cannot read. The function's own records name which, and say what it raised.
    func integrationFailure(_ c: RequestCase, gw: StoredEvent, status: Int, execution: [StoredEvent], lambda: [StoredEvent], window: String) -> Verdict {
        let executionText = (execution.map(\.messageText) + [gw.event.error, gw.extra("integration_error"), gw.extra("error_message")].compactMap { $0 })
            .joined(separator: "\n")
        let timedOut = lambda.first { $0.messageText.contains("Task timed out") || ($0.extra("status") ?? "") == "timeout" }
        let raised = lambda.first { ExceptionText.summary($0.messageText) != nil && $0.extra("platform") == nil }
        let report = lambda.first { $0.extra("platform") == "report" }
        let reportMs = report?.event.duration.map { Double($0) / 1000 }
        let customerError = executionText.range(of: "customer function error: ").map { r -> String in
            let rest = executionText[r.upperBound...]
            let end = rest.range(of: ". Lambda request id")?.lowerBound ?? rest.firstIndex(of: "\n") ?? rest.endIndex
            return String(rest[..<end])
        }
        var evidence = [gw] + execution.filter { $0.id != gw.id }.prefix(3)
        var next: [String] = []
        let why: String
        var confidence = Confidence.high
        var key = "apigw-integration-\(status)"
        let integrationSaid = [gw.extra("integration_error"), gw.event.error].compactMap { $0 }.joined(separator: " ")
        if gw.event.targetStatus == 429 || integrationSaid.contains("Rate Exceeded") || executionText.contains("TooManyRequestsException")
            || executionText.contains("Rate Exceeded") {
            // Lambda refused to start the function: no START, no REPORT, nothing in its log.
            var throttled = Verdict(responder: .apigateway, cause: .lambda, confidence: .high,
                                    explanation: "API Gateway returned \(status) because Lambda throttled the invocation (integration status \(gw.event.targetStatus.map(String.init) ?? "429")\(integrationSaid.contains("Rate Exceeded") ? ", `Rate Exceeded.`" : "")): the function's concurrency limit (reserved or the account's) was reached, so Lambda never started it.",
                                    evidence: evidence,
                                    nextSteps: ["Raise the function's reserved concurrency or the account limit, or smooth the load; the `Throttles` metric of AWS/Lambda counts these."],
                                    expectedAbsent: [.lambda: "expected: a throttled invocation never starts, so the function logs nothing for it"], reasonKey: "apigw-lambda-throttled")
            throttled.reached = []
            return throttled
        }
        if executionText.contains("Malformed Lambda proxy response") {
            // The function succeeded; what it returned is the fault. Its duration is beside the point.
            why = "the Lambda function returned a malformed proxy response (`Malformed Lambda proxy response`): it ran and returned, but not a JSON object with `statusCode`, `headers` and a string `body`, so API Gateway could not build an HTTP response from it"
            evidence += lambda.prefix(2)
            next = ["Fix the function's return value for \(gw.event.method ?? "") \(gw.event.path ?? "this path"): `statusCode` (number), `headers` (object), `body` (a string: JSON-encode objects), `isBase64Encoded`."]
            key = "apigw-malformed-proxy"
        } else if timedOut != nil || executionText.contains("Task timed out") {
            let source = timedOut?.messageText ?? executionText
            let after = source.range(of: #"Task timed out after [0-9.]+ seconds"#, options: .regularExpression).map { String(source[$0]) } ?? "Task timed out"
            why = "the Lambda function ran past its own configured timeout (`\(after)`), which is under API Gateway's 29 s integration limit, so Lambda ended it and API Gateway reported the function error as \(status)"
            if let t = timedOut { evidence.append(t) }
            if let report, report.id != timedOut?.id { evidence.append(report) }
            next = ["Find what made the function slow for this request (its log, downstream calls), or raise the function's timeout (API Gateway still waits at most 29 s)."]
            key = "apigw-lambda-timeout"
        } else if status == 504 || executionText.contains("timeout error") || executionText.contains("Endpoint request timed out") {
            let ran = reportMs.map { " The function's REPORT line shows it ran \(String(format: "%.1f", $0 / 1000)) s\($0 >= 29_000 ? ", finishing after API Gateway had already answered" : "")." } ?? ""
            why = "the integration did not answer within API Gateway's 29 s limit (INTEGRATION_TIMEOUT, `Endpoint request timed out`): the function was still running when API Gateway gave up\(ran.isEmpty ? "" : "." + ran.dropLast())"
            evidence += [report].compactMap { $0 }
            // No id links the invocation on a timeout (integrationRequestId is `-`): the one that
            // started with the request and logged a part of its path is it, cited as such.
            if lambda.isEmpty, let started = Self.invocationNamingPath(c, gw: gw) {
                evidence += started.prefix(3)
            }
            next = ["Make the function answer within 29 s for \(gw.event.path ?? "this path") (move long work to an asynchronous job), or use an HTTP API/ALB where a longer timeout is needed."]
            key = "apigw-integration-timeout"
        } else if let killed = Self.outOfMemory(lambda, report: report, said: integrationSaid + "\n" + executionText) {
            // The runtime was killed (signal: killed, Runtime.OutOfMemory) with its memory full: the
            // request needed more memory than the function has, whatever its code did right.
            let used = report.flatMap { r in r.extra("max_memory_used_mb").map { u in " (its REPORT line: Max Memory Used \(u) MB of \(r.extra("memory_size_mb") ?? "?") MB)" } } ?? ""
            why = "the Lambda function ran out of memory: its runtime was killed (`\(killed.said)`)\(used), so the invocation failed and API Gateway answered \(status)"
            evidence += [killed.record, report].compactMap { $0 }.filter { e in !evidence.contains { $0.id == e.id } }
            // What it was doing when it died: its own last line before the kill.
            let diedAt = killed.record?.event.time ?? report?.event.time ?? .max
            if let last = lambda.filter({ $0.extra("platform") == nil && $0.event.requestID != nil && ($0.event.level ?? "").uppercased() != "ERROR"
                && ($0.event.time ?? .max) < diedAt }).max(by: { ($0.event.time ?? 0) < ($1.event.time ?? 0) }) {
                evidence.append(last)
            }
            next = ["Raise the function's memory size, or make \(gw.event.path ?? "this path") need less for such a request (what it loaded last is cited above); the REPORT's Max Memory Used shows how close other invocations run."]
            key = "apigw-lambda-oom"
        } else if let raised {
            let summary = ExceptionText.summary(raised.messageText) ?? raised.messageText
            why = "the Lambda function raised an unhandled exception, `\(summary)`; API Gateway answered \(status) for the failed invocation"
            evidence.append(raised)
            next = ["Fix the exception in the function (`\(summary)`): its traceback is in the function's log for this request."]
            key = "apigw-lambda-exception"
        } else if let customerError {
            why = "the Lambda function failed (`customer function error: \(customerError)`); its log was not given or holds no record of the exception"
            confidence = .medium
            next = [c.hasData(.lambda) ? "Read the function's log around this request for the traceback." : "Ingest the function's log (`/aws/lambda/<function>`) for \(window) to see the exception."]
            key = "apigw-lambda-error"
        } else {
            why = "the Lambda integration failed (a function error, an invalid response, throttling or a permission problem)\(gw.event.error.map { ": `\($0)`" } ?? "")"
            confidence = lambda.isEmpty && execution.isEmpty ? .medium : .high
            next = c.hasData(.lambda) ? ["Read the Lambda function's log for this request (REPORT line: duration vs timeout, memory)."] :
                ["Ingest the Lambda function's CloudWatch logs (`/aws/lambda/<function>`) for \(window)."]
        }
        var verdict = Verdict(responder: .apigateway, cause: .lambda, confidence: confidence,
                              explanation: "API Gateway returned \(status) because \(why).", evidence: evidence,
                              nextSteps: next, expectedAbsent: [:], reasonKey: key)
        // The function had the request (it failed, or was still running): its silence is no answer in front.
        verdict.reached = [.lambda]
        return verdict
    }

    /// The function's records for this request: linked ones, else the invocation's lines nearby
    /// (an unhandled exception's `[ERROR]` line names no request id).
    func lambdaRecordsOf(_ c: RequestCase, around gw: StoredEvent) -> [StoredEvent] {
        let linked = c.records.filter { $0.event.layer == .lambda }
        let ids = Set(linked.compactMap(\.event.requestID) + [gw.extra("lambda_request_id"), gw.extra("integration_request_id")].compactMap { $0 })
        guard let t = gw.event.time else { return linked }
        let start = t - max(gw.event.duration ?? 0, 31_000_000) - 1_000_000
        let lambdaNearby = c.nearby.filter { e in
            guard e.event.layer == .lambda, let et = e.event.time else { return false }
            return et >= start && et <= t + 60_000_000
        }
        let own = linked + lambdaNearby.filter { n in n.event.requestID.map(ids.contains) ?? false && !linked.contains { $0.id == n.id } }
        // The runtime's unhandled-error lines name no request id: they are this invocation's only
        // inside its own span, in its own file (another invocation's error is not this one's).
        let withoutID = lambdaNearby.filter { $0.event.requestID == nil && (ExceptionText.summary($0.messageText) != nil || $0.messageText.contains("Task timed out")) }
        if let lo = own.compactMap(\.event.time).min(), let hi = own.compactMap(\.event.time).max() {
            let files = Set(own.map(\.sourceID))
            return own + withoutID.filter { e in files.contains(e.sourceID) && (e.event.time ?? 0) >= lo && (e.event.time ?? 0) <= hi }
        }
        return own + withoutID
    }

    /// The function's lines of the invocation that started within seconds of the request and whose
    /// lines name the most parts of its path (`89295` for /orders/89295/availability), when no other
    /// names as many: nothing else ties an invocation to a timed-out request.
    static func invocationNamingPath(_ c: RequestCase, gw: StoredEvent) -> [StoredEvent]? {
        guard let t = gw.event.time, let path = gw.event.path else { return nil }
        let parts = path.split(separator: "/").map(String.init).filter { $0.count >= 3 && !["api", "prod", "dev", "stage", "v1", "v2"].contains($0.lowercased()) }
        let lines = c.nearby.filter { $0.event.layer == .lambda }
        let starts = lines.filter { $0.messageText.hasPrefix("START") && abs(($0.event.time ?? 0) - t) <= 3_000_000 }
        // Each candidate by how many of the path's parts its lines name; the best, when unrivalled.
        let scored = starts.compactMap { start -> (lines: [StoredEvent], named: Int)? in
            guard let id = start.event.requestID else { return nil }
            let own = lines.filter { $0.event.requestID == id }
            let named = parts.filter { part in own.contains { AppMentions.namesWord($0.messageText, part) } }.count
            return named > 0 ? (own, named) : nil
        }.sorted { $0.named > $1.named }
        guard let best = scored.first, scored.count == 1 || scored[1].named < best.named else { return nil }
        return best.lines.filter { !$0.messageText.hasPrefix("START") }
    }

    /// The authorizer function's invocation for this request: API Gateway's execution log says
    /// when it called the authorizer and when it had the answer; the function's invocation that
    /// started in between is the one (its request id is its own, not API Gateway's).
    func authorizerInvocation(_ c: RequestCase, execution: [StoredEvent]) -> [StoredEvent] {
        // An export may fold a request's execution lines into one record: each line keeps its stamp.
        var stamped: [(time: Int64, text: Substring)] = []
        for e in execution {
            for line in e.text.split(separator: "\n") {
                let head = line.prefix(while: { $0 != " " })
                if let t = AWSTime.iso8601(String(head)) { stamped.append((t, line)) } else if let t = e.event.time { stamped.append((t, line)) }
            }
        }
        guard let called = stamped.first(where: { $0.text.contains("Starting authorizer") })?.time else { return [] }
        let answered = stamped.map(\.time).max() ?? called
        let lambdaLines = (c.records + Array(c.nearby)).filter { $0.event.layer == .lambda }
        let starts = lambdaLines.filter { e in
            e.messageText.hasPrefix("START") && (e.event.time ?? 0) >= called - 5_000 && (e.event.time ?? 0) <= answered
        }
        guard starts.count == 1, let id = starts[0].event.requestID else { return [] }
        let own = lambdaLines.filter { $0.event.requestID == id }
        let lo = own.compactMap(\.event.time).min() ?? called, hi = own.compactMap(\.event.time).max() ?? answered
        var seen = Set<Int64>()
        return lambdaLines.filter { e in
            guard seen.insert(e.id).inserted else { return false }
            if e.event.requestID == id { return true }
            return e.event.requestID == nil && e.sourceID == starts[0].sourceID && (e.event.time ?? 0) >= lo && (e.event.time ?? 0) <= hi
        }.sorted { ($0.event.time ?? 0, $0.id) < ($1.event.time ?? 0, $1.id) }
    }

    func firstLine(_ s: String) -> String {
        String(s.split(separator: "\n", omittingEmptySubsequences: true).first ?? "").trimmingCharacters(in: .whitespaces)
    }
}
