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
/// values are found again from `shared_text` on their next repeat. A look-up probes at most
/// `maxProbes` slots (log text is attacker-controlled; the hash is seeded per process, and a
/// value that finds no slot is simply stored inline).
///
/// This is the ingest writer's hot path: the tables are raw buffers (Swift arrays in a class
/// paid an exclusivity check per access), and values arrive hashed by the parsing thread
/// (`EventBatch.hashTexts`).
final class SharedText {
    static let maxEntries = 1 << 18
    static let maxBytes = 24 << 20
    static let maxProbes = 64
    /// Shorter values stay inline: an id (1-3 bytes) plus the header byte saves nothing on them.
    static let minLength = 5

    /// The hash `id(for:hash:db:)` expects (SipHash, seeded per process).
    @inline(__always)
    static func hash(_ value: UnsafeRawBufferPointer) -> Int {
        var hasher = Hasher()
        hasher.combine(bytes: value)
        return hasher.finalize()
    }

    /// Entries the tables hold before they grow (twice, up to `maxEntries`): a writer for one
    /// small source (the ClickHouse working set makes one per source) stays small.
    static let initialEntries = 1 << 10

    private var capacity = 0
    /// Open addressing over the entries (`2 * capacity` slots): a slot holds entry index + 1, 0 is empty.
    private var slots = UnsafeMutablePointer<Int32>.allocate(capacity: 0)
    private var hashes = UnsafeMutablePointer<Int>.allocate(capacity: 0)
    private var offsets = UnsafeMutablePointer<Int>.allocate(capacity: 0)
    private var lengths = UnsafeMutablePointer<Int>.allocate(capacity: 0)
    /// 0: met once, stored inline; otherwise the `shared_text` id.
    private var ids = UnsafeMutablePointer<Int64>.allocate(capacity: 0)
    private var bytes = UnsafeMutableRawPointer.allocate(byteCount: 0, alignment: 8)
    private var byteCapacity = 0
    private var entries = 0
    private var usedBytes = 0
    /// The highest id this run assigned or found: if `shared_text` holds less (a file's savepoint
    /// rolled back the rows it added), every id remembered may be gone, and the table is emptied.
    private var highestID: Int64 = 0

    /// `extra` objects split into their repeating and varying fields, learnt over the same run.
    let extraSplitter = ExtraSplitter()

    private var find: Statement?
    private var add: Statement?

    init() { reset() }

    deinit { release() }

    private func release() {
        slots.deallocate()
        hashes.deallocate()
        offsets.deallocate()
        lengths.deallocate()
        ids.deallocate()
        bytes.deallocate()
    }

    /// Empties the tables, back to their initial size.
    private func reset() {
        release()
        capacity = Self.initialEntries
        slots = .allocate(capacity: capacity * 2)
        slots.initialize(repeating: 0, count: capacity * 2)
        hashes = .allocate(capacity: capacity)
        offsets = .allocate(capacity: capacity)
        lengths = .allocate(capacity: capacity)
        ids = .allocate(capacity: capacity)
        byteCapacity = 64 * 1024
        bytes = .allocate(byteCount: byteCapacity, alignment: 8)
        entries = 0
        usedBytes = 0
        highestID = 0
    }

    /// Doubles the entry tables and re-slots every entry.
    private func growEntries() {
        let newCapacity = capacity * 2
        func moved<T>(_ old: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<T> {
            let new = UnsafeMutablePointer<T>.allocate(capacity: newCapacity)
            new.moveInitialize(from: old, count: entries)
            old.deallocate()
            return new
        }
        hashes = moved(hashes)
        offsets = moved(offsets)
        lengths = moved(lengths)
        ids = moved(ids)
        slots.deallocate()
        capacity = newCapacity
        slots = .allocate(capacity: capacity * 2)
        slots.initialize(repeating: 0, count: capacity * 2)
        let mask = capacity * 2 - 1
        for entry in 0..<entries {
            var slot = hashes[entry] & mask
            while slots[slot] != 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(entry + 1)
        }
    }

    private func growBytes(toHold needed: Int) {
        var newCapacity = byteCapacity
        while newCapacity < needed { newCapacity *= 2 }
        let new = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 8)
        new.copyMemory(from: bytes, byteCount: usedBytes)
        bytes.deallocate()
        bytes = new
        byteCapacity = newCapacity
    }

    /// Called before a file's rows are written: forgets ids a rolled-back savepoint took away.
    func validate(_ db: Database) throws {
        guard highestID > 0 else { return }
        let stored = try Int64.fetchOne(db, sql: "SELECT max(id) FROM shared_text") ?? 0
        if stored < highestID { reset() }
    }

    /// The `shared_text` id to store for `value` (whose `hash` is `SharedText.hash(value)`), or
    /// nil to store it inline.
    func id(for value: UnsafeRawBufferPointer, hash: Int, db: Database) throws -> Int64? {
        guard value.count >= Self.minLength else { return nil }
        var mask = capacity * 2 - 1
        var slot = hash & mask
        var probes = 0
        while true {
            let entry = Int(slots[slot]) - 1
            if entry < 0 { break }
            if hashes[entry] == hash, lengths[entry] == value.count, memcmp(bytes + offsets[entry], value.baseAddress!, value.count) == 0 {
                if ids[entry] != 0 { return ids[entry] }
                let id = try store(value, db: db)
                ids[entry] = id
                return id
            }
            probes += 1
            if probes == Self.maxProbes { return nil }
            slot = (slot + 1) & mask
        }
        // Met for the first time (since the table was last emptied): inline.
        if entries == Self.maxEntries || usedBytes + value.count > Self.maxBytes {
            guard value.count <= Self.maxBytes else { return nil }
            reset()
        }
        if entries == capacity { growEntries() }
        if usedBytes + value.count > byteCapacity { growBytes(toHold: usedBytes + value.count) }
        // The tables may have been emptied or grown: find the value's free slot again.
        mask = capacity * 2 - 1
        slot = hash & mask
        probes = 0
        while slots[slot] != 0 {
            probes += 1
            if probes == Self.maxProbes { return nil }
            slot = (slot + 1) & mask
        }
        slots[slot] = Int32(entries + 1)
        hashes[entries] = hash
        offsets[entries] = usedBytes
        lengths[entries] = value.count
        ids[entries] = 0
        (bytes + usedBytes).copyMemory(from: value.baseAddress!, byteCount: value.count)
        usedBytes += value.count
        entries += 1
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
