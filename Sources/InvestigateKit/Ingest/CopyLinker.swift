import Foundation
import GRDB

/// Marks the records seen twice: an app or gunicorn line that reached the timeline both through
/// syslog (gunicorn's stderr captured by journald/rsyslog) and through the app's or gunicorn's own
/// file. The file's event stays the original; the syslog copy gets `copy_of` = the original's id,
/// so counts and chains can leave copies out (`WHERE copy_of IS NULL`).
///
/// Call `CopyLinker.link(store:)` after every ingest run: it is idempotent and only looks at
/// events not linked yet.
public enum CopyLinker {
    /// The SQL condition that keeps originals only.
    public static let originalsOnly = "copy_of IS NULL"

    /// The sources whose events may be copies (a query for their ids): syslog files carrying app
    /// or gunicorn lines. No other event ever gets `copy_of`, so queries after copies read only
    /// these sources' id ranges instead of scanning the timeline.
    public static let copySources = """
        SELECT sl.source_id FROM source_layer sl JOIN source s ON s.id = sl.source_id
        WHERE s.format = 'syslog' AND sl.layer IN ('app', 'gunicorn', 'nginx')
        """

    /// Links syslog-wrapped copies to their originals; returns how many copies were marked now.
    ///
    /// Two records are the same line when layer, level and message are equal and either their
    /// normalised times are equal or, within 15 hours (the widest zone difference), the stamps as
    /// written (`extra.local_time`) are: an app file read with the wrong zone still pairs with its
    /// syslog copy.
    @discardableResult
    public static func link(store: TimelineStore) throws -> Int {
        // `copy_of` only ever receives the id of an original read from the event table in the
        // same transaction, so SQLite's foreign-key check (a look-up per updated row, plus a
        // statement journal of every page the UPDATE touches, since the check may abort it) can
        // never fail: without it, marking the copies of a 100k-request corpus took 0.30 s instead
        // of 0.72-0.75 s in the sqlite3 shell. The pragma only changes outside a transaction,
        // and is restored whatever happens.
        try store.dbQueue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA foreign_keys = OFF") }
        defer { try? store.dbQueue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA foreign_keys = ON") } }
        return try store.write { db in
            // Nothing to do unless some syslog file carries app or gunicorn lines (no event scan),
            // and some app or gunicorn lines arrived since the last run: the correlation watermark
            // (advanced after every run, which follows this one) says which events are new. Without
            // this, every query command re-read all app lines of a big timeline.
            let copiesPossible = try Bool.fetchOne(db, sql: "SELECT EXISTS (\(copySources))") ?? false
            guard copiesPossible else { return 0 }
            let watermark = try Int64.fetchOne(db, sql: "SELECT max(last_event_id) FROM correlation_state") ?? 0
            let newNginx = try Bool.fetchOne(db, sql: """
                SELECT EXISTS (SELECT 1 FROM source_layer sl JOIN source s ON s.id = sl.source_id WHERE sl.layer = 'nginx' AND s.last_event_id > ?)
                """, arguments: [watermark]) ?? false
            let nginxCopies = newNginx ? try linkNginxCopies(db) : 0
            let newLines = try Bool.fetchOne(db, sql: """
                SELECT EXISTS (SELECT 1 FROM source_layer sl JOIN source s ON s.id = sl.source_id
                               WHERE sl.layer IN ('app', 'gunicorn') AND s.last_event_id > ?)
                """, arguments: [watermark]) ?? false
            guard newLines else { return nginxCopies }
            // The candidate originals, indexed both ways, so each copy costs two index look-ups
            // instead of a scan of the hours around it.
            try db.execute(sql: "DROP TABLE IF EXISTS temp.copy_original")
            // Sources are picked through `source_layer`, and their events through their id ranges.
            let originSources = """
                SELECT sl.source_id FROM source_layer sl JOIN source s ON s.id = sl.source_id
                WHERE s.format <> 'syslog' AND sl.layer IN ('app', 'gunicorn')
                """
            // Built under a small cache, as the event indexes are: under the usual 64 MB these
            // sorts took the process from 116 MB to 275 MB on a 1M-request corpus.
            try Schema.withSortingCache(db) {
                try db.execute(sql: """
                    CREATE TEMP TABLE copy_original AS
                    SELECT e.id, \(Schema.restored("layer", of: "e")) AS layer, e.level, e.message, e.time, \(Schema.extraField("$.local_time", of: "e")) AS local_time
                    FROM source s JOIN event_data e ON e.id BETWEEN s.first_event_id AND s.last_event_id
                    WHERE s.id IN (\(originSources)) AND \(EventData.codeIn("layer", of: "e", ["app", "gunicorn"])) AND e.copy_of IS NULL
                      AND e.message IS NOT NULL AND e.time IS NOT NULL
                    """)
                try db.execute(sql: "CREATE INDEX temp.copy_original_time ON copy_original(time, message)")
                try db.execute(sql: "CREATE INDEX temp.copy_original_local ON copy_original(local_time, message)")
            }
            defer { try? db.execute(sql: "DROP TABLE IF EXISTS temp.copy_original") }
            // One syslog source at a time, through its id range: each update reads only that
            // file's events, and SQLite never gathers the whole corpus's copies at once.
            let ranges = try Row.fetchAll(db, sql: """
                SELECT first_event_id AS lo, last_event_id AS hi FROM source
                WHERE id IN (\(copySources)) AND first_event_id IS NOT NULL ORDER BY id
                """)
            // `event_data` is read and written directly (a view's rows cannot be aliased in an
            // UPDATE): its coded `layer` and shared `extra` are compared restored.
            let layer = Schema.restored("layer", of: "c")
            let copies = """
                c.id BETWEEN ? AND ? AND c.copy_of IS NULL AND \(EventData.codeIn("layer", of: "c", ["app", "gunicorn"]))
                AND c.alt_time IS NOT NULL AND c.message IS NOT NULL AND c.time IS NOT NULL
                """
            // Set-based, in two passes: the same normalised time, else the same stamp as written.
            let sameTime = "o.time = c.time AND o.message = c.message AND o.layer = \(layer) AND o.level IS c.level"
            let localTime = Schema.extraField("$.local_time", of: "c")
            let sameStamp = """
                o.local_time = \(localTime) AND o.message = c.message AND o.layer = \(layer)
                AND o.level IS c.level AND o.time BETWEEN c.time - 54000000000 AND c.time + 54000000000
                """
            let bySameTime = try db.makeStatement(sql: """
                UPDATE event_data AS c SET copy_of = (SELECT min(o.id) FROM copy_original o WHERE \(sameTime))
                WHERE \(copies) AND EXISTS (SELECT 1 FROM copy_original o WHERE \(sameTime))
                """)
            let bySameStamp = try db.makeStatement(sql: """
                UPDATE event_data AS c SET copy_of = (SELECT min(o.id) FROM copy_original o WHERE \(sameStamp))
                WHERE \(copies) AND \(localTime) IS NOT NULL
                  AND EXISTS (SELECT 1 FROM copy_original o WHERE \(sameStamp))
                """)
            var linked = nginxCopies
            for range in ranges {
                let bounds: StatementArguments = [range["lo"] as Int64, range["hi"] as Int64]
                try bySameTime.execute(arguments: bounds)
                linked += db.changesCount
                try bySameStamp.execute(arguments: bounds)
                linked += db.changesCount
            }
            // Coverage counts each record once: keep the copies per source and layer beside the totals.
            if linked > 0 {
                try db.execute(sql: """
                    UPDATE source_layer SET copies = (SELECT count(*) FROM source s JOIN event e ON e.id BETWEEN s.first_event_id AND s.last_event_id
                        WHERE s.id = source_layer.source_id AND e.layer = source_layer.layer AND e.copy_of IS NOT NULL)
                    WHERE source_id IN (SELECT id FROM source WHERE format = 'syslog') AND layer IN ('app', 'gunicorn')
                    """)
            }
            return linked
        }
    }

    /// nginx access lines sent to syslog (`access_log syslog:`) as well as to nginx's own file: the
    /// syslog record is a copy of the file's when both name the same moment, path and status. (Its
    /// message is the line, the file's record has none, so the pairing is by fields.) Error-log
    /// lines sent to both (`error_log syslog:`) pair by moment, path and message.
    static func linkNginxCopies(_ db: Database) throws -> Int {
        let ranges = try Row.fetchAll(db, sql: """
            SELECT s.first_event_id AS lo, s.last_event_id AS hi FROM source s JOIN source_layer sl ON sl.source_id = s.id
            WHERE s.format = 'syslog' AND sl.layer = 'nginx' AND s.first_event_id IS NOT NULL ORDER BY s.id
            """)
        guard !ranges.isEmpty else { return 0 }
        let files = "SELECT sl.source_id FROM source_layer sl JOIN source s ON s.id = sl.source_id WHERE s.format <> 'syslog' AND sl.layer = 'nginx'"
        let same = """
            o.time = c.time AND \(Schema.restored("path", of: "o")) IS \(Schema.restored("path", of: "c")) AND o.status IS c.status AND o.copy_of IS NULL AND o.source_id IN (\(files))
            AND \(EventData.codeIn("layer", of: "o", ["nginx"])) AND o.kind IS c.kind
            AND (\(EventData.codeIn("kind", of: "c", ["access"])) OR o.message IS c.message)
            """
        let statement = try db.makeStatement(sql: """
            UPDATE event_data AS c SET copy_of = (SELECT min(o.id) FROM event_data o WHERE \(same))
            WHERE c.id BETWEEN ? AND ? AND c.copy_of IS NULL AND \(EventData.codeIn("layer", of: "c", ["nginx"]))
              AND \(EventData.codeIn("kind", of: "c", ["access", "log"])) AND EXISTS (SELECT 1 FROM event_data o WHERE \(same))
            """)
        var linked = 0
        for range in ranges {
            try statement.execute(arguments: [range["lo"] as Int64, range["hi"] as Int64])
            linked += db.changesCount
        }
        if linked > 0 {
            try db.execute(sql: """
                UPDATE source_layer SET copies = (SELECT count(*) FROM source s JOIN event e ON e.id BETWEEN s.first_event_id AND s.last_event_id
                    WHERE s.id = source_layer.source_id AND e.layer = 'nginx' AND e.copy_of IS NOT NULL)
                WHERE source_id IN (SELECT id FROM source WHERE format = 'syslog') AND layer = 'nginx'
                """)
        }
        return linked
    }

    /// Events in the timeline, each record counted once (copies left out).
    public static func countOriginals(store: TimelineStore) throws -> Int {
        try store.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM event WHERE \(originalsOnly)") ?? 0
        }
    }
}
