import GRDB
import GRDBSQLite

/// A prepared statement bound and stepped straight on the SQLite handle, for loops that run once
/// per record (GRDB's argument arrays allocate per call and cost more than the statement).
/// Text is bound with SQLITE_TRANSIENT: SQLite copies it, so callers may pass temporaries.
struct BoundStatement {
    let statement: Statement
    private var h: OpaquePointer? { statement.sqliteStatement }
    /// The SQLite handle, for callers binding in ways this type does not (SQLITE_STATIC blobs).
    var handle: OpaquePointer? { h }

    init(_ statement: Statement) {
        self.statement = statement
        sqlite3_reset(statement.sqliteStatement)
        sqlite3_clear_bindings(statement.sqliteStatement)
    }

    func bind(_ i: Int32, _ v: Int64?) {
        if let v { sqlite3_bind_int64(h, i, v) } else { sqlite3_bind_null(h, i) }
    }

    func bind(_ i: Int32, _ v: Double) {
        sqlite3_bind_double(h, i, v)
    }

    func bind(_ i: Int32, _ v: String?) { bindTransientText(h, i, v) }

    /// Steps the statement to completion and resets it for the next row (bindings stay until re-bound).
    func run() throws {
        let rc = sqlite3_step(h)
        sqlite3_reset(h)
        guard rc == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(sqlite3_db_handle(h))))
        }
    }
}

/// Inserts many narrow rows through statements of several value tuples each: per row, stepping and
/// resetting a one-row statement cost as much as the insert itself (correlation stores millions of
/// links). Rows that do not fill a whole statement go through a one-row statement.
struct MultiRowInsert {
    /// 64 rows a statement: beyond it, inserts of events and links got no faster.
    static let defaultRowsPerStatement = 64
    private let many: BoundStatement
    private let one: BoundStatement
    private let columns: Int32
    private let rowsPerStatement: Int

    /// `head` is the statement up to `VALUES`, e.g. `INSERT INTO link (a, b) VALUES`.
    init(_ db: Database, _ head: String, columns: Int, rowsPerStatement: Int = MultiRowInsert.defaultRowsPerStatement) throws {
        let tuple = "(" + Array(repeating: "?", count: columns).joined(separator: ",") + ")"
        many = try BoundStatement(db.cachedStatement(sql: head + " " + Array(repeating: tuple, count: rowsPerStatement).joined(separator: ",")))
        one = try BoundStatement(db.cachedStatement(sql: head + " " + tuple))
        self.columns = Int32(columns)
        self.rowsPerStatement = rowsPerStatement
    }

    /// Stores `rows` in order; `bind` binds one row's values at parameter `first`, `first + 1`, ….
    @inline(__always)
    func insert<Rows: RandomAccessCollection>(_ rows: Rows, bind: (BoundStatement, _ first: Int32, Rows.Element) throws -> Void) throws {
        var i = rows.startIndex
        while rows.distance(from: i, to: rows.endIndex) >= rowsPerStatement {
            for k in 0..<rowsPerStatement {
                try bind(many, 1 + Int32(k) * columns, rows[i])
                i = rows.index(after: i)
            }
            try many.run()
        }
        while i != rows.endIndex {
            try bind(one, 1, rows[i])
            try one.run()
            i = rows.index(after: i)
        }
    }

    /// Drops every binding: values bound without copying (SQLITE_STATIC) must not outlive their buffer.
    func clearBindings() {
        sqlite3_clear_bindings(many.handle)
        sqlite3_clear_bindings(one.handle)
    }
}
