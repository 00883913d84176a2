import Foundation
import GRDB
import GRDBSQLite

/// Repeated text stored once. User agents, paths, hosts, WAF rule ids and `extra` objects repeat
/// row after row (six user agents in a million nginx lines); each distinct repeated value is one
/// `shared_text` row, and an event names it by id in the column instead of carrying the text.
///
/// A value is shared the second time an ingest run meets it; the first time it is stored inline,
/// as text. So values that never repeat (most query strings, one-off probe paths) cost nothing
/// more than before, and no value is ever guessed: the `event` view restores each column from
/// whichever form the row holds (`Schema.sharedTextColumns`). An integer in such a column always
/// means a `shared_text` id, because every column it applies to holds text only.
///
/// The table of values met is bounded (`maxEntries`, `maxBytes`): when full it is emptied, and
/// values are found again from `shared_text` on their next repeat.
final class SharedText {
    static let maxEntries = 1 << 18
    static let maxBytes = 24 << 20
    /// Shorter values stay inline: an id (1-3 bytes) plus the header byte saves nothing on them.
    static let minLength = 5

    /// Open addressing over `entries`: slot value is entry index + 1, 0 is empty.
    private var slots: [Int32] = []
    private var mask = 0
    private var hashes: [Int] = []
    private var offsets: [Int] = []
    private var lengths: [Int] = []
    /// 0: met once, stored inline; otherwise the `shared_text` id.
    private var ids: [Int64] = []
    private var bytes: [UInt8] = []
    /// The highest id this run assigned or found: if `shared_text` holds less (a file's savepoint
    /// rolled back the rows it added), every id remembered may be gone, and the table is emptied.
    private var highestID: Int64 = 0

    private var find: Statement?
    private var add: Statement?

    init() { reset() }

    private func reset() {
        slots = [Int32](repeating: 0, count: Self.maxEntries * 2)
        mask = slots.count - 1
        hashes.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        lengths.removeAll(keepingCapacity: true)
        ids.removeAll(keepingCapacity: true)
        bytes.removeAll(keepingCapacity: true)
        highestID = 0
    }

    /// Called before a file's rows are written: forgets ids a rolled-back savepoint took away.
    func validate(_ db: Database) throws {
        guard highestID > 0 else { return }
        let stored = try Int64.fetchOne(db, sql: "SELECT max(id) FROM shared_text") ?? 0
        if stored < highestID { reset() }
    }

    /// The `shared_text` id to store for `value`, or nil to store it inline.
    func id(for value: UnsafeRawBufferPointer, db: Database) throws -> Int64? {
        guard value.count >= Self.minLength else { return nil }
        var hasher = Hasher()
        hasher.combine(bytes: value)
        let hash = hasher.finalize()
        var slot = hash & mask
        while true {
            let entry = Int(slots[slot]) - 1
            if entry < 0 { break }
            if hashes[entry] == hash, lengths[entry] == value.count,
               bytes.withUnsafeBytes({ memcmp($0.baseAddress! + offsets[entry], value.baseAddress!, value.count) == 0 }) {
                if ids[entry] != 0 { return ids[entry] }
                let id = try store(value, db: db)
                ids[entry] = id
                return id
            }
            slot = (slot + 1) & mask
        }
        // Met for the first time (since the table was last emptied): inline.
        if ids.count >= Self.maxEntries || bytes.count + value.count > Self.maxBytes {
            reset()
            slot = hash & mask
        }
        slots[slot] = Int32(ids.count + 1)
        hashes.append(hash)
        offsets.append(bytes.count)
        lengths.append(value.count)
        ids.append(0)
        bytes.append(contentsOf: value)
        return nil
    }

    /// The value's `shared_text` row, added if missing (values are compared byte for byte).
    private func store(_ value: UnsafeRawBufferPointer, db: Database) throws -> Int64 {
        if find == nil {
            find = try db.makeStatement(sql: "SELECT id FROM shared_text WHERE value = ?")
            add = try db.makeStatement(sql: "INSERT INTO shared_text (value) VALUES (?)")
        }
        let id: Int64
        let f = find!.sqliteStatement
        sqlite3_reset(f)
        bindBytesAsText(f, 1, value)
        let rc = sqlite3_step(f)
        if rc == SQLITE_ROW {
            id = sqlite3_column_int64(f, 0)
            sqlite3_reset(f)
        } else {
            sqlite3_reset(f)
            guard rc == SQLITE_DONE else { throw Self.error(f, rc) }
            let a = add!.sqliteStatement
            sqlite3_reset(a)
            bindBytesAsText(a, 1, value)
            let rc = sqlite3_step(a)
            sqlite3_reset(a)
            guard rc == SQLITE_DONE else { throw Self.error(a, rc) }
            id = db.lastInsertedRowID
        }
        highestID = max(highestID, id)
        return id
    }

    private func bindBytesAsText(_ h: OpaquePointer?, _ i: Int32, _ value: UnsafeRawBufferPointer) {
        sqlite3_bind_text(h, i, value.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(value.count), SQLITE_TRANSIENT_PTR)
    }

    private static func error(_ h: OpaquePointer?, _ rc: Int32) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(sqlite3_db_handle(h))))
    }
}
