import Foundation
import GRDB

/// What `investigate timeline` shows: filters over the merged, correlated timeline.
public struct TimelineQuery: Sendable {
    public var from: Int64
    public var to: Int64
    public var clientIP: String?
    /// A request id or trace id (with or without `Root=`), of any layer.
    public var requestID: String?
    public var layer: Layer?
    public var status: StatusFilter?
    /// Most chains shown (newest dropped first); the output says when it cut.
    public var limit: Int = 5000
    /// Only records of these sources (the files under the PATHs given); nil: the whole database.
    public var sources: SourceScope?

    public init(from: Int64, to: Int64) {
        self.from = from
        self.to = to
    }
}

/// `403`, `4xx`, `5xx`: a status code or a class.
public enum StatusFilter: Sendable, Equatable, CustomStringConvertible {
    case code(Int)
    case family(Int)

    public init?(_ text: String) {
        let t = text.lowercased()
        if t.count == 3, t.hasSuffix("xx"), let d = Int(t.prefix(1)), (1...5).contains(d) { self = .family(d) }
        else if let v = Int(t), (100...599).contains(v) { self = .code(v) }
        else { return nil }
    }

    public func matches(_ status: Int?) -> Bool {
        guard let status else { return false }
        switch self {
        case .code(let c): return status == c
        case .family(let f): return status / 100 == f
        }
    }

    /// SQL condition on a status column.
    func sql(_ column: String) -> String {
        switch self {
        case .code(let c): return "\(column) = \(c)"
        case .family(let f): return "\(column) BETWEEN \(f * 100) AND \(f * 100 + 99)"
        }
    }

    public var description: String {
        switch self {
        case .code(let c): return String(c)
        case .family(let f): return "\(f)xx"
        }
    }
}

/// One request's records (or one unlinked record), in time order.
public struct ChainView: Sendable {
    public struct Member: Sendable {
        public var event: StoredEvent
        public var source: String
        public var key: String?
        public var confidence: Double?
    }

    public var chainID: Int64?
    public var members: [Member]

    public var first: Int64? { members.compactMap(\.event.event.time).min() }
    public var layers: [Layer] { Array(Set(members.map(\.event.event.layer))).sorted() }

    /// The status the client got: the outermost access record's.
    public var status: Int? {
        members.filter { $0.event.event.kind == .access }
            .sorted { $0.event.event.layer < $1.event.event.layer }
            .lazy.compactMap(\.event.event.status).first
    }

    public var clientIP: String? {
        members.filter { $0.event.event.kind == .access }.sorted { $0.event.event.layer < $1.event.event.layer }
            .lazy.compactMap(\.event.event.clientIP).first
    }
    public var method: String? { members.lazy.compactMap(\.event.event.method).first }
    public var path: String? { members.lazy.compactMap(\.event.event.path).first }
}

