import Foundation
import GRDB

/// Fetches a window of a ClickHouse timeline into a local SQLite timeline, the working set every
/// question is answered from: the committed files whose time span meets the window (their
/// `source` and `source_layer` rows, so coverage reasoning sees the files that were silent), the
/// window's events, and those files' rejected lines. Copy marking and correlation then run on it
/// as after a local ingest, so `--at`, `report`, `timeline` and `replay` answer exactly as for
/// local files.
public enum ClickHouseWindow {
    public struct Fetched: Sendable {
        public var sources: Int
        public var events: Int
        public var rejected: Int
        public var range: ClosedRange<Int64>
    }

    /// What correlation and diagnosis need beyond the question's window (`WindowPlan.margin`).
    public static let margin = WindowPlan.margin

    /// Files a query names at most (their SHA-256 and attempt are written into it): ClickHouse's
    /// `max_query_size` is 256 KiB. More files are fetched in groups, in order.
    public static let filesPerQuery = 600
    /// Events handed to the `EventWriter` at a time: the fetch holds one batch, not the window.
    public static let batchRows = 2048

    /// What a window holds in ClickHouse: the committed files whose records meet it, in the order a
    /// local ingest of the same directories numbers them, and ClickHouse's answer as it came (the
    /// working-set cache names an entry by it).
    public struct Plan: Sendable {
        public var lo: Int64
        public var hi: Int64
        /// The files' `source` rows, ordered.
        var sources: [TabSeparated.Row]
        /// The bytes of ClickHouse's answer listing them.
        public var answer: [UInt8]
        public var files: Int { sources.count }
    }

    /// Asks ClickHouse which committed files meet `range` (nil: everything) widened by `margin`.
    public static func plan(_ client: ClickHouseClient, range: ClosedRange<Int64>?, registry: ImporterRegistry = .standard,
                            margin: Int64 = ClickHouseWindow.margin) throws -> Plan {
        let db = client.url.database
        guard ClickHouseURL.isIdentifier(db) else { throw ClickHouseURL.Invalid(description: "bad database name") }
        let lo = range.map { $0.lowerBound - margin } ?? Int64.min / 2
        let hi = range.map { $0.upperBound + margin } ?? Int64.max / 2
        let canonical = ClickHouseSchema.canonical(db)
        // Sources in the window: byte order of paths, then the ingest order of their formats, as
        // a local ingest of the same directories numbers them; versions of one path in the order
        // they continue each other (a grown file's new lines after its earlier ones). With their
        // committed attempt, which the other queries then name instead of asking for the committed
        // attempts again.
        func query(_ continuation: String, order: String) throws -> [UInt8] {
            try client.query("""
                SELECT \(sourceColumns(continuation))
                FROM \(db).source WHERE (sha256, attempt) GLOBAL IN (\(canonical))
                  AND first_time IS NOT NULL AND first_time <= \(hi) AND last_time >= \(lo)
                ORDER BY path, \(order)sha256 FORMAT TabSeparated
                """)
        }
        var answer: [UInt8]
        var sourceRows: [TabSeparated.Row]
        do {
            answer = try query(continuationColumns, order: "start_line, ingested_at, ")
            sourceRows = try TabSeparated.parse(answer, columns: 19)
            // The earlier versions of the files that continue one (a grown log's lines before the
            // window): their `source` and `source_layer` rows, so the working set knows the whole
            // file as a local timeline does (coverage counts its every line, `parent_id` is set).
            let earlier = try ancestors(client, of: sourceRows)
            if !earlier.isEmpty {
                sourceRows += earlier
                sourceRows.sort { a, b in
                    let pa = a[2] ?? [], pb = b[2] ?? []
                    if pa != pb { return pa.lexicographicallyPrecedes(pb) }
                    let ka = [TabSeparated.int(a[18]) ?? 0, TabSeparated.int(a[14]) ?? 0]
                    let kb = [TabSeparated.int(b[18]) ?? 0, TabSeparated.int(b[14]) ?? 0]
                    if ka != kb { return ka.lexicographicallyPrecedes(kb) }
                    return (a[0] ?? []).lexicographicallyPrecedes(b[0] ?? [])
                }
                // They are part of what the window holds (a kept working set is named by it).
                for row in earlier.sorted(by: { ($0[0] ?? []).lexicographicallyPrecedes($1[0] ?? []) }) {
                    for (i, field) in row.enumerated() {
                        if i > 0 { answer.append(0x09) }
                        if let field { field.withUnsafeBufferPointer { TabSeparated.appendEscaped($0, to: &answer) } } else { TabSeparated.appendNull(to: &answer) }
                    }
                    answer.append(0x0A)
                }
            }
        } catch let error as ClickHouseError where !error.transient && error.message.contains("Code: 47") {
            // A database no ingest has written since the continuation columns were added
            // (`ClickHouseSchema.migrate`): its files continue nothing.
            answer = try query("'', '', toInt64(0), toInt64(0)", order: "")
            sourceRows = try TabSeparated.parse(answer, columns: 19)
        }
        let indexed = sourceRows.enumerated().map { ($0.offset, $0.element) }
        let ordered = indexed.sorted { a, b in
            let oa = TabSeparated.string(a.1[5]).flatMap { registry.importer(id: $0)?.ingestOrder } ?? 0
            let ob = TabSeparated.string(b.1[5]).flatMap { registry.importer(id: $0)?.ingestOrder } ?? 0
            return oa != ob ? oa < ob : a.0 < b.0
        }.map(\.1)
        return Plan(lo: lo, hi: hi, sources: ordered, answer: answer)
    }

