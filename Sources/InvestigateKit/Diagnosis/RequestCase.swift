import Foundation

/// Everything a rule may look at for one failed request: its correlated records, the log lines
/// around it that no key could link (gunicorn's WORKER TIMEOUT names no request), what each
/// layer's logs cover, and what is known of the stack.
public struct RequestCase: Sendable {
    public var chainID: Int64?
    public var records: [StoredEvent]
    public var nearby: NearbyRecords
    public var coverage: [Layer: LayerCoverage]
    public var stack: StackFacts
    public var sources: SourceIndex
    /// Host services' lifecycle lines (kills, exits, stops, starts) from well before the window:
    /// a web server killed minutes earlier is still down when the request comes.
    public var serviceEvents: [StoredEvent] = []
    /// The question's status filter: which of the statuses an nginx error-log line may stand for
    /// (`limit_req` sends 503 or 429) this case is about.
    public var statusFilter: StatusFilter?

    /// The request's access record at a layer (the first, if a layer logged it twice).
    public func access(_ layer: Layer) -> StoredEvent? {
        records.first { $0.event.layer == layer && $0.event.kind == .access }
    }

    public func logs(_ layer: Layer) -> [StoredEvent] {
        records.filter { $0.event.layer == layer && $0.event.kind == .log }
    }

    /// The outermost access record: what the client saw.
    public var outermost: StoredEvent? {
        records.filter { $0.event.kind == .access }.min { a, b in
            a.event.layer != b.event.layer ? a.event.layer < b.event.layer : a.id < b.id
        }
    }

    /// The status the client got: the outermost access record's, else (execution logs only) the
    /// status API Gateway's execution log says the method completed with.
    public var clientStatus: Int? {
        if let implied = nginxErrorAnswer { return implied.status }
        return records.filter { $0.event.kind == .access }.sorted { $0.event.layer < $1.event.layer }.lazy.compactMap(\.event.status).first
            ?? records.lazy.filter { $0.event.layer == .apigateway }.compactMap(\.event.status).first
    }

    /// nginx's error-log line standing for the request's answer, with the status nginx sends for it,
    /// when no access record at nginx or in front of it holds a status (nginx's access log was not
    /// given or does not reach this moment): the line is then what the client's answer rests on.
    public var nginxErrorAnswer: (record: StoredEvent, status: Int)? {
        let answered = records.contains { r in
            r.event.kind == .access && r.event.status != nil && r.event.layer <= .nginx && !Layer.offPath.contains(r.event.layer)
        }
        guard !answered else { return nil }
        for r in logs(.nginx) {
            if let status = NginxErrorStatus.status(for: r.messageText, matching: statusFilter) { return (r, status) }
        }
        return nil
    }

    /// Whether the records show the request reached a layer (so its silence is not "expected"):
    /// the function was invoked when API Gateway reports an integration status or a Lambda request id.
    public func reached(_ layer: Layer) -> Bool {
        if layersPresent.contains(layer) { return true }
        switch layer {
        case .lambda:
            return records.contains { r in
                // Integration status 429: Lambda throttled the invoke, and the function never ran.
                r.event.layer == .apigateway && ((r.event.targetStatus != nil && r.event.targetStatus != 429) || r.extra("lambda_request_id") != nil
                    || Self.invokedIntegration(r.text))
            }
        case .nginx:
            // An ALB record with a target status: the target (nginx, here) answered it. With no
            // nginx logs at all, the target may be gunicorn itself: nothing says nginx is there.
            if !hasData(.nginx) { return false }
            return records.contains { $0.event.layer == .alb && $0.event.kind == .access && $0.event.targetStatus != nil }
        default:
            return false
        }
    }

    /// Whether execution-log text shows the integration called. A Lambda authorizer is called
    /// the same way ("Sending request to …"), before "Starting execution" that the integration needs.
    static func invokedIntegration(_ text: String) -> Bool {
        guard text.contains("Sending request to") || text.contains("Endpoint response body") else { return false }
        return !text.contains("Starting authorizer") || text.contains("Starting execution for request")
    }

    public var time: Int64? { nginxErrorAnswer?.record.event.time ?? outermost?.event.time ?? records.first?.event.time }
    public var layersPresent: Set<Layer> { Set(records.map(\.event.layer)) }

    /// The path requests of this kind take, outermost first, from the records and the stack facts.
    public var path: [Layer] {
        // CloudFront is on the path only where its records or logs show it: many stacks have none.
        let edge: [Layer] = layersPresent.contains(.cloudfront) || hasData(.cloudfront) ? [.cloudfront] : []
        if layersPresent.contains(.apigateway) || layersPresent.contains(.lambda) && !layersPresent.contains(.alb) { return edge + [.waf, .apigateway, .lambda] }
        // An ALB whose target is a Lambda function (its `error_reason` says so).
        if records.contains(where: { $0.event.layer == .alb && ($0.extra("error_reason") ?? $0.event.error ?? "").hasPrefix("Lambda") }) {
            return edge + [.waf, .alb, .lambda]
        }
        return edge + [.waf, .alb, .nginx, .gunicorn, .app]
    }

    /// Whether logs of the layer that record its requests were given (ALB connection logs do not).
    public func hasData(_ layer: Layer) -> Bool {
        if layer == .alb && stack.albConnectionLogsOnly { return false }
        return (coverage[layer]?.events ?? 0) > 0
    }

    /// Whether the layer's logs span this request's moment. Logs that exist but lie elsewhere in
    /// time (another day, or stamps read in the wrong zone) say nothing about this request.
    public func covers(_ layer: Layer) -> Bool {
        guard hasData(layer), let t = time, let cov = coverage[layer] else { return false }
        return cov.covers(t)
    }

