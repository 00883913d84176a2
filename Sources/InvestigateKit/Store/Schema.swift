import Foundation
import GRDB

/// The timeline's schema, as versioned migrations. Never edit a migration that has shipped: add a
/// new one. `docs/schema.md` documents every table and column; a test checks it names them all.
public enum Schema {
    public static func migrator() -> DatabaseMigrator {
        var migrator = DatabaseMigrator()

        migrator.registerMigration("v1-timeline") { db in
            // One row per ingested version of an input file. A file that grew gets a new row whose
            // `parent_id` is the version it extends; its events continue the line numbering.
            try db.execute(sql: """
                CREATE TABLE source (
                    id            INTEGER PRIMARY KEY,
                    path          TEXT    NOT NULL,
                    sha256        TEXT    NOT NULL,
                    size          INTEGER NOT NULL,
                    mtime         INTEGER,
                    inode         INTEGER,
                    device        INTEGER,
                    compressed    INTEGER NOT NULL DEFAULT 0,
                    format        TEXT,
                    status        TEXT    NOT NULL,
                    skipped       TEXT,
                    lines         INTEGER NOT NULL DEFAULT 0,
                    events        INTEGER NOT NULL DEFAULT 0,
                    rejected      INTEGER NOT NULL DEFAULT 0,
                    first_time    INTEGER,
                    last_time     INTEGER,
                    parent_id     INTEGER REFERENCES source(id),
                    start_offset  INTEGER NOT NULL DEFAULT 0,
                    start_line    INTEGER NOT NULL DEFAULT 0,
                    notes         TEXT    NOT NULL DEFAULT '[]',
                    ingested_at   INTEGER NOT NULL
                )
                """)
            try db.execute(sql: "CREATE INDEX source_sha256 ON source(sha256)")
            try db.execute(sql: "CREATE INDEX source_path ON source(path)")

            try db.execute(sql: """
                CREATE TABLE event (
                    id            INTEGER PRIMARY KEY,
                    source_id     INTEGER NOT NULL REFERENCES source(id),
                    line          INTEGER NOT NULL,
                    line_end      INTEGER NOT NULL,
                    time          INTEGER,
                    alt_time      INTEGER,
                    layer         TEXT    NOT NULL,
                    kind          TEXT    NOT NULL,
                    client_ip     TEXT,
                    peer_ip       TEXT,
                    forwarded_for TEXT,
                    method        TEXT,
                    path          TEXT,
                    query         TEXT,
                    status        INTEGER,
                    bytes         INTEGER,
                    duration      INTEGER,
                    request_id    TEXT,
                    trace_id      TEXT,
                    user_agent    TEXT,
                    host          TEXT,
                    level         TEXT,
                    message       TEXT,
                    hostname      TEXT,
                    program       TEXT,
                    pid           INTEGER,
                    waf_action    TEXT,
                    waf_rule      TEXT,
                    elb_status    INTEGER,
                    target_status INTEGER,
                    error         TEXT,
                    extra         TEXT,
                    copy_of       INTEGER REFERENCES event(id),
                    raw           BLOB    NOT NULL
                )
                """)

            try db.execute(sql: """
                CREATE TABLE rejected (
                    id        INTEGER PRIMARY KEY,
                    source_id INTEGER NOT NULL REFERENCES source(id),
                    line      INTEGER NOT NULL,
                    reason    TEXT    NOT NULL,
                    raw       BLOB    NOT NULL
                )
                """)
            try db.execute(sql: "CREATE INDEX rejected_source ON rejected(source_id, line)")

            // What each source holds per layer (a syslog file carries gunicorn, app and system
            // records): coverage questions read this instead of scanning events.
            try db.execute(sql: """
                CREATE TABLE source_layer (
                    source_id   INTEGER NOT NULL REFERENCES source(id),
                    layer       TEXT    NOT NULL,
                    events      INTEGER NOT NULL,
                    first_time  INTEGER,
                    last_time   INTEGER,
                    PRIMARY KEY (source_id, layer)
                )
                """)
            for sql in v1EventIndexes { try db.execute(sql: sql) }
        }

        migrator.registerMigration("v2-correlation") { db in
            // A request chain: the records of every layer that describe one HTTP request.
            try db.execute(sql: """
                CREATE TABLE chain (
                    id          INTEGER PRIMARY KEY,
                    first_time  INTEGER,
                    last_time   INTEGER,
                    client_ip   TEXT,
                    method      TEXT,
                    path        TEXT,
                    status      INTEGER,
                    layers      TEXT NOT NULL DEFAULT ''
                )
                """)
            try db.execute(sql: "CREATE INDEX chain_time ON chain(first_time)")
            // Which chain an event belongs to, by which key, with what confidence.
            try db.execute(sql: """
                CREATE TABLE link (
                    event_id    INTEGER PRIMARY KEY REFERENCES event(id),
                    chain_id    INTEGER NOT NULL REFERENCES chain(id),
                    key         TEXT    NOT NULL,
                    confidence  REAL    NOT NULL
                )
                """)
            try db.execute(sql: "CREATE INDEX link_chain ON link(chain_id)")
            // Records left unlinked because two candidates fitted equally well.
            try db.execute(sql: """
                CREATE TABLE ambiguous (
                    event_id    INTEGER PRIMARY KEY REFERENCES event(id),
                    candidates  TEXT NOT NULL,
                    reason      TEXT NOT NULL
                )
                """)
            // Estimated clock offset of one layer relative to another (µs, `inner` minus `outer`).
            try db.execute(sql: """
                CREATE TABLE clock_offset (
                    outer_layer TEXT    NOT NULL,
                    inner_layer TEXT    NOT NULL,
                    offset_us   INTEGER NOT NULL,
                    samples     INTEGER NOT NULL,
                    PRIMARY KEY (outer_layer, inner_layer)
                )
                """)
            // Events with ids up to this one have been considered by correlation.
            try db.execute(sql: "CREATE TABLE correlation_state (last_event_id INTEGER NOT NULL)")
            try db.execute(sql: "INSERT INTO correlation_state (last_event_id) VALUES (0)")
            // Which layer is in front of which, inferred from the data.
            try db.execute(sql: """
                CREATE TABLE topology (
                    front       TEXT    NOT NULL,
                    back        TEXT    NOT NULL,
                    evidence    TEXT    NOT NULL,
                    events      INTEGER NOT NULL,
                    PRIMARY KEY (front, back)
                )
                """)
        }

        migrator.registerMigration("v3-copies-per-source-layer") { db in
            // How many of a source's records of a layer are copies of records stored from another
            // file (syslog copies of app lines): coverage counts each record once.
            try db.execute(sql: "ALTER TABLE source_layer ADD COLUMN copies INTEGER NOT NULL DEFAULT 0")
        }

        migrator.registerMigration("v4-event-id-ranges") { db in
            // A source's events are inserted in one transaction, in line order, so they hold one
            // contiguous run of ids: the range finds them through the table's own B-tree, and the
            // (source_id, line) index, which cost a full sort of every bulk load, goes.
            try db.execute(sql: "ALTER TABLE source ADD COLUMN first_event_id INTEGER")
            try db.execute(sql: "ALTER TABLE source ADD COLUMN last_event_id INTEGER")
            try db.execute(sql: """
                UPDATE source SET
                    first_event_id = (SELECT min(id) FROM event WHERE source_id = source.id),
                    last_event_id = (SELECT max(id) FROM event WHERE source_id = source.id)
                """)
            try db.execute(sql: "DROP INDEX IF EXISTS event_source_line")
        }

        migrator.registerMigration("v5-content-identity") { db in
            // A source is recognised by its content, not its path: logrotate renames, copies and
            // compresses files between runs, and a file may grow under any of those names. Each
            // version records the SHA-256 and length of its whole (decompressed) content, so a new
            // file that starts with it continues it, and the key of its first bytes (the first
            // 4 KB, or the first line of shorter content) that finds it without reading anything
            // else. Plain files stored before this migration read their whole bytes as content;
            // gzip files have no content digest, and nothing has a head key (the same path still
            // finds its previous version).
            try db.execute(sql: "ALTER TABLE source ADD COLUMN content_sha256 TEXT")
            try db.execute(sql: "ALTER TABLE source ADD COLUMN content_size INTEGER")
            try db.execute(sql: "ALTER TABLE source ADD COLUMN head_sha256 TEXT")
            try db.execute(sql: """
                UPDATE source SET content_sha256 = sha256, content_size = size WHERE status = 'complete' AND compressed = 0
                """)
            try db.execute(sql: "CREATE INDEX source_head ON source(head_sha256) WHERE head_sha256 IS NOT NULL")
            try db.execute(sql: "CREATE INDEX source_content ON source(content_sha256) WHERE content_sha256 IS NOT NULL")
        }

        migrator.registerMigration("v6-file-identity-index") { db in
            // An unchanged file is found by its identity (inode, size, mtime) before anything is
            // read. Without an index each look-up scanned every source: a re-run over 20,000 small
            // unchanged files took longer than ingesting them.
            try db.execute(sql: "CREATE INDEX source_identity ON source(inode, size, mtime)")
        }

        migrator.registerMigration("v7-window-coverage") { db in
            // A question about a window stores a long file's records around the window only: the
            // source row says which span of time it holds (NULL: all of it) and how many lines of
            // records outside it were read and not stored.
            try db.execute(sql: "ALTER TABLE source ADD COLUMN covered_from INTEGER")
            try db.execute(sql: "ALTER TABLE source ADD COLUMN covered_to INTEGER")
            try db.execute(sql: "ALTER TABLE source ADD COLUMN outside_lines INTEGER NOT NULL DEFAULT 0")
            // Per layer, the records such a version read and did not store, so that coverage (is
            // this layer's log given, does it span the question?) reads as after a full ingest.
            try db.execute(sql: "ALTER TABLE source_layer ADD COLUMN outside_records INTEGER NOT NULL DEFAULT 0")
        }

        migrator.registerMigration("v8-raw-blocks") { db in
            // Original bytes leave the rows: each source's records' bytes are kept in compressed
            // blocks of about 64 KB (`RawBlocks`), and rows name their block, offset and length.
            // The bytes were more than half of the database (2.5 times the input before). A
            // database written before is converted here, in place, record by record; the views
            // `events` and `rejected_lines` show the rows with `raw` restored, as the tables had it.
            try db.execute(sql: """
                CREATE TABLE raw_block (
                    id          INTEGER PRIMARY KEY,
                    source_id   INTEGER NOT NULL REFERENCES source(id),
                    size        INTEGER NOT NULL,
                    data        BLOB    NOT NULL
                )
                """)
            for table in ["event", "rejected"] {
                try db.execute(sql: "ALTER TABLE \(table) ADD COLUMN raw_block INTEGER")
                try db.execute(sql: "ALTER TABLE \(table) ADD COLUMN raw_offset INTEGER")
                try db.execute(sql: "ALTER TABLE \(table) ADD COLUMN raw_length INTEGER")
                try moveRawIntoBlocks(db, table: table)
                try db.execute(sql: "ALTER TABLE \(table) DROP COLUMN raw")
            }
            try db.execute(sql: eventsView)
            try db.execute(sql: """
                CREATE VIEW rejected_lines AS SELECT
                    id, source_id, line, reason,
                    (SELECT CASE WHEN r.raw_length = 0 THEN x'' ELSE substr(sqlar_uncompress(b.data, b.size), r.raw_offset + 1, r.raw_length) END
                     FROM raw_block b
                     WHERE b.id = r.raw_block) AS raw
                FROM rejected r
                """)
        }

        migrator.registerMigration("v9-shared-text") { db in
            // Repeated text once (`SharedText`): the event rows move to `event_data`, whose columns
            // in `sharedTextColumns` hold either their text or the id of a `shared_text` row, and
            // `event` becomes a view that restores them, so every query, the code's and users', reads
            // the columns it always read. The client-IP index is no longer built with every load:
            // `TimelineStore.ensureIndexes` builds it when a query first needs it.
            try db.execute(sql: "DROP VIEW events")
            try db.execute(sql: "CREATE TABLE shared_text (id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE)")
            try db.execute(sql: v9EventData)
            let shared = sharedTextColumns.map { "SELECT \($0) AS v FROM event" }.joined(separator: " UNION ALL ")
            try db.execute(sql: """
                INSERT INTO shared_text (value) SELECT v FROM (\(shared))
                WHERE v IS NOT NULL AND typeof(v) = 'text' AND length(CAST(v AS BLOB)) >= \(SharedText.minLength)
                GROUP BY v HAVING count(*) > 1 ORDER BY min(rowid)
                """)
            let copied = v9Columns.map { column -> String in
                if sharedTextColumns.contains(column) {
                    return "coalesce((SELECT s.id FROM shared_text s WHERE s.value = e.\(column)), e.\(column))"
                }
                if let names = v9Codes[column] {
                    return "CASE e.\(column) " + names.enumerated().map { "WHEN '\($0.element)' THEN \($0.offset + 1)" }.joined(separator: " ")
                        + " ELSE e.\(column) END"
                }
                return column == "line_end" ? "nullif(e.line_end, e.line)" : "e.\(column)"
            }
            try db.execute(sql: """
                INSERT INTO event_data (\(v9Columns.joined(separator: ", "))) SELECT \(copied.joined(separator: ", ")) FROM event e ORDER BY e.id
                """)
            // `link` and `ambiguous` name their event by foreign key: rebuilt to name `event_data`
            // (a key on a view is an error on every insert).
            try db.execute(sql: """
                CREATE TABLE link_v9 (
                    event_id    INTEGER PRIMARY KEY REFERENCES event_data(id),
                    chain_id    INTEGER NOT NULL REFERENCES chain(id),
                    key         TEXT    NOT NULL,
                    confidence  REAL    NOT NULL
                )
                """)
            try db.execute(sql: "INSERT INTO link_v9 SELECT event_id, chain_id, key, confidence FROM link ORDER BY event_id")
            try db.execute(sql: "DROP TABLE link")
            try db.execute(sql: "ALTER TABLE link_v9 RENAME TO link")
            try db.execute(sql: "CREATE INDEX link_chain ON link(chain_id)")
            try db.execute(sql: """
                CREATE TABLE ambiguous_v9 (
                    event_id    INTEGER PRIMARY KEY REFERENCES event_data(id),
                    candidates  TEXT NOT NULL,
                    reason      TEXT NOT NULL
                )
                """)
            try db.execute(sql: "INSERT INTO ambiguous_v9 SELECT event_id, candidates, reason FROM ambiguous ORDER BY event_id")
            try db.execute(sql: "DROP TABLE ambiguous")
            try db.execute(sql: "ALTER TABLE ambiguous_v9 RENAME TO ambiguous")
            try db.execute(sql: "DROP TABLE event")
            // Only the time index is kept with every load: the address and id indexes are built
            // when a query first needs them (`ipIndexes`, `idIndexes`).
            try db.execute(sql: "CREATE INDEX event_time ON event_data(time)")
            try db.execute(sql: eventView(storedColumns: false))
            try db.execute(sql: eventInsertTrigger)
            try db.execute(sql: eventsView)
        }

        migrator.registerMigration("v10-stored-shared-columns") { db in
            // The view gains each shared-text column as stored (`stored_path`, …: its text, or the
            // id of its `shared_text` row): `StoredEvent` restores those itself, once per distinct
            // value of a read instead of a subquery per record, and a value whose row is gone is
            // an error there, where the view's subquery would show it as NULL.
            try db.execute(sql: "DROP TRIGGER event_insert")
            try db.execute(sql: "DROP VIEW event")
            try db.execute(sql: eventView(storedColumns: true))
            try db.execute(sql: eventInsertTrigger)
        }

        migrator.registerMigration("v11-extra-common-fields") { db in
            // `extra`'s fields whose values repeat (`ExtraSplitter`) may be stored apart, in
            // `extra_common`, shared like other repeated text; `extra` then holds the other fields.
            // Adding a column rewrites no row: rows stored before keep `extra` whole.
            try db.execute(sql: "ALTER TABLE event_data ADD COLUMN extra_common")
            try db.execute(sql: "DROP TRIGGER event_insert")
            try db.execute(sql: "DROP VIEW event")
            try db.execute(sql: v11EventView)
            try db.execute(sql: eventInsertTrigger)
        }

        migrator.registerMigration("v12-peer-same-as-client") { db in
            // `peer_ip` and `forwarded_for` equal to `client_ip` are stored as x'' from now on
            // (`sameAsClientColumns`); the view restores them, and shows `peer_ip` as stored so
            // that a search by address can still use an index on `event_data(peer_ip, time)`.
            // Rows stored before keep their text, which the view shows as it is.
            try db.execute(sql: "DROP TRIGGER event_insert")
            try db.execute(sql: "DROP VIEW event")
            try db.execute(sql: v12EventView)
            try db.execute(sql: eventInsertTrigger)
        }

        return migrator
    }

