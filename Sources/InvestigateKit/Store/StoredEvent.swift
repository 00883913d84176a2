import Foundation
import GRDB
import GRDBSQLite

/// An event as read back from the timeline, with its row id and evidence location.
///
/// A class, and immutable: diagnosis hands the same records to many requests' cases and rules
/// filter them over and over; a struct copy would retain every one of the event's strings.
public final class StoredEvent: Sendable, Equatable {
    public let id: Int64
    public let sourceID: Int64
    public let event: Event

    public static func == (a: StoredEvent, b: StoredEvent) -> Bool {
        a === b || (a.id == b.id && a.sourceID == b.sourceID && a.event == b.event)
    }

    /// Records read by a query that selects `StoredEvent.columns` (or `columns(alias)`).
    ///
    /// The statement is stepped directly, not through GRDB's `Row`: GRDB reads TEXT up to the
    /// first NUL (a log may hold one, and a user agent cut short is a wrong value), and a `Row`
    /// of a record's twenty text columns cost more than the diagnosis's use of them.
    public static func fetchAll(_ db: Database, sql: String, arguments: StatementArguments = StatementArguments()) throws -> [StoredEvent] {
        try fetchAll(db.makeStatement(sql: sql), arguments: arguments)
    }

    public static func fetchAll(_ statement: Statement, arguments: StatementArguments = StatementArguments()) throws -> [StoredEvent] {
        try statement.setArguments(arguments)
        let h = statement.sqliteStatement
        sqlite3_reset(h)
        defer { sqlite3_reset(h) }
        let columns = ColumnPositions(h)
        let shared = SharedTextLookup(sqlite3_db_handle(h))
        // The bytes live in `raw_block`: a query that did not select them (`StoredEvent.columns`)
        // would show every record's evidence as empty. That is a programming error; fail loudly.
        guard columns.raw >= 0, columns.id >= 0, columns.sourceID >= 0 else {
            throw DatabaseError(resultCode: .SQLITE_ERROR, message: "events read without their original bytes: select StoredEvent.columns")
        }
        var out: [StoredEvent] = []
        while true {
            let rc = sqlite3_step(h)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else {
                throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(sqlite3_db_handle(h))))
            }
            out.append(try StoredEvent(h, columns, shared))
        }
        return out
    }

    /// Where each column of `event` sits in a statement's result (-1: not selected).
    struct ColumnPositions {
        var id: Int32 = -1, sourceID: Int32 = -1, raw: Int32 = -1
        /// `extra`'s common fields when stored apart (`ExtraSplitter`).
        var extraCommon: Int32 = -1
        var numbers: [Int32] = []
        var texts: [Int32] = []
        /// Per text column, whether its position holds the column as stored (`stored_path`, …).
        var stored: [Bool] = []

        init(_ h: OpaquePointer?) {
            var byName: [String: Int32] = [:]
            for i in 0..<sqlite3_column_count(h) {
                if let name = sqlite3_column_name(h, i) { byName[String(cString: name)] = byName[String(cString: name)] ?? i }
            }
            id = byName["id"] ?? -1
            sourceID = byName["source_id"] ?? -1
            raw = byName["raw"] ?? -1
            extraCommon = byName["stored_extra_common"] ?? -1
            numbers = StoredEvent.numberColumns.map { byName[$0] ?? -1 }
            // Only shared-text columns are read as stored; `stored_peer_ip` is for searches (its x''
            // means "the client", which the view's `peer_ip` restores).
            func storedName(_ column: String) -> String? {
                Schema.sharedTextColumns.contains(column) && byName["stored_" + column] != nil ? "stored_" + column : nil
            }
            texts = StoredEvent.textColumns.map { column in storedName(column).flatMap { byName[$0] } ?? byName[column] ?? -1 }
            stored = StoredEvent.textColumns.map { storedName($0) != nil }
        }
    }

    private init(_ h: OpaquePointer?, _ c: ColumnPositions, _ shared: SharedTextLookup) throws {
        func int(_ i: Int32) -> Int64? { i < 0 || sqlite3_column_type(h, i) == SQLITE_NULL ? nil : sqlite3_column_int64(h, i) }
        func text(_ k: Int) throws -> String? {
            let i = c.texts[k]
            guard i >= 0 else { return nil }
            return c.stored[k] ? try shared.text(h, i) : EventData.rawText(h, i)
        }
        func number(_ k: Int) -> Int64? { int(c.numbers[k]) }
        id = int(c.id) ?? 0
        sourceID = int(c.sourceID) ?? 0
        var raw: [UInt8] = []
        if sqlite3_column_type(h, c.raw) != SQLITE_NULL, let p = sqlite3_column_blob(h, c.raw) {
            raw = [UInt8](UnsafeRawBufferPointer(start: p, count: Int(sqlite3_column_bytes(h, c.raw))))
        }
        // Positions in `textColumns` and `numberColumns`.
        var e = Event(time: number(4), layer: try text(0).flatMap(Layer.init(rawValue:)) ?? .system,
                      kind: try text(1).flatMap(EventKind.init(rawValue:)) ?? .log,
                      line: Int(number(2) ?? 0), lineEnd: Int(number(3) ?? number(2) ?? 0), raw: raw)
        e.altTime = number(5)
        e.status = number(6).map { Int($0) }
        e.bytes = number(7)
        e.duration = number(8)
        e.pid = number(9).map { Int($0) }
        e.elbStatus = number(10).map { Int($0) }
        e.targetStatus = number(11).map { Int($0) }
        e.clientIP = try text(2)
        e.peerIP = try text(3)
        e.forwardedFor = try text(4)
        e.method = try text(5)
        e.path = try text(6)
        e.query = try text(7)
        e.requestID = try text(8)
        e.traceID = try text(9)
        e.userAgent = try text(10)
        e.host = try text(11)
        e.level = try text(12)
        e.message = try text(13)
        e.hostname = try text(14)
        e.program = try text(15)
        e.wafAction = try text(16)
        e.wafRule = try text(17)
        e.error = try text(18)
        // `extra` is a flat object of strings (JSONText.object); anything else reads as empty.
        if let extra = try text(19), let dict = JSONText.parseFlatObject(extra) {
            e.extra = dict
        }
        // Common fields stored apart (`ExtraSplitter`): the two parts hold disjoint keys.
        if c.extraCommon >= 0, let common = try shared.text(h, c.extraCommon), let dict = JSONText.parseFlatObject(common) {
            e.extra.merge(dict) { stored, _ in stored }
        }
        event = e
    }

    /// The one way code reads a record's original bytes in SQL: `raw` restored from its block, for
    /// the row of `event` or `rejected` named `table` (an alias or the table's name).
    public static func raw(_ table: String) -> String {
        "(SELECT raw_slice(b.data, b.size, \(table).raw_offset, \(table).raw_length) FROM raw_block b WHERE b.id = \(table).raw_block) AS raw"
    }

    /// `event`'s text columns, in the order `init(_:_:)` reads them.
    static let textColumns = ["layer", "kind", "client_ip", "peer_ip", "forwarded_for", "method", "path", "query", "request_id", "trace_id",
                              "user_agent", "host", "level", "message", "hostname", "program", "waf_action", "waf_rule", "error", "extra"]
    /// `event`'s other columns, in the order `init(_:_:)` reads them.
    static let numberColumns = ["id", "source_id", "line", "line_end", "time", "alt_time", "status", "bytes", "duration", "pid",
                                "elb_status", "target_status", "copy_of"]

    /// Every column of an `event` row named `table` (an alias or the view's name) and its `raw`,
    /// for `fetchAll`: `SELECT \(StoredEvent.columns("e")) FROM event e`.
    public static func columns(_ table: String) -> String {
        (numberColumns.map { "\(table).\($0)" }
            + textColumns.map { Schema.sharedTextColumns.contains($0) ? "\(table).stored_\($0)" : "\(table).\($0)" }
            + ["\(table).stored_extra_common", raw(table)]).joined(separator: ", ")
    }

    /// The same, with text read as bytes, for code reading through GRDB's `Row` (which reads TEXT
    /// up to the first NUL): decode them with `text(_:_:)`.
    public static func columnsAsBytes(_ table: String) -> String {
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
