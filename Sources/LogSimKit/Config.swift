import Foundation

/// Which modelled stack the requests go through.
public enum Stack: String, Sendable, CaseIterable {
    /// client → AWS WAF → ALB → nginx → gunicorn/Flask
    case edge
    /// client → API Gateway (REST) → Lambda
    case api
}

/// Failure modes; each is a flag.
public enum Failure: String, Sendable, CaseIterable {
    /// A WAF managed rule blocks a legitimate path (`GET /app/admin?next=https://…`).
    case wafBlock = "waf-block"
    /// A gunicorn worker hangs and is killed: nginx 502 "upstream prematurely closed", syslog WORKER TIMEOUT.
    case workerTimeout = "worker-timeout"
    /// gunicorn is down for a while: nginx 502 "Connection refused", systemd lines.
    case gunicornDown = "gunicorn-down"
    /// Uploads over nginx's client_max_body_size: nginx 413.
    case bodyTooLarge = "body-too-large"
    /// A slow report export outlives the ALB idle timeout: ALB 504, nginx 499.
    case albIdleTimeout = "alb-idle-timeout"
    /// One IP floods the site; the WAF rate-based rule blocks it.
    case flood
    /// A bot scans script paths: API Gateway answers 403 Missing Authentication Token, no Lambda.
    case missingAuthToken = "missing-auth-token"
    /// A burst over the stage's throttle limit: API Gateway 429.
    case throttling

    public static func forStack(_ stack: Stack) -> [Failure] {
        switch stack {
        case .edge: return [.wafBlock, .workerTimeout, .gunicornDown, .bodyTooLarge, .albIdleTimeout, .flood]
        case .api: return [.missingAuthToken, .throttling]
        }
    }
}

/// The logs a run can write; any of them can be left out (`--without waf,alb`).
public enum LogKind: String, Sendable, CaseIterable {
    case waf, alb, nginx, nginxError = "nginx-error", syslog, app
    case apigatewayAccess = "apigateway-access", apigatewayExecution = "apigateway-execution", lambda
    /// The stage's CloudWatch metrics (`4XXError`, `5XXError`, `Count` per minute) as
    /// `aws cloudwatch get-metric-data` prints them, with the query file beside them.
    case apigatewayMetrics = "apigateway-metrics"

    /// Accepts the ids and a few obvious aliases.
    public init?(name: String) {
        switch name.lowercased() {
        case "nginx-access", "access": self = .nginx
        case "error", "nginx_error": self = .nginxError
        case "flask", "app-logs": self = .app
        case "apigateway", "apigw", "access-log": self = .apigatewayAccess
        case "execution", "apigw-execution": self = .apigatewayExecution
        default:
            guard let kind = LogKind(rawValue: name.lowercased()) else { return nil }
            self = kind
        }
    }
}

/// A scripted story placed in the middle of the background traffic.
public enum Incident: Sendable, Equatable {
    /// An admin at `clientIP` opens `/app/admin?next=…` and the WAF's common rule set blocks it.
    case wafBlockedAdmin(at: Int64, clientIP: String)
    /// One client sends `count` requests to script paths that the API does not have.
    case apiBotScan(at: Int64, clientIP: String, count: Int)
}

/// Everything that determines a run's output: the same configuration gives the same bytes.
public struct SimulationConfig: Sendable {
    public var stack: Stack
    public var seed: UInt64
    /// Arrival of the first background request, µs UTC.
    public var start: Int64
    /// Requests to generate in all (background, scripted, health checks).
    public var requests: Int
    /// Mean background requests per second.
    public var rate: Double
    public var failures: Set<Failure>
    public var without: Set<LogKind>
    /// How logrotate splits nginx's access log.
    public var rotation: Rotation
    public var incident: Incident?

    public init(stack: Stack, seed: UInt64 = 1, start: Int64 = SimClock.micros(year: 2025, month: 2, day: 6, hour: 5),
                requests: Int = 1000, rate: Double = 2, failures: Set<Failure> = [], without: Set<LogKind> = [],
                rotation: Rotation = .daily, incident: Incident? = nil) {
        self.stack = stack
        self.seed = seed
        self.start = start
        self.requests = requests
        self.rate = rate
        self.failures = failures
        self.without = without
        self.rotation = rotation
        self.incident = incident
    }

    /// The background traffic's expected span.
    public var duration: Int64 { Int64(Double(requests) / max(rate, 0.001) * 1e6) }

    func writes(_ kind: LogKind) -> Bool { !without.contains(kind) }
}

/// Counts from a finished run.
public struct SimulationSummary: Sendable {
    public var requests: Int
    public var lines: Int
    public var files: [String]
    /// The most lines waiting in the reorder buffer at once (memory stays bounded by this).
    public var peakBufferedLines: Int
    public var first: Int64
    public var last: Int64
}
