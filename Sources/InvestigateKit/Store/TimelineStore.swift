import Foundation
import GRDB
import GRDBSQLite

/// The SQLite timeline: one database file that holds every layer's events, their sources and the
/// rejected lines. Plain SQL works on it (see docs/schema.md).
public final class TimelineStore {
    public let path: String
    public let dbQueue: DatabaseQueue
    /// Whether a statement that meets another process's lock waits for it (see `withoutLockWait`).
    let lockWaiting: LockWaiting
    /// The source scope applied by `scoped(_:_:)`, if any.
    let scopeState = ScopeState()

    /// How long a command waits for another process's write lock (an ingest running beside it)
    /// before it gives up with "database is locked".
    public static let defaultLockWait: TimeInterval = 120

    /// - Parameter onWait: called once when the database is found locked by another process
    ///   (to tell the user why nothing happens); the command then waits up to `lockWait` seconds.
    /// - Parameter onUpgrade: called before a database written by an older version is converted
    ///   to this version's schema (once; converting takes about 7 s a million events).
    public init(path: String, lockWait: TimeInterval = TimelineStore.defaultLockWait, onUpgrade: (() -> Void)? = nil,
                onWait: (@Sendable () -> Void)? = nil) throws {
        self.path = path
        var config = Configuration()
        // Another investigate writing the same database (an ingest in a second terminal): wait
        // for its lock, bounded, instead of failing at once with "database is locked". Readers
        // meet the lock only while a writer commits or spills its cache, writers while the other
        // holds its transaction (one file at most).
        let deadline = LockDeadline(seconds: lockWait)
        let waiting = LockWaiting()
        lockWaiting = waiting
        config.busyMode = .callback { tries in
            guard waiting.enabled else { return false }
            if tries == 0 { onWait?() }
            guard deadline.allows(tries: tries) else { return false }
            usleep(50_000)
            return true
        }
        config.prepareDatabase { db in
            // The functions that restore records' original bytes (`RawBlocks`).
            RawBlocks.registerFunctions(db)
            // Large pages, and a write-ahead log so that `timeline` or `--at` in a second terminal
            // read the last committed state while an ingest writes: under a rollback journal the
            // writer's exclusive lock (from its first cache spill to its commit) held readers off
            // for the length of a file. A killed ingest still leaves each file whole or absent (the
            // log's uncommitted frames are ignored on the next open). NORMAL sync is safe against a
            // crashed process; a power cut may lose the last groups, which a re-run reads again.
            // The cost is that pages are written twice (log, then checkpoint); bench/readers.sh
            // measures it.
            try db.execute(sql: "PRAGMA page_size = 16384")
            try Self.enableWriteAheadLog(db)
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            // Index builds sort through temporary files, not memory: peak memory stays bounded
            // whatever the input size.
            try db.execute(sql: "PRAGMA temp_store = FILE")
            try db.execute(sql: "PRAGMA cache_size = -65536")
            // Sorts (index builds above all) may use helper threads: after a bulk load the parsing
            // core is idle.
            try db.execute(sql: "PRAGMA threads = \(min(4, max(1, ProcessInfo.processInfo.activeProcessorCount)))")
        }
        dbQueue = try DatabaseQueue(path: path, configuration: config)
        let migrator = Schema.migrator()
        // A database a newer version wrote may store things this one would misread (v9 moved
        // the rows behind a view): refuse it, saying how to go on.
        let applied = try dbQueue.read { db in try migrator.appliedIdentifiers(db) }
        let unknown = applied.subtracting(migrator.migrations)
        guard unknown.isEmpty else { throw NewerDatabaseError(steps: unknown.sorted()) }
        if !applied.isEmpty, applied.count < migrator.migrations.count { onUpgrade?() }
        try migrator.migrate(dbQueue)
    }

    /// An in-memory timeline (tests).
    public init() throws {
        path = ":memory:"
        lockWaiting = LockWaiting()
        var config = Configuration()
        config.prepareDatabase { db in RawBlocks.registerFunctions(db) }
        dbQueue = try DatabaseQueue(configuration: config)
        try Schema.migrator().migrate(dbQueue)
    }

    /// Switches the file to WAL mode once (the mode is persistent). A database another process
    /// has open in rollback mode (written by an older version, still open there) cannot switch
    /// until that process is done; it keeps working in rollback mode meanwhile.
    static func enableWriteAheadLog(_ db: Database) throws {
        let mode = try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? ""
        guard mode.lowercased() != "wal", mode.lowercased() != "memory" else { return }
        do {
            _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
            return
        }
    }

