import Foundation
import GRDB
import GRDBSQLite

/// Reading `event_data` itself, for the scans whose speed bounds a command (correlation reads
/// every record once per pass). The `event` view restores coded and shared columns with a CASE
/// and a subquery per row and per use (`Schema.restored`); read directly, a code is a table
/// look-up here and a shared value is fetched once and then shared by every record that names it.
/// Everything else reads the view.
enum EventData {
    /// A condition on a coded column (`layer`, `kind`) of `event_data` row `table`: the value is
    /// one of `names`, stored as its code or (a row written as text) as the name.
    static func codeIn(_ column: String, of table: String, _ names: [String]) -> String {
        let codes = Schema.v9Codes[column]!
        let numbers = names.compactMap { name in codes.firstIndex(of: name).map { String($0 + 1) } }
        let quoted = names.map { "'\($0)'" }
        return "\(table).\(column) IN (\((numbers + quoted).joined(separator: ",")))"
    }

    static let layerByCode: [Layer?] = [nil] + Schema.v9Codes["layer"]!.map { Layer(rawValue: $0) }
    static let kindByCode: [EventKind?] = [nil] + Schema.v9Codes["kind"]!.map { EventKind(rawValue: $0) }

    /// The layer in column `i` of a stepped statement over `event_data`.
    static func layer(_ h: OpaquePointer?, _ i: Int32) -> Layer? { coded(h, i, layerByCode) }

    /// The kind in column `i` of a stepped statement over `event_data`.
    static func kind(_ h: OpaquePointer?, _ i: Int32) -> EventKind? { coded(h, i, kindByCode) }

    /// A coded column: its code looked up in `byCode`, or its name (a row written as text).
    private static func coded<T: RawRepresentable>(_ h: OpaquePointer?, _ i: Int32, _ byCode: [T?]) -> T? where T.RawValue == String {
        switch sqlite3_column_type(h, i) {
        case SQLITE_INTEGER:
            let code = Int(sqlite3_column_int64(h, i))
            return code > 0 && code < byCode.count ? byCode[code] : nil
        case SQLITE_TEXT: return rawText(h, i).flatMap(T.init(rawValue:))
        default: return nil
        }
    }

    static func rawText(_ h: OpaquePointer?, _ i: Int32) -> String? {
        guard let p = sqlite3_column_text(h, i) else { return nil }
        return String(decoding: UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(h, i))), as: UTF8.self)
    }
}

/// `shared_text` values by id for one read of records (`StoredEvent.fetchAll`, a slab of
/// correlation, a replay), on the raw connection of the statement being stepped: each distinct
/// value is fetched once, and the same `String` serves every record that names it.
final class SharedTextLookup {
    private let db: OpaquePointer?
    private var statement: OpaquePointer?
    private var values: [Int64: String] = [:]

    init(_ db: OpaquePointer?) { self.db = db }

    deinit { sqlite3_finalize(statement) }

    /// Column `i` of a stepped statement over `event_data` (or the view's `stored_*` columns) as
    /// text: a shared id restored.
    func text(_ h: OpaquePointer?, _ i: Int32) throws -> String? {
        switch sqlite3_column_type(h, i) {
        case SQLITE_NULL: return nil
        case SQLITE_INTEGER: return try value(sqlite3_column_int64(h, i))
        default: return EventData.rawText(h, i)
        }
    }

    func value(_ id: Int64) throws -> String {
        if let known = values[id] { return known }
        if statement == nil {
            let rc = sqlite3_prepare_v2(db, "SELECT value FROM shared_text WHERE id = ?", -1, &statement, nil)
            guard rc == SQLITE_OK else { throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db))) }
        }
        sqlite3_reset(statement)
        sqlite3_bind_int64(statement, 1, id)
        defer { sqlite3_reset(statement) }
        let rc = sqlite3_step(statement)
        guard rc == SQLITE_ROW, let p = sqlite3_column_text(statement, 0) else {
            // An id naming no row would be a broken database: say so rather than show nothing.
            throw DatabaseError(resultCode: rc == SQLITE_DONE ? .SQLITE_CORRUPT : ResultCode(rawValue: rc),
                                message: "event_data names shared_text row \(id), which cannot be read")
        }
        let value = String(decoding: UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(statement, 0))), as: UTF8.self)
        values[id] = value
        return value
    }
}
