import Foundation
import GRDB
import GRDBSQLite

/// Tunables of the correlation, with the defaults documented in docs/correlation.md.
public struct CorrelationSettings: Sendable {
    /// Events are processed in time slabs of this length (bounded memory) …
    public var slab: Int64 = 300 * 1_000_000
    /// … each seeing this much of its neighbours, so a request crossing a slab edge still links.
    public var margin: Int64 = 120 * 1_000_000
    /// Largest difference between two layers' comparable stamps, after clock-offset correction.
    public var tolerance: Int64 = 2 * 1_000_000
    /// Window for the first, offset-estimating pass (only unique candidates count there).
    public var offsetWindow: Int64 = 30 * 1_000_000
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

    /// Roles of which a chain holds at most one record (fuzzy matches never add a second).
    var isSingular: Bool {
        switch self {
        case .waf, .alb, .apigateway, .nginx, .gunicorn, .appRequest, .appResponse, .cloudfront: return true
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
        case .waf: return .waf
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

/// Links records of different layers that describe the same HTTP request into chains, stored in
/// the `chain` and `link` tables. Incremental: each run looks at events added since the last run
/// (a watermark on event ids), with their neighbours in time as partners; links already made stay.
///
/// Keys, strongest first: trace id (ALB `trace_id` = WAF `requestId` = `X-Amzn-Trace-Id`);
/// request ids (API Gateway access ↔ execution ↔ WAF, execution ↔ Lambda); then client IP +
/// method + path (+ query, + status where both have it) + time within a tolerance, after
/// correcting each layer pair's clock offset (the median difference of unambiguous matches).
/// Two candidates that fit equally well are not linked: they are recorded in `ambiguous`.
public final class Correlator {
    public let store: TimelineStore
    public var settings: CorrelationSettings

    public init(store: TimelineStore, settings: CorrelationSettings = CorrelationSettings()) {
        self.store = store
        self.settings = settings
    }

    /// SQL condition selecting the records correlation considers.
    static let correlatable = """
        e.copy_of IS NULL AND e.time IS NOT NULL AND (
            (e.kind = 'access' AND e.layer IN ('cloudfront','waf','alb','apigateway','nginx','gunicorn','app'))
         OR (e.kind = 'log' AND (e.request_id IS NOT NULL OR e.trace_id IS NOT NULL)
                              AND e.layer IN ('apigateway','lambda','nginx','app','gunicorn'))
         OR (e.kind = 'log' AND e.layer IN ('nginx','app') AND e.path IS NOT NULL))
        """

    @discardableResult
    public func run() throws -> CorrelationStats {
        try ensureStateTable()
        let watermark = try store.read { db in try Int64.fetchOne(db, sql: "SELECT last_event_id FROM correlation_state") ?? 0 }
        // The span of the new records, from their sources' rows (no scan of the events themselves):
        // every source's events hold one id range, and correlation runs after whole files.
        let range = try store.read { db -> (Int64, Int64)? in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT min(sl.first_time) AS lo, max(sl.last_time) AS hi FROM source s JOIN source_layer sl ON sl.source_id = s.id
                WHERE s.last_event_id > ? AND sl.layer NOT IN \(Layer.offPathSQL)
                """, arguments: [watermark]), let lo: Int64 = row["lo"], let hi: Int64 = row["hi"] else { return nil }
            return (lo, hi)
        }
        var stats = CorrelationStats()
        let maxID = try store.read { db in try Int64.fetchOne(db, sql: "SELECT max(id) FROM event") ?? 0 }
        guard let (lo, hi) = range else {
            try store.write { db in try db.execute(sql: "UPDATE correlation_state SET last_event_id = ?", arguments: [maxID]) }
            stats.offsets = try loadOffsets()
            return stats
        }

        // Nothing to link (one layer, no identifiers): skip reading the span back. This is what
        // keeps re-correlation free after ingesting a single-layer archive.
        if try !spanCanLink(from: lo.subtractingClamped(settings.margin), to: hi.addingClamped(settings.margin)) {
            try store.write { db in
                try db.execute(sql: "UPDATE correlation_state SET last_event_id = ?", arguments: [maxID])
                try Self.inferTopology(db)
            }
            stats.offsets = try loadOffsets()
            return stats
        }

        let clock = PhaseClock()
        let skipped = try copyOnlyRanges()
        // Slabs hold about `targetSlabRecords` records each, whatever the traffic's density:
        // bounded memory, and few enough slabs that their overlapping margins cost little. Only
        // slabs with records in reach are read: the cost follows the records, not the time span
        // between them (one record decades away from the rest once meant a hundred thousand slabs).
        let slab = try adaptiveSlab(from: lo, to: hi)
        let starts = try slabStarts(from: lo, to: hi, slab: slab)
        func window(_ start: Int64) -> (from: Int64, to: Int64) {
            (start.subtractingClamped(settings.margin), start.addingClamped(slab).addingClamped(settings.margin))
        }
        clock.lap(String(format: "correlation: %d slabs of %.3f s from %@", starts.count, Double(slab) / 1e6, TimeFormat.isoUTC(starts[0])))

        // Pass 1: clock offsets per layer pair, from unambiguous matches, until every pair present
        // has enough samples (a clock offset does not need millions of them).
        var samples: [PairKey: [Int64]] = [:]
        for t in starts {
            let nodes = try loadNodes(from: window(t).from, to: window(t).to, chainsUpTo: -1, skipping: skipped)
            collectOffsetSamples(nodes, into: &samples)
            if !samples.isEmpty, samples.values.allSatisfy({ $0.count >= 2000 }) { break }
        }
        var offsets = try loadOffsetMap()
        for (pair, values) in samples where values.count >= 3 {
            let sorted = values.sorted()
            offsets[pair] = (sorted[sorted.count / 2], values.count)
        }
        try store.write { db in
            for (pair, value) in offsets {
                try db.execute(sql: """
                    INSERT INTO clock_offset (outer_layer, inner_layer, offset_us, samples) VALUES (?,?,?,?)
                    ON CONFLICT(outer_layer, inner_layer) DO UPDATE SET offset_us = excluded.offset_us, samples = excluded.samples
                    """, arguments: [pair.outer.rawValue, pair.inner.rawValue, value.0, value.1])
            }
        }

        // Pass 2: link, slab by slab. A slab decides the events in its core [t, t + slab); the
        // margins only offer partners.
        //
        // Every link written names an event id just read from the table and a chain id just
        // inserted, so SQLite's foreign-key lookups (two per link, into the largest table) can never
        // fail; skipping them cut the storing time by a fifth on a 1M-request corpus. The pragma only
        // changes outside a transaction, and is restored whatever happens.
        try store.dbQueue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA foreign_keys = OFF") }
        defer { try? store.dbQueue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA foreign_keys = ON") } }
        clock.lap("correlation: clock offsets")
        var spent = (load: 0.0, match: 0.0, store: 0.0, wait: 0.0)
        func timed<T>(_ slot: WritableKeyPath<(load: Double, match: Double, store: Double, wait: Double), Double>,
                      _ body: () throws -> T) rethrows -> T {
            let start = Date()
            defer { spent[keyPath: slot] += Date().timeIntervalSince(start) }
            return try body()
        }
        // Two threads. This one owns the connection: it stores slab k − 1's links and reads slab
        // k + 1 while a helper matches slab k, pure computation on nodes in memory (the three
        // phases cost about the same). Slab k + 1 is read before slab k's links are stored, so
        // its records get those links (and chain merges) patched in before it is matched.
        //
        // Which records already have a chain is looked up in the table only for records older
        // than this run (ids up to the watermark): this run's own links reach the next slab by
        // that patch, and cannot reach the slab after it while slabs are at least twice the
        // margin. Narrower slabs (tests) look every record up.
        //
        // Slabs left out by `slabStarts` change none of this: their windows hold no record, so the
        // slabs on either side of one share no record either.
        let chainsUpTo = slab < 2 * settings.margin ? Int64.max : watermark
        let offsetsByPair = offsets.mapValues { $0.0 }
        var nextChainID = try store.read { db in try Int64.fetchOne(db, sql: "SELECT max(id) FROM chain") ?? 0 } + 1
        var unstored: Resolution?
        var nodes = try timed(\.load) {
            try loadNodes(from: window(starts[0]).from, to: window(starts[0]).to, chainsUpTo: chainsUpTo, skipping: skipped)
        }
        for (k, t) in starts.enumerated() {
            let core = t..<t.addingClamped(slab)
            stats.eventsConsidered += nodes.reduce(0) { $0 + (core.contains($1.time) && $1.chain == nil ? 1 : 0) }
            let slabNodes = nodes, firstChainID = nextChainID
            let matching = BackgroundTask { () -> (Resolution, Double) in
                let start = Date()
                let plan = self.linkPlan(slabNodes, offsets: offsetsByPair, core: core)
                let resolution = self.resolve(plan, nodes: slabNodes, core: core, firstChainID: firstChainID)
                return (resolution, Date().timeIntervalSince(start))
            }
            if let unstored { try timed(\.store) { try store.write { db in try Self.store(unstored, db: db) } } }
            nodes = k + 1 < starts.count ? try timed(\.load) {
                try loadNodes(from: window(starts[k + 1]).from, to: window(starts[k + 1]).to, chainsUpTo: chainsUpTo, skipping: skipped)
            } : []
            let (resolution, matchTime) = timed(\.wait) { matching.wait() }
            spent.match += matchTime
            resolution.patch(nodes)
            nextChainID = resolution.nextChainID
            stats.chainsAdded += resolution.chains.count
            stats.linksAdded += resolution.links.count
            unstored = resolution
        }
        if let unstored { try timed(\.store) { try store.write { db in try Self.store(unstored, db: db) } } }
        clock.lap(String(format: "correlation: linking (reading %.3f s and storing %.3f s, beside matching %.3f s, of which %.3f s waited for)",
                         spent.load, spent.store, spent.match, spent.wait))
        try store.write { db in
            try Self.finishRun(db)
            clock.lap("correlation: copies joined, ambiguities settled")
            try db.execute(sql: "UPDATE correlation_state SET last_event_id = ?", arguments: [maxID])
            try Self.inferTopology(db)
            stats.ambiguous = try Int.fetchOne(db, sql: "SELECT count(*) FROM ambiguous") ?? 0
            clock.lap("correlation: topology")
        }
        stats.offsets = try loadOffsets()
        return stats
    }

    /// Which layer is in front of which, from the data: layers that appear together in chains
    /// (in path order), the WAF's `httpSourceName`, and nginx peers that are private addresses
    /// forwarding X-Forwarded-For (something in front of nginx, named `upstream` when its logs
    /// are not here).
    static func inferTopology(_ db: Database) throws {
        // The GROUP BY over every chain sorts: under the usual 64 MB cache SQLite's sorters took
        // 181 MB on 3M chains (and 1.6 s), under the sorting cache 37 MB (0.7 s), so peak memory
        // stays bounded.
        try Schema.withSortingCache(db) { try inferTopologyUnderSortingCache(db) }
    }

    private static func inferTopologyUnderSortingCache(_ db: Database) throws {
        var edges: [String: (evidence: String, events: Int)] = [:]
        func add(_ front: String, _ back: String, _ evidence: String, _ n: Int) {
            guard n > 0 else { return }
            let key = front + "→" + back
            if let old = edges[key] { edges[key] = (old.evidence, old.events + n) } else { edges[key] = (evidence, n) }
        }
        for row in try Row.fetchAll(db, sql: "SELECT layers, count(*) AS n FROM chain WHERE layers LIKE '%,%' GROUP BY layers") {
            let layers = (row["layers"] as String).split(separator: ",").map(String.init).filter { $0 != "system" }
            for i in 0..<max(0, layers.count - 1) {
                add(layers[i], layers[i + 1], "requests linked across both layers", row["n"])
            }
        }
        // Samples, not scans: the shape of the stack shows in the first tens of thousands of records.
        let hasWAF = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM source_layer WHERE layer = 'waf')") ?? false
        for row in try !hasWAF ? [] : Row.fetchAll(db, sql: """
            SELECT src, count(*) AS n FROM (SELECT json_extract(extra, '$.http_source_name') AS src FROM
            (SELECT layer, extra FROM event ORDER BY id DESC LIMIT 200000) WHERE layer = 'waf') WHERE src IS NOT NULL GROUP BY src
            """) {
            let target: String? = ["ALB": "alb", "APIGW": "apigateway", "CF": "cloudfront", "APPSYNC": "appsync"][row["src"] as String? ?? ""]
            if let target { add("waf", target, "WAF httpSourceName \(row["src"] as String? ?? "")", row["n"]) }
        }
        let hasFront = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM source_layer WHERE layer IN ('alb','waf'))") ?? false
        let peers = try Row.fetchAll(db, sql: """
            SELECT peer_ip, count(*) AS n FROM (SELECT layer, kind, peer_ip, forwarded_for FROM event ORDER BY id DESC LIMIT 200000)
            WHERE layer = 'nginx' AND kind = 'access' AND forwarded_for IS NOT NULL AND peer_ip IS NOT NULL
            GROUP BY peer_ip ORDER BY n DESC LIMIT 20
            """).filter { ByteScanner.isPrivateAddress($0["peer_ip"] as String) }
        if !peers.isEmpty {
            let names = peers.prefix(4).map { $0["peer_ip"] as String }.joined(separator: ", ")
            add(hasFront ? "alb" : "upstream", "nginx", "nginx peers are private addresses forwarding X-Forwarded-For (\(names); among the latest 200,000 records)",
                peers.reduce(0) { $0 + ($1["n"] as Int) })
        }
        try db.execute(sql: "DELETE FROM topology")
        for (key, value) in edges.sorted(by: { $0.key < $1.key }) {
            let parts = key.components(separatedBy: "→")
            try db.execute(sql: "INSERT INTO topology (front, back, evidence, events) VALUES (?,?,?,?)",
                           arguments: [parts[0], parts[1], value.evidence, value.events])
        }
    }

    /// Whether the records in a span could link at all: two roles on one request path, or records
    /// carrying identifiers that other layers share.
    func spanCanLink(from: Int64, to: Int64) throws -> Bool {
        try store.read { db in
            // Coverage first (no event scan): one request-path layer alone can never link.
            let layers = try String.fetchAll(db, sql: """
                SELECT DISTINCT layer FROM source_layer WHERE layer NOT IN \(Layer.offPathSQL) AND first_time <= ? AND last_time >= ?
                """, arguments: [to, from])
            if layers.count <= 1 && !layers.contains("app") && !layers.contains("apigateway") { return false }
            // Two request-path layers: worth the linking passes (which find out cheaply if not),
            // without reading every record of the span here first.
            if layers.count >= 2 { return true }
            var roles = Set<Role>()
            var identified = 0
            for row in try Row.fetchAll(db, sql: """
                SELECT e.layer, e.kind, count(e.trace_id) + count(e.request_id) AS ids FROM event e
                WHERE e.time >= ? AND e.time < ? AND \(Self.correlatable) GROUP BY e.layer, e.kind
                """, arguments: [from, to]) {
                guard let layer = Layer(rawValue: row[0] as String) else { continue }
                let kind: String = row[1]
                switch (layer, kind) {
                case (.cloudfront, "access"): roles.insert(.cloudfront)
                case (.waf, "access"): roles.insert(.waf)
                case (.alb, "access"): roles.insert(.alb)
                case (.apigateway, "access"): roles.insert(.apigateway)
                case (.apigateway, _): roles.insert(.apigatewayExecution)
                case (.nginx, "access"): roles.insert(.nginx)
                case (.nginx, _): roles.insert(.nginxError)
                case (.gunicorn, "access"): roles.insert(.gunicorn)
                case (.app, "access"): roles.insert(.appResponse)
                case (.app, _): roles.formUnion([.appRequest, .appLog])
                case (.lambda, _): roles.insert(.lambda)
                default: break
                }
                identified += row[2] as Int
            }
            return !hops(present: roles).isEmpty || (identified > 0 && roles.count > 1)
        }
    }

    private func ensureStateTable() throws {
        try store.write { db in
            if try Int.fetchOne(db, sql: "SELECT count(*) FROM correlation_state") == 0 {
                try db.execute(sql: "INSERT INTO correlation_state (last_event_id) VALUES (0)")
            }
        }
    }

    public func loadOffsets() throws -> [ClockOffset] {
        try store.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM clock_offset ORDER BY outer_layer, inner_layer").map {
                ClockOffset(outer: $0["outer_layer"], inner: $0["inner_layer"], offset: $0["offset_us"], samples: $0["samples"])
            }
        }
    }

    private func loadOffsetMap() throws -> [PairKey: (Int64, Int)] {
        var map: [PairKey: (Int64, Int)] = [:]
        for o in try loadOffsets() {
            if let a = Role(rawValue: o.outer), let b = Role(rawValue: o.inner) { map[PairKey(outer: a, inner: b)] = (o.offset, o.samples) }
        }
        return map
    }

    // MARK: - Loading

    /// The id ranges of sources whose every record is a copy of a line stored from another file,
    /// or a system line: none of them is ever correlated (`correlatable`), and reading them only
    /// to drop them was a quarter of the reading on an edge corpus (syslog wrapping the app).
    /// Adjacent ranges are joined; beyond 32 ranges only the largest are kept (fewer skips, same
    /// result). The counts come from `source_layer.copies`, kept by `CopyLinker`.
    func copyOnlyRanges() throws -> [ClosedRange<Int64>] {
        let rows = try store.read { db in
            try Row.fetchAll(db, sql: """
                SELECT s.first_event_id AS lo, s.last_event_id AS hi FROM source s
                WHERE s.first_event_id IS NOT NULL
                  AND EXISTS (SELECT 1 FROM source_layer sl WHERE sl.source_id = s.id AND sl.copies > 0)
                  AND NOT EXISTS (SELECT 1 FROM source_layer sl WHERE sl.source_id = s.id AND sl.layer NOT IN \(Layer.offPathSQL) AND sl.events > sl.copies)
                ORDER BY s.first_event_id
                """)
        }
        var ranges: [ClosedRange<Int64>] = []
        for row in rows {
            let lo: Int64 = row["lo"], hi: Int64 = row["hi"]
            guard lo <= hi else { continue }
            if let last = ranges.last, last.upperBound + 1 == lo { ranges[ranges.count - 1] = last.lowerBound...hi } else { ranges.append(lo...hi) }
        }
        if ranges.count > 32 { ranges = Array(ranges.sorted { $0.count > $1.count }.prefix(32)).sorted { $0.lowerBound < $1.lowerBound } }
        return ranges
    }

    /// A slab length that puts about `settings.targetSlabRecords` records in each slab, between
    /// `settings.slab` and six hours. The number of records comes from the coverage table (no
    /// scan); the time they occupy from a sample of them read by id (a few thousand rows): the
    /// stretches between sampled records, leaving out those longer than the longest slab's window.
    /// Slabs are not read there (`slabStarts`), so such a stretch holds next to no records: counted,
    /// one record decades away from the rest made the traffic look that thin, and the slabs as long
    /// as allowed, however many records they then held. Without such stretches this is the span
    /// `to - from`, as it always was. Computed in floating point and clamped before conversion: no
    /// span can overflow it.
    func adaptiveSlab(from: Int64, to: Int64) throws -> Int64 {
        let maxSlab = Self.maxSlab
        let (total, sampled) = try store.read { db -> (Int64, [Int64]) in
            let total = try Int64.fetchOne(db, sql: """
                SELECT sum(events) FROM source_layer WHERE layer NOT IN \(Layer.offPathSQL) AND first_time <= ? AND last_time >= ?
                """, arguments: [to, from]) ?? 0
            let maxID = try Int64.fetchOne(db, sql: "SELECT max(id) FROM event") ?? 0
            let step = max(1, maxID / Self.slabSampleSize)
            let sampled = try Int64.fetchAll(db, sql: """
                WITH RECURSIVE ids(i) AS (SELECT ? UNION ALL SELECT i + ? FROM ids WHERE i + ? <= ?)
                SELECT e.time FROM ids JOIN event e ON e.id = ids.i
                WHERE e.time >= ? AND e.time <= ? AND e.layer NOT IN \(Layer.offPathSQL)
                """, arguments: [min(step, maxID), step, step, maxID, from, to])
            return (total, sampled)
        }
        guard total > 0 else { return max(settings.slab, 1) }
        let longest = maxSlab.addingClamped(settings.margin).addingClamped(settings.margin)
        var occupied: Int64 = 0
        var last = from
        for t in sampled.sorted() + [to] {
            let gap = t.subtractingClamped(last)
            if gap <= longest { occupied = occupied.addingClamped(gap) }
            last = t
        }
        let perSlab = Double(max(occupied, 1)) * Double(settings.targetSlabRecords) / Double(total)
        let slab = perSlab < Double(maxSlab) ? Int64(perSlab) : maxSlab
        return max(min(max(slab, settings.slab), maxSlab), 1)
    }

    /// Longest slab `adaptiveSlab` chooses.
    static let maxSlab: Int64 = 6 * 3_600_000_000
    /// Records `adaptiveSlab` samples to find the time they occupy.
    static let slabSampleSize: Int64 = 4096

    /// Where the slabs of `from...to` start: `from`, `from + slab`, … up to `to`, except that a slab
    /// whose window (its core and both margins) would hold no record is not read: the next slab
    /// starts at the next record instead. A slab with an empty window links nothing, and the slabs
    /// on either side of it share no record. Every record still lies in the core of exactly one
    /// slab; where nothing is left out (records without such gaps), the slabs are the grid's, as
    /// before. After a gap, the slabs are cut from the gap's first record, so a group of records is
    /// cut the same way whatever lies decades before it. What this saves is the time span: records
    /// decades apart cost a few index probes, where every slab of the decades between them was
    /// read. One probe of the time index per slab.
    func slabStarts(from: Int64, to: Int64, slab: Int64) throws -> [Int64] {
        let slab = max(slab, 1)
        return try store.read { db in
            let nextTime = try db.cachedStatement(sql: "SELECT min(time) FROM event WHERE time >= ?")
            var starts: [Int64] = []
            var t = from
            while t <= to {
                starts.append(t)
                let following = t.addingClamped(slab)
                guard following <= to, following > t,
                      let record = try Int64.fetchOne(nextTime, arguments: [following.subtractingClamped(settings.margin)]) else { break }
                // The following slab's window reaches the record: read it, on the grid. Else nothing
                // lies in [following - margin, following + slab + margin), and the record is the first
                // at or after `following`: the next slab starts there.
                t = record < following.addingClamped(slab).addingClamped(settings.margin) ? following : record
            }
            return starts
        }
    }

    /// The records of a time span as nodes, ordered by time then id, stepping the SQLite statement
    /// directly: this reads every record of the timeline once per pass, and GRDB's `Row` costs more
    /// than the matching.
    ///
    /// The rows are fetched in id order, not time order: a span's records sit in a few runs of
    /// consecutive ids (one per source file), so id order reads each page once, where time order
    /// hops between files and re-reads pages. The `extra` JSON is read only for the layers that
    /// carry fields matching needs, and only those fields are picked out of it (`flatField`).
    ///
    /// A record's stored chain is looked up only when its id is at most `chainsUpTo` (see `run`:
    /// the links this run makes reach the next slab in memory). Records in `skipping` (from
    /// `copyOnlyRanges`) are never read.
    func loadNodes(from: Int64, to: Int64, chainsUpTo: Int64, skipping: [ClosedRange<Int64>]) throws -> [Node] {
        // Tested on the time index's entries (which hold the id), before any row is read. The
        // bounds are ids from the source table, never log text.
        let skipped = skipping.map { " AND id NOT BETWEEN \($0.lowerBound) AND \($0.upperBound)" }.joined()
        return try store.read { db in
            let statement = try db.cachedStatement(sql: """
                SELECT e.id, e.layer, e.kind, e.time, e.duration, e.client_ip, e.peer_ip, e.method, e.path, e.query,
                       e.status, e.target_status, e.trace_id, e.request_id, substr(e.message, 1, 16),
                       CASE WHEN e.layer IN ('alb', 'apigateway') THEN e.extra END,
                       CASE WHEN e.id <= ? THEN (SELECT l.chain_id FROM link l WHERE l.event_id = e.id) END
                FROM event e
                WHERE e.id IN (SELECT id FROM event WHERE time >= ? AND time < ?\(skipped)) AND \(Self.correlatable)
                ORDER BY e.id
                """)
            statement.setUncheckedArguments([chainsUpTo, from, to])
            let h = statement.sqliteStatement
            defer { sqlite3_reset(h) }
            var nodes: [Node] = []
            while true {
                let rc = sqlite3_step(h)
                if rc == SQLITE_DONE { break }
                guard rc == SQLITE_ROW else {
                    throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(sqlite3_db_handle(h))))
                }
                if let node = Self.node(SQLiteRow(h)) { nodes.append(node) }
            }
            nodes.sort { $0.time != $1.time ? $0.time < $1.time : $0.id < $1.id }
            return nodes
        }
    }

    /// Typed column access on the current row of a stepped statement.
    struct SQLiteRow {
        let h: OpaquePointer?
        init(_ h: OpaquePointer?) { self.h = h }

        func int(_ i: Int32) -> Int64? {
            sqlite3_column_type(h, i) == SQLITE_NULL ? nil : sqlite3_column_int64(h, i)
        }

        func text(_ i: Int32) -> String? {
            guard sqlite3_column_type(h, i) != SQLITE_NULL, let p = sqlite3_column_text(h, i) else { return nil }
            return String(decoding: UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(h, i))), as: UTF8.self)
        }

        /// One string field of a column holding a flat JSON object (an `extra`), without copying the rest.
        func jsonField(_ i: Int32, _ key: String) -> String? {
            guard sqlite3_column_type(h, i) != SQLITE_NULL, let p = sqlite3_column_text(h, i) else { return nil }
            return JSONText.flatField(key, in: UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(h, i))))
        }

    }

    /// Builds a node from a row of `loadNodes`' query (columns by position: this runs per event).
    static func node(_ row: SQLiteRow) -> Node? {
        guard let layerName = row.text(1), let layer = Layer(rawValue: layerName), let time = row.int(3), let kind = row.text(2) else { return nil }
        let path = row.text(8)
        let method = row.text(7)
        let role: Role
        switch (layer, kind) {
        case (.cloudfront, "access"): role = .cloudfront
        case (.waf, "access"): role = .waf
        case (.alb, "access"): role = .alb
        case (.apigateway, "access"): role = .apigateway
        case (.apigateway, _): role = .apigatewayExecution
        case (.nginx, "access"): role = .nginx
        case (.nginx, _): role = .nginxError
        case (.gunicorn, "access"): role = .gunicorn
        case (.app, "access"): role = .appResponse
        case (.app, _):
            role = (method != nil && path != nil && (row.text(14)?.hasPrefix("Request") ?? false)) ? .appRequest : .appLog
        case (.lambda, _): role = .lambda
        default: return nil
        }
        let duration = row.int(4)
        var arrival: Int64?, completion: Int64?
        switch role {
        case .waf, .apigateway, .appRequest: arrival = time
        case .alb:
            completion = time
            arrival = row.jsonField(15, "request_creation_us").flatMap { Int64($0) }
        case .nginx, .gunicorn, .cloudfront:
            completion = time
            if let d = duration, d >= 0 { arrival = time - d }
        case .appResponse: completion = time
        default: break
        }
        return Node(id: row.int(0) ?? 0, role: role, time: time, arrival: arrival, completion: completion, duration: duration,
                    clientIP: row.text(5), peerIP: row.text(6), method: method, path: path, query: row.text(9),
                    status: row.int(10).map(Int.init), targetStatus: row.int(11).map(Int.init), traceID: row.text(12),
                    requestID: row.text(13), extendedRequestID: layer == .apigateway ? row.jsonField(15, "extended_request_id") : nil,
                    lambdaRequestID: layer == .apigateway ? row.jsonField(15, "lambda_request_id") : nil, chain: row.int(16))
    }

    // MARK: - Matching

    struct PairKey: Hashable {
        var outer: Role
        var inner: Role
    }

    /// The hops fuzzy matching tries, outermost first. Which apply depends on the roles present:
    /// each present role is matched to the next present one on its path.
    static let edgePath: [Role] = [.cloudfront, .waf, .alb, .nginx, .gunicorn, .appResponse]
    static let apiPath: [Role] = [.waf, .apigateway]

    func hops(present: Set<Role>) -> [PairKey] {
        var pairs: [PairKey] = []
        for path in [Self.edgePath, Self.apiPath] {
            let here = path.filter(present.contains)
            for i in 0..<max(0, here.count - 1) { pairs.append(PairKey(outer: here[i], inner: here[i + 1])) }
        }
        // Attachments inside one layer or to the request record of the app.
        if present.contains(.nginxError) && present.contains(.nginx) { pairs.append(PairKey(outer: .nginx, inner: .nginxError)) }
        if present.contains(.appRequest) {
            if present.contains(.nginx) { pairs.append(PairKey(outer: .nginx, inner: .appRequest)) }
            if present.contains(.appResponse) { pairs.append(PairKey(outer: .appRequest, inner: .appResponse)) }
        }
        if present.contains(.appLog) {
            if present.contains(.nginx) { pairs.append(PairKey(outer: .nginx, inner: .appLog)) }
            else if present.contains(.appResponse) { pairs.append(PairKey(outer: .appResponse, inner: .appLog)) }
        }
        return pairs
    }

    /// What both records of a hop must share: the path, and the client (or nginx's peer) and the
    /// method where both sides log them. A struct, not a joined string: it is built per record
    /// per hop, and hashing the parts costs less than allocating their concatenation.
    struct BucketKey: Hashable {
        var path: String
        var address: String?
        var method: String?
    }

    /// The bucket both records of a hop must share.
    func bucket(_ n: Node, _ pair: PairKey, asOuter: Bool) -> BucketKey? {
        guard let path = n.path else { return nil }
        var key = BucketKey(path: path)
        let useClient = pair.outer.knowsClient && pair.inner.knowsClient
        if useClient {
            // nginx's error log names its peer (the load balancer), not the client.
            guard let ip = n.clientIP else { return nil }
            key.address = ip
        }
        if pair == PairKey(outer: .nginx, inner: .nginxError) {
            guard let ip = asOuter ? n.peerIP : n.clientIP else { return nil }
            key.address = ip
        }
        let outerHasMethod = pair.outer != .appResponse
        let innerHasMethod = pair.inner != .appResponse && pair.inner != .appLog
        if outerHasMethod && innerHasMethod {
            guard let m = n.method else { return nil }
            key.method = m
        }
        return key
    }

    /// Whether two records' other fields agree (query and status where both have them).
    func compatible(_ o: Node, _ i: Node, _ pair: PairKey) -> Bool {
        if let oq = o.query, let iq = i.query, oq != iq { return false }
        if pair.inner == .nginxError || pair.inner == .appLog || pair.inner == .appRequest || pair.outer == .appRequest { return true }
        let forwarded: Int? = pair.outer == .alb ? o.targetStatus : o.status
        guard let os = forwarded, let inner = i.status else { return true }
        if os == inner { return true }
        // A proxy answers on its own when its upstream failed or the client left.
        if pair.outer == .nginx || pair.outer == .gunicorn { return [499, 502, 503, 504, 413, 408].contains(os) }
        return false
    }

    /// Distance between two records' comparable stamps (µs), after the inner clock's offset, or nil
    /// when they cannot be the same request.
    func distance(_ o: Node, _ i: Node, offset: Int64, window: Int64) -> Int64? {
        if i.role == .nginxError || i.role == .appLog {
            // A message logged while the request was in flight.
            let t = i.time - offset
            let start = (o.arrival ?? (o.completion.map { $0 - settings.maxDuration } ?? o.time)) - window
            let end = (o.completion ?? o.arrival.map { $0 + settings.maxDuration } ?? o.time) + window
            guard t >= start, t <= end else { return nil }
            return o.completion.map { abs($0 - t) } ?? abs(o.time - t)
        }
        if let oa = o.arrival, let ia = i.arrival { let d = abs(ia - offset - oa); return d <= window ? d : nil }
        if let oc = o.completion, let ic = i.completion { let d = abs(ic - offset - oc); return d <= window ? d : nil }
        if let oa = o.arrival, let ic = i.completion {
            let d = ic - offset - oa
            return d >= -window && d <= settings.maxDuration + window ? abs(d) : nil
        }
        if let oc = o.completion, let ia = i.arrival {
            let d = oc - (ia - offset)
            return d >= -window && d <= settings.maxDuration + window ? abs(d) : nil
        }
        let d = abs(i.time - offset - o.time)
        return d <= window ? d : nil
    }

    /// Same-kind stamp difference (inner − outer) for offset estimation, or nil when the two records
    /// have no stamps of the same meaning.
    func stampDifference(_ o: Node, _ i: Node) -> Int64? {
        if let oa = o.arrival, let ia = i.arrival { return ia - oa }
        if let oc = o.completion, let ic = i.completion { return ic - oc }
        return nil
    }

    func collectOffsetSamples(_ nodes: [Node], into samples: inout [PairKey: [Int64]]) {
        let byRole = Dictionary(grouping: nodes, by: \.role)
        for pair in hops(present: Set(byRole.keys)) where pair.inner != .nginxError && pair.inner != .appLog {
            guard let outers = byRole[pair.outer], let inners = byRole[pair.inner] else { continue }
            var innerBuckets: [BucketKey: [Node]] = [:]
            for n in inners { if let k = bucket(n, pair, asOuter: false) { innerBuckets[k, default: []].append(n) } }
            var outerCount: [BucketKey: Int] = [:]
            for n in outers { if let k = bucket(n, pair, asOuter: true) { outerCount[k, default: 0] += 1 } }
            for o in outers {
                guard let k = bucket(o, pair, asOuter: true), let candidates = innerBuckets[k] else { continue }
                // Unambiguous only: one record of each side in this bucket within the wide window.
                guard outerCount[k] == 1 else { continue }
                let near = candidates.filter { compatible(o, $0, pair) && distance(o, $0, offset: 0, window: settings.offsetWindow) != nil }
                guard near.count == 1, let d = stampDifference(o, near[0]) else { continue }
                if samples[pair, default: []].count < 20_000 { samples[pair, default: []].append(d) }
            }
        }
    }

    /// Links decided for one slab: groups of node indices, each with the key that joined them.
    struct Plan {
        var unions: [(Int, Int, String, Double)] = []
        var ambiguous: [(Int, [Int64], String)] = []
    }

    func linkPlan(_ nodes: [Node], offsets: [PairKey: Int64], core: Range<Int64>) -> Plan {
        var plan = Plan()
        // Identifier keys, each in the space of ids it can equal (a struct: no string is built per record).
        struct IDKey: Hashable {
            enum Space: UInt8 { case trace, apigwRequest, lambdaRequest, extendedRequest, nginxRequest, edgeRequest }
            var space: Space
            var value: String
        }
        var firstByKey: [IDKey: Int] = [:]
        func joinID(_ space: IDKey.Space, _ value: String?, _ index: Int, _ label: String, _ confidence: Double) {
            guard let value, !value.isEmpty, value != "-" else { return }
            let key = IDKey(space: space, value: value)
            if let other = firstByKey[key] { plan.unions.append((other, index, label, confidence)) } else { firstByKey[key] = index }
        }
        for (index, n) in nodes.enumerated() {
            joinID(.trace, n.traceID, index, "trace_id", 1.0)
            if n.role == .apigateway || n.role == .apigatewayExecution || n.role == .lambda {
                joinID(n.role == .lambda ? .lambdaRequest : .apigwRequest, n.requestID, index, "request_id", 0.98)
            }
            joinID(.extendedRequest, n.extendedRequestID, index, "extended_request_id", 0.98)
            if n.role == .waf { joinID(.extendedRequest, n.requestID, index, "extended_request_id", 0.98) }
            // CloudFront's x-edge-request-id is the `httpRequest.requestId` of the WAF record of a
            // web ACL on that distribution (AWS WAF logging fields: "For all others, this is the
            // request ID"; CloudFront: "x-edge-request-id … in the response header, x-amz-cf-id").
            if n.role == .waf || n.role == .cloudfront { joinID(.edgeRequest, n.requestID, index, "x_edge_request_id", 0.98) }
            joinID(.lambdaRequest, n.lambdaRequestID, index, "lambda_request_id", 0.98)
            if n.role == .nginx || n.role == .appRequest || n.role == .appResponse || n.role == .appLog {
                joinID(.nginxRequest, n.requestID, index, "request_id", 0.95)
            }
        }

        // Fuzzy hops, mutual best within the tolerance.
        var indicesByRole: [Role: [Int]] = [:]
        for (i, n) in nodes.enumerated() { indicesByRole[n.role, default: []].append(i) }
        let taken = matchNginxToApp(nodes, indicesByRole, offsets: offsets, core: core, plan: &plan)
        let appRoles: Set<Role> = [.appRequest, .appResponse]
        for pair in hops(present: Set(indicesByRole.keys)) {
            guard var outers = indicesByRole[pair.outer], var inners = indicesByRole[pair.inner] else { continue }
            // Records the joint nginx↔app match settled are not offered again to the same hops.
            if (pair.outer == .nginx && appRoles.contains(pair.inner)) || (pair.outer == .appRequest && pair.inner == .appResponse) {
                outers = outers.filter { !taken.contains($0) }
                inners = inners.filter { !taken.contains($0) }
            }
            let offset = offsets[pair] ?? 0
            var innerBuckets: [BucketKey: [Int]] = [:]
            for i in inners { if let k = bucket(nodes[i], pair, asOuter: false) { innerBuckets[k, default: []].append(i) } }
            var outerBuckets: [BucketKey: [Int]] = [:]
            // Buckets and candidates come out of dictionaries in a per-process random order; this
            // hop's decisions are collected and added in index order, so runs are reproducible
            // (an earlier union can block a later one on a singular role).
            var hop = Plan()
            for o in outers { if let k = bucket(nodes[o], pair, asOuter: true) { outerBuckets[k, default: []].append(o) } }
            let singularInner = pair.inner.isSingular
            let strength = (pair.outer.knowsClient && pair.inner.knowsClient) ? 0.9 : 0.75
            for (k, os) in outerBuckets {
                guard let isx = innerBuckets[k] else { continue }
                if os.count == 1 && isx.count == 1 {
                    // The usual bucket, one record a side: no rival either way, so the general
                    // path below would link them exactly when they are compatible and in reach.
                    let o = os[0], i = isx[0]
                    guard abs(nodes[i].time - anchor(nodes[o], nodes[i])) <= reach(nodes[o], nodes[i], pair, offset: offset), compatible(nodes[o], nodes[i], pair),
                          let d = distance(nodes[o], nodes[i], offset: offset, window: settings.tolerance) else { continue }
                    hop.unions.append((o, i, "client+method+path+time", fuzzyConfidence(d, strength: strength)))
                    continue
                }
                // Candidate distances, both ways.
                var bestForOuter: [Int: [(Int, Int64)]] = [:]
                var bestForInner: [Int: [(Int, Int64)]] = [:]
                // Inner records by time: each outer record looks only at those that can be in reach.
                let sortedInner = isx.sorted { nodes[$0].time < nodes[$1].time }
                let span = reach(nodes[os[0]], nodes[sortedInner[0]], pair, offset: offset)
                for o in os {
                    let at = anchor(nodes[o], nodes[sortedInner[0]])
                    var k = Self.lowerBound(sortedInner, at - span) { nodes[$0].time }
                    while k < sortedInner.count, nodes[sortedInner[k]].time <= at + span {
                        let i = sortedInner[k]
                        k += 1
                        guard compatible(nodes[o], nodes[i], pair) else { continue }
                        guard let d = distance(nodes[o], nodes[i], offset: offset, window: settings.tolerance) else { continue }
                        bestForOuter[o, default: []].append((i, d))
                        bestForInner[i, default: []].append((o, d))
                    }
                }
                for (o, candidates) in bestForOuter {
                    let sorted = candidates.sorted { $0.1 < $1.1 }
                    let best = sorted[0]
                    if singularInner, sorted.count > 1, sorted[1].1 - best.1 < settings.ambiguityMargin {
                        if core.contains(nodes[best.0].time) || core.contains(nodes[o].time) {
                            let tied = sorted.prefix { $0.1 - best.1 < settings.ambiguityMargin }
                            // The inner records are the ambiguous ones: several fit this outer record.
                            for t in tied where nodes[t.0].chain == nil {
                                hop.ambiguous.append((t.0, tied.map { nodes[$0.0].id } + [nodes[o].id],
                                                       "\(tied.count) \(pair.inner.rawValue) records fit one \(pair.outer.rawValue) record equally"))
                            }
                        }
                        continue
                    }
                    // Mutual: this outer must also be the inner's clear best.
                    let back = (bestForInner[best.0] ?? []).sorted { $0.1 < $1.1 }
                    guard let first = back.first, first.0 == o else { continue }
                    if back.count > 1, back[1].1 - first.1 < settings.ambiguityMargin, pair.outer.isSingular {
                        if nodes[best.0].chain == nil, core.contains(nodes[best.0].time) {
                            hop.ambiguous.append((best.0, back.prefix(2).map { nodes[$0.0].id },
                                                   "\(pair.inner.rawValue) record fits two \(pair.outer.rawValue) records equally"))
                        }
                        continue
                    }
                    hop.unions.append((o, best.0, "client+method+path+time", fuzzyConfidence(best.1, strength: strength)))
                }
            }
            plan.unions += hop.unions.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
            plan.ambiguous += hop.ambiguous.sorted { a, b in
                a.0 != b.0 ? a.0 < b.0 : a.2 != b.2 ? a.2 < b.2 : a.1.lexicographicallyPrecedes(b.1)
            }
        }
        return plan
    }

    /// The outer record's stamp to look for the inner record's `time` around: its arrival when the
    /// inner record is stamped at arrival (an app's `Request:` line, a minute before nginx logged
    /// the end of a long request), its completion when the inner one is stamped at completion.
    /// A record's `time` is its arrival or its completion, so the two then mean the same moment.
    func anchor(_ o: Node, _ i: Node) -> Int64 {
        if let ia = i.arrival, ia == i.time, let oa = o.arrival { return oa }
        if let ic = i.completion, ic == i.time, let oc = o.completion { return oc }
        return o.time
    }

    /// How far apart (µs) the stamps of a hop's two records can be and still be one request: with
    /// stamps of the same meaning (arrival with arrival, completion with completion) little more
    /// than the tolerance and the offset; otherwise a whole request's duration too. The first
    /// records of a bucket stand for all of it (one layer's records carry the same stamps).
    func reach(_ o: Node, _ i: Node, _ pair: PairKey, offset: Int64) -> Int64 {
        let sameMeaning = (o.arrival != nil && i.arrival != nil) || (o.completion != nil && i.completion != nil)
        return (sameMeaning && pair.inner != .nginxError && pair.inner != .appLog ? 0 : settings.maxDuration)
            + 2 * settings.tolerance + abs(offset) + 1_000_000
    }

    /// A fuzzy link's confidence: the key's strength, less up to a fifth as the stamps drift apart.
    func fuzzyConfidence(_ distance: Int64, strength: Double) -> Double {
        strength * (1.0 - Double(distance) / Double(max(settings.tolerance, 1)) * 0.2)
    }

    /// nginx ↔ the app's Request and Response lines, matched as one triple. nginx stamps whole
    /// seconds, so concurrent requests for one path tie on time; but `$request_time` and the app's
    /// Request→Response duration are both millisecond-precise, and differ from request to request.
    /// Returns the indices it linked.
    func matchNginxToApp(_ nodes: [Node], _ byRole: [Role: [Int]], offsets: [PairKey: Int64], core: Range<Int64>,
                         plan: inout Plan) -> Set<Int> {
        guard let nginxes = byRole[.nginx], let responses = byRole[.appResponse], let requests = byRole[.appRequest] else { return [] }
        let respOffset = offsets[PairKey(outer: .nginx, inner: .appResponse)] ?? 0
        let reqOffset = offsets[PairKey(outer: .nginx, inner: .appRequest)] ?? 0
        var responsesByPath: [String: [Int]] = [:]
        for r in responses { if let p = nodes[r].path { responsesByPath[p, default: []].append(r) } }
        var requestsByPath: [String: [Int]] = [:]
        for q in requests { if let p = nodes[q].path { requestsByPath[p, default: []].append(q) } }
        for k in requestsByPath.keys { requestsByPath[k]!.sort { nodes[$0].time < nodes[$1].time } }

        for k in responsesByPath.keys { responsesByPath[k]!.sort { nodes[$0].time < nodes[$1].time } }
        struct Triple { var n: Int; var q: Int; var r: Int; var score: Int64 }
        var triples: [Triple] = []
        let second: Int64 = 1_000_000
        let responsePair = PairKey(outer: .nginx, inner: .appResponse)
        for n in nginxes {
            guard let path = nodes[n].path, let done = nodes[n].completion, let rs = responsesByPath[path] else { continue }
            let truncated = done % second == 0
            let slack = truncated ? second : 0
            let rt = nodes[n].duration
            // Responses whose (offset-corrected) time falls in nginx's completion window.
            let lo = Self.lowerBound(rs, done - settings.tolerance + respOffset) { nodes[$0].time }
            var ri = lo
            while ri < rs.count, nodes[rs[ri]].time <= done + slack + settings.tolerance + respOffset {
                let r = rs[ri]
                ri += 1
                guard compatible(nodes[n], nodes[r], responsePair) else { continue }
                let respTime = nodes[r].time
                guard let qs = requestsByPath[path] else { continue }
                // Requests near nginx's arrival (completion − $request_time), or before the response.
                let qFrom = rt.map { done - $0 - settings.tolerance + reqOffset } ?? respTime - settings.maxDuration
                var qi = Self.lowerBound(qs, qFrom) { nodes[$0].time }
                while qi < qs.count, nodes[qs[qi]].time <= respTime {
                    let q = qs[qi]
                    qi += 1
                    if let m = nodes[n].method, let rm = nodes[q].method, m != rm { continue }
                    let appDuration = respTime - nodes[q].time
                    guard appDuration <= settings.maxDuration else { continue }
                    let score: Int64
                    if let rt {
                        // nginx's time includes the app's plus a little proxying.
                        guard appDuration <= rt + 50_000 else { continue }
                        let qa = nodes[q].time - reqOffset
                        guard qa <= done - rt + slack + settings.tolerance else { continue }
                        score = abs(rt - appDuration)
                    } else {
                        score = abs(respTime - respOffset - done)
                    }
                    triples.append(Triple(n: n, q: q, r: r, score: score))
                }
            }
        }
        // A record whose two best triples (with different partners) are this close is ambiguous.
        let margin: Int64 = 2_000
        var bestOf: [Int: [Triple]] = [:]
        for t in triples { for key in [t.n, t.q, t.r] { bestOf[key, default: []].append(t) } }
        func clear(_ t: Triple, _ key: Int) -> Bool {
            let others = (bestOf[key] ?? []).filter { !($0.n == t.n && $0.q == t.q && $0.r == t.r) }
            // Ties only matter with a different record in the other roles.
            return !others.contains { o in o.score - t.score < margin && (o.n != t.n || o.r != t.r) }
        }
        var used = Set<Int>()
        var taken = Set<Int>()
        for t in triples.sorted(by: { ($0.score, $0.n, $0.r, $0.q) < ($1.score, $1.n, $1.r, $1.q) }) {
            guard !used.contains(t.n), !used.contains(t.q), !used.contains(t.r) else { continue }
            guard clear(t, t.n), clear(t, t.r) else {
                if nodes[t.n].chain == nil, core.contains(nodes[t.n].time) {
                    plan.ambiguous.append((t.n, [nodes[t.r].id, nodes[t.q].id], "several app Request/Response pairs fit one nginx record equally"))
                }
                used.insert(t.n)
                continue
            }
            used.formUnion([t.n, t.q, t.r])
            taken.formUnion([t.n, t.q, t.r])
            plan.unions.append((t.n, t.r, "client+method+path+time", 0.85))
            plan.unions.append((t.n, t.q, "client+method+path+time", 0.85))
        }
        return taken
    }

    /// First index in `sorted` whose key is at least `value`.
    static func lowerBound(_ sorted: [Int], _ value: Int64, key: (Int) -> Int64) -> Int {
        var lo = 0, hi = sorted.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if key(sorted[mid]) < value { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    // MARK: - Applying

    /// What one slab's plan changes in the tables, decided in memory (on the matching thread) and
    /// stored afterwards by the thread that owns the connection.
    struct Resolution {
        /// New chains, with ids assigned here (the connection is this run's only writer).
        var chains: [(id: Int64, summary: ChainSummary)] = []
        /// New links, in event-id order (the link table's key).
        var links: [(event: Int64, chain: Int64, key: String, confidence: Double)] = []
        /// Stored chains joined by an identifier: `other`'s links move to `keep`, and it goes.
        var merges: [(keep: Int64, other: Int64)] = []
        var ambiguous: [(event: Int64, candidates: String, reason: String)] = []
        /// Stored chains that gained records: their summaries are recomputed once the links are in.
        var resummarise: [Int64] = []
        var nextChainID: Int64

        /// Gives records of the next slab, read before this one was stored, the chains this one
        /// gave them or merged theirs into.
        func patch(_ nodes: [Node]) {
            guard !links.isEmpty || !merges.isEmpty else { return }
            var chainOf = [Int64: Int64](minimumCapacity: links.count)
            for link in links { chainOf[link.event] = link.chain }
            let renamed = Dictionary(merges.map { ($0.other, $0.keep) }, uniquingKeysWith: { a, _ in a })
            for node in nodes {
                if let chain = node.chain {
                    if let keep = renamed[chain] { node.chain = keep }
                } else if let chain = chainOf[node.id] {
                    node.chain = chain
                }
            }
        }
    }

    /// Turns a slab's plan into chains and links: the unions are applied (at most one record of a
    /// singular role per chain; two stored chains joined only on an identifier), each component
    /// that gained a record becomes or extends a chain.
    func resolve(_ plan: Plan, nodes: [Node], core: Range<Int64>, firstChainID: Int64) -> Resolution {
        var result = Resolution(nextChainID: firstChainID)
        var parent = Array(0..<nodes.count)
        func find(_ x: Int) -> Int {
            var r = x
            while parent[r] != r { r = parent[r] }
            var c = x
            while parent[c] != r { let next = parent[c]; parent[c] = r; c = next }
            return r
        }
        // Per node index, kept at the component's root: the roles present (a bit per role, to keep
        // at most one record of a singular role per chain) and whether it holds a stored chain.
        // Arrays, not dictionaries: a slab holds tens of thousands of nodes and this runs per union.
        var roles = nodes.map(\.role.bit)
        var rootHasChain = nodes.map { $0.chain != nil }
        // Records of one stored chain start as one component: its roles count against fuzzy
        // matches, and two components can never both claim (and merge away) the same chain.
        var firstOfChain: [Int64: Int] = [:]
        for (i, n) in nodes.enumerated() {
            guard let chain = n.chain else { continue }
            if let first = firstOfChain[chain] {
                let ra = find(first), rb = find(i)
                if ra != rb { parent[rb] = ra; roles[ra] |= roles[rb] }
            } else {
                firstOfChain[chain] = i
            }
        }
        var keyOf = [(key: String, confidence: Double)?](repeating: nil, count: nodes.count)
        for (a, b, key, confidence) in plan.unions {
            let ra = find(a), rb = find(b)
            if ra == rb { continue }
            let ia = roles[ra], ib = roles[rb]
            if key == "client+method+path+time", ia & ib & Role.singularBits != 0 { continue }
            // Two chains already stored are merged only on an identifier, never on a fuzzy match.
            if key == "client+method+path+time", rootHasChain[ra], rootHasChain[rb] { continue }
            parent[rb] = ra
            roles[ra] = ia | ib
            if rootHasChain[rb] { rootHasChain[ra] = true }
            for x in [a, b] where keyOf[x] == nil || keyOf[x]!.confidence < confidence { keyOf[x] = (key, confidence) }
        }
        // Components in order of their earliest member, members ascending (deterministic chain ids);
        // records linked to nothing are left out here (see below).
        var size = [Int32](repeating: 0, count: nodes.count)
        for i in nodes.indices { size[find(i)] += 1 }
        var componentOfRoot = [Int](repeating: -1, count: nodes.count)
        var ordered: [[Int]] = []
        for i in nodes.indices {
            let r = find(i)
            guard size[r] >= 2 else { continue }
            if componentOfRoot[r] < 0 {
                componentOfRoot[r] = ordered.count
                ordered.append([i])
            } else {
                ordered[componentOfRoot[r]].append(i)
            }
        }

        for a in plan.ambiguous where size[find(a.0)] == 1 { // else linked by an identifier after all
            let candidates = "[" + a.1.map(String.init).joined(separator: ",") + "]"
            result.ambiguous.append((nodes[a.0].id, candidates, a.2))
        }

        for members in ordered {
            let unlinked = members.filter { nodes[$0].chain == nil }
            guard !unlinked.isEmpty else { continue }
            // Wholly in the forward margin: the next slab sees its full neighbourhood and decides.
            guard members.contains(where: { nodes[$0].time < core.upperBound }) else { continue }
            // A record linked to nothing (a component of one, left out above) stays out of the
            // chain tables: it is its own request (queries treat an unlinked access record as a
            // chain of one), and millions of single-layer records cost nothing to correlate.
            let existing = Set(members.compactMap { nodes[$0].chain }).sorted()
            let chainID: Int64
            if let keep = existing.first {
                chainID = keep
                for other in existing.dropFirst() { result.merges.append((keep, other)) }
                result.resummarise.append(keep)
            } else {
                // A new chain is stored with its summary from the records in hand (no query per chain).
                chainID = result.nextChainID
                result.nextChainID += 1
                result.chains.append((chainID, Self.summary(members.map { nodes[$0] })))
            }
            for m in unlinked {
                let (key, confidence) = keyOf[m] ?? (key: "member", confidence: 0.5)
                result.links.append((nodes[m].id, chainID, key, confidence))
            }
        }
        result.links.sort { $0.event < $1.event }
        return result
    }

    /// Stores one slab's resolution.
    static func store(_ r: Resolution, db: Database) throws {
        let insertAmbiguous = try BoundStatement(db.cachedStatement(sql: """
            INSERT OR REPLACE INTO ambiguous (event_id, candidates, reason) VALUES (?,?,?)
            """))
        for a in r.ambiguous {
            insertAmbiguous.bind(1, a.event)
            insertAmbiguous.bind(2, a.candidates)
            insertAmbiguous.bind(3, a.reason)
            try insertAmbiguous.run()
        }
        for merge in r.merges {
            try db.execute(sql: "UPDATE link SET chain_id = ? WHERE chain_id = ?", arguments: [merge.keep, merge.other])
            try db.execute(sql: "DELETE FROM chain WHERE id = ?", arguments: [merge.other])
        }
        // OR FAIL for the reason `EventWriter` gives: under ABORT, each multi-row statement first
        // copied the pages it touched into a statement journal.
        try MultiRowInsert(db, "INSERT OR FAIL INTO chain (id, first_time, last_time, client_ip, method, path, status, layers) VALUES",
                           columns: 8).insert(r.chains) { statement, first, chain in
            statement.bind(first, chain.id)
            statement.bind(first + 1, chain.summary.first)
            statement.bind(first + 2, chain.summary.last)
            statement.bind(first + 3, chain.summary.client)
            statement.bind(first + 4, chain.summary.method)
            statement.bind(first + 5, chain.summary.path)
            statement.bind(first + 6, chain.summary.status.map(Int64.init))
            statement.bind(first + 7, chain.summary.layers)
        }
        try MultiRowInsert(db, "INSERT OR IGNORE INTO link (event_id, chain_id, key, confidence) VALUES",
                           columns: 4).insert(r.links) { statement, first, link in
            statement.bind(first, link.event)
            statement.bind(first + 1, link.chain)
            statement.bind(first + 2, link.key)
            statement.bind(first + 3, link.confidence)
        }
        // Chains that grew are summarised again from all their records, once their links are in.
        for chainID in r.resummarise { try summarise(chainID, db: db) }
    }

    /// After all slabs: copies (the same line in syslog and in the app's file) follow their
    /// original into its chain, and records linked after all leave the ambiguous list.
    static func finishRun(_ db: Database) throws {
        // Copies live only in syslog sources: read their id ranges, not the whole timeline.
        try db.execute(sql: """
            INSERT OR IGNORE INTO link (event_id, chain_id, key, confidence)
            SELECT e.id, l.chain_id, 'copy', 1.0
            FROM source s JOIN event e ON e.id BETWEEN s.first_event_id AND s.last_event_id
            JOIN link l ON l.event_id = e.copy_of
            WHERE s.id IN (\(CopyLinker.copySources)) AND e.copy_of IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM link x WHERE x.event_id = e.id)
            """)
        // Per ambiguous record (few), not per link (millions): `IN (SELECT event_id FROM link)`
        // walked the whole link table.
        try db.execute(sql: "DELETE FROM ambiguous WHERE EXISTS (SELECT 1 FROM link l WHERE l.event_id = ambiguous.event_id)")
    }

    struct ChainSummary {
        var first: Int64?, last: Int64?
        var client: String?, method: String?, path: String?
        var status: Int?
        var layers: String
    }

    /// A new chain's summary from the records in hand: the status the client got is the outermost
    /// layer's answer.
    static func summary(_ members: [Node]) -> ChainSummary {
        let sorted = members.sorted { $0.role.layer < $1.role.layer }
        let access: Set<Role> = [.cloudfront, .waf, .alb, .apigateway, .nginx, .gunicorn, .appResponse]
        let times = members.map(\.time)
        var layers: [Layer] = []
        for n in sorted where !layers.contains(n.role.layer) { layers.append(n.role.layer) }
        return ChainSummary(first: times.min(), last: times.max(),
                            client: sorted.lazy.filter { access.contains($0.role) }.compactMap(\.clientIP).first,
                            method: sorted.lazy.compactMap(\.method).first, path: sorted.lazy.compactMap(\.path).first,
                            status: sorted.lazy.filter { access.contains($0.role) }.compactMap(\.status).first,
                            layers: layers.map(\.rawValue).joined(separator: ","))
    }

    /// Refreshes a chain's summary columns from its records: the status the client got is the
    /// outermost layer's answer.
    static func summarise(_ chainID: Int64, db: Database) throws {
        let rows = try Row.fetchAll(db, sql: """
            SELECT e.layer, e.kind, e.time, e.client_ip, e.method, e.path, e.status FROM event e
            JOIN link l ON l.event_id = e.id WHERE l.chain_id = ?
            """, arguments: [chainID])
        guard !rows.isEmpty else { return }
        let sorted = rows.sorted { (Layer(rawValue: $0["layer"]) ?? .system) < (Layer(rawValue: $1["layer"]) ?? .system) }
        let access = sorted.filter { ($0["kind"] as String) == "access" }
        let times = rows.compactMap { $0["time"] as Int64? }
        let client = access.lazy.compactMap { $0["client_ip"] as String? }.first
        let method = sorted.lazy.compactMap { $0["method"] as String? }.first
        let path = sorted.lazy.compactMap { $0["path"] as String? }.first
        let status = access.lazy.compactMap { $0["status"] as Int? }.first
        let layers = Array(Set(rows.map { $0["layer"] as String })).sorted {
            (Layer(rawValue: $0) ?? .system) < (Layer(rawValue: $1) ?? .system)
        }.joined(separator: ",")
        try db.execute(sql: """
            UPDATE chain SET first_time = ?, last_time = ?, client_ip = ?, method = ?, path = ?, status = ?, layers = ? WHERE id = ?
            """, arguments: [times.min(), times.max(), client, method, path, status, layers, chainID])
    }
}
