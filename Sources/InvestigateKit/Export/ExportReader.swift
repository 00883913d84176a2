import Foundation
import GRDB

/// What `investigate export` writes: the timeline's records in a window, optionally narrowed.
public struct ExportQuery: Sendable {
    /// Inclusive start and exclusive end (µs UTC); nil: unbounded. With either bound, records
    /// without a time are left out (nothing says they fall inside).
    public var from: Int64?
    public var to: Int64?
    public var layer: Layer?
    /// Records from or via this address (`client_ip` or `peer_ip`).
    public var clientIP: String?
    /// Also the lines no importer could take (`rejected`), dated from their file's parsed records.
    public var includeRejected = false
    /// Only records of these sources (the files under the PATHs given); nil: the whole database.
    public var sources: SourceScope?
    /// Attach to each record of a failed request the diagnosis's verdict on it (costs a diagnosis
    /// of the whole range).
    public var diagnose = false
    /// The zone of the diagnosis's explanations.
    public var zone: ZoneSpec = .utc

    public init(from: Int64? = nil, to: Int64? = nil) {
        self.from = from
        self.to = to
    }

    var windowed: Bool { from != nil || to != nil }
}

/// One exported record: an event, or a rejected line with the time of its file's nearest parsed
/// record. Everything a writer needs, so writers never touch the database.
public struct ExportRecord: Sendable {
    public enum Kind: String, Sendable { case event, rejected }

    public struct Source: Sendable {
        public var id: Int64
        public var path: String
        public var sha256: String
        public var format: String?
        public var firstEventID: Int64?
    }

    public var kind: Kind
    /// The `event` or `rejected` row id.
    public var rowID: Int64
    public var time: Int64?
    /// True for a rejected line: `time` is that of the nearest parsed record of the same file.
    public var timeEstimated = false
    public var layer: Layer
    /// For events, the parsed record (its `raw` is the original bytes); nil for rejected lines.
    public var event: Event?
    /// The `extra` column as stored, when it is not the flat object of strings `event.extra` reads
    /// (never dropped in silence).
    public var extraText: String?
    public var copyOf: Int64?
    public var reason: String?
    public var raw: [UInt8]
    public var source: Source
    public var line: Int
    public var lineEnd: Int
    public var chainID: Int64?
    public var linkKey: String?
    public var linkConfidence: Double?
    /// With `ExportQuery.diagnose`: the verdict on the failed request this record belongs to.
    public var verdict: ExportVerdict? = nil

    /// A stable id across runs and databases: the file version's SHA-256 and the record's place in
    /// it (`e<n>`: the n-th event of that version; `r<line>`: its rejected line).
    public var recordID: String {
        switch kind {
        case .event: return "\(source.sha256)-e\(rowID - (source.firstEventID ?? rowID))"
        case .rejected: return "\(source.sha256)-r\(line)"
        }
    }
}

/// Counts of what an export wrote and what it could not.
public struct ExportSummary: Sendable, Equatable {
    public var events = 0
    public var rejected = 0
    /// Records without a time (written last; Timesketch cannot take them: see `leftOut`).
    public var timeless = 0
    /// Records the format cannot carry (Timesketch: no time), not written.
    public var leftOut = 0
    /// Rejected lines not exported because `--ip` names a client and they name none.
    public var rejectedNotAttributable = 0
    public init() {}
}

/// Streams the records of an `ExportQuery` in time order, then row id (events before rejected
/// lines at the same instant), timeless records last. Events are read through a cursor; rejected
/// lines are dated first (ids and times only in memory) and their bytes read one at a time.
public enum ExportReader {
    /// Calls `body` for every record in order; returns what was read. `progress` (records done,
    /// records in all) is called after each record when given (it costs a count first).
    public static func read(_ store: TimelineStore, _ q: ExportQuery, progress: ((Int, Int) -> Void)? = nil,
                            _ body: (ExportRecord) throws -> Void) throws -> ExportSummary {
        let verdicts = q.diagnose ? try ExportVerdicts.compute(store, q) : [:]
        if q.clientIP != nil { store.ensureIndexes(Schema.ipIndexes) }
        return try store.scoped(q.sources) {
            try store.read { db in
                try read(db, q, progress: progress) { record in
                    var record = record
                    if record.kind == .event { record.verdict = verdicts[record.rowID] }
                    try body(record)
                }
            }
        }
    }