    /// The users' `events` view: `event`'s documented columns and `raw` restored with the `sqlite3`
    /// shell's own function (frozen with v8, which created it over the table, and v9, which
    /// created it again over the view).
    private static let eventsView = """
        CREATE VIEW events AS SELECT
            id, source_id, line, line_end, time, alt_time, layer, kind, client_ip, peer_ip, forwarded_for, method, path,
            query, status, bytes, duration, request_id, trace_id, user_agent, host, level, message, hostname, program,
            pid, waf_action, waf_rule, elb_status, target_status, error, extra, copy_of,
            (SELECT CASE WHEN e.raw_length = 0 THEN x'' ELSE substr(sqlar_uncompress(b.data, b.size), e.raw_offset + 1, e.raw_length) END
             FROM raw_block b
             WHERE b.id = e.raw_block) AS raw
        FROM event e
        """

    /// The `event` view over `event_data` (frozen with v9 and v10, which create it).
    private static func eventView(storedColumns: Bool) -> String {
        let columns = v9Columns.map { column in
            let value = Schema.restored(column, of: "d")
            return value == "d.\(column)" ? value : "\(value) AS \(column)"
        }
        let stored = storedColumns ? v9Columns.filter { sharedTextColumns.contains($0) }.map { "d.\($0) AS stored_\($0)" } : []
        return "CREATE VIEW event AS SELECT \((columns + stored).joined(separator: ", ")) FROM event_data d"
    }

