import Foundation
import GRDB

/// logrotate's `copytruncate` copies a live file and then truncates it; lines written between the
/// copy and the truncation land in both the rotated copy (`access.log.1`) and the live file, and a
/// question about that moment counted each of those requests twice. After a run is read, each
/// pair of neighbouring rotations (`x` and `x.1`, `x.1` and `x.2.gz`, …) is compared at the
/// boundary: when the newer file begins with the very lines (byte for byte) the older one ends
/// with, those records of the newer file are marked copies of the older's (`copy_of`), so counts,
/// links and evidence take each record once and cite the rotated file.
enum RotationOverlap {
    /// Records compared at each boundary: copytruncate's race is seconds long.
    static let window = 500

    /// Marks the overlaps of pairs with a source added after `afterSourceID`; returns how many
    /// records were marked.
    @discardableResult
    static func run(store: TimelineStore, afterSourceID: Int64) throws -> Int {
        try store.write { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT id, CAST(path AS BLOB) AS path, format, first_event_id, last_event_id FROM source
                WHERE status = 'complete' AND first_event_id IS NOT NULL AND format IS NOT NULL
                """)
            struct Stored { let id: Int64; let format: String; let first: Int64; let last: Int64 }
            var byPath: [String: Stored] = [:]
            for row in rows {
                guard let path = StoredEvent.text(row, "path") else { continue }
                byPath[path] = Stored(id: row["id"], format: row["format"], first: row["first_event_id"], last: row["last_event_id"])
            }
            var marked = 0
            // Each path's place in its rotation, worked out once (an S3 tree holds thousands).
            let ranked = byPath.keys.compactMap { path in rotation(path).map { (path: path, base: $0.base, rank: $0.rank) } }
            let byBase = Dictionary(grouping: ranked, by: \.base)
            for (path, newer) in byPath {
                guard let own = rotation(path), let siblings = byBase[own.base], siblings.count > 1,
                      let olderPath = siblings.filter({ $0.rank < own.rank }).max(by: { $0.rank < $1.rank })?.path, let older = byPath[olderPath],
                      older.format == newer.format, newer.id > afterSourceID || older.id > afterSourceID else { continue }
                marked += try markOverlap(db, newer: (newer.id, newer.first, newer.last), older: (older.id, older.first, older.last))
            }
            return marked
        }
    }

    /// The path of the rotation just older than this one, when the store holds it: `x` → `x.1`
    /// → `x.2.gz` (numbered), or `x` → its latest `x-20250206` → the one before (`dateext`).
    static func olderRotation(of path: String, in stored: [String: Any]) -> String? {
        guard let own = rotation(path) else { return nil }
        var best: (path: String, rank: Double)?
        for candidate in stored.keys where candidate != path {
            guard let r = rotation(candidate), r.base == own.base, r.rank < own.rank else { continue }
            if best.map({ r.rank > $0.rank }) ?? true { best = (candidate, r.rank) }
        }
        return best?.path
    }

    /// A rotated file's base name and its place in the order: the live file last (infinity), a
    /// numbered one by minus its number, a dated one by its date's digits.
    static func rotation(_ path: String) -> (base: String, rank: Double)? {
        let plain = path.hasSuffix(".gz") ? String(path.dropLast(3)) : path
        if let dot = plain.lastIndex(of: "."), let n = Int(plain[plain.index(after: dot)...]), n >= 1, n < 1000 {
            return (String(plain[..<dot]), -Double(n))
        }
        if let r = plain.range(of: #"-(\d{8}(?:\d{2})?|\d{4}-\d{2}-\d{2})$"#, options: .regularExpression) {
            let digits = plain[r].filter(\.isNumber)
            return Double(digits).map { (String(plain[..<r.lowerBound]), $0) }
        }
        return (plain, .infinity)
    }

    /// Marks the newer file's leading records that repeat the older file's last ones.
    static func markOverlap(_ db: Database, newer: (id: Int64, first: Int64, last: Int64), older: (id: Int64, first: Int64, last: Int64)) throws -> Int {
        let head = try StoredEvent.fetchAll(db, sql: """
            SELECT \(StoredEvent.columns) FROM event WHERE id BETWEEN ? AND ? AND source_id = ? AND copy_of IS NULL ORDER BY id LIMIT \(window)
            """, arguments: [newer.first, newer.last, newer.id])
        let tail = try StoredEvent.fetchAll(db, sql: """
            SELECT \(StoredEvent.columns) FROM event WHERE id BETWEEN ? AND ? AND source_id = ? ORDER BY id DESC LIMIT \(window)
            """, arguments: [older.first, older.last, older.id]).reversed() as [StoredEvent]
        guard let firstHead = head.first else { return 0 }
        // The longest run of the older file's last records that the newer file begins with.
        let heads = head.map(\.event.raw)
        var k = 0
        for start in tail.indices where tail[start].event.raw == firstHead.event.raw {
            let run = tail[start...]
            guard run.count <= heads.count, zip(run, heads).allSatisfy({ $0.event.raw == $1 }) else { continue }
            k = run.count
            for (copy, original) in zip(head.prefix(k), run) {
                try db.execute(sql: "UPDATE event_data SET copy_of = ? WHERE id = ?", arguments: [original.id, copy.id])
            }
            break
        }
        if k > 0 {
            try db.execute(sql: """
                UPDATE source_layer SET copies = (SELECT count(*) FROM event e WHERE e.id BETWEEN ? AND ? AND e.source_id = ?
                    AND e.layer = source_layer.layer AND e.copy_of IS NOT NULL) WHERE source_id = ?
                """, arguments: [newer.first, newer.last, newer.id, newer.id])
            let notes = SourceRecord.notes(try String.fetchOne(db, sql: "SELECT notes FROM source WHERE id = ?", arguments: [newer.id]))
            let note = "its first \(k) record\(k == 1 ? "" : "s") repeat the last of the rotation before it byte for byte (logrotate's copytruncate): marked copies of those, counted once"
            if !notes.contains(note) { try SourceRecord.storeNotes(notes + [note], source: newer.id, db) }
        }
        return k
    }
}