    static let continuationColumns = "head_sha256, parent_sha256, start_offset, start_line"

    /// The `source` columns a plan reads (`Plan.sources`), the last four given as `continuation`.
    static func sourceColumns(_ continuation: String = continuationColumns) -> String {
        "sha256, attempt, path, size, compressed, format, content_sha256, content_size, lines, events, rejected, "
            + "first_time, last_time, notes, ingested_at, \(continuation)"
    }

    /// Rounds of look-ups by SHA-256 for the versions a chain of continued files reaches back to,
    /// beyond those found by their shared content-head key (a chain longer than this is cut: the
    /// oldest versions are left out, their file's coverage starts later).
    static let ancestorRounds = 64

    /// The committed `source` rows of the files that `rows` continue, and of those they continue,
    /// and so on, that are not among `rows`. The versions of one growing log share their first
    /// 4 KB, so one query by `head_sha256` finds most at once; the rest (a version shorter than
    /// 4 KB, a renamed or compressed copy with another head) are asked for by SHA-256, a round
    /// per step back.
    static func ancestors(_ client: ClickHouseClient, of rows: [TabSeparated.Row]) throws -> [TabSeparated.Row] {
        let db = client.url.database
        var known = Set(rows.compactMap { TabSeparated.string($0[0]) })
        func parent(_ row: TabSeparated.Row) -> String? {
            TabSeparated.string(row[16]).flatMap { $0.isEmpty || known.contains($0) || !SQLLiteral.isToken($0) ? nil : $0 }
        }
        var missing = Set(rows.compactMap(parent))
        guard !missing.isEmpty else { return [] }
        func committed(_ condition: String) throws -> [String: TabSeparated.Row] {
            var out: [String: TabSeparated.Row] = [:]
            for row in try TabSeparated.parse(client.query("""
                SELECT \(sourceColumns()) FROM \(db).source WHERE \(condition)
                  AND (sha256, attempt) GLOBAL IN (SELECT sha256, min(attempt) FROM \(db).source WHERE \(condition) GROUP BY sha256)
                FORMAT TabSeparated
                """), columns: 19) {
                if let sha = TabSeparated.string(row[0]) { out[sha] = row }
            }
            return out
        }
        let heads = Set(rows.filter { !(TabSeparated.string($0[16]) ?? "").isEmpty }.compactMap { TabSeparated.string($0[15]) })
            .filter(SQLLiteral.isToken).sorted()
        var pool: [String: TabSeparated.Row] = [:]
        for chunk in stride(from: 0, to: heads.count, by: filesPerQuery).map({ Array(heads[$0..<min($0 + filesPerQuery, heads.count)]) }) {
            pool.merge(try committed("head_sha256 IN (\(chunk.map(SQLLiteral.token).joined(separator: ", ")))")) { a, _ in a }
        }
        var found: [TabSeparated.Row] = []
        var rounds = 0
        while !missing.isEmpty, rounds < ancestorRounds {
            var next = Set<String>()
            var unresolved: [String] = []
            // Follow the chains through the versions at hand.
            var queue = Array(missing)
            while let sha = queue.popLast() {
                guard !known.contains(sha) else { continue }
                guard let row = pool[sha] else { unresolved.append(sha); continue }
                known.insert(sha)
                found.append(row)
                if let p = parent(row) { queue.append(p) }
            }
            if unresolved.isEmpty { break }
            rounds += 1
            unresolved.sort()
            for chunk in stride(from: 0, to: unresolved.count, by: filesPerQuery).map({ Array(unresolved[$0..<min($0 + filesPerQuery, unresolved.count)]) }) {
                let rows = try committed("sha256 IN (\(chunk.map(SQLLiteral.token).joined(separator: ", ")))")
                pool.merge(rows) { a, _ in a }
                next.formUnion(chunk.filter { rows[$0] != nil })
            }
            missing = next
        }
        return found
    }

