import Foundation
import GRDB
import GRDBSQLite

/// Reading a slab of records for matching: which id ranges to skip, how wide a slab is, and the
/// records reduced to `Node`s.
extension Correlator {
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
                       CASE WHEN \(EventData.codeIn("layer", of: "e", ["alb", "apigateway"])) THEN e.extra END,
                       CASE WHEN e.id <= ? THEN (SELECT l.chain_id FROM link l WHERE l.event_id = e.id) END,
                       CASE WHEN \(EventData.codeIn("layer", of: "e", ["alb", "apigateway"])) THEN e.extra_common END, e.source_id
                FROM event_data e
                WHERE e.id IN (SELECT id FROM event_data WHERE time >= ? AND time < ?\(skipped)) AND \(Self.correlatable)
                ORDER BY e.id
                """)
            statement.setUncheckedArguments([chainsUpTo, from, to])
            let h = statement.sqliteStatement
            defer { sqlite3_reset(h) }
            var nodes: [Node] = []
            let shared = SharedTextLookup(sqlite3_db_handle(h))
            let edgeWAF = try Self.edgeWAFSources(db)
            while true {
                let rc = sqlite3_step(h)
                if rc == SQLITE_DONE { break }
                guard rc == SQLITE_ROW else {
                    throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(sqlite3_db_handle(h))))
                }
                if let node = try Self.node(SQLiteRow(h, shared: shared), edgeWAF: edgeWAF) { nodes.append(node) }
            }
            nodes.sort { $0.time != $1.time ? $0.time < $1.time : $0.id < $1.id }
            return nodes
        }
    }

    /// Typed column access on the current row of a stepped statement.
    struct SQLiteRow {
        let h: OpaquePointer?
        let shared: SharedTextLookup

        init(_ h: OpaquePointer?, shared: SharedTextLookup) {
            self.h = h
            self.shared = shared
        }

        /// A column of `event_data` that may hold shared text (`Schema.sharedTextColumns`).
        func sharedText(_ i: Int32) throws -> String? { try shared.text(h, i) }

        func int(_ i: Int32) -> Int64? {
            sqlite3_column_type(h, i) == SQLITE_NULL ? nil : sqlite3_column_int64(h, i)
        }

        func text(_ i: Int32) -> String? {
            guard sqlite3_column_type(h, i) != SQLITE_NULL, let p = sqlite3_column_text(h, i) else { return nil }
            return String(decoding: UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(h, i))), as: UTF8.self)
        }

        /// A `Schema.sameAsClientColumns` column: stored as x'' when equal to `client_ip` (column `client`).
        func addressOrClient(_ i: Int32, client: Int32) -> String? {
            sqlite3_column_type(h, i) == SQLITE_BLOB ? text(client) : text(i)
        }

        /// One string field of a record's `extra` (columns 15 and 17: the stored object and its
        /// common fields stored apart, see `ExtraSplitter`).
        func extraField(_ key: String) throws -> String? {
            try jsonField(15, key) ?? jsonField(17, key)
        }

        /// One string field of a column holding a flat JSON object (an `extra`), without copying the rest.
        func jsonField(_ i: Int32, _ key: String) throws -> String? {
            switch sqlite3_column_type(h, i) {
            case SQLITE_NULL: return nil
            case SQLITE_INTEGER:
                guard var object = try sharedText(i) else { return nil }
                return object.withUTF8 { JSONText.flatField(key, in: $0) }
            default:
                guard let p = sqlite3_column_text(h, i) else { return nil }
                return JSONText.flatField(key, in: UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(h, i))))
            }
        }

    }

    /// The WAF sources of a web ACL on a CloudFront distribution (`httpSourceName` CF), told by
    /// their first records: a log file or object holds one web ACL's records, and reading every
    /// WAF record's `extra` in each pass (700 bytes apiece) cost more than matching them.
    static func edgeWAFSources(_ db: Database) throws -> Set<Int64> {
        Set(try Int64.fetchAll(db, sql: """
            SELECT s.id FROM source s WHERE s.format = 'waf' AND s.first_event_id IS NOT NULL AND EXISTS (
                SELECT 1 FROM event_data e WHERE e.id BETWEEN s.first_event_id AND min(s.last_event_id, s.first_event_id + 4)
                AND \(Schema.extraField("$.http_source_name", of: "e")) = 'CF')
            """))
    }

    /// Builds a node from a row of `loadNodes`' query (columns by position: this runs per event).
    static func node(_ row: SQLiteRow, edgeWAF: Set<Int64> = []) throws -> Node? {
        guard let layer = EventData.layer(row.h, 1), let time = row.int(3), let kind = EventData.kind(row.h, 2)?.rawValue else { return nil }
        let path = try row.sharedText(8)
        let method = row.text(7)
        let role: Role
        switch (layer, kind) {
        case (.cloudfront, "access"): role = .cloudfront
        case (.waf, "access"): role = edgeWAF.contains(row.int(18) ?? -1) ? .wafAtEdge : .waf
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
        case .waf, .wafAtEdge, .apigateway, .appRequest: arrival = time
        case .alb:
            completion = time
            arrival = try row.extraField("request_creation_us").flatMap { Int64($0) }
        case .nginx, .gunicorn, .cloudfront:
            completion = time
            if let d = duration, d >= 0 { arrival = time - d }
        case .appResponse: completion = time
        default: break
        }
        return Node(id: row.int(0) ?? 0, role: role, time: time, arrival: arrival, completion: completion, duration: duration,
                    clientIP: row.text(5), peerIP: row.addressOrClient(6, client: 5), method: method, path: path, query: row.text(9),
                    status: row.int(10).map(Int.init), targetStatus: row.int(11).map(Int.init), traceID: row.text(12),
                    requestID: row.text(13), extendedRequestID: layer == .apigateway ? try row.extraField("extended_request_id") : nil,
                    lambdaRequestID: layer == .apigateway ? try row.extraField("lambda_request_id") : nil, chain: row.int(16))
    }
}