    static func read(_ db: Database, _ q: ExportQuery, progress: ((Int, Int) -> Void)?, _ body: (ExportRecord) throws -> Void) throws -> ExportSummary {
        var summary = ExportSummary()
        var sources: [Int64: ExportRecord.Source] = [:]
        for s in try SourceRecord.all(db) {
            sources[s.id] = ExportRecord.Source(id: s.id, path: s.path, sha256: s.sha256, format: s.format, firstEventID: s.firstEventId)
        }
        func source(_ id: Int64) -> ExportRecord.Source {
            sources[id] ?? ExportRecord.Source(id: id, path: "source#\(id)", sha256: "source\(id)", format: nil, firstEventID: nil)
        }

        var rejected: [DatedRejected] = []
        if q.includeRejected {
            if q.clientIP != nil {
                summary.rejectedNotAttributable = try Int.fetchOne(db, sql: "SELECT count(*) FROM rejected") ?? 0
            } else {
                rejected = try datedRejected(db, q, sources: sources)
            }
        }
        var total = 0, done = 0
        if progress != nil {
            let (conditions, args) = eventConditions(q, timed: nil)
            total = (try Int.fetchOne(db, sql: "SELECT count(*) FROM event e WHERE \(conditions)", arguments: args) ?? 0) + rejected.count
        }
        func tick() {
            done += 1
            progress?(done, total)
        }
        let fetchRejected = try db.makeStatement(sql: "SELECT id, source_id, line, CAST(reason AS BLOB) AS reason, \(StoredEvent.raw("rejected")) FROM rejected WHERE id = ?")
        func emitRejected(_ r: DatedRejected) throws {
            guard let row = try Row.fetchOne(fetchRejected, arguments: [r.id]) else { return }
            let raw: Data = row["raw"] ?? Data()
            let src = source(row["source_id"])
            let line: Int = row["line"]
            try body(ExportRecord(kind: .rejected, rowID: r.id, time: r.time, timeEstimated: r.time != nil, layer: r.layer,
                                  event: nil, extraText: nil, copyOf: nil, reason: text(row, "reason"), raw: [UInt8](raw), source: src,
                                  line: line, lineEnd: line, chainID: nil, linkKey: nil, linkConfidence: nil))
            summary.rejected += 1
            if r.time == nil { summary.timeless += 1 }
            tick()
        }

        // Timed records: the event cursor (time index) merged with the dated rejected lines.
        var next = 0
        let timedRejected = rejected.filter { $0.time != nil }
        for pass in [true, false] {
            if !pass && q.windowed { break }  // a window holds only records with a time
            let (conditions, args) = eventConditions(q, timed: pass)
            let cursor = try Row.fetchCursor(db, sql: """
                SELECT \(textColumnsAsBytes), l.chain_id AS link_chain, l.key AS link_key, l.confidence AS link_confidence FROM event e
                LEFT JOIN link l ON l.event_id = e.id WHERE \(conditions) ORDER BY \(pass ? "e.time, e.id" : "e.id")
                """, arguments: args)
            while let row = try cursor.next() {
                let stored = StoredEvent(id: row["id"], sourceID: row["source_id"], event: event(row))
                if pass, let t = stored.event.time {
                    while next < timedRejected.count, let rt = timedRejected[next].time, rt < t {
                        try emitRejected(timedRejected[next])
                        next += 1
                    }
                }
                let extra = text(row, "extra")
                let flatExtra = extra.map { JSONText.parseFlatObject($0) != nil } ?? true
                try body(ExportRecord(kind: .event, rowID: stored.id, time: stored.event.time, layer: stored.event.layer, event: stored.event,
                                      extraText: flatExtra ? nil : extra, copyOf: row["copy_of"], reason: nil, raw: stored.event.raw,
                                      source: source(stored.sourceID), line: stored.event.line, lineEnd: stored.event.lineEnd,
                                      chainID: row["link_chain"], linkKey: row["link_key"], linkConfidence: row["link_confidence"]))
                summary.events += 1
                if stored.event.time == nil { summary.timeless += 1 }
                tick()
            }
            if pass {
                while next < timedRejected.count {
                    try emitRejected(timedRejected[next])
                    next += 1
                }
            }
        }
        if !q.windowed {
            for r in rejected where r.time == nil { try emitRejected(r) }
        }
        return summary
    }

    static let textColumnsAsBytes = StoredEvent.columnsAsBytes("e")

    static func text(_ row: Row, _ column: String) -> String? { StoredEvent.text(row, column) }