    /// Fetches `range` (nil: everything) widened by `margin` into `store`, then marks copies and correlates.
    @discardableResult
    public static func fetch(_ client: ClickHouseClient, range: ClosedRange<Int64>?, into store: TimelineStore,
                             registry: ImporterRegistry = .standard, margin: Int64 = ClickHouseWindow.margin,
                             batchRows: Int = ClickHouseWindow.batchRows, filesPerQuery: Int = ClickHouseWindow.filesPerQuery) throws -> Fetched {
        try fetch(client, plan(client, range: range, registry: registry, margin: margin), into: store,
                  batchRows: batchRows, filesPerQuery: filesPerQuery)
    }

    /// Fetches the files of `plan` into `store`, then marks copies and correlates.
    ///
    /// The window's events stream: ClickHouse's answer is read in pieces as it arrives
    /// (`ClickHouseClient.stream`), parsed row by row (`TabSeparated.Reader`) and written in batches
    /// of `batchRows`, so memory is one batch whatever the window's size.
    @discardableResult
    public static func fetch(_ client: ClickHouseClient, _ plan: Plan, into store: TimelineStore,
                             batchRows: Int = ClickHouseWindow.batchRows, filesPerQuery: Int = ClickHouseWindow.filesPerQuery) throws -> Fetched {
        let clock = PhaseClock()
        let db = client.url.database
        guard ClickHouseURL.isIdentifier(db) else { throw ClickHouseURL.Invalid(description: "bad database name") }
        let (lo, hi, ordered) = (plan.lo, plan.hi, plan.sources)
        clock.lap("clickhouse: \(ordered.count) sources in the window")
        guard !ordered.isEmpty else { return Fetched(sources: 0, events: 0, rejected: 0, range: lo...hi) }
        let shas = ordered.map { TabSeparated.string($0[0]) ?? "" }
        let attempts = ordered.map { TabSeparated.string($0[1]) ?? "" }
        // They go back into queries: a row some other writer left malformed stops the question
        // with a message, not the process.
        if let bad = zip(shas, attempts).first(where: { !SQLLiteral.isToken($0.0) || !SQLLiteral.isToken($0.1) }) {
            throw ClickHouseURL.Invalid(description: "the ClickHouse source table holds a row whose sha256 or attempt is not a hex token "
                + "(\(Escape.terminal(bad.0, limit: 80)), \(Escape.terminal(bad.1, limit: 80))): it was not written by investigate")
        }

        var fetchedEvents = 0, fetchedRejected = 0
        try store.dbQueue.write { sqlite in
            var sourceIDs: [Int64] = []
            sourceIDs.reserveCapacity(ordered.count)
            for group in stride(from: 0, to: ordered.count, by: filesPerQuery).map({ $0..<min($0 + filesPerQuery, ordered.count) }) {
                // The group's files as SQL: hex digests and attempt ids, each checked (`SQLLiteral`).
                let list = group.map { SQLLiteral.token(shas[$0]) }.joined(separator: ", ")
                let committed = group.map { "(\(SQLLiteral.token(shas[$0])), \(SQLLiteral.token(attempts[$0])))" }.joined(separator: ", ")
                var layers: [String: [TabSeparated.Row]] = [:]
                for row in try TabSeparated.parse(client.query("""
                    SELECT sha256, layer, events, first_time, last_time FROM \(db).source_layer
                    WHERE (sha256, attempt) IN (\(committed)) ORDER BY sha256, layer FORMAT TabSeparated
                    """), columns: 5) {
                    layers[TabSeparated.string(row[0]) ?? "", default: []].append(row)
                }

                // Each file's `source` row, then its events (consecutive ids, in reading order), then
                // its per-layer counts; files without events in the window get their rows too.
                var next = group.lowerBound
                var writer: EventWriter?
                var written = 0
                var batch = EventBatch()
                func flush() throws {
                    guard !batch.isEmpty, let writer else { return }
                    try writer.insert(batch)
                    written += batch.count
                    batch.removeAll()
                }
                func close() throws {
                    guard writer != nil else { return }
                    try flush()
                    let k = next - 1, id = sourceIDs[k]
                    if written > 0 {
                        let last = try Int64.fetchOne(sqlite, sql: "SELECT max(id) FROM event")!
                        try sqlite.execute(sql: "UPDATE source SET first_event_id = ?, last_event_id = ? WHERE id = ?",
                                           arguments: [last - Int64(written) + 1, last, id])
                    }
                    for l in layers[shas[k]] ?? [] {
                        try sqlite.execute(sql: "INSERT INTO source_layer (source_id, layer, events, first_time, last_time) VALUES (?,?,?,?,?)",
                                           arguments: [id, TabSeparated.string(l[1]), TabSeparated.int(l[2]), TabSeparated.int(l[3]),
                                                       TabSeparated.int(l[4])])
                    }
                    fetchedEvents += written
                    writer = nil
                }
                func open() throws {
                    let s = ordered[next]
                    // A version that continues another file's content keeps its place in that content
                    // (`start_offset`, `start_line`; its events carry their true line numbers), as a
                    // local ingest records it; `parent_id` is set once every file is in (below).
                    let head = TabSeparated.string(s[15]).flatMap { $0.isEmpty ? nil : $0 }
                    try sqlite.execute(sql: """
                        INSERT INTO source (path, sha256, size, compressed, format, status, lines, events, rejected, first_time, last_time,
                                            notes, ingested_at, content_sha256, content_size, head_sha256, start_offset, start_line)
                        VALUES (?, ?, ?, ?, ?, 'complete', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """, arguments: [TabSeparated.string(s[2]), shas[next], TabSeparated.int(s[3]), TabSeparated.int(s[4]),
                                         TabSeparated.string(s[5]), TabSeparated.int(s[8]), TabSeparated.int(s[9]), TabSeparated.int(s[10]),
                                         TabSeparated.int(s[11]), TabSeparated.int(s[12]), TabSeparated.string(s[13]) ?? "[]",
                                         TabSeparated.int(s[14]), TabSeparated.string(s[6]), TabSeparated.int(s[7]),
                                         head, TabSeparated.int(s[17]) ?? 0, TabSeparated.int(s[18]) ?? 0])
                    sourceIDs.append(sqlite.lastInsertedRowID)
                    writer = try EventWriter(db: sqlite, sourceID: sqlite.lastInsertedRowID)
                    written = 0
                    next += 1
                }
                /// Closes files up to and opens file `k` (of the group).
                func advance(to k: Int) throws {
                    while next <= k {
                        try close()
                        try open()
                    }
                }

                // Only the columns the working set stores; the file as its position in the group's
                // list (1-based), which also orders the answer by file, then reading order. The
                // `WHERE` on `t`, the table's first key column, reads only the window's granules.
                let eventColumns = ClickHouseSchema.eventColumns.dropFirst(4)  // not sha256, attempt, seq, t
                var reader = TabSeparated.Reader(columns: eventColumns.count + 1)
                try client.stream("""
                    SELECT indexOf([\(list)], sha256) AS file, \(eventColumns.joined(separator: ", ")) FROM \(db).event
                    WHERE t BETWEEN \(lo) AND \(hi) AND (sha256, attempt) IN (\(committed))
                    ORDER BY file, seq FORMAT TabSeparated
                    """) { piece in
                    try reader.feed(piece) { row in
                        guard let file = row.int(0), file >= 1, file <= Int64(group.count) else {
                            throw BadRow(description: "an event row from ClickHouse names a file not asked for")
                        }
                        let k = group.lowerBound + Int(file) - 1
                        guard k >= next - 1 else { throw BadRow(description: "ClickHouse returned events out of file order") }
                        try advance(to: k)
                        try append(row, to: &batch)
                        if batch.count >= batchRows { try flush() }
                    }
                }
                try reader.finish()
                try advance(to: group.upperBound - 1)
                try close()
                clock.lap("clickhouse: events of \(group.count) files fetched and written")

                // Rejected lines (of the whole files: they have no time), in the same pieces.
                var rejectedReader = TabSeparated.Reader(columns: 4)
                var rejectedFile = -1
                var rejectedWriter: EventWriter?
                var lines: [RejectedLine] = []
                func flushRejected() throws {
                    if let rejectedWriter, !lines.isEmpty { try rejectedWriter.insert(lines) }
                    fetchedRejected += lines.count
                    lines.removeAll(keepingCapacity: true)
                }
                try client.stream("""
                    SELECT indexOf([\(list)], sha256) AS file, line, reason, raw FROM \(db).rejected
                    WHERE (sha256, attempt) IN (\(committed)) ORDER BY file, seq FORMAT TabSeparated
                    """) { piece in
                    try rejectedReader.feed(piece) { row in
                        guard let file = row.int(0), file >= 1, file <= Int64(group.count) else {
                            throw BadRow(description: "a rejected row from ClickHouse names a file not asked for")
                        }
                        let k = group.lowerBound + Int(file) - 1
                        if k != rejectedFile {
                            try flushRejected()
                            rejectedFile = k
                            rejectedWriter = try EventWriter(db: sqlite, sourceID: sourceIDs[k])
                        }
                        lines.append(RejectedLine(line: Int(row.int(1) ?? 0), reason: row.string(2) ?? "", raw: row[3].map(Array.init) ?? []))
                        if lines.count >= batchRows { try flushRejected() }
                    }
                }
                try rejectedReader.finish()
                try flushRejected()
                clock.lap("clickhouse: rejected lines fetched and written")
            }
            // The file each version continues (in the working set: `plan` takes the versions the
            // window's files continue, unless a chain is longer than `ancestorRounds` steps).
            let idOf = Dictionary(zip(shas, sourceIDs), uniquingKeysWith: { a, _ in a })
            for (k, s) in ordered.enumerated() {
                if let parent = TabSeparated.string(s[16]), !parent.isEmpty, let parentID = idOf[parent] {
                    try sqlite.execute(sql: "UPDATE source SET parent_id = ? WHERE id = ?", arguments: [parentID, sourceIDs[k]])
                }
            }
        }
        try CopyLinker.link(store: store)
        clock.lap("clickhouse: copies marked")
        _ = try Correlator(store: store).run()
        clock.lap("clickhouse: working set correlated")
        return Fetched(sources: ordered.count, events: fetchedEvents, rejected: fetchedRejected, range: lo...hi)
    }