    /// The `event` view over `event_data` as v11 creates it (frozen with v11): v10's, with `extra`
    /// joined from its two parts (`restoredExtra`) and `extra_common` as stored.
    private static var v11EventView: String {
        let columns = v9Columns.map { column in
            if column == "extra" { return "\(restoredExtra(of: "d")) AS extra" }
            let value = Schema.restored(column, of: "d")
            return value == "d.\(column)" ? value : "\(value) AS \(column)"
        }
        let stored = (v9Columns.filter { sharedTextColumns.contains($0) } + ["extra_common"]).map { "d.\($0) AS stored_\($0)" }
        return "CREATE VIEW event AS SELECT \((columns + stored).joined(separator: ", ")) FROM event_data d"
    }

    /// The `event` view as v12 creates it (frozen with v12): v11's, whose `peer_ip` and
    /// `forwarded_for` restore `client_ip` where stored as x'', with `peer_ip` as stored.
    private static var v12EventView: String {
        let columns = v9Columns.map { column in
            if column == "extra" { return "\(restoredExtra(of: "d")) AS extra" }
            let value = Schema.restored(column, of: "d")  // `peer_ip`, `forwarded_for`: see `sameAsClientColumns`
            return value == "d.\(column)" ? value : "\(value) AS \(column)"
        }
        let stored = (v9Columns.filter { sharedTextColumns.contains($0) } + ["extra_common", "peer_ip"]).map { "d.\($0) AS stored_\($0)" }
        return "CREATE VIEW event AS SELECT \((columns + stored).joined(separator: ", ")) FROM event_data d"
    }

