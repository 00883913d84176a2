/// The ClickHouse tables of a shared timeline (docs/clickhouse.md shows them, with the cluster
/// variant). Only types and engines ClickHouse 18.16 (Debian 12's package) already has: times are
/// `Int64` microseconds (no DateTime64), text is `String` (bytes), optional values `Nullable`.
///
/// A file's rows carry its SHA-256 and the id of the attempt that wrote them. Its `source` row is
/// written last, after every event, rejected line and per-layer count of that attempt is in and
/// counted: it is the commit marker. Readers take, per SHA-256, the smallest attempt that has a
/// `source` row, and nothing else: a partial attempt (a crash, a failed insert) is never read, and
/// two machines that stored the same file at once are read once.
public enum ClickHouseSchema {
    /// The `event` columns after `sha256, attempt, seq, t`, in `EventBatch` order, with their types.
    static let eventNumberColumns: [(EventBatch.Number, String)] = [
        (.line, "line"), (.lineEnd, "line_end"), (.time, "time"), (.altTime, "alt_time"), (.status, "status"),
        (.bytes, "bytes"), (.duration, "duration"), (.pid, "pid"), (.elbStatus, "elb_status"), (.targetStatus, "target_status"),
    ]
    static let eventTextColumns: [(EventBatch.Text, String)] = [
        (.clientIP, "client_ip"), (.peerIP, "peer_ip"), (.forwardedFor, "forwarded_for"), (.method, "method"), (.path, "path"),
        (.query, "query"), (.requestID, "request_id"), (.traceID, "trace_id"), (.userAgent, "user_agent"), (.host, "host"),
        (.level, "level"), (.message, "message"), (.hostname, "hostname"), (.program, "program"), (.wafAction, "waf_action"),
        (.wafRule, "waf_rule"), (.error, "error"), (.extra, "extra"), (.raw, "raw"),
    ]

    /// Every `event` column in the order rows are written and read.
    static var eventColumns: [String] {
        ["sha256", "attempt", "seq", "t", "layer", "kind"] + eventNumberColumns.map(\.1) + eventTextColumns.map(\.1)
    }

    static let sourceColumns = ["sha256", "attempt", "path", "size", "compressed", "format", "content_sha256", "content_size",
                                "lines", "events", "rejected", "first_time", "last_time", "notes", "ingested_by", "ingested_at"]
        + addedSourceColumns.map(\.name)
    /// `source` columns added after the first release, last in the table, with their types: what a
    /// version that continues a stored file's content records (`Ingester`'s columns of the same
    /// names; `parent_sha256` names the continued file by its SHA-256, '' for none). A database
    /// created before them gets them from `migrate` (rows stored before read as '' and 0: a file
    /// that continues nothing, with no content-head key).
    static let addedSourceColumns: [(name: String, type: String)] = [
        ("head_sha256", "String"), ("parent_sha256", "String"), ("start_offset", "Int64"), ("start_line", "Int64"),
    ]
    static let layerColumns = ["sha256", "attempt", "layer", "events", "first_time", "last_time"]
    static let rejectedColumns = ["sha256", "attempt", "seq", "line", "reason", "raw"]

    /// The statements that create the tables of database `db` on one server (`IF NOT EXISTS`: run
    /// on every ingest, harmless when they exist).
    public static func statements(database db: String) -> [String] {
        let numbers = eventNumberColumns.map { col in
            col.0 == .line || col.0 == .lineEnd ? "    \(col.1) Int64" : "    \(col.1) Nullable(Int64)"
        }
        let texts = eventTextColumns.map { col in col.0 == .raw ? "    raw String" : "    \(col.1) Nullable(String)" }
        return [
            "CREATE DATABASE IF NOT EXISTS \(db)",
            """
            CREATE TABLE IF NOT EXISTS \(db).event (
                sha256 String,
                attempt String,
                seq UInt64,
                t Int64,
                layer String,
                kind String,
            \((numbers + texts).joined(separator: ",\n"))
            ) ENGINE = MergeTree() PARTITION BY toYYYYMM(toDateTime(intDiv(t, 1000000))) ORDER BY (t, sha256, seq)
            """,
            """
            CREATE TABLE IF NOT EXISTS \(db).rejected (
                sha256 String,
                attempt String,
                seq UInt64,
                line Int64,
                reason String,
                raw String
            ) ENGINE = MergeTree() ORDER BY (sha256, attempt, seq)
            """,
            """
            CREATE TABLE IF NOT EXISTS \(db).source_layer (
                sha256 String,
                attempt String,
                layer String,
                events Int64,
                first_time Nullable(Int64),
                last_time Nullable(Int64)
            ) ENGINE = MergeTree() ORDER BY (sha256, attempt, layer)
            """,
            """
            CREATE TABLE IF NOT EXISTS \(db).source (
                sha256 String,
                attempt String,
                path String,
                size Int64,
                compressed UInt8,
                format String,
                content_sha256 String,
                content_size Int64,
                lines Int64,
                events Int64,
                rejected Int64,
                first_time Nullable(Int64),
                last_time Nullable(Int64),
                notes String,
                ingested_by String,
                ingested_at Int64,
            \(addedSourceColumns.map { "    \($0.name) \($0.type)" }.joined(separator: ",\n"))
            ) ENGINE = MergeTree() ORDER BY (sha256, attempt)
            """,
        ]
    }

    /// The committed attempt of every stored file: the smallest attempt id with a `source` row.
    static func canonical(_ db: String) -> String {
        "SELECT sha256, min(attempt) FROM \(db).source GROUP BY sha256"
    }

    public static func create(_ client: ClickHouseClient) throws {
        for (i, sql) in statements(database: client.url.database).enumerated() {
            try client.query(sql, database: i > 0)
        }
        try migrate(client)
    }

    /// The `source` columns of `addedSourceColumns` a table created by an earlier release lacks.
    static func missingSourceColumns(_ client: ClickHouseClient) throws -> [(name: String, type: String)] {
        let db = client.url.database
        guard ClickHouseURL.isIdentifier(db) else { throw ClickHouseURL.Invalid(description: "bad database name") }
        let have = Set(try TabSeparated.parse(client.query("""
            SELECT name FROM system.columns WHERE database = '\(db)' AND table = 'source' FORMAT TabSeparated
            """), columns: 1).compactMap { TabSeparated.string($0[0]) })
        return addedSourceColumns.filter { !have.contains($0.name) }
    }

    /// Adds the columns of `addedSourceColumns` to a `source` table created by an earlier release.
    /// ClickHouse 18.16 has no `ADD COLUMN IF NOT EXISTS`: the table's columns are read from
    /// `system.columns` and the missing ones added one statement each. Two machines adding the same
    /// column at once: the loser's statement fails ("already exists"), and the column is there.
    static func migrate(_ client: ClickHouseClient) throws {
        let db = client.url.database
        for column in try missingSourceColumns(client) {
            do {
                try client.query("ALTER TABLE \(db).source ADD COLUMN \(column.name) \(column.type)")
            } catch let error as ClickHouseError {
                if try missingSourceColumns(client).contains(where: { $0.name == column.name }) { throw error }
            }
        }
    }
}