    struct BadRow: Error, CustomStringConvertible { var description: String }

    /// One fetched event row (the file's position, then `ClickHouseSchema.eventColumns` after
    /// `sha256, attempt, seq, t`) as a batch row.
    static func append(_ row: TabSeparated.Fields, to batch: inout EventBatch) throws {
        guard let layerText = row[1], let layer = Layer(rawValue: String(decoding: layerText, as: UTF8.self)),
              let kindText = row[2], let kind = EventKind(rawValue: String(decoding: kindText, as: UTF8.self)) else {
            throw BadRow(description: "an event row from ClickHouse names an unknown layer or kind")
        }
        let numbersAt = 3, textsAt = 3 + ClickHouseSchema.eventNumberColumns.count
        let raw = row[textsAt + ClickHouseSchema.eventTextColumns.count - 1] ?? UnsafeBufferPointer(start: nil, count: 0)
        batch.beginRow(layer: layer, kind: kind, line: Int(row.int(numbersAt) ?? 0), lineEnd: Int(row.int(numbersAt + 1) ?? 0),
                       time: row.int(numbersAt + 2), raw: raw)
        for (i, (column, _)) in ClickHouseSchema.eventNumberColumns.enumerated() where i >= 3 {
            batch.setNumber(column, row.int(numbersAt + i))
        }
        for (i, (column, _)) in ClickHouseSchema.eventTextColumns.enumerated() where column != .raw {
            // Stored text columns are valid UTF-8 already; this keeps their bytes as they are.
            if let bytes = row[textsAt + i] { batch.setText(column, bytes) }
        }
    }
}
