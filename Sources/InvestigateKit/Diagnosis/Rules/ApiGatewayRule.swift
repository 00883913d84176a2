/// API Gateway answers many errors itself (gateway responses) and leaves some of them out of its
/// execution log; for integration errors the cause is the Lambda function behind it.
public struct ApiGatewayRule: DiagnosisRule {
    public init() {}
    public let id = "apigateway-response"
    public let title = "API Gateway answered on its own, or reported its integration's failure"
    public let doc = RuleDoc(
        fires: "The request's API Gateway access record has an error status.",
        evidence: "The access record (`$context.error.message`, `integrationStatus`), execution-log lines, Lambda lines for the same request.",
        example: "403 `Missing Authentication Token` for GET /aa.php: no such resource in the REST API; API Gateway answered without invoking Lambda and wrote no execution log for it.")

    public func diagnose(_ c: RequestCase) -> Verdict? {
        guard let gw = c.access(.apigateway), let status = gw.event.status, status >= 400 else { return nil }
        let message = gw.event.error ?? gw.extra("error_message") ?? c.logs(.apigateway).compactMap(\.event.error).first
        let responseType = gw.extra("error_response_type") ?? gw.extra("responseType")
        let lambdaRecords = c.records.filter { $0.event.layer == .lambda }
        let execution = c.logs(.apigateway)
        let window = c.time.map { "\(TimeFormat.isoUTC($0 - 300_000_000)) to \(TimeFormat.isoUTC($0 + 300_000_000))" } ?? "the window"
        let lower = (message ?? "").lowercased()
        var evidence = [gw] + execution.prefix(4) + lambdaRecords.prefix(4)

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
            return Verdict(
                responder: .apigateway, cause: .apigateway, confidence: .medium,
                explanation: "API Gateway's authorizer or resource policy refused the request (\(status)\(message.map { " `\($0)`" } ?? "")).",
                evidence: evidence,
                nextSteps: ["Check the method's authorizer (its logs and cache), the API key, or the resource policy."],
                expectedAbsent: [.lambda: "expected: the integration runs only after authorization"], reasonKey: "apigw-auth")
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
        if status == 502 || status == 504 || (gw.event.targetStatus ?? 0) >= 500 {
            let lambdaError = lambdaRecords.first { ($0.event.error ?? "") != "" || ($0.event.level ?? "").uppercased() == "ERROR" }
            let timedOut = lambdaRecords.contains { $0.text.contains("Task timed out") } || execution.contains { $0.text.contains("timed out") || $0.text.contains("timeout") }
            if let lambdaError { evidence.append(lambdaError) }
            let cause: Layer = c.hasData(.lambda) || !execution.isEmpty ? .lambda : .lambda
            let why: String
            if status == 504 || timedOut {
                why = "the integration timed out\(timedOut ? " (the Lambda function ran past its timeout: `Task timed out`)" : " (API Gateway waits 29 s at most)")"
            } else {
                why = "the Lambda integration failed (a function error, an invalid proxy response, or throttling)\(lambdaError.map { ": `\($0.event.error ?? $0.messageText)`" } ?? "")"
            }
            return Verdict(
                responder: .apigateway, cause: cause, confidence: lambdaRecords.isEmpty && execution.isEmpty ? .medium : .high,
                explanation: "API Gateway returned \(status) because \(why).",
                evidence: evidence,
                nextSteps: c.hasData(.lambda) ? ["Read the Lambda function's log for this request (REPORT line: duration vs timeout, memory)."] :
                    ["Ingest the Lambda function's CloudWatch logs (`/aws/lambda/<function>`) for \(window)."],
                expectedAbsent: [:], reasonKey: "apigw-integration-\(status)")
        }
        return nil
    }
}