    /// Runs `body` with lock waits off: a statement that meets another connection's lock fails at
    /// once with SQLITE_BUSY instead of waiting up to `lockWait`.
    func withoutLockWait<T>(_ body: () throws -> T) rethrows -> T {
        lockWaiting.enabled = false
        defer { lockWaiting.enabled = true }
        return try body()
    }

    /// The journal mode of the database file ("wal", "delete", "memory").
    func journalMode(_ db: Database) throws -> String {
        (try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "").lowercased()
    }

    /// Runs a bulk load in rollback-journal mode when no other connection has the database open,
    /// and returns to WAL after it. A bulk load (a file that at least doubles the table) writes
    /// every page of what it adds; through the write-ahead log each page is written twice, once to
    /// the log and once by the checkpoint at commit, which doubled the time to load 1M nginx lines
    /// (3.5–4.0 s → 7.2–8.3 s). With another connection open (a `timeline` in a second terminal)
    /// the switch is refused at once and the load runs in WAL, so that reader is not held off; a
    /// reader that opens during the load waits for it, with the usual message.
    func bulkLoad<T>(_ db: Database, when isBulk: Bool, _ body: () throws -> T) throws -> T {
        guard isBulk, try journalMode(db) == "wal" else { return try body() }
        let switched: Bool
        do {
            switched = try withoutLockWait { try String.fetchOne(db, sql: "PRAGMA journal_mode = DELETE") }?.lowercased() == "delete"
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
            switched = false
        }
        defer { if switched { try? Self.enableWriteAheadLog(db) } }
        return try body()
    }

    /// Builds indexes a query needs if missing (`Schema.ipIndexes` for one address, `idIndexes`
    /// for one request id, over any span). Not built when the database cannot be written now
    /// (read-only, or another process writing): the query then reads the span through the time
    /// index, slower but the same.
    public func ensureIndexes(_ indexes: [(name: String, sql: String)]) {
        _ = try? withoutLockWait {
            try dbQueue.inDatabase { db in
                let present = try Set(String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'event_data'"))
                guard indexes.contains(where: { !present.contains($0.name) }) else { return }
                try db.inTransaction(.immediate) {
                    try Schema.withSortingCache(db) {
                        for index in indexes { try db.execute(sql: index.sql) }
                    }
                    return .commit
                }
            }
        }
    }

    public func read<T>(_ body: (Database) throws -> T) throws -> T {
        try dbQueue.read(body)
    }

    public func write<T>(_ body: (Database) throws -> T) throws -> T {
        try dbQueue.write(body)
    }

    /// One small look-up in autocommit mode, without the transaction and read-only pragmas `read`
    /// wraps around its body: per-file look-ups over tens of thousands of files spent more time
    /// compiling those statements than looking up.
    public func lookup<T>(_ body: (Database) throws -> T) throws -> T {
        try dbQueue.inDatabase(body)
    }

    /// Whether `error` came from SQLite (a full disk, an I/O error, a corrupt file): the CLI maps
    /// it to its database-error exit status without depending on GRDB itself.
    public static func isDatabaseError(_ error: any Error) -> Bool { error is DatabaseError }

    /// Whether `error` is another process's lock outlasting the wait (SQLITE_BUSY/SQLITE_LOCKED).
    public static func isLockedError(_ error: any Error) -> Bool {
        guard let e = error as? DatabaseError else { return false }
        return e.resultCode == .SQLITE_BUSY || e.resultCode == .SQLITE_LOCKED
    }
}

/// A database written by a newer `investigate`, whose schema steps this version does not know.
public struct NewerDatabaseError: Error, CustomStringConvertible {
    public let steps: [String]
    public var description: String {
        "it was written by a newer investigate (schema steps unknown to this version: \(steps.joined(separator: ", "))); "
            + "open it with that version, or rebuild it with this one by ingesting the same logs into a new database (`investigate ingest --db NEW.db LOGS…`)"
    }
}

/// Lock waits on or off for one store's connection (its busy handler reads it).
final class LockWaiting: @unchecked Sendable {
    private let lock = NSLock()
    private var on = true
    var enabled: Bool {
        get { lock.lock(); defer { lock.unlock() }; return on }
        set { lock.lock(); on = newValue; lock.unlock() }
    }
}

/// The retry budget of a busy handler: SQLite calls it with the number of tries so far.
struct LockDeadline: Sendable {
    let seconds: TimeInterval
    /// Tries of 50 ms each.
    func allows(tries: Int) -> Bool { Double(tries) * 0.05 < seconds }
}

/// A stored source row.
public struct SourceRecord: Sendable, Equatable, FetchableRecord, Codable {
    public var id: Int64
    public var path: String
    public var sha256: String
    public var size: Int64
    public var mtime: Int64?
    public var inode: Int64?
    public var device: Int64?
    public var compressed: Bool
    public var format: String?
    public var status: String
    public var skipped: String?
    public var lines: Int
    public var events: Int
    public var rejected: Int
    public var firstTime: Int64?
    public var lastTime: Int64?
    public var parentId: Int64?
    public var startOffset: Int64
    public var startLine: Int
    public var notes: String
    /// The contiguous run of ids this source's events hold (nil without events).
    public var firstEventId: Int64?
    public var lastEventId: Int64?
    /// SHA-256 and length of the whole content read (decompressed; without a held-back last line),
    /// from byte 0 whatever `start_offset` is; nil for gzip sources stored before they were recorded.
    public var contentSha256: String?
    public var contentSize: Int64?
    /// `ContentHead.storedKey` of that content.
    public var headSha256: String?
    /// The span of time whose records this version holds, when it was read for a question's
    /// window only (nil: all its records); `outsideLines` lines of records outside it were read
    /// and not stored.
    public var coveredFrom: Int64?
    public var coveredTo: Int64?
    public var outsideLines: Int