    /// `extra` of an `event_data` row named `table` as the `event` view shows it: the stored
    /// object, or, when its common fields are stored apart (`extra_common`, see `ExtraSplitter`),
    /// both parts joined by `json_patch` (the same fields and values; common ones first). SQL that
    /// reads `event_data` itself must read `extra` through this (frozen with v11).
    public static func restoredExtra(of table: String) -> String {
        let common = restored("extra_common", of: table, shared: true)
        return "CASE WHEN \(table).extra_common IS NULL THEN \(restored("extra", of: table)) "
            + "ELSE json_patch(\(common), coalesce(\(restored("extra", of: table)), '{}')) END"
    }

    /// One field of an `event_data` row's `extra`, read from whichever part holds it. The two
    /// parts never share a key (`ExtraSplitter`), so this skips the `json_patch` of
    /// `restoredExtra`, which builds a whole object per row: copy marking reads `local_time` of
    /// every app line this way.
    public static func extraField(_ path: String, of table: String) -> String {
        let varying = "json_extract(\(restored("extra", of: table)), '\(path)')"
        let common = "json_extract(\(restored("extra_common", of: table, shared: true)), '\(path)')"
        return "CASE WHEN \(table).extra_common IS NULL THEN \(varying) ELSE coalesce(\(varying), \(common)) END"
    }

