import GRDB
import GRDBSQLite

/// A prepared statement bound and stepped straight on the SQLite handle, for loops that run once
/// per record (GRDB's argument arrays allocate per call and cost more than the statement).
/// Text is bound with SQLITE_TRANSIENT: SQLite copies it, so callers may pass temporaries.
struct BoundStatement {
    let statement: Statement
    private var h: OpaquePointer? { statement.sqliteStatement }

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
