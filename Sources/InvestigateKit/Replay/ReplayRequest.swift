import Foundation
import GRDB
import GRDBSQLite

/// One request as a layer logged it (`event` rows of kind `access`), with only what replay needs.
///
/// Replay does not merge a request's records across layers: the WAF, the ALB and nginx each log
/// the same request, so detectors keep their state per layer and every alert names its layer
/// (`--layer` narrows replay to chosen layers). What-if WAF rules see one layer only (the
/// outermost one present, see `ReplayOptions.rulesLayer`), so each request is judged once.
public struct ReplayRequest: Sendable, Equatable {
    public var id: Int64
    /// µs UTC.
    public var time: Int64
    public var layer: Layer
    public var clientIP: String?
    public var path: String?
    public var status: Int?
    /// What only the what-if rules read; nil when replay runs detectors alone, which keeps the
    /// per-request value small (millions are copied and destroyed per second).
    public var details: RequestDetails?

    public init(id: Int64 = 0, time: Int64, layer: Layer, clientIP: String?, method: String? = "GET", path: String?,
                query: String? = nil, status: Int? = nil, userAgent: String? = nil, host: String? = nil,
                forwardedFor: String? = nil, wafAction: String? = nil, wafRule: String? = nil, extra: [String: String] = [:]) {
        self.id = id
        self.time = time
        self.layer = layer
        self.clientIP = clientIP
        self.path = path
        self.status = status
        var extraJSON: String?
        if !extra.isEmpty {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            extraJSON = (try? encoder.encode(extra)).map { String(decoding: $0, as: UTF8.self) }
        }
        if method != nil || query != nil || userAgent != nil || host != nil || forwardedFor != nil || wafAction != nil
            || wafRule != nil || extraJSON != nil {
            details = RequestDetails(method: method, query: query, userAgent: userAgent, host: host, forwardedFor: forwardedFor,
                                     wafAction: wafAction, wafRule: wafRule, extraJSON: extraJSON)
        }
    }

    /// A request with only what detectors read (the stream's hot path).
    init(id: Int64, time: Int64, layer: Layer, clientIP: String?, path: String?, status: Int?) {
        self.id = id
        self.time = time
        self.layer = layer
        self.clientIP = clientIP
        self.path = path
        self.status = status
    }

    private mutating func update(_ body: (inout RequestDetails) -> Void) {
        var d = details ?? RequestDetails()
        body(&d)
        details = d
    }

    public var method: String? { get { details?.method } set { update { $0.method = newValue } } }
    public var query: String? { get { details?.query } set { update { $0.query = newValue } } }
    public var userAgent: String? { get { details?.userAgent } set { update { $0.userAgent = newValue } } }
    public var host: String? { get { details?.host } set { update { $0.host = newValue } } }
    public var forwardedFor: String? { get { details?.forwardedFor } set { update { $0.forwardedFor = newValue } } }
    public var wafAction: String? { get { details?.wafAction } set { update { $0.wafAction = newValue } } }
    public var wafRule: String? { get { details?.wafRule } set { update { $0.wafRule = newValue } } }
    /// The `extra` column's JSON text, decoded only when a rule needs it (country, headers).
    public var extraJSON: String? { get { details?.extraJSON } set { update { $0.extraJSON = newValue } } }

    public var isError: Bool { (status ?? 0) >= 400 }
    public var isSuccess: Bool { if let s = status { return s >= 200 && s < 400 } else { return false } }

    public func extra() -> [String: String] {
        guard let extraJSON else { return [:] }
        return (try? JSONDecoder().decode([String: String].self, from: Data(extraJSON.utf8))) ?? [:]
    }
}

public struct RequestDetails: Sendable, Equatable {
    public var method: String?
    public var query: String?
    public var userAgent: String?
    public var host: String?
    public var forwardedFor: String?
    public var wafAction: String?
    public var wafRule: String?
    public var extraJSON: String?
}

/// Which rows replay reads and in what range.
public struct ReplayRange: Sendable, Equatable {
    public var from: Int64?
    public var to: Int64?
    /// nil: every layer.
    public var layers: Set<Layer>?

    public init(from: Int64? = nil, to: Int64? = nil, layers: Set<Layer>? = nil) {
        self.from = from
        self.to = to
        self.layers = layers
    }
}