    /// Rows written into `event` in plain SQL (tests, scripts) go into `event_data` as text.
    private static var eventInsertTrigger: String {
        let inserted = v9Columns.filter { $0 != "id" }
        return """
            CREATE TRIGGER event_insert INSTEAD OF INSERT ON event BEGIN
                INSERT INTO event_data (id, \(inserted.joined(separator: ", ")))
                VALUES (NEW.id, \(inserted.map { "NEW.\($0)" }.joined(separator: ", ")));
            END
            """
    }

    /// The columns of `event_data` whose value may be a `shared_text` id (`SharedText`): text that
    /// repeats across rows, and is compared in queries only through the `event` view.
    public static let sharedTextColumns: Set<String> = ["path", "user_agent", "host", "hostname", "program", "waf_rule", "error", "extra"]

    /// A column of an `event_data` row named `table` as the `event` view shows it: shared text
    /// and coded names restored, `line_end` filled in. SQL that reads or updates `event_data`
    /// itself must compare such columns through this (frozen with v9, whose view is built from it).
    public static func restored(_ column: String, of table: String) -> String {
        restored(column, of: table, shared: sharedTextColumns.contains(column))
    }

    private static func restored(_ column: String, of table: String, shared: Bool) -> String {
        if shared {
            return "CASE WHEN typeof(\(table).\(column)) = 'integer' THEN (SELECT s.value FROM shared_text s WHERE s.id = \(table).\(column)) "
                + "ELSE \(table).\(column) END"
        }
        if let names = v9Codes[column] {
            return "CASE WHEN typeof(\(table).\(column)) = 'integer' THEN CASE \(table).\(column) "
                + names.enumerated().map { "WHEN \($0.offset + 1) THEN '\($0.element)'" }.joined(separator: " ")
                + " END ELSE \(table).\(column) END"
        }
        if sameAsClientColumns.contains(column) {
            return "CASE WHEN typeof(\(table).\(column)) = 'blob' THEN \(table).client_ip ELSE \(table).\(column) END"
        }
        return column == "line_end" ? "coalesce(\(table).line_end, \(table).line)" : "\(table).\(column)"
    }

