/// The components of a web stack, in the fixed vocabulary the diagnosis speaks.
///
/// `system` holds host records that belong to no HTTP layer (sshd, cron, kernel lines in syslog);
/// `cloudtrail` holds AWS control-plane records (API calls such as a web ACL's update), which are
/// on no request's path either; `upstream` names "something in front of the outermost layer we have
/// logs for" and never appears on an event. `cloudfront` is the CDN in front of the WAF (a web ACL
/// on CloudFront is evaluated at the edge); `nlb` is a Network Load Balancer (TCP/TLS, no HTTP).
public enum Layer: String, Sendable, Codable, CaseIterable, Comparable {
    case client, cloudfront, waf, nlb, alb, apigateway, nginx, gunicorn, app, lambda, system, cloudtrail, upstream

    /// Layers whose records are never a hop of a request: coverage, correlation and the request's
    /// path leave them out.
    public static let offPath: Set<Layer> = [.system, .cloudtrail, .client, .upstream]
    /// `offPath`'s stored layers, for SQL (`layer NOT IN (…)`).
    public static let offPathSQL = "('system','cloudtrail')"

    /// Outermost first: the order a request crosses the stack.
    public var depth: Int {
        switch self {
        case .client: return 0
        case .upstream: return 1
        case .cloudfront: return 2
        case .waf: return 3
        case .apigateway: return 4
        case .nlb: return 5
        case .alb: return 6
        case .nginx: return 7
        case .gunicorn: return 8
        case .app: return 9
        case .lambda: return 10
        case .system: return 11
        case .cloudtrail: return 12
        }
    }

    public static func < (lhs: Layer, rhs: Layer) -> Bool { lhs.depth < rhs.depth }

    /// `rawValue` with a stable address, for binding without a copy.
    public var staticName: StaticString {
        switch self {
        case .client: return "client"
        case .cloudfront: return "cloudfront"
        case .waf: return "waf"
        case .nlb: return "nlb"
        case .alb: return "alb"
        case .apigateway: return "apigateway"
        case .nginx: return "nginx"
        case .gunicorn: return "gunicorn"
        case .app: return "app"
        case .lambda: return "lambda"
        case .system: return "system"
        case .cloudtrail: return "cloudtrail"
        case .upstream: return "upstream"
        }
    }
}

/// What an event records: one HTTP exchange seen by a layer, or a log message.
public enum EventKind: String, Sendable, Codable {
    /// A request/response record (an access-log line, a WAF decision, an app's Response line).
    case access
    /// A message (an error-log line, a traceback, a systemd notice).
    case log
    /// A datapoint of a layer's metric (CloudWatch `4XXError` for one minute): a count, not a
    /// request. It never counts as the layer's logs, nor as a request of any layer.
    case metric
    /// A security finding about a client or resource (GuardDuty, Inspector): context beside the
    /// logs, never a request nor a log line of the layer it concerns.
    case finding

    /// `rawValue` with a stable address, for binding without a copy.
    public var staticName: StaticString {
        switch self {
        case .access: return "access"
        case .log: return "log"
        case .metric: return "metric"
        case .finding: return "finding"
        }
    }

    /// A record a layer wrote about its own traffic (a request or a message), as opposed to a
    /// signal about it (a metric datapoint, a finding): only these count as a layer's logs.
    public var isLogRecord: Bool { self == .access || self == .log }
}

/// One normalised record of any layer. Every field except time, layer, kind and the evidence
/// (line numbers, original bytes) is optional: each format fills what it knows.
public struct Event: Sendable, Equatable {
    /// Best estimate of when it happened, microseconds since the Unix epoch, UTC.
    public var time: Int64?
    /// The other stamp of a wrapped record (the syslog prefix around a gunicorn line), µs UTC.
    public var altTime: Int64?
    public var layer: Layer
    public var kind: EventKind
    /// First and last physical line (1-based) of the record in its source.
    public var line: Int
    public var lineEnd: Int
    /// The record's original bytes, lines joined by "\n", exactly as read.
    public var raw: [UInt8]

    public var clientIP: String?
    public var peerIP: String?
    public var forwardedFor: String?
    public var method: String?
    public var path: String?
    public var query: String?
    public var status: Int?
    public var bytes: Int64?
    /// Time the layer spent on the request, microseconds.
    public var duration: Int64?
    public var requestID: String?
    public var traceID: String?
    public var userAgent: String?
    public var host: String?
    public var level: String?
    public var message: String?
    /// Syslog/journal origin of the line.
    public var hostname: String?
    public var program: String?
    public var pid: Int?
    public var wafAction: String?
    public var wafRule: String?
    public var elbStatus: Int?
    public var targetStatus: Int?
    /// A layer's own error wording: ALB `error_reason`, API Gateway `$context.error.message`, …
    public var error: String?
    /// Layer-specific fields, kept as strings; stored as one JSON object.
    public var extra: [String: String]

    public init(time: Int64?, layer: Layer, kind: EventKind, line: Int, lineEnd: Int? = nil, raw: [UInt8]) {
        self.time = time
        self.layer = layer
        self.kind = kind
        self.line = line
        self.lineEnd = lineEnd ?? line
        self.raw = raw
        self.extra = [:]
    }
}

/// A line (or record) no importer could take, kept as evidence with the reason.
public struct RejectedLine: Sendable, Equatable {
    public var line: Int
    /// The record's last line: the first plus its newlines, unless the record gathered lines that
    /// are not adjacent (a record whose continuation skipped a line rejected on its own).
    public var lineEnd: Int
    public var reason: String
    public var raw: [UInt8]

    public init(line: Int, lineEnd: Int? = nil, reason: String, raw: [UInt8]) {
        self.line = line
        self.lineEnd = lineEnd ?? line + raw.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
        self.reason = reason
        self.raw = raw
    }
}
