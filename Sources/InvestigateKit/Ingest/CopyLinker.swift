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

    /// Links syslog-wrapped copies to their originals; returns how many copies were marked now.
    ///
    /// Two records are the same line when layer, level and message are equal and either their
    /// normalised times are equal or, within 15 hours (the widest zone difference), the stamps as
    /// written (`extra.local_time`) are: an app file read with the wrong zone still pairs with its
    /// syslog copy.
    @discardableResult
    public static func link(store: TimelineStore) throws -> Int {
        try store.write { db in
            // Nothing to do unless some syslog file carries app or gunicorn lines (no event scan).
            let copiesPossible = try Bool.fetchOne(db, sql: """
                SELECT EXISTS (SELECT 1 FROM source_layer sl JOIN source s ON s.id = sl.source_id
                               WHERE s.format = 'syslog' AND sl.layer IN ('app', 'gunicorn'))
                """) ?? false
            guard copiesPossible else { return 0 }
            // The candidate originals, indexed both ways, so each copy costs two index look-ups
            // instead of a scan of the hours around it.
            try db.execute(sql: "DROP TABLE IF EXISTS temp.copy_original")
            try db.execute(sql: """
                CREATE TEMP TABLE copy_original AS
                SELECT e.id, e.layer, e.level, e.message, e.time, json_extract(e.extra, '$.local_time') AS local_time
                FROM event e JOIN source s ON s.id = e.source_id
                WHERE s.format <> 'syslog' AND e.layer IN ('app', 'gunicorn') AND e.copy_of IS NULL
                  AND e.message IS NOT NULL AND e.time IS NOT NULL
                """)
            try db.execute(sql: "CREATE INDEX temp.copy_original_time ON copy_original(time, message)")
            try db.execute(sql: "CREATE INDEX temp.copy_original_local ON copy_original(local_time, message)")
            defer { try? db.execute(sql: "DROP TABLE IF EXISTS temp.copy_original") }
            let pairs = try Row.fetchAll(db, sql: """
                SELECT c.id AS copy, COALESCE(
                    (SELECT o.id FROM copy_original o
                     WHERE o.time = c.time AND o.message = c.message AND o.layer = c.layer AND o.level IS c.level
                     ORDER BY o.id LIMIT 1),
                    (SELECT o.id FROM copy_original o
                     WHERE o.local_time = json_extract(c.extra, '$.local_time') AND o.message = c.message
                       AND o.layer = c.layer AND o.level IS c.level
                       AND o.time BETWEEN c.time - 54000000000 AND c.time + 54000000000
                     ORDER BY o.id LIMIT 1)) AS original
                FROM event c
                WHERE c.copy_of IS NULL AND c.layer IN ('app', 'gunicorn') AND c.alt_time IS NOT NULL
                  AND c.message IS NOT NULL AND c.time IS NOT NULL
                  AND c.source_id IN (SELECT id FROM source WHERE format = 'syslog')
                """)
            var linked = 0
            for row in pairs {
                guard let original: Int64 = row["original"], let copy: Int64 = row["copy"] else { continue }
                try db.execute(sql: "UPDATE event SET copy_of = ? WHERE id = ?", arguments: [original, copy])
                linked += 1
            }
            // Coverage counts each record once: keep the copies per source and layer beside the totals.
            if linked > 0 {
                try db.execute(sql: """
                    UPDATE source_layer SET copies = (SELECT count(*) FROM event e
                        WHERE e.source_id = source_layer.source_id AND e.layer = source_layer.layer AND e.copy_of IS NOT NULL)
                    WHERE source_id IN (SELECT id FROM source WHERE format = 'syslog') AND layer IN ('app', 'gunicorn')
                    """)
            }
            return linked
        }
    }

    /// Events in the timeline, each record counted once (copies left out).
    public static func countOriginals(store: TimelineStore) throws -> Int {
        try store.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM event WHERE \(originalsOnly)") ?? 0
        }
    }
}