    enum CodingKeys: String, CodingKey {
        case id, path, sha256, size, mtime, inode, device, compressed, format, status, skipped, lines, events, rejected
        case firstTime = "first_time", lastTime = "last_time", parentId = "parent_id"
        case startOffset = "start_offset", startLine = "start_line", notes
        case firstEventId = "first_event_id", lastEventId = "last_event_id"
        case contentSha256 = "content_sha256", contentSize = "content_size", headSha256 = "head_sha256"
        case coveredFrom = "covered_from", coveredTo = "covered_to", outsideLines = "outside_lines"
    }

    /// The span of time this version holds all records of (nil: the whole file).
    public var covered: ClosedRange<Int64>? {
        guard let from = coveredFrom, let to = coveredTo, from <= to else { return nil }
        return from...to
    }

    /// Lines in the content up to this version's end (those of the versions it continues too).
    public var totalLines: Int { startLine + lines }

    public var noteList: [String] { Self.notes(notes) }

    /// A source row's `notes` column (a JSON array of strings), decoded; empty when unreadable.
    public static func notes(_ json: String?) -> [String] {
        (try? JSONDecoder().decode([String].self, from: Data((json ?? "[]").utf8))) ?? []
    }

    /// Replaces a source's notes (the passes after a run that move or mark its records say so there).
    static func storeNotes(_ notes: [String], source id: Int64, _ db: Database) throws {
        let json = String(decoding: try JSONEncoder().encode(notes), as: UTF8.self)
        try db.execute(sql: "UPDATE source SET notes = ? WHERE id = ?", arguments: [json, id])
    }

    /// The paths and notes of the sources around a span whose notes hold a phrase: what the passes
    /// after a run changed, for an answer about that span.
    static func notedAround(_ db: Database, containing phrase: String, from: Int64, to: Int64) throws -> [(path: String, notes: [String])] {
        try Row.fetchAll(db, sql: """
            SELECT CAST(path AS BLOB) AS path, notes FROM source WHERE notes LIKE ? AND first_time <= ? AND last_time >= ? ORDER BY id
            """, arguments: ["%" + phrase + "%", to + 3_600_000_000, from - 3_600_000_000])
            .map { (StoredEvent.text($0, "path") ?? "?", notes($0["notes"])) }
    }