    static func event(_ row: Row) -> Event {
        let raw: Data = row["raw"] ?? Data()
        var e = Event(time: row["time"], layer: text(row, "layer").flatMap(Layer.init(rawValue:)) ?? .system,
                      kind: text(row, "kind").flatMap(EventKind.init(rawValue:)) ?? .log, line: row["line"], lineEnd: row["line_end"], raw: [UInt8](raw))
        e.altTime = row["alt_time"]
        e.clientIP = text(row, "client_ip")
        e.peerIP = text(row, "peer_ip")
        e.forwardedFor = text(row, "forwarded_for")
        e.method = text(row, "method")
        e.path = text(row, "path")
        e.query = text(row, "query")
        e.status = row["status"]
        e.bytes = row["bytes"]
        e.duration = row["duration"]
        e.requestID = text(row, "request_id")
        e.traceID = text(row, "trace_id")
        e.userAgent = text(row, "user_agent")
        e.host = text(row, "host")
        e.level = text(row, "level")
        e.message = text(row, "message")
        e.hostname = text(row, "hostname")
        e.program = text(row, "program")
        e.pid = row["pid"]
        e.wafAction = text(row, "waf_action")
        e.wafRule = text(row, "waf_rule")
        e.elbStatus = row["elb_status"]
        e.targetStatus = row["target_status"]
        e.error = text(row, "error")
        if let extra = text(row, "extra"), let dict = JSONText.parseFlatObject(extra) { e.extra = dict }
        return e
    }

    static func eventConditions(_ q: ExportQuery, timed: Bool?) -> (String, StatementArguments) {
        var conditions: [String] = []
        var args: [DatabaseValueConvertible] = []
        if let from = q.from { conditions.append("e.time >= ?"); args.append(from) }
        if let to = q.to { conditions.append("e.time < ?"); args.append(to) }
        if let timed { conditions.append(timed ? "e.time IS NOT NULL" : "e.time IS NULL") }
        if let layer = q.layer { conditions.append("e.layer = ?"); args.append(layer.rawValue) }
        if let ip = q.clientIP { conditions.append("(e.client_ip = ? OR e.stored_peer_ip = ?)"); args += [ip, ip] }
        return (conditions.isEmpty ? "1" : conditions.joined(separator: " AND "), StatementArguments(args))
    }

    struct DatedRejected {
        var id: Int64
        var time: Int64?
        var layer: Layer
    }

    /// Every rejected line in the query, dated by the nearest parsed record of its own file
    /// version (the one before it, else the one after), sorted by (time, id). A source's events
    /// hold consecutive ids in line order, so one pass over each such source dates all its lines.
    static func datedRejected(_ db: Database, _ q: ExportQuery, sources: [Int64: ExportRecord.Source]) throws -> [DatedRejected] {
        let registry = ImporterRegistry.standard
        var bySource: [Int64: [(id: Int64, line: Int)]] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT id, source_id, line FROM rejected ORDER BY source_id, line, id") {
            bySource[row["source_id"], default: []].append((row["id"], row["line"]))
        }
        var out: [DatedRejected] = []
        let eventTimes = try db.makeStatement(sql: """
            SELECT e.line, e.time FROM source s JOIN event e ON e.id BETWEEN s.first_event_id AND s.last_event_id
            WHERE s.id = ? AND e.source_id = s.id AND e.time IS NOT NULL ORDER BY e.id
            """)
        for (sourceID, lines) in bySource.sorted(by: { $0.key < $1.key }) {
            let format = sources[sourceID]?.format
            let layer = format.flatMap { registry.importer(id: $0)?.layer } ?? .system
            if let wanted = q.layer, wanted != layer { continue }
            var times: [(line: Int, time: Int64)] = []
            let cursor = try Row.fetchCursor(eventTimes, arguments: [sourceID])
            while let row = try cursor.next() { times.append((row["line"], row["time"])) }
            var k = 0
            for r in lines {
                while k < times.count, times[k].line <= r.line { k += 1 }
                // times[k-1] is the last record at or before the line, times[k] the first after it.
                let time = k > 0 ? times[k - 1].time : times.first?.time
                if let t = time {
                    if let from = q.from, t < from { continue }
                    if let to = q.to, t >= to { continue }
                } else if q.windowed {
                    continue
                }
                out.append(DatedRejected(id: r.id, time: time, layer: layer))
            }
        }
        out.sort { ($0.time ?? .max, $0.id) < ($1.time ?? .max, $1.id) }
        return out
    }
}