    /// Columns of `event_data` stored as an empty BLOB when their address equals the record's
    /// `client_ip` (since v12): every line of an nginx log with nobody in front names its peer as
    /// its client, 13 bytes a row twice over. A view or reader restores `client_ip` for them. A
    /// BLOB because the columns are TEXT, whose affinity would turn a number into text; an empty
    /// one costs no byte beyond its type in the record header.
    public static let sameAsClientColumns: Set<String> = ["peer_ip", "forwarded_for"]

    /// Columns of `event_data` that hold a small code for each of these names (1 for the first),
    /// or the name itself as text for one not listed (a layer added later): frozen with v9, whose
    /// `event` view spells them out. Ten bytes a row of the eleven `nginx`+`access` took.
    static let v9Codes: [String: [String]] = [
        "layer": ["cloudfront", "waf", "nlb", "alb", "apigateway", "nginx", "gunicorn", "app", "lambda", "system", "cloudtrail", "client", "upstream"],
        "kind": ["access", "log", "metric", "finding"],
    ]

    /// `event_data`'s columns, in order, as v9 created them (frozen with the migration).
    static let v9Columns = [
        "id", "source_id", "line", "line_end", "time", "alt_time", "layer", "kind", "client_ip", "peer_ip", "forwarded_for",
        "method", "path", "query", "status", "bytes", "duration", "request_id", "trace_id", "user_agent", "host", "level",
        "message", "hostname", "program", "pid", "waf_action", "waf_rule", "elb_status", "target_status", "error", "extra",
        "copy_of", "raw_block", "raw_offset", "raw_length",
    ]