public enum TimelineView {
    /// Chains with at least one record in the window that matches the filters, each with all its
    /// records (also those just outside the window), ordered by their first record.
    public static func build(_ store: TimelineStore, _ q: TimelineQuery) throws -> (chains: [ChainView], truncated: Bool) {
        if q.clientIP != nil { store.ensureIndexes(Schema.ipIndexes) }
        if q.requestID != nil { store.ensureIndexes(Schema.idIndexes) }
        return try store.scoped(q.sources) { try store.read { db in
            var conditions = ["e.time >= ?", "e.time < ?", "e.copy_of IS NULL"]
            var args: [DatabaseValueConvertible] = [q.from, q.to]
            if let ip = q.clientIP {
                // `stored_peer_ip` is x'' where the peer is the client (`Schema.sameAsClientColumns`),
                // which `client_ip = ?` covers; as stored, it can use the `(peer_ip, time)` index.
                conditions.append("(e.client_ip = ? OR e.stored_peer_ip = ?)")
                args += [ip, ip]
            }
            if let id = q.requestID {
                let bare = id.hasPrefix("Root=") ? String(id.dropFirst(5)) : id
                // The records naming the id, found through the id indexes (`Schema.idIndexes`) and,
                // for API Gateway's extended and Lambda request ids (in `extra`), in the API
                // Gateway sources only: one condition with all four scanned the whole span.
                var ids = try Int64.fetchAll(db, sql: """
                    SELECT id FROM event WHERE request_id = ? UNION SELECT id FROM event WHERE trace_id = ?
                    """, arguments: [bare, bare])
                for range in try Row.fetchAll(db, sql: """
                    SELECT s.first_event_id AS lo, s.last_event_id AS hi FROM source s JOIN source_layer sl ON sl.source_id = s.id
                    WHERE sl.layer = 'apigateway' AND s.first_event_id IS NOT NULL
                    """) {
                    ids += try Int64.fetchAll(db, sql: """
                        SELECT id FROM event WHERE id BETWEEN ? AND ?
                          AND (json_extract(extra, '$.extended_request_id') = ? OR json_extract(extra, '$.lambda_request_id') = ?)
                        """, arguments: [range["lo"] as Int64, range["hi"] as Int64, bare, bare])
                }
                conditions.append("e.id IN (SELECT value FROM json_each(?))")
                args.append("[" + Set(ids).sorted().map(String.init).joined(separator: ",") + "]")
            }
            if let layer = q.layer {
                conditions.append("e.layer = ?")
                args.append(layer.rawValue)
            }
            if let status = q.status { conditions.append(status.sql("e.status")) }
            let rows = try Row.fetchAll(db, sql: """
                SELECT e.id, l.chain_id FROM event e LEFT JOIN link l ON l.event_id = e.id
                WHERE \(conditions.joined(separator: " AND ")) ORDER BY e.time, e.id
                """, arguments: StatementArguments(args))
            var chainIDs: [Int64] = []
            var seenChains = Set<Int64>()
            var loose: [Int64] = []
            for row in rows {
                if let c: Int64 = row["chain_id"] {
                    if seenChains.insert(c).inserted { chainIDs.append(c) }
                } else {
                    loose.append(row["id"])
                }
            }
            if let ip = q.clientIP, q.requestID == nil, q.layer == nil, q.status == nil {
                // A GuardDuty finding about this client counts when it was active in the window:
                // first seen (`alt_time`) before its end, last seen (`time`) after its start. Read
                // from the findings' own sources: an OR on the time condition above made SQLite
                // scan the whole timeline (1.9 s instead of 0.05 s on 4.8M events).
                let known = Set(loose)
                for e in try StoredEvent.fetchAll(db, format: "guardduty-findings", kind: "finding",
                                                  where: "time >= ? AND alt_time < ? AND (client_ip = ? OR stored_peer_ip = ?)", [q.from, q.to, ip, ip])
                where !known.contains(e.id) { loose.append(e.id) }
            }
            let truncated = chainIDs.count + loose.count > q.limit
            let sources = try SourceIndex.load(db)
            var views: [ChainView] = []
            for c in chainIDs.prefix(q.limit) {
                let links = try Row.fetchAll(db, sql: "SELECT event_id, key, confidence FROM link WHERE chain_id = ?", arguments: [c])
                var keyOf: [Int64: (String, Double)] = [:]
                for l in links { keyOf[l["event_id"]] = (l["key"], l["confidence"]) }
                let events = try StoredEvent.fetch(db, ids: links.map { $0["event_id"] })
                views.append(ChainView(chainID: c, members: events.map {
                    ChainView.Member(event: $0, source: sources.path($0.sourceID), key: keyOf[$0.id]?.0, confidence: keyOf[$0.id]?.1)
                }))
            }
            let looseEvents = try StoredEvent.fetch(db, ids: Array(loose.prefix(max(0, q.limit - views.count))))
            for e in looseEvents {
                views.append(ChainView(chainID: nil, members: [ChainView.Member(event: e, source: sources.path(e.sourceID), key: nil, confidence: nil)]))
            }
            views.sort { ($0.first ?? 0, $0.chainID ?? Int64.max, $0.members.first?.event.id ?? 0) < ($1.first ?? 0, $1.chainID ?? Int64.max, $1.members.first?.event.id ?? 0) }
            return (views, truncated)
        } }
    }

