import Foundation
import GRDB

/// A file changed before its end since an earlier run (a line edited or deleted, not lines
/// appended) is read again whole as a new version: its unchanged records would then count twice.
/// After each run, a new version's records that repeat the earlier reading byte for byte (in
/// order, each once) are marked copies of it, so counts, links and evidence take each record once;
/// a note on the new version says the file was rewritten and what that means for its citations.
enum RewrittenFiles {
    /// Returns, per new version's path, the note added to it.
    @discardableResult
    static func run(store: TimelineStore, afterSourceID: Int64) throws -> [String: String] {
        try store.write { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT id, path, sha256, format, parent_id, first_event_id, last_event_id FROM source
                WHERE status = 'complete' AND first_event_id IS NOT NULL AND format IS NOT NULL ORDER BY id
                """)
            // By path, in id order: an S3 tree holds tens of thousands of sources.
            let byPath = Dictionary(grouping: rows, by: { $0["path"] as String })
            var notes: [String: String] = [:]
            for new in rows where (new["id"] as Int64) > afterSourceID && (new["parent_id"] as Int64?) == nil {
                let path: String = new["path"]
                // The latest earlier reading of the same path that this version does not continue.
                guard let old = byPath[path]?.last(where: { r in
                    (r["id"] as Int64) < (new["id"] as Int64) && (r["format"] as String) == (new["format"] as String)
                        && (r["sha256"] as String) != (new["sha256"] as String)
                }) else { continue }
                let marked = try markRepeats(db, new: range(new), old: range(old))
                guard marked > 0 else { continue }
                let note = "this path held other bytes when read before (sha256 \((old["sha256"] as String).prefix(12))…): the file was rewritten, not appended to. Its \(marked) record\(marked == 1 ? "" : "s") that repeat the earlier reading byte for byte are marked copies of those, counted once and cited at their line in that reading"
                try SourceRecord.storeNotes(SourceRecord.notes(try String.fetchOne(db, sql: "SELECT notes FROM source WHERE id = ?", arguments: [new["id"] as Int64])) + [note],
                                            source: new["id"], db)
                notes[path] = note
            }
            return notes
        }
    }

    static func range(_ row: Row) -> (id: Int64, first: Int64, last: Int64) {
        (row["id"], row["first_event_id"], row["last_event_id"])
    }

    /// Pairs the new version's records with the earlier reading's by their bytes, in file order,
    /// each earlier record taken once; returns how many were marked.
    static func markRepeats(_ db: Database, new: (id: Int64, first: Int64, last: Int64), old: (id: Int64, first: Int64, last: Int64)) throws -> Int {
        var earlier: [[UInt8]: [Int64]] = [:]
        for e in try StoredEvent.fetchAll(db, sql: """
            SELECT \(StoredEvent.columns) FROM event WHERE id BETWEEN ? AND ? AND source_id = ? AND copy_of IS NULL ORDER BY id DESC
            """, arguments: [old.first, old.last, old.id]) {
            earlier[e.event.raw, default: []].append(e.id)
        }
        var marked = 0
        let mark = try db.makeStatement(sql: "UPDATE event_data SET copy_of = ? WHERE id = ?")
        for e in try StoredEvent.fetchAll(db, sql: """
            SELECT \(StoredEvent.columns) FROM event WHERE id BETWEEN ? AND ? AND source_id = ? AND copy_of IS NULL ORDER BY id
            """, arguments: [new.first, new.last, new.id]) {
            guard let original = earlier[e.event.raw]?.popLast() else { continue }
            try mark.execute(arguments: [original, e.id])
            marked += 1
        }
        if marked > 0 {
            try db.execute(sql: """
                UPDATE source_layer SET copies = (SELECT count(*) FROM event e WHERE e.id BETWEEN ? AND ? AND e.source_id = ?
                    AND e.layer = source_layer.layer AND e.copy_of IS NOT NULL) WHERE source_id = ?
                """, arguments: [new.first, new.last, new.id, new.id])
        }
        return marked
    }
}
