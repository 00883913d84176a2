import Foundation
import GRDB
import GRDBSQLite

/// The SQLite timeline: one database file that holds every layer's events, their sources and the
/// rejected lines. Plain SQL works on it (see docs/schema.md).
public final class TimelineStore {
    public let path: String
    public let dbQueue: DatabaseQueue

    public init(path: String) throws {
        self.path = path
        var config = Configuration()
        config.prepareDatabase { db in
            // Large pages and a rollback journal: bulk loads append pages the journal need not copy,
            // where WAL would write every page twice. A killed ingest still rolls back whole (the hot
            // journal is replayed on the next open); FULL sync costs little with one commit per file.
            try db.execute(sql: "PRAGMA page_size = 16384")
            try db.execute(sql: "PRAGMA journal_mode = DELETE")
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            // Index builds sort through temporary files, not memory: peak memory stays bounded
            // whatever the input size.
            try db.execute(sql: "PRAGMA temp_store = FILE")
            try db.execute(sql: "PRAGMA cache_size = -65536")
        }
        dbQueue = try DatabaseQueue(path: path, configuration: config)
        try Schema.migrator().migrate(dbQueue)
    }

    /// An in-memory timeline (tests).
    public init() throws {
        path = ":memory:"
        dbQueue = try DatabaseQueue()
        try Schema.migrator().migrate(dbQueue)
    }

    public func read<T>(_ body: (Database) throws -> T) throws -> T {
        try dbQueue.read(body)
    }

    public func write<T>(_ body: (Database) throws -> T) throws -> T {
        try dbQueue.write(body)
    }
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

    enum CodingKeys: String, CodingKey {
        case id, path, sha256, size, mtime, inode, device, compressed, format, status, skipped, lines, events, rejected
        case firstTime = "first_time", lastTime = "last_time", parentId = "parent_id"
        case startOffset = "start_offset", startLine = "start_line", notes
    }

    public var noteList: [String] {
        (try? JSONDecoder().decode([String].self, from: Data(notes.utf8))) ?? []
    }

    public static func all(_ db: Database) throws -> [SourceRecord] {
        try SourceRecord.fetchAll(db, sql: "SELECT * FROM source ORDER BY id")
    }
}

/// Inserts events through one prepared statement, binding values straight onto the SQLite handle:
/// this is the ingest hot path, and GRDB's generic argument arrays cost more than the insert.
public final class EventWriter {
    private let statement: Statement
    private let rejectStatement: Statement
    private let sourceID: Int64

    public init(db: Database, sourceID: Int64) throws {
        self.sourceID = sourceID
        statement = try db.makeStatement(sql: """
            INSERT INTO event (source_id, line, line_end, time, alt_time, layer, kind, client_ip, peer_ip, forwarded_for,
                method, path, query, status, bytes, duration, request_id, trace_id, user_agent, host, level, message,
                hostname, program, pid, waf_action, waf_rule, elb_status, target_status, error, extra, raw)
            VALUES (?,?,?,?,?,?,?,?,?,?, ?,?,?,?,?,?,?,?,?,?,?,?, ?,?,?,?,?,?,?,?,?,?)
            """)
        rejectStatement = try db.makeStatement(sql: "INSERT INTO rejected (source_id, line, reason, raw) VALUES (?,?,?,?)")
    }

    public func insert(_ e: Event) throws {
        let h = statement.sqliteStatement
        sqlite3_reset(h)
        sqlite3_bind_int64(h, 1, sourceID)
        sqlite3_bind_int64(h, 2, Int64(e.line))
        sqlite3_bind_int64(h, 3, Int64(e.lineEnd))
        bind(h, 4, e.time)
        bind(h, 5, e.altTime)
        bind(h, 6, e.layer.rawValue)
        bind(h, 7, e.kind.rawValue)
        bind(h, 8, e.clientIP)
        bind(h, 9, e.peerIP)
        bind(h, 10, e.forwardedFor)
        bind(h, 11, e.method)
        bind(h, 12, e.path)
        bind(h, 13, e.query)
        bind(h, 14, e.status.map(Int64.init))
        bind(h, 15, e.bytes)
        bind(h, 16, e.duration)
        bind(h, 17, e.requestID)
        bind(h, 18, e.traceID)
        bind(h, 19, e.userAgent)
        bind(h, 20, e.host)
        bind(h, 21, e.level)
        bind(h, 22, e.message)
        bind(h, 23, e.hostname)
        bind(h, 24, e.program)
        bind(h, 25, e.pid.map(Int64.init))
        bind(h, 26, e.wafAction)
        bind(h, 27, e.wafRule)
        bind(h, 28, e.elbStatus.map(Int64.init))
        bind(h, 29, e.targetStatus.map(Int64.init))
        bind(h, 30, e.error)
        if e.extra.isEmpty {
            sqlite3_bind_null(h, 31)
        } else {
            bind(h, 31, JSONText.object(e.extra))
        }
        e.raw.withUnsafeBytes { raw in
            _ = sqlite3_bind_blob(h, 32, raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(raw.count), SQLITE_TRANSIENT_PTR)
        }
        try step(h)
    }

    public func insert(_ r: RejectedLine) throws {
        let h = rejectStatement.sqliteStatement
        sqlite3_reset(h)
        sqlite3_bind_int64(h, 1, sourceID)
        sqlite3_bind_int64(h, 2, Int64(r.line))
        bind(h, 3, r.reason)
        r.raw.withUnsafeBytes { raw in
            _ = sqlite3_bind_blob(h, 4, raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(raw.count), SQLITE_TRANSIENT_PTR)
        }
        try step(h)
    }

    private func step(_ h: OpaquePointer?) throws {
        let rc = sqlite3_step(h)
        guard rc == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(sqlite3_db_handle(h))))
        }
    }

    @inline(__always)
    private func bind(_ h: OpaquePointer?, _ i: Int32, _ v: String?) {
        guard let v else { sqlite3_bind_null(h, i); return }
        var s = v
        s.withUTF8 { buf in
            _ = sqlite3_bind_text(h, i, UnsafeRawPointer(buf.baseAddress ?? UnsafePointer(bitPattern: 1)!).assumingMemoryBound(to: CChar.self),
                                  Int32(buf.count), SQLITE_TRANSIENT_PTR)
        }
    }

    @inline(__always)
    private func bind(_ h: OpaquePointer?, _ i: Int32, _ v: Int64?) {
        if let v { sqlite3_bind_int64(h, i, v) } else { sqlite3_bind_null(h, i) }
    }
}

/// SQLite's SQLITE_TRANSIENT (copy the bound value), which Swift cannot import as a macro.
let SQLITE_TRANSIENT_PTR = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
