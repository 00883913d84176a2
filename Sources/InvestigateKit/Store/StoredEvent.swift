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
        let layer = Self.text(row, "layer").flatMap(Layer.init(rawValue:)) ?? .system
        let kind = Self.text(row, "kind").flatMap(EventKind.init(rawValue:)) ?? .log
        // The bytes live in `raw_block`: a query that did not select them (`StoredEvent.columns`)
        // would show every record's evidence as empty. That is a programming error; fail loudly.
        guard row.hasColumn("raw") else {
            throw DatabaseError(resultCode: .SQLITE_ERROR, message: "events read without their original bytes: select StoredEvent.columns")
        }
        let raw: Data = row["raw"] ?? Data()
        var e = Event(time: row["time"], layer: layer, kind: kind, line: row["line"], lineEnd: row["line_end"], raw: [UInt8](raw))
        e.altTime = row["alt_time"]
        e.clientIP = Self.text(row, "client_ip")
        e.peerIP = Self.text(row, "peer_ip")
        e.forwardedFor = Self.text(row, "forwarded_for")
        e.method = Self.text(row, "method")
        e.path = Self.text(row, "path")
        e.query = Self.text(row, "query")
        e.status = row["status"]
        e.bytes = row["bytes"]
        e.duration = row["duration"]
        e.requestID = Self.text(row, "request_id")
        e.traceID = Self.text(row, "trace_id")
        e.userAgent = Self.text(row, "user_agent")
        e.host = Self.text(row, "host")
        e.level = Self.text(row, "level")
        e.message = Self.text(row, "message")
        e.hostname = Self.text(row, "hostname")
        e.program = Self.text(row, "program")
        e.pid = row["pid"]
        e.wafAction = Self.text(row, "waf_action")
        e.wafRule = Self.text(row, "waf_rule")
        e.elbStatus = row["elb_status"]
        e.targetStatus = row["target_status"]
        e.error = Self.text(row, "error")
        // `extra` is a flat object of strings (JSONText.object); anything else reads as empty.
        if let extra = Self.text(row, "extra"), let dict = JSONText.parseFlatObject(extra) {
            e.extra = dict
        }
        event = e
    }

    /// The one way code reads a record's original bytes in SQL: `raw` restored from its block, for
    /// the row of `event` or `rejected` named `table` (an alias or the table's name).
    public static func raw(_ table: String) -> String {
        "(SELECT raw_slice(b.data, b.size, \(table).raw_offset, \(table).raw_length) FROM raw_block b WHERE b.id = \(table).raw_block) AS raw"
    }

    /// Text columns are read as their bytes: GRDB reads TEXT up to the first NUL, and a log may
    /// hold one. Decoding repairs invalid UTF-8 (text columns hold valid UTF-8 by construction).
    static let textColumns = ["layer", "kind", "client_ip", "peer_ip", "forwarded_for", "method", "path", "query", "request_id", "trace_id",
                              "user_agent", "host", "level", "message", "hostname", "program", "waf_action", "waf_rule", "error", "extra"]
    static let numberColumns = ["id", "source_id", "line", "line_end", "time", "alt_time", "status", "bytes", "duration", "pid",
                                "elb_status", "target_status", "copy_of"]

    /// Every column of an `event` row named `table` (an alias or the view's name), text as bytes,
    /// and its `raw`: `SELECT \(StoredEvent.columns("e")) FROM event e`.
    public static func columns(_ table: String) -> String {
        (numberColumns.map { "\(table).\($0)" } + textColumns.map { "CAST(\(table).\($0) AS BLOB) AS \($0)" } + [raw(table)])
            .joined(separator: ", ")
    }

    /// `columns` of the `event` view: `SELECT \(StoredEvent.columns) FROM event`.
    public static let columns = columns("event")

    /// A text column read as its bytes (`columns`), or as text (a query that selected it plainly).
    static func text(_ row: Row, _ column: String) -> String? {
        switch (row[column] as DatabaseValue).storage {
        case .blob(let data): return String(decoding: data, as: UTF8.self)
        case .string(let text): return text
        default: return nil
        }
    }

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
