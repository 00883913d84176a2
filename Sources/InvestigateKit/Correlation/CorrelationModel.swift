import Foundation

/// Tunables of the correlation, with the defaults documented in docs/correlation.md.
public struct CorrelationSettings: Sendable {
    /// Events are processed in time slabs of this length (bounded memory) …
    public var slab: Int64 = 300 * 1_000_000
    /// … each seeing this much of its neighbours, so a request crossing a slab edge still links.
    public var margin: Int64 = 120 * 1_000_000
    /// Largest difference between two layers' comparable stamps, after clock-offset correction.
    public var tolerance: Int64 = 2 * 1_000_000
    /// Window for the first, offset-estimating pass (only unique candidates count there).
    public var offsetWindow: Int64 = 120 * 1_000_000
    /// Longest a request may take, bounding arrival-vs-completion comparisons.
    public var maxDuration: Int64 = 120 * 1_000_000
    /// When the two best candidates are closer than this, the match is ambiguous and not made.
    public var ambiguityMargin: Int64 = 250_000
    /// Slabs grow (from `slab`) until they hold about this many records. Two slabs' records are
    /// in memory at once: 150,000 took the main job to about 260 MB, 75,000 keeps it under 200 MB
    /// at the same speed.
    public var targetSlabRecords = 75_000

    public init() {}
}

/// A clock offset estimated between two layers: `inner`'s stamps minus `outer`'s, in µs.
public struct ClockOffset: Sendable, Equatable, Encodable {
    public var outer: String
    public var inner: String
    public var offset: Int64
    public var samples: Int
}

public struct CorrelationStats: Sendable, Encodable {
    public var eventsConsidered = 0
    public var linksAdded = 0
    public var chainsAdded = 0
    public var ambiguous = 0
    public var offsets: [ClockOffset] = []
}

/// The part a record plays in a request's path: an access record of a layer, or a log line that
/// belongs to one.
enum Role: String, CaseIterable {
    case waf, alb, apigateway, apigatewayExecution, nginx, nginxError, gunicorn, appRequest, appResponse, appLog, lambda, cloudfront
    /// A record of a web ACL on a CloudFront distribution (`httpSourceName` CF). It sits in front of
    /// CloudFront, joins CloudFront's record by the edge request id, and names the viewer, whom the
    /// layers behind CloudFront never see.
    case wafAtEdge

    /// Roles of which a chain holds at most one record (fuzzy matches never add a second).
    var isSingular: Bool {
        switch self {
        case .waf, .wafAtEdge, .alb, .apigateway, .nginx, .gunicorn, .appRequest, .appResponse, .cloudfront: return true
        default: return false
        }
    }

    /// One bit per role, for role sets kept per node in arrays.
    var bit: UInt16 {
        switch self {
        case .waf: return 1 << 0
        case .alb: return 1 << 1
        case .apigateway: return 1 << 2
        case .apigatewayExecution: return 1 << 3
        case .nginx: return 1 << 4
        case .nginxError: return 1 << 5
        case .gunicorn: return 1 << 6
        case .appRequest: return 1 << 7
        case .appResponse: return 1 << 8
        case .appLog: return 1 << 9
        case .lambda: return 1 << 10
        case .cloudfront: return 1 << 11
        case .wafAtEdge: return 1 << 12
        }
    }

    static let singularBits: UInt16 = allCases.filter(\.isSingular).reduce(0) { $0 | $1.bit }

    /// Roles whose records carry the real client's address. CloudFront's `c-ip` is the viewer, but
    /// the layers behind it see CloudFront's own addresses, so its hops match without the client.
    var knowsClient: Bool {
        switch self {
        case .waf, .alb, .apigateway, .nginx: return true
        default: return false
        }
    }

    var layer: Layer {
        switch self {
        case .waf, .wafAtEdge: return .waf
        case .alb: return .alb
        case .apigateway, .apigatewayExecution: return .apigateway
        case .nginx, .nginxError: return .nginx
        case .gunicorn: return .gunicorn
        case .appRequest, .appResponse, .appLog: return .app
        case .lambda: return .lambda
        case .cloudfront: return .cloudfront
        }
    }
}

/// A record reduced to what matching needs. A class: matching passes nodes through buckets,
/// candidate lists and filters, and a struct copy retained each of its strings. Immutable but for
/// `chain`, which is patched once, before matching, when the slab before stored a link for it.
final class Node {
    let id: Int64
    let role: Role
    let time: Int64
    /// When the request reached this layer / when this layer answered, in this layer's clock.
    let arrival: Int64?
    let completion: Int64?
    /// Time the layer spent, µs, when it logs it.
    let duration: Int64?
    let clientIP: String?
    let peerIP: String?
    let method: String?
    let path: String?
    let query: String?
    let status: Int?
    let targetStatus: Int?
    let traceID: String?
    let requestID: String?
    let extendedRequestID: String?
    let lambdaRequestID: String?
    /// The stored chain this record already belongs to.
    var chain: Int64?

    init(id: Int64, role: Role, time: Int64, arrival: Int64?, completion: Int64?, duration: Int64?, clientIP: String?,
         peerIP: String?, method: String?, path: String?, query: String?, status: Int?, targetStatus: Int?, traceID: String?,
         requestID: String?, extendedRequestID: String?, lambdaRequestID: String?, chain: Int64?) {
        self.id = id
        self.role = role
        self.time = time
        self.arrival = arrival
        self.completion = completion
        self.duration = duration
        self.clientIP = clientIP
        self.peerIP = peerIP
        self.method = method
        self.path = path
        self.query = query
        self.status = status
        self.targetStatus = targetStatus
        self.traceID = traceID
        self.requestID = requestID
        self.extendedRequestID = extendedRequestID
        self.lambdaRequestID = lambdaRequestID
        self.chain = chain
    }
}