    /// Every source whose records are in the timeline. Rows of skipped files (kept so an
    /// unchanged one is not read again) are left out.
    public static func all(_ db: Database) throws -> [SourceRecord] {
        try SourceRecord.fetchAll(db, sql: "SELECT * FROM source WHERE status = 'complete' ORDER BY id")
    }
}

/// Inserts events through prepared statements, binding values straight onto the SQLite handle:
/// this is the ingest hot path, and GRDB's generic argument arrays cost more than the insert.
public final class EventWriter {
    /// Many events a statement (`MultiRowInsert`): stepping and resetting a one-row statement per
    /// event cost about a sixth of the insert. VALUES rows are inserted in order, so a source's
    /// events still hold consecutive ids.
    static let rowsPerStatement = MultiRowInsert.defaultRowsPerStatement
    private let db: Database
    private let rejectStatement: Statement
    private let sourceID: Int64
    /// Stores the records' original bytes in compressed blocks (`RawBlocks`).
    private let blocks: RawBlockWriter
    /// One statement per set of filled columns (formats fill the same few batch after batch).
    private var statements: [ColumnSet: Shape] = [:]
    /// Repeated text stored once (`SharedText`); one for a whole ingest run.
    private let shared: SharedText
    /// `event_data`'s codes for layers (indexed by `Layer.depth`) and kinds (`Schema.v9Codes`);
    /// nil: stored as its name.
    private static let layerCodes: [Int64?] = {
        var codes = [Int64?](repeating: nil, count: Layer.allCases.count)
        for layer in Layer.allCases {
            codes[layer.depth] = Schema.v9Codes["layer"]!.firstIndex(of: layer.rawValue).map { Int64($0 + 1) }
        }
        return codes
    }()
    private static let kindCodes: [EventKind: Int64] = Dictionary(uniqueKeysWithValues: Schema.v9Codes["kind"]!.enumerated().compactMap { i, name in
        EventKind(rawValue: name).map { ($0, Int64(i + 1)) }
    })
    /// `EventBatch.Text` raw values whose column may hold a `shared_text` id, one bit each.
    static let sharedTexts: UInt32 = optionalTexts.reduce(0) { bits, column in
        Schema.sharedTextColumns.contains(column.1) ? bits | (1 << UInt32(column.0.rawValue)) : bits
    }

    /// `Schema.sameAsClientColumns`, stored as x'' when their bytes equal `client_ip`'s.
    static let sameAsClient: UInt32 = 1 << UInt32(EventBatch.Text.peerIP.rawValue) | 1 << UInt32(EventBatch.Text.forwardedFor.rawValue)
    static let clientIPColumn = EventBatch.Text.clientIP.rawValue

    static func equalSpans(_ a: EventBatch.Span, _ b: EventBatch.Span, _ base: UnsafeRawPointer) -> Bool {
        !b.isNull && a.count == b.count && (a.start == b.start || memcmp(base + a.start, base + b.start, a.count) == 0)
    }

    static let extraBit: UInt32 = 1 << UInt32(EventBatch.Text.extra.rawValue)
    static let extraColumn = EventBatch.Text.extra.rawValue

    /// The optional columns a batch fills (`EventBatch.filledTexts`/`filledNumbers`).
    struct ColumnSet: Hashable {
        var texts: UInt32
        var numbers: UInt32
    }

    /// An INSERT naming the columns every event has, then only the optional ones a batch fills:
    /// a column left out is NULL without a bind or a copy per row, and any one format fills about
    /// half of the 32 columns.
    struct Shape {
        let inserter: MultiRowInsert
        let numbers: [Int]  // `EventBatch.Number` raw values, in parameter order after the fixed ones
        let texts: [Int]    // `EventBatch.Text` raw values, after `numbers`
    }

    /// Bound for every event, as parameters 1–9.
    static let fixedColumns = ["source_id", "line", "line_end", "time", "layer", "kind", "raw_block", "raw_offset", "raw_length"]
    private static let optionalNumbers: [(EventBatch.Number, String)] = [
        (.altTime, "alt_time"), (.status, "status"), (.bytes, "bytes"), (.duration, "duration"), (.pid, "pid"),
        (.elbStatus, "elb_status"), (.targetStatus, "target_status"),
    ]
    private static let optionalTexts: [(EventBatch.Text, String)] = [
        (.clientIP, "client_ip"), (.peerIP, "peer_ip"), (.forwardedFor, "forwarded_for"), (.method, "method"),
        (.path, "path"), (.query, "query"), (.requestID, "request_id"), (.traceID, "trace_id"),
        (.userAgent, "user_agent"), (.host, "host"), (.level, "level"), (.message, "message"),
        (.hostname, "hostname"), (.program, "program"), (.wafAction, "waf_action"), (.wafRule, "waf_rule"),
        (.error, "error"), (.extra, "extra"),
    ]

