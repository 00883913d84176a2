import Foundation
import GRDB
import GRDBSQLite

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

    /// SQL condition selecting the records correlation considers, on `event_data` row `e`
    /// (`EventData`: layer and kind compared as codes or names).
    static let correlatable: String = {
        func layer(_ names: [String]) -> String { EventData.codeIn("layer", of: "e", names) }
        func kind(_ name: String) -> String { EventData.codeIn("kind", of: "e", [name]) }
        return """
            e.copy_of IS NULL AND e.time IS NOT NULL AND (
                (\(kind("access")) AND \(layer(["cloudfront", "waf", "alb", "apigateway", "nginx", "gunicorn", "app"])))
             OR (\(kind("log")) AND (e.request_id IS NOT NULL OR e.trace_id IS NOT NULL)
                                  AND \(layer(["apigateway", "lambda", "nginx", "app", "gunicorn"])))
             OR (\(kind("log")) AND \(layer(["nginx", "app"])) AND e.path IS NOT NULL))
            """
    }()


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
        //
        // While no record has a chain yet (a fresh working set, a first load), pass 2 would read
        // exactly what this pass reads, so the slabs read here are kept for it, up to
        // a slab's worth of records (memory stays what two slabs take): a question's window is read
        // once instead of twice.
        let noChainsYet = try store.read { db in try !(Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM link)") ?? false) }
        var kept: [Int64: [Node]] = [:]
        var keptCount = 0
        var samples: [PairKey: [Int64]] = [:]
        for t in starts {
            let nodes = try loadNodes(from: window(t).from, to: window(t).to, chainsUpTo: -1, skipping: skipped)
            collectOffsetSamples(nodes, into: &samples)
            if noChainsYet, keptCount + nodes.count <= settings.targetSlabRecords {
                kept[t] = nodes
                keptCount += nodes.count
            }
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
        // Pass 1's nodes are new objects nobody else holds; each is used once.
        func readSlab(_ t: Int64) throws -> [Node] {
            if let nodes = kept.removeValue(forKey: t) { return nodes }
            return try loadNodes(from: window(t).from, to: window(t).to, chainsUpTo: chainsUpTo, skipping: skipped)
        }
        var nodes = try timed(\.load) { try readSlab(starts[0]) }
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
            nodes = k + 1 < starts.count ? try timed(\.load) { try readSlab(starts[k + 1]) } : []
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
                SELECT \(Schema.restored("layer", of: "e")) AS layer, \(Schema.restored("kind", of: "e")) AS kind, ids FROM (
                    SELECT e.layer, e.kind, count(e.trace_id) + count(e.request_id) AS ids FROM event_data e
                    WHERE e.time >= ? AND e.time < ? AND \(Self.correlatable) GROUP BY e.layer, e.kind) e
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
}
