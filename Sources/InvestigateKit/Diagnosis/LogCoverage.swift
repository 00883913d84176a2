import Foundation

/// What one layer's logs can say about the requests of a window. Coverage is reasoned per kind of
/// log, not per layer: API Gateway's execution log covering a window says nothing about the
/// responses API Gateway gives before method execution (403 `Missing Authentication Token`, 429,
/// WAF_FILTERED, 413), which only its access log records; nginx's error log says nothing of the
/// requests that went well.
public struct WindowCoverage: Sendable {
    /// Request records (access-log lines, WAF decisions, the app's Response lines) in the window.
    public var requests: Int = 0
    /// Message records (execution-log entries, error-log lines, Lambda invocations) in the window.
    public var messages: Int = 0
    /// Request records whose client address is known and is not the peer of a proxy in front.
    public var requestsWithClient: Int = 0

    /// The layer keeps a record of every request it handled in this window (an access log).
    public var seesEveryRequest: Bool { requests > 0 }
    /// Its records can be picked out by client address.
    public var identifiesClients: Bool { requestsWithClient > 0 }
}

/// The kinds of log each layer writes, what each records and what it leaves out: the model the
/// absence reasoning and docs/diagnosis.md share.
public enum LogKindModel {
    public struct Kind: Sendable {
        public var layer: Layer
        public var name: String
        /// What a record of this kind proves.
        public var records: String
        /// Responses of the layer that this kind never shows.
        public var leavesOut: String
    }

    public static let kinds: [Kind] = [
        Kind(layer: .cloudfront, name: "CloudFront standard log", records: "every viewer request the distribution answered, including its own refusals and origin failures (`x-edge-detailed-result-type`)",
             leavesOut: "requests whose URL exceeds 8,192 bytes or whose headers exceed 20 KB (CloudFront cannot parse them), and a few entries on its best-effort delivery"),
        Kind(layer: .waf, name: "AWS WAF log", records: "every request the web ACL evaluated, with its action (ALLOW, BLOCK, COUNT, CAPTCHA, CHALLENGE) and the terminating rule",
             leavesOut: "requests dropped by a logging filter or sampling; responses of the layers behind it"),
        Kind(layer: .alb, name: "ALB access log", records: "every request the load balancer received, including the ones it answered itself (elb_status_code without target_status_code)",
             leavesOut: "connections that never formed a request (TLS negotiation failures are in the connection log, not the access log)"),
        Kind(layer: .alb, name: "ALB connection log", records: "every TLS connection attempt on an HTTPS listener, with its handshake and mutual-TLS verification status",
             leavesOut: "requests: a connection record says nothing of the responses sent over it"),
        Kind(layer: .nlb, name: "NLB access log", records: "every TLS connection on a TLS listener (client, target, handshake, bytes)",
             leavesOut: "plain TCP listeners (not logged), and any HTTP request or status: the NLB does not read HTTP"),
        Kind(layer: .apigateway, name: "API Gateway access log", records: "every request the stage answered, including gateway responses (`$context.error.responseType`)",
             leavesOut: "some 413/431 and excessive 429 responses, 4xx for custom domains without an API mapping, internal 5xx"),
        Kind(layer: .apigateway, name: "API Gateway execution log", records: "only requests that entered method execution (authorizer, integration)",
             leavesOut: "403 MISSING_AUTHENTICATION_TOKEN for unknown routes, 429 throttling, WAF_FILTERED, 413, 431, some 5xx: API Gateway answers these before execution and writes no execution log"),
        Kind(layer: .lambda, name: "Lambda log", records: "every invocation (START/END/REPORT), the function's output and unhandled exceptions",
             leavesOut: "requests API Gateway answered without invoking the function"),
        Kind(layer: .nginx, name: "nginx access log", records: "every request nginx read, with the status it sent (499 when its client left)",
             leavesOut: "requests answered in front of nginx; with `combined` and a load balancer in front, the client's own address"),
        Kind(layer: .nginx, name: "nginx error log", records: "failures only: upstream errors, limits, denied access",
             leavesOut: "requests that went well, and most 4xx"),
        Kind(layer: .gunicorn, name: "gunicorn logs", records: "worker timeouts, crashes and restarts (the access log is off by default)",
             leavesOut: "requests, unless --access-logfile is set"),
        Kind(layer: .app, name: "application log", records: "what the application chose to log: Request/Response lines, exceptions and tracebacks",
             leavesOut: "requests that never reached the application"),
        Kind(layer: .cloudtrail, name: "CloudTrail", records: "AWS API calls (a web ACL's update, an IP set's change), who made them and when: context, on no request's path",
             leavesOut: "every request: CloudTrail never records traffic, so it never counts as a request layer's logs"),
    ]

    /// The gateway responses (REST) that API Gateway sends itself for a status, before any
    /// integration, none of which its execution log records.
    public static func gatewayResponses(for status: StatusFilter?) -> [String] {
        let table: [(String, Int)] = [
            ("MISSING_AUTHENTICATION_TOKEN (unknown route or method)", 403), ("WAF_FILTERED", 403), ("ACCESS_DENIED", 403),
            ("INVALID_API_KEY", 403), ("EXPIRED_TOKEN", 403), ("INVALID_SIGNATURE", 403), ("UNAUTHORIZED", 401),
            ("THROTTLED", 429), ("QUOTA_EXCEEDED", 429), ("REQUEST_TOO_LARGE", 413), ("request header fields too large", 431),
            ("RESOURCE_NOT_FOUND", 404), ("BAD_REQUEST_PARAMETERS", 400), ("BAD_REQUEST_BODY", 400), ("UNSUPPORTED_MEDIA_TYPE", 415),
            ("API_CONFIGURATION_ERROR", 500), ("AUTHORIZER_CONFIGURATION_ERROR", 500), ("AUTHORIZER_FAILURE", 500),
            ("INTEGRATION_FAILURE", 504), ("INTEGRATION_TIMEOUT", 504),
        ]
        // Without a status, the ones a client most often meets.
        let common: Set<String> = ["MISSING_AUTHENTICATION_TOKEN (unknown route or method)", "WAF_FILTERED", "THROTTLED", "REQUEST_TOO_LARGE",
                                   "request header fields too large", "INTEGRATION_TIMEOUT"]
        return table.filter { status?.matches($0.1) ?? common.contains($0.0) }.map { "\($0.0) → \($0.1)" }
    }
}