    init(db: Database, sourceID: Int64, shared: SharedText) throws {
        self.db = db
        self.sourceID = sourceID
        self.shared = shared
        try shared.validate(db)
        rejectStatement = try db.makeStatement(sql: """
            INSERT INTO rejected (source_id, line, reason, raw_block, raw_offset, raw_length) VALUES (?,?,?,?,?,?)
            """)
        blocks = try RawBlockWriter(db: db, sourceID: sourceID)
    }

    /// A writer for one source's records on its own (tests, the ClickHouse working set): repeated
    /// text is shared from that source's second occurrence on.
    public convenience init(db: Database, sourceID: Int64) throws {
        try self.init(db: db, sourceID: sourceID, shared: SharedText())
    }

    private func shape(_ set: ColumnSet) throws -> Shape {
        if let known = statements[set] { return known }
        let numbers = Self.optionalNumbers.filter { set.numbers & (1 << UInt32($0.0.rawValue)) != 0 }
        let texts = Self.optionalTexts.filter { set.texts & (1 << UInt32($0.0.rawValue)) != 0 }
        // A batch with `extra` binds `extra_common` last (`ExtraSplitter`).
        let names = Self.fixedColumns + numbers.map(\.1) + texts.map(\.1) + (set.texts & Self.extraBit != 0 ? ["extra_common"] : [])
        // OR FAIL, not the default ABORT: a multi-row INSERT that may abort (any NOT NULL column)
        // makes SQLite copy every page it touches that existed before the statement into a
        // statement journal first, in case it must undo the statement's earlier rows. For 3M nginx
        // lines that was 2.3 GB of temp-file writes (the table's right edge, once per statement).
        // Every NOT NULL value here is bound by construction; if one ever failed, the file's own
        // savepoint still undoes the whole file. Without a statement journal, SQLite answers an
        // I/O error, a full disk or an out-of-memory mid-statement by rolling back the whole
        // transaction: `Ingester` then stops the run rather than report that group as stored.
        let inserter = try MultiRowInsert(db, "INSERT OR FAIL INTO event_data (\(names.joined(separator: ", "))) VALUES", columns: names.count)
        let made = Shape(inserter: inserter, numbers: numbers.map(\.0.rawValue), texts: texts.map(\.0.rawValue))
        statements[set] = made
        return made
    }

    /// Stores one event (tests, small callers); the ingest path stores whole batches.
    public func insert(_ e: Event) throws {
        var batch = EventBatch()
        batch.append(e)
        try insert(batch)
    }

    /// Stores a batch of events in order. Values are bound without copying (SQLITE_STATIC) from
    /// the batch's arena, which outlives every step of this loop.
    public func insert(_ batch: EventBatch) throws {
        try insert(batch, rows: 0..<batch.count)
    }

