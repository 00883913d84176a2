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

    /// Fetches `range` (nil: everything) widened by `margin` into `store`, then marks copies and correlates.
    @discardableResult
    public static func fetch(_ client: ClickHouseClient, range: ClosedRange<Int64>?, into store: TimelineStore,
                             registry: ImporterRegistry = .standard, margin: Int64 = ClickHouseWindow.margin) throws -> Fetched {
        let db = client.url.database
        guard ClickHouseURL.isIdentifier(db) else { throw ClickHouseURL.Invalid(description: "bad database name") }
        let lo = range.map { $0.lowerBound - margin } ?? Int64.min / 2
        let hi = range.map { $0.upperBound + margin } ?? Int64.max / 2
        let canonical = ClickHouseSchema.canonical(db)
        // Sources in the window: byte order of paths, then the ingest order of their formats, as
        // a local ingest of the same directories numbers them.
        let sourceRows = try TabSeparated.parse(client.query("""
            SELECT sha256, attempt, path, size, compressed, format, content_sha256, content_size, lines, events, rejected,
                   first_time, last_time, notes, ingested_at
            FROM \(db).source WHERE (sha256, attempt) GLOBAL IN (\(canonical))
              AND first_time IS NOT NULL AND first_time <= \(hi) AND last_time >= \(lo)
            ORDER BY path, sha256 FORMAT TabSeparated
            """), columns: 15)
        let indexed = sourceRows.enumerated().map { ($0.offset, $0.element) }
        let ordered = indexed.sorted { a, b in
            let oa = TabSeparated.string(a.1[5]).flatMap { registry.importer(id: $0)?.ingestOrder } ?? 0
            let ob = TabSeparated.string(b.1[5]).flatMap { registry.importer(id: $0)?.ingestOrder } ?? 0
            return oa != ob ? oa < ob : a.0 < b.0
        }.map(\.1)
        guard !ordered.isEmpty else { return Fetched(sources: 0, events: 0, rejected: 0, range: lo...hi) }
        let shas = ordered.compactMap { TabSeparated.string($0[0]) }
        let inList = shas.map(SQLLiteral.token).joined(separator: ", ")

        let layerRows = try TabSeparated.parse(client.query("""
            SELECT sha256, layer, events, first_time, last_time FROM \(db).source_layer
            WHERE (sha256, attempt) GLOBAL IN (\(canonical)) AND sha256 IN (\(inList)) ORDER BY sha256, layer FORMAT TabSeparated
            """), columns: 5)
        let columns = ClickHouseSchema.eventColumns
        let eventRows = try TabSeparated.parse(client.query("""
            SELECT \(columns.joined(separator: ", ")) FROM \(db).event
            WHERE t BETWEEN \(lo) AND \(hi) AND (sha256, attempt) GLOBAL IN (\(canonical)) AND sha256 IN (\(inList))
            ORDER BY sha256, seq FORMAT TabSeparated
            """), columns: columns.count)
        let rejectedRows = try TabSeparated.parse(client.query("""
            SELECT sha256, line, reason, raw FROM \(db).rejected
            WHERE (sha256, attempt) GLOBAL IN (\(canonical)) AND sha256 IN (\(inList)) ORDER BY sha256, seq FORMAT TabSeparated
            """), columns: 4)
        var eventsBySHA: [String: [TabSeparated.Row]] = [:]
        for row in eventRows { eventsBySHA[TabSeparated.string(row[0]) ?? "", default: []].append(row) }
        var rejectedBySHA: [String: [TabSeparated.Row]] = [:]
        for row in rejectedRows { rejectedBySHA[TabSeparated.string(row[0]) ?? "", default: []].append(row) }
        var layersBySHA: [String: [TabSeparated.Row]] = [:]
        for row in layerRows { layersBySHA[TabSeparated.string(row[0]) ?? "", default: []].append(row) }

        var fetchedEvents = 0, fetchedRejected = 0
        try store.dbQueue.write { db in
            for s in ordered {
                let sha = TabSeparated.string(s[0]) ?? ""
                try db.execute(sql: """
                    INSERT INTO source (path, sha256, size, compressed, format, status, lines, events, rejected, first_time, last_time,
                                        notes, ingested_at, content_sha256, content_size)
                    VALUES (?, ?, ?, ?, ?, 'complete', ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [TabSeparated.string(s[2]), sha, TabSeparated.int(s[3]), TabSeparated.int(s[4]),
                                     TabSeparated.string(s[5]), TabSeparated.int(s[8]), TabSeparated.int(s[9]), TabSeparated.int(s[10]),
                                     TabSeparated.int(s[11]), TabSeparated.int(s[12]), TabSeparated.string(s[13]) ?? "[]",
                                     TabSeparated.int(s[14]), TabSeparated.string(s[6]), TabSeparated.int(s[7])])
                let id = db.lastInsertedRowID
                let writer = try EventWriter(db: db, sourceID: id)
                let rows = eventsBySHA[sha] ?? []
                var batch = EventBatch()
                for row in rows {
                    try append(row, to: &batch)
                    if batch.count >= 2048 { try writer.insert(batch); batch.removeAll() }
                }
                if !batch.isEmpty { try writer.insert(batch) }
                fetchedEvents += rows.count
                for r in rejectedBySHA[sha] ?? [] {
                    try writer.insert(RejectedLine(line: Int(TabSeparated.int(r[1]) ?? 0), reason: TabSeparated.string(r[2]) ?? "",
                                                   raw: r[3] ?? []))
                    fetchedRejected += 1
                }
                if !rows.isEmpty {
                    let last = try Int64.fetchOne(db, sql: "SELECT max(id) FROM event")!
                    try db.execute(sql: "UPDATE source SET first_event_id = ?, last_event_id = ? WHERE id = ?",
                                   arguments: [last - Int64(rows.count) + 1, last, id])
                }
                for l in layersBySHA[sha] ?? [] {
                    try db.execute(sql: "INSERT INTO source_layer (source_id, layer, events, first_time, last_time) VALUES (?,?,?,?,?)",
                                   arguments: [id, TabSeparated.string(l[1]), TabSeparated.int(l[2]), TabSeparated.int(l[3]), TabSeparated.int(l[4])])
                }
            }
        }
        try CopyLinker.link(store: store)
        _ = try Correlator(store: store).run()
        return Fetched(sources: ordered.count, events: fetchedEvents, rejected: fetchedRejected, range: lo...hi)
    }

    struct BadRow: Error, CustomStringConvertible { var description: String }

    /// One fetched `event` row (in `ClickHouseSchema.eventColumns` order) as a batch row.
    static func append(_ row: TabSeparated.Row, to batch: inout EventBatch) throws {
        guard let layerText = TabSeparated.string(row[4]), let layer = Layer(rawValue: layerText),
              let kindText = TabSeparated.string(row[5]), let kind = EventKind(rawValue: kindText) else {
            throw BadRow(description: "an event row from ClickHouse names an unknown layer or kind")
        }
        let numbersAt = 6, textsAt = 6 + ClickHouseSchema.eventNumberColumns.count
        let raw = row[textsAt + ClickHouseSchema.eventTextColumns.count - 1] ?? []
        raw.withUnsafeBufferPointer { raw in
            batch.beginRow(layer: layer, kind: kind, line: Int(TabSeparated.int(row[numbersAt]) ?? 0),
                           lineEnd: Int(TabSeparated.int(row[numbersAt + 1]) ?? 0), time: TabSeparated.int(row[numbersAt + 2]), raw: raw)
        }
        for (i, (column, _)) in ClickHouseSchema.eventNumberColumns.enumerated() where i >= 3 {
            batch.setNumber(column, TabSeparated.int(row[numbersAt + i]))
        }
        for (i, (column, _)) in ClickHouseSchema.eventTextColumns.enumerated() where column != .raw {
            if let bytes = row[textsAt + i] {
                // Stored text columns are valid UTF-8 already; this keeps their bytes as they are.
                bytes.withUnsafeBufferPointer { batch.setText(column, $0) }
            }
        }
    }
}