/// Streams requests out of the timeline in time order, one row at a time (memory does not grow
/// with the number of events). It steps the SQLite statement directly rather than through
/// `Row.fetchCursor`: at millions of rows per second GRDB's per-row `Row` costs more than the
/// detectors, and only the needed columns are read (`extra` only when rules need it).
public enum RequestStream {
    /// Requests (kind `access`, not copies of other events, with a time), ordered by time then id.
    public static func forEach(_ db: Database, range: ReplayRange, withDetails: Bool,
                               _ body: (ReplayRequest) throws -> Void) throws {
        // Shared-text columns are read as stored (`stored_path`, …) and restored here once per
        // distinct value (`SharedTextLookup`): through the view's restored columns each of
        // millions of rows paid a subquery per column.
        var sql = """
            SELECT id, time, layer, client_ip, method, stored_path, status, query, stored_user_agent, stored_host, forwarded_for,
                   waf_action, stored_waf_rule, \(withDetails ? "stored_extra, stored_extra_common" : "NULL, NULL")
            FROM event
            WHERE time IS NOT NULL AND kind = 'access' AND copy_of IS NULL
            """
        var arguments: [Int64] = []
        if let from = range.from { sql += " AND time >= ?"; arguments.append(from) }
        if let to = range.to { sql += " AND time < ?"; arguments.append(to) }
        if let layers = range.layers {
            // Layer names come from the enum, never from input, so they can be inlined.
            sql += " AND layer IN (\(layers.map { "'\($0.rawValue)'" }.sorted().joined(separator: ",")))"
        }
        sql += " ORDER BY time, id"
        let statement = try db.makeStatement(sql: sql)
        let h = statement.sqliteStatement
        sqlite3_reset(h)
        for (i, v) in arguments.enumerated() { sqlite3_bind_int64(h, Int32(i + 1), v) }
        let shared = SharedTextLookup(sqlite3_db_handle(h))
        func restored(_ i: Int32) throws -> String? { try shared.text(h, i) }
        while true {
            let rc = sqlite3_step(h)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else {
                throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(sqlite3_db_handle(h))))
            }
            guard let layer = layer(h, 2) else { continue }
            // Detectors need only time, layer, client, path and status; the rest is read for rules.
            var r = ReplayRequest(id: sqlite3_column_int64(h, 0), time: sqlite3_column_int64(h, 1), layer: layer,
                                  clientIP: text(h, 3), path: try restored(5),
                                  status: sqlite3_column_type(h, 6) == SQLITE_NULL ? nil : Int(sqlite3_column_int64(h, 6)))
            if withDetails {
                r.details = RequestDetails(method: text(h, 4), query: text(h, 7), userAgent: try restored(8), host: try restored(9),
                                           forwardedFor: text(h, 10), wafAction: text(h, 11), wafRule: try restored(12),
                                           extraJSON: try restored(14).map { ExtraSplitter.merged(common: $0, varying: try restored(13)) }
                                            ?? restored(13))
            }
            try body(r)
        }
    }

    /// The outermost layer that logged requests in the range (what-if rules judge each request there).
    public static func outermostLayer(_ db: Database, range: ReplayRange) throws -> Layer? {
        var candidates = Layer.allCases.filter { !Layer.offPath.contains($0) && $0 != .nlb } // an NLB logs no HTTP request
        if let layers = range.layers { candidates = candidates.filter { layers.contains($0) } }
        for layer in candidates.sorted() {
            var sql = "SELECT 1 FROM event WHERE layer = ? AND kind = 'access' AND copy_of IS NULL AND time IS NOT NULL"
            var arguments: [DatabaseValueConvertible] = [layer.rawValue]
            if let from = range.from { sql += " AND time >= ?"; arguments.append(from) }
            if let to = range.to { sql += " AND time < ?"; arguments.append(to) }
            if try Int.fetchOne(db, sql: sql + " LIMIT 1", arguments: StatementArguments(arguments)) != nil { return layer }
        }
        return nil
    }

    @inline(__always)
    private static func text(_ h: OpaquePointer?, _ i: Int32) -> String? {
        guard let p = sqlite3_column_text(h, i) else { return nil }
        let n = Int(sqlite3_column_bytes(h, i))
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }

    /// The layer column without building a String per row.
    @inline(__always)
    private static func layer(_ h: OpaquePointer?, _ i: Int32) -> Layer? {
        guard let p = sqlite3_column_text(h, i) else { return nil }
        let n = Int(sqlite3_column_bytes(h, i))
        let bytes = UnsafeBufferPointer(start: p, count: n)
        for layer in layerNames where layer.1.count == n && layer.1.elementsEqual(bytes) { return layer.0 }
        return Layer(rawValue: String(decoding: bytes, as: UTF8.self))
    }

    private static let layerNames: [(Layer, [UInt8])] = Layer.allCases.map { ($0, Array($0.rawValue.utf8)) }
}