    /// The terminal rendering: one block per chain, records tagged with layer and `source:line`.
    public static func render(_ chains: [ChainView], zone: ZoneSpec, truncated: Bool, width: Int = 220) -> String {
        var out = ""
        for chain in chains {
            var head = [chain.clientIP, chain.method, chain.path.map { Escape.terminal($0, limit: 120) }].compactMap { $0 }.joined(separator: " ")
            // A CloudTrail record names an API call, not a request: its summary (`wafv2… UpdateWebACL name=… by arn…`).
            if chain.layers == [.cloudtrail], let summary = chain.members.first?.event.event.message { head = String(summary.prefix(200)) }
            let status = chain.status.map { " → \($0)" } ?? ""
            let label = chain.chainID.map { "chain \($0)" } ?? "unlinked"
            out += "── \(label) · \(Escape.terminal(head))\(status) · \(chain.layers.map(\.rawValue).joined(separator: ","))\n"
            for m in chain.members {
                let e = m.event.event
                let time = e.time.map { TimeFormat.display($0, zone: zone) } ?? "(no time)"
                let layer = e.layer.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)
                let source = Escape.terminal("\((m.source as NSString).lastPathComponent):\(e.line)")
                out += "  \(time)  \(layer) \(source)  \(Escape.terminal(bytes: Array(e.raw.prefix(4096)), limit: width))\n"
            }
        }
        if chains.isEmpty { out += "No records in this window match.\n" }
        if truncated { out += "… more chains match; narrow the window or the filters.\n" }
        return out
    }

    /// `--json`: one object per chain.
    public struct ChainJSON: Encodable {
        public var chain: Int64?
        public var first: String?
        public var client_ip: String?
        public var method: String?
        public var path: String?
        public var status: Int?
        public var layers: [String]
        public var events: [EventJSON]
    }

    public struct EventJSON: Encodable {
        public var id: Int64
        public var layer: String
        public var kind: String
        public var time: String?
        public var source: String
        public var line: Int
        public var text: String
        public var key: String?
        public var confidence: Double?
    }

    public static func json(_ chain: ChainView) -> ChainJSON {
        ChainJSON(chain: chain.chainID, first: chain.first.map(TimeFormat.isoUTCMillis), client_ip: chain.clientIP,
                  method: chain.method, path: chain.path, status: chain.status, layers: chain.layers.map(\.rawValue),
                  events: chain.members.map { m in
                      EventJSON(id: m.event.id, layer: m.event.event.layer.rawValue, kind: m.event.event.kind.rawValue,
                                time: m.event.event.time.map(TimeFormat.isoUTCMillis), source: m.source, line: m.event.event.line,
                                text: m.event.text, key: m.key, confidence: m.confidence)
                  })
    }
}

/// Ingest followed by everything that keeps the timeline consistent (copy marking, correlation):
/// what every command that takes PATHs runs first.
public enum TimelineUpdate {
    public struct Outcome {
        public var ingest: IngestSummary
        public var correlation: CorrelationStats
    }

    public static func run(store: TimelineStore, paths: [String], options: ImportOptions, format: String? = nil,
                           progress: ((IngestProgress) -> Void)? = nil) throws -> Outcome {
        // A user's --nginx-log-format is also what recognises their access logs.
        let registry = try ImporterRegistry.standard.withNginxLogFormat(options.nginxLogFormat)
        let ingester = Ingester(store: store, registry: registry, options: options)
        ingester.formatOverride = format
        ingester.progress = progress
        let clock = PhaseClock()
        let lastSource = try store.read { db in try Int64.fetchOne(db, sql: "SELECT max(id) FROM source") } ?? 0
        var summary = try ingester.ingest(paths: paths)
        clock.lap("ingest")
        // Files rotated since an earlier run: their records cite the names their bytes have now.
        for move in options.relocatesRotatedFiles ? try SourceRelocation.run(store: store, found: summary.files) : [] {
            if let i = summary.files.firstIndex(where: { $0.path == move.to }) {
                summary.files[i].notes.append("holds the lines first read as \(move.from) (renamed since): their records now cite \(move.to)")
            }
        }
        // Before anything reads their times: app logs read in a guessed zone that their request
        // lines show is wrong are moved to the right one.
        if options.appTimeZone == nil { try AppZoneAlignment.run(store: store, afterSourceID: lastSource) }
        // Then a clock minutes off, whatever the zone (a host whose NTP broke).
        try AppClockSkew.run(store: store, afterSourceID: lastSource)
        clock.lap("app zone")
        // Lines logrotate's copytruncate left in two rotations are one record each.
        try RotationOverlap.run(store: store, afterSourceID: lastSource)
        // A file edited since an earlier run: its unchanged lines are one record each.
        for (path, note) in try RewrittenFiles.run(store: store, afterSourceID: lastSource) {
            if let i = summary.files.firstIndex(where: { $0.path == path }) { summary.files[i].notes.append(note) }
        }
        // The same line in syslog and in the app's file is one record: mark copies before linking.
        try CopyLinker.link(store: store)
        clock.lap("copies")
        let stats = try Correlator(store: store).run()
        clock.lap("correlation")
        return Outcome(ingest: summary, correlation: stats)
    }
}

/// Phase timings on stderr when `INVESTIGATE_TIMING` is set (benchmarks), silent otherwise.
final class PhaseClock {
    let enabled = ProcessInfo.processInfo.environment["INVESTIGATE_TIMING"] != nil
    private var last = Date()

    /// Prints the time since the last lap; laps shorter than `minimum` seconds are not printed
    /// (per-file laps of thousands of small files would drown the rest).
    func lap(_ name: @autoclosure () -> String, minimum: Double = 0) {
        guard enabled else { return }
        let now = Date()
        if now.timeIntervalSince(last) < minimum { last = now; return }
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let peak = status.split(separator: "\n").first { $0.hasPrefix("VmHWM") }.map(String.init) ?? ""
        FileHandle.standardError.write(Data(String(format: "timing: %@ %.3f s %@\n", name(), now.timeIntervalSince(last), peak).utf8))
        last = now
    }
}
