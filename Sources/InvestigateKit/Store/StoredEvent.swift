import Foundation
import GRDB

/// An event as read back from the timeline, with its row id and evidence location.
///
/// A class, and immutable: diagnosis hands the same records to many requests' cases and rules
/// filter them over and over; a struct copy would retain every one of the event's strings.
public final class StoredEvent: Sendable, Equatable, FetchableRecord {
    public let id: Int64
    public let sourceID: Int64
    public let event: Event

    public static func == (a: StoredEvent, b: StoredEvent) -> Bool {
        a === b || (a.id == b.id && a.sourceID == b.sourceID && a.event == b.event)
    }

    public required init(row: Row) throws {
        id = row["id"]
        sourceID = row["source_id"]
        let layer = Layer(rawValue: row["layer"] as String) ?? .system
        let kind = EventKind(rawValue: row["kind"] as String) ?? .log
        // The bytes live in `raw_block`: a query that did not select them (`StoredEvent.columns`)
        // would show every record's evidence as empty. That is a programming error; fail loudly.
        guard row.hasColumn("raw") else {
            throw DatabaseError(resultCode: .SQLITE_ERROR, message: "events read without their original bytes: select StoredEvent.columns")
        }
        let raw: Data = row["raw"] ?? Data()
        var e = Event(time: row["time"], layer: layer, kind: kind, line: row["line"], lineEnd: row["line_end"], raw: [UInt8](raw))
        e.altTime = row["alt_time"]
        e.clientIP = row["client_ip"]
        e.peerIP = row["peer_ip"]
        e.forwardedFor = row["forwarded_for"]
        e.method = row["method"]
        e.path = row["path"]
        e.query = row["query"]
        e.status = row["status"]
        e.bytes = row["bytes"]
        e.duration = row["duration"]
        e.requestID = row["request_id"]
        e.traceID = row["trace_id"]
        e.userAgent = row["user_agent"]
        e.host = row["host"]
        e.level = row["level"]
        e.message = row["message"]
        e.hostname = row["hostname"]
        e.program = row["program"]
        e.pid = row["pid"]
        e.wafAction = row["waf_action"]
        e.wafRule = row["waf_rule"]
        e.elbStatus = row["elb_status"]
        e.targetStatus = row["target_status"]
        e.error = row["error"]
        // `extra` is a flat object of strings (JSONText.object); anything else reads as empty.
        if let extra: String = row["extra"], let dict = JSONText.parseFlatObject(extra) {
            e.extra = dict
        }
        event = e
    }

    /// The one way code reads a record's original bytes in SQL: `raw` restored from its block, for
    /// the row of `event` or `rejected` named `table` (an alias or the table's name).
    public static func raw(_ table: String) -> String {
        "(SELECT raw_slice(b.data, b.size, \(table).raw_offset, \(table).raw_length) FROM raw_block b WHERE b.id = \(table).raw_block) AS raw"
    }

    /// Every column of an `event` row and its `raw`: `SELECT \(StoredEvent.columns) FROM event`.
    public static let columns = "event.*, " + raw("event")

    public init(id: Int64, sourceID: Int64, event: Event) {
        self.id = id
        self.sourceID = sourceID
        self.event = event
    }

    /// The original text of the record (invalid UTF-8 shown as U+FFFD; `event.raw` has the bytes).
    public var text: String { String(decoding: event.raw, as: UTF8.self) }

    public static func fetch(_ db: Database, ids: [Int64]) throws -> [StoredEvent] {
        guard !ids.isEmpty else { return [] }
        var out: [StoredEvent] = []
        for batch in stride(from: 0, to: ids.count, by: 500) {
            let part = Array(ids[batch..<min(ids.count, batch + 500)])
            let marks = part.map { _ in "?" }.joined(separator: ",")
            out += try StoredEvent.fetchAll(db, sql: "SELECT \(columns) FROM event WHERE id IN (\(marks))", arguments: StatementArguments(part))
        }
        return inTimeOrder(out)
    }

    /// Records by time, then id (the order evidence is cited in).
    public static func inTimeOrder(_ records: [StoredEvent]) -> [StoredEvent] {
        records.sorted { ($0.event.time ?? 0, $0.id) < ($1.event.time ?? 0, $1.id) }
    }
}

/// Source paths by id, for citing evidence as `path:line`.
public struct SourceIndex: Sendable {
    public var paths: [Int64: String]

    public static func load(_ db: Database) throws -> SourceIndex {
        var paths: [Int64: String] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT id, path FROM source") { paths[row["id"]] = row["path"] }
        return SourceIndex(paths: paths)
    }

    public func path(_ id: Int64) -> String { paths[id] ?? "source#\(id)" }
}

extension StoredEvent {
    /// Records of one kind from the sources of one format matching `condition`, read source by
    /// source through their id ranges. Over the event table these queries scanned every record of
    /// the timeline, or a day of it through the time index (0.5 s a question on 1.2M events, where
    /// the whole answer took 0.04 s), while metrics and findings are a handful of small files.
    static func fetchAll(_ db: Database, format: String, kind: String, where condition: String,
                         _ arguments: StatementArguments) throws -> [StoredEvent] {
        var rows: [StoredEvent] = []
        for range in try Row.fetchAll(db, sql: """
            SELECT first_event_id AS lo, last_event_id AS hi FROM source WHERE format = ? AND first_event_id IS NOT NULL
            """, arguments: [format]) {
            rows += try StoredEvent.fetchAll(db, sql: """
                SELECT \(columns) FROM event WHERE id BETWEEN ? AND ? AND kind = ? AND copy_of IS NULL AND \(condition)
                """, arguments: [range["lo"] as Int64, range["hi"] as Int64, kind] + arguments)
        }
        return rows
    }
}