    /// Nearby messages of a layer whose text contains any of the needles (case-sensitive).
    public func nearby(_ layer: Layer, containing needles: [String]) -> [StoredEvent] {
        nearby.filter { e in
            e.event.layer == layer && needles.contains { n in (e.event.message ?? e.text).contains(n) }
        }
    }
}

/// The unlinked-or-not log lines around one request: a window onto the query's shared, time-ordered
/// lines, minus the request's own records. It shares storage with every other case's window:
/// a dense window holds thousands of failed requests, and copying the lines around each one cost
/// more time and memory than judging it.
public struct NearbyRecords: Sequence, Sendable {
    private var window: ArraySlice<StoredEvent>
    private var excluded: Set<Int64>

    public init(_ window: ArraySlice<StoredEvent>, excluding excluded: Set<Int64> = []) {
        self.window = window
        self.excluded = excluded
    }

    public init(_ records: [StoredEvent]) { self.init(records[...]) }

    public func makeIterator() -> LazyFilterSequence<ArraySlice<StoredEvent>>.Iterator {
        let excluded = excluded
        return window.lazy.filter { !excluded.contains($0.id) }.makeIterator()
    }

    /// Leaves out the lines that match (a rule that adopted them as the request's own records).
    public mutating func removeAll(where shouldRemove: (StoredEvent) -> Bool) {
        for e in window where shouldRemove(e) { excluded.insert(e.id) }
    }
}

/// What the data says about the stack as a whole.
public struct StackFacts: Sendable {
    /// nginx's peers when every one is one of a handful of private addresses (a load balancer's
    /// nodes): something sits in front of nginx.
    public var privatePeers: [String] = []
    /// nginx's records carry X-Forwarded-For (the client's address survives the hop).
    public var forwardsClient = false
    /// nginx requests carried an X-Amzn-Trace-Id: the thing in front is an AWS load balancer.
    public var sawAmznTraceID = false
    /// `ELB-HealthChecker` probed the stack: an AWS load balancer's health checks.
    public var sawHealthChecker = false
    /// More distinct private peers than this are clients of an internal site, not balancer nodes.
    public static let maxBalancerNodes = 16
    /// Edges from the `topology` table, as "front→back".
    public var edges: [(front: String, back: String, evidence: String)] = []
    /// The ALB's logs around the question are connection logs only (TLS connections, no request
    /// records): they cannot show what the ALB did with a request.
    public var albConnectionLogsOnly = false
    /// gunicorn's access log was given. Its error log alone records no requests, so gunicorn's
    /// silence about one says nothing.
    public var gunicornRequestsLogged = false
    /// nginx's error log was given: an upstream failure nginx answers for is written there.
    public var nginxErrorLogGiven = false

    public var somethingInFrontOfNginx: Bool { !privatePeers.isEmpty }

    /// Why nginx's private peers are taken for a load balancer, in words.
    public var balancerEvidence: String {
        var signs: [String] = []
        signs.append(forwardsClient ? "private addresses forwarding X-Forwarded-For" : "private addresses (every request comes from them)")
        if sawHealthChecker { signs.append("probed by ELB-HealthChecker") }
        if sawAmznTraceID { signs.append("requests carry X-Amzn-Trace-Id") }
        return signs.joined(separator: ", ")
    }
}

/// A rule's conclusion about one request.
public struct Verdict: Sendable {
    public var responder: Layer
    /// nil when the evidence cannot tell: a proxy passed on a server error and the layers behind
    /// it left no record at that moment. Shown as `unknown`, never guessed.
    public var cause: Layer?
    public var confidence: Confidence
    public var explanation: String
    public var evidence: [StoredEvent]
    public var nextSteps: [String]
    /// Layers whose silence this failure explains, with the reason.
    public var expectedAbsent: [Layer: String]
    /// A short tag for grouping repeats (e.g. the WAF rule id).
    public var reasonKey: String
    /// Layers the rule's evidence shows the request reached (nginx timed out waiting for the
    /// app: the app had it), so their silence is never called expected.
    public var reached: Set<Layer> = []
    /// What the cause layer depended on that failed ("database"), when the evidence says so.
    public var dependency: String?

    public init(responder: Layer, cause: Layer?, confidence: Confidence, explanation: String, evidence: [StoredEvent],
                nextSteps: [String] = [], expectedAbsent: [Layer: String] = [:], reasonKey: String = "") {
        self.responder = responder
        self.cause = cause
        self.confidence = confidence
        self.explanation = explanation
        self.evidence = evidence
        self.nextSteps = nextSteps
        self.expectedAbsent = expectedAbsent
        self.reasonKey = reasonKey
    }
}

/// Documentation of a rule, rendered into docs/diagnosis.md.
public struct RuleDoc: Sendable {
    public var fires: String
    public var evidence: String
    public var example: String
}

/// One piece of knowledge about how a layer fails. Rules are tried in order; the first verdict wins.
///
/// To add a rule: one file in `Diagnosis/Rules/` with a type conforming to this protocol, and one
/// line in `DiagnosisRules.standard`.
public protocol DiagnosisRule: Sendable {
    var id: String { get }
    var title: String { get }
    var doc: RuleDoc { get }
    func diagnose(_ c: RequestCase) -> Verdict?
}

extension StoredEvent {
    /// A layer-specific field.
    func extra(_ key: String) -> String? { event.extra[key] }

    /// Message text or, failing that, the raw line.
    var messageText: String { event.message ?? text }
}