    /// Stores the given rows of a batch, in order (the others are left out: records outside a
    /// question's window, lines already stored).
    public func insert<Rows: RandomAccessCollection>(_ batch: EventBatch, rows: Rows) throws where Rows.Element == Int {
        guard !rows.isEmpty else { return }
        let shape = try shape(ColumnSet(texts: batch.filledTexts, numbers: batch.filledNumbers))
        defer { shape.inserter.clearBindings() }
        try batch.arena.withUnsafeBufferPointer { arena in
            let base = UnsafeRawPointer(arena.baseAddress ?? UnsafePointer(bitPattern: 1)!)
            // The rows' original bytes go to blocks first; each row then names its place. `refs`
            // is indexed by batch row.
            // Blocks packed on the parsing thread serve when every row is stored; otherwise the
            // stored rows' bytes are packed here (no block holds bytes of a row left out).
            let ordered = Array(rows)
            var refs: [RawRef]
            if let packed = batch.packedRaw, ordered.count == batch.count, ordered.elementsEqual(0..<batch.count) {
                refs = try blocks.store(packed)
            } else {
                let placed = try blocks.store(count: ordered.count) { i, body in
                    let raw = batch.spans[ordered[i] * EventBatch.textColumns + EventBatch.Text.raw.rawValue]
                    body(UnsafeRawBufferPointer(start: base + raw.start, count: raw.count))
                }
                refs = [RawRef](repeating: RawRef(block: 0, offset: 0, length: 0), count: batch.count)
                for (i, row) in ordered.enumerated() { refs[row] = placed[i] }
            }
            // Hashed on the parsing thread when the batch came from there.
            try batch.textHashes.withUnsafeBufferPointer { hashBuffer in
                let hashes: UnsafeBufferPointer<Int>? = batch.hasTextHashes ? hashBuffer : nil
                try batch.spans.withUnsafeBufferPointer { spans in
                    try batch.numbers.withUnsafeBufferPointer { numbers in
                        try shape.numbers.withUnsafeBufferPointer { numberColumns in
                            try shape.texts.withUnsafeBufferPointer { textColumns in
                                try shape.inserter.insert(rows) { statement, first, row in
                                    let h = statement.handle
                                    let n = row * EventBatch.numberColumns, t = row * EventBatch.textColumns
                                    sqlite3_bind_int64(h, first, sourceID)
                                    bindNumber(h, first + 1, numbers[n + EventBatch.Number.line.rawValue])
                                    let line = numbers[n + EventBatch.Number.line.rawValue], lineEnd = numbers[n + EventBatch.Number.lineEnd.rawValue]
                                    bindNumber(h, first + 2, lineEnd == line ? EventBatch.nullNumber : lineEnd)
                                    bindNumber(h, first + 3, numbers[n + EventBatch.Number.time.rawValue])
                                    let layer = batch.layers[row], kind = batch.kinds[row]
                                    if let code = Self.layerCodes[layer.depth] { sqlite3_bind_int64(h, first + 4, code) } else {
                                        layer.staticName.withUTF8Buffer { bindStatic(h, first + 4, $0) }
                                    }
                                    if let code = Self.kindCodes[kind] { sqlite3_bind_int64(h, first + 5, code) } else {
                                        kind.staticName.withUTF8Buffer { bindStatic(h, first + 5, $0) }
                                    }
                                    let ref = refs[row]
                                    sqlite3_bind_int64(h, first + 6, ref.block)
                                    sqlite3_bind_int64(h, first + 7, ref.offset)
                                    sqlite3_bind_int64(h, first + 8, ref.length)
                                    var param = first + 9
                                    let extraCommonParam = first + 9 + Int32(numberColumns.count + textColumns.count)
                                    for column in numberColumns {
                                        bindNumber(h, param, numbers[n + column])
                                        param += 1
                                    }
                                    for column in textColumns {
                                        let span = spans[t + column]
                                        if span.isNull {
                                            sqlite3_bind_null(h, param)
                                            if column == Self.extraColumn { sqlite3_bind_null(h, extraCommonParam) }
                                        } else if column == Self.extraColumn {
                                            try bindExtra(h, param, common: extraCommonParam,
                                                          UnsafeRawBufferPointer(start: base + span.start, count: span.count),
                                                          hash: hashes?[t + column], layer: layer.depth)
                                        } else if Self.sameAsClient & (1 << UInt32(column)) != 0,
                                                  Self.equalSpans(span, spans[t + Self.clientIPColumn], base) {
                                            sqlite3_bind_zeroblob(h, param, 0)  // x'': the view restores `client_ip`
                                        } else if Self.sharedTexts & (1 << UInt32(column)) != 0, span.count >= SharedText.minLength,
                                                  let id = try shared.id(for: UnsafeRawBufferPointer(start: base + span.start, count: span.count),
                                                                         hash: hashes?[t + column]
                                                                            ?? SharedText.hash(UnsafeRawBufferPointer(start: base + span.start, count: span.count)),
                                                                         db: db) {
                                            sqlite3_bind_int64(h, param, id)
                                        } else {
                                            sqlite3_bind_text(h, param, (base + span.start).assumingMemoryBound(to: CChar.self), Int32(span.count),
                                                              SQLITE_STATIC_PTR)
                                        }
                                        param += 1
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Binds a record's `extra` and `extra_common`: the whole object's id when it repeats whole
    /// (an nginx record's protocol and referer: one id, and its hash is already computed), else
    /// its common fields apart from the rest (`ExtraSplitter`), each part shared when it repeats,
    /// else the object inline.
    private func bindExtra(_ h: OpaquePointer?, _ param: Int32, common commonParam: Int32, _ value: UnsafeRawBufferPointer,
                           hash: Int?, layer: Int) throws {
        if value.count >= SharedText.minLength, let id = try shared.id(for: value, hash: hash ?? SharedText.hash(value), db: db) {
            sqlite3_bind_int64(h, param, id)
            sqlite3_bind_null(h, commonParam)
            return
        }
        let splitter = shared.extraSplitter
        if splitter.split(value, layer: layer) {
            try splitter.common.withUnsafeBytes { try bindShared(h, commonParam, $0) }
            if splitter.varying.count == 2 { sqlite3_bind_null(h, param) } else {
                try splitter.varying.withUnsafeBytes { try bindShared(h, param, $0) }
            }
            return
        }
        sqlite3_bind_null(h, commonParam)
        sqlite3_bind_text(h, param, value.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(value.count), SQLITE_STATIC_PTR)
    }

    /// Binds a value that may repeat: its `shared_text` id, or (the splitter's buffers are reused
    /// per record) a copy of its text.
    private func bindShared(_ h: OpaquePointer?, _ param: Int32, _ value: UnsafeRawBufferPointer) throws {
        if value.count >= SharedText.minLength, let id = try shared.id(for: value, hash: SharedText.hash(value), db: db) {
            sqlite3_bind_int64(h, param, id)
        } else {
            sqlite3_bind_text(h, param, value.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(value.count), SQLITE_TRANSIENT_PTR)
        }
    }

    @inline(__always)
    private func bindNumber(_ h: OpaquePointer?, _ i: Int32, _ v: Int64) {
        if v == EventBatch.nullNumber { sqlite3_bind_null(h, i) } else { sqlite3_bind_int64(h, i, v) }
    }

    @inline(__always)
    private func bindStatic(_ h: OpaquePointer?, _ i: Int32, _ utf8: UnsafeBufferPointer<UInt8>) {
        sqlite3_bind_text(h, i, UnsafeRawPointer(utf8.baseAddress!).assumingMemoryBound(to: CChar.self), Int32(utf8.count), SQLITE_STATIC_PTR)
    }

    public func insert(_ r: RejectedLine) throws {
        try insert([r])
    }

    /// Stores rejected lines in order; their bytes share blocks, as events' do.
    public func insert(_ lines: [RejectedLine]) throws {
        guard !lines.isEmpty else { return }
        let refs = try blocks.store(count: lines.count) { i, body in lines[i].raw.withUnsafeBytes { body($0) } }
        let h = rejectStatement.sqliteStatement
        for (r, ref) in zip(lines, refs) {
            sqlite3_reset(h)
            sqlite3_bind_int64(h, 1, sourceID)
            sqlite3_bind_int64(h, 2, Int64(r.line))
            bind(h, 3, r.reason)
            sqlite3_bind_int64(h, 4, ref.block)
            sqlite3_bind_int64(h, 5, ref.offset)
            sqlite3_bind_int64(h, 6, ref.length)
            try step(h)
        }
    }

    private func step(_ h: OpaquePointer?) throws {
        let rc = sqlite3_step(h)
        guard rc == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(sqlite3_db_handle(h))))
        }
    }

    @inline(__always)
    private func bind(_ h: OpaquePointer?, _ i: Int32, _ v: String?) { bindTransientText(h, i, v) }

    @inline(__always)
    private func bind(_ h: OpaquePointer?, _ i: Int32, _ v: Int64?) {
        if let v { sqlite3_bind_int64(h, i, v) } else { sqlite3_bind_null(h, i) }
    }
}

/// Binds a Swift string as text that SQLite copies (the string may be a temporary); nil is NULL.
func bindTransientText(_ h: OpaquePointer?, _ i: Int32, _ v: String?) {
    guard var v else { sqlite3_bind_null(h, i); return }
    v.withUTF8 { buf in
        _ = sqlite3_bind_text(h, i, UnsafeRawPointer(buf.baseAddress ?? UnsafePointer(bitPattern: 1)!).assumingMemoryBound(to: CChar.self),
                              Int32(buf.count), SQLITE_TRANSIENT_PTR)
    }
}

/// SQLite's SQLITE_TRANSIENT (copy the bound value), which Swift cannot import as a macro.
let SQLITE_TRANSIENT_PTR = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
/// SQLite's SQLITE_STATIC (the caller keeps the bound value alive until the statement is re-bound).
let SQLITE_STATIC_PTR: sqlite3_destructor_type? = nil