    /// v9's `event_data`. Shared-text and coded columns have no declared type: a column of TEXT
    /// affinity would turn an id into its digits as text. `line_end` is NULL when it equals `line`
    /// (most records: one line).
    private static let v9EventData = """
        CREATE TABLE event_data (
            id            INTEGER PRIMARY KEY,
            source_id     INTEGER NOT NULL REFERENCES source(id),
            line          INTEGER NOT NULL,
            line_end      INTEGER,
            time          INTEGER,
            alt_time      INTEGER,
            layer         NOT NULL,
            kind          NOT NULL,
            client_ip     TEXT,
            peer_ip       TEXT,
            forwarded_for TEXT,
            method        TEXT,
            path,
            query         TEXT,
            status        INTEGER,
            bytes         INTEGER,
            duration      INTEGER,
            request_id    TEXT,
            trace_id      TEXT,
            user_agent,
            host,
            level         TEXT,
            message       TEXT,
            hostname,
            program,
            pid           INTEGER,
            waf_action    TEXT,
            waf_rule,
            elb_status    INTEGER,
            target_status INTEGER,
            error,
            extra,
            copy_of       INTEGER REFERENCES event_data(id),
            raw_block     INTEGER,
            raw_offset    INTEGER,
            raw_length    INTEGER
        )
        """

    /// v8: moves every row's `raw` into blocks of consecutive rows of one source, in id order (the
    /// order ingest writes them). Frozen with the migration.
    private static func moveRawIntoBlocks(_ db: Database, table: String) throws {
        let page = try db.makeStatement(sql: "SELECT id, source_id, raw FROM \(table) WHERE id > ? ORDER BY id LIMIT 4096")
        let update = try db.makeStatement(sql: "UPDATE \(table) SET raw_block = ?, raw_offset = ?, raw_length = ? WHERE id = ?")
        var after: Int64 = 0
        while true {
            let rows = try Row.fetchAll(page, arguments: [after])
            guard let last = rows.last else { break }
            after = last["id"]
            var start = 0
            while start < rows.count {
                let source: Int64 = rows[start]["source_id"]
                var end = start
                while end < rows.count, rows[end]["source_id"] as Int64 == source { end += 1 }
                let writer = try RawBlockWriter(db: db, sourceID: source)
                let raws: [Data] = rows[start..<end].map { $0["raw"] ?? Data() }
                let refs = try writer.store(count: raws.count) { i, body in raws[i].withUnsafeBytes { body($0) } }
                for (row, ref) in zip(rows[start..<end], refs) {
                    try update.execute(arguments: [ref.block, ref.offset, ref.length, row["id"] as Int64])
                }
                start = end
            }
        }
    }

