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
            let pairs = try Row.fetchAll(db, sql: """
                SELECT c.id AS copy, COALESCE(
                    (SELECT o.id FROM event o JOIN source os ON os.id = o.source_id
                     WHERE o.time = c.time AND os.format <> 'syslog' AND o.copy_of IS NULL
                       AND o.layer = c.layer AND o.message = c.message AND o.level IS c.level
                     ORDER BY o.id LIMIT 1),
                    (SELECT o.id FROM event o JOIN source os ON os.id = o.source_id
                     WHERE o.time BETWEEN c.time - 54000000000 AND c.time + 54000000000
                       AND os.format <> 'syslog' AND o.copy_of IS NULL
                       AND o.layer = c.layer AND o.message = c.message AND o.level IS c.level
                       AND json_extract(o.extra, '$.local_time') = json_extract(c.extra, '$.local_time')
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