    /// The indexes v1 created, frozen as shipped (later migrations change the set).
    private static let v1EventIndexes = [
        "CREATE INDEX IF NOT EXISTS event_time ON event(time)",
        "CREATE INDEX IF NOT EXISTS event_client_ip ON event(client_ip, time)",
        "CREATE INDEX IF NOT EXISTS event_request_id ON event(request_id) WHERE request_id IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS event_trace_id ON event(trace_id) WHERE trace_id IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS event_source_line ON event(source_id, line)",
    ]

    /// The event table's secondary indexes that bulk loads drop and rebuild (one sort at the end is
    /// much faster than maintaining them row by row). This is the one definition of what they are.
    public static let bulkRebuiltIndexes: [(name: String, sql: String)] = [
        ("event_time", "CREATE INDEX IF NOT EXISTS event_time ON event_data(time)"),
    ]

    public static func createEventIndexes(_ db: Database) throws {
        try withSortingCache(db) {
            for index in bulkRebuiltIndexes { try db.execute(sql: index.sql) }
        }
    }

    /// Runs sorts (index builds, large GROUP BYs) under a 2 MB page cache and four helper threads,
    /// then restores the connection's settings. SQLite's sorters keep as much in memory as the
    /// page cache allows (per helper thread): under the usual 64 MB, peak memory grew with the
    /// table. Smaller sorted runs merged by more helpers (even on two cores) are faster too:
    /// building both event indexes over 3M nginx rows took 2.5-3.1 s (median 2.9) under 8 MB and
    /// two threads, 2.0-2.8 s (median 2.3) under 2 MB and four, at 27 MB instead of 37 MB.
    public static func withSortingCache<T>(_ db: Database, _ body: () throws -> T) throws -> T {
        let cache = try Int.fetchOne(db, sql: "PRAGMA cache_size") ?? -65536
        let helpers = try Int.fetchOne(db, sql: "PRAGMA threads") ?? 0
        try db.execute(sql: "PRAGMA cache_size = -2048")
        try db.execute(sql: "PRAGMA threads = 4")
        defer {
            try? db.execute(sql: "PRAGMA cache_size = \(cache)")
            try? db.execute(sql: "PRAGMA threads = \(helpers)")
        }
        return try body()
    }

    /// Drops the indexes a bulk load rebuilds at its end, and the address indexes (built again
    /// when a query next needs them, `ipIndexes`), which would otherwise be maintained row by row.
    public static func dropEventIndexes(_ db: Database) throws {
        for index in bulkRebuiltIndexes + ipIndexes + idIndexes { try db.execute(sql: "DROP INDEX IF EXISTS \(index.name)") }
    }

    /// Indexes on request and trace ids, built when a question looks one up (`timeline
    /// --request`, `TimelineStore.ensureIndexes`). Kept live before v9, they were never read
    /// by a query (the diagnosis and correlation read windows by time) and cost 145 MB of a 3.2 GB
    /// database on the 1M-request edge corpus, inserted in random key order.
    public static let idIndexes: [(name: String, sql: String)] = [
        ("event_request_id", "CREATE INDEX IF NOT EXISTS event_request_id ON event_data(request_id) WHERE request_id IS NOT NULL"),
        ("event_trace_id", "CREATE INDEX IF NOT EXISTS event_trace_id ON event_data(trace_id) WHERE trace_id IS NOT NULL"),
    ]

    /// Indexes on the client's and the peer's address, built when a query filters by address
    /// (`TimelineStore.ensureIndexes`), not with every load: the diagnosis reads a window through
    /// the time index, and on 3M nginx rows the client-IP index alone cost 1.4-1.8 s of a load
    /// (bench/sqlite-floor.sh) and 31 MB of 357 MB.
    public static let ipIndexes: [(name: String, sql: String)] = [
        ("event_client_ip", "CREATE INDEX IF NOT EXISTS event_client_ip ON event_data(client_ip, time)"),
        ("event_peer_ip", "CREATE INDEX IF NOT EXISTS event_peer_ip ON event_data(peer_ip, time)"),
    ]
}
