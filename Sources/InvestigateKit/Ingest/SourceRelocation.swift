import Foundation
import GRDB

/// Stored files whose bytes have moved: logrotate renames `access.log` to `access.log.1` (and
/// compresses it to `access.log.2.gz` next time) while a new `access.log` takes the old name. An
/// event cites its source's path and line, so a source left under its old name would cite lines
/// that now hold other records. After each run, a stored source whose content this run found
/// under another name, while its own name now holds other bytes or nothing, takes the new name;
/// its notes keep the name it was read by.
enum SourceRelocation {
    struct Stored {
        var path: String
        var sha256: String
        var parent: Int64?
    }

    /// - Parameter exists: whether a path exists now (a name nothing holds any more has moved).
    /// - Returns: the sources moved, as (old path, new path).
    @discardableResult
    static func run(store: TimelineStore, found: [FileResult], exists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) })
        throws -> [(from: String, to: String)] {
        let current = found.filter { $0.status != .failed && $0.status != .skipped }.compactMap { f in f.sha256.map { (path: f.path, sha: $0) } }
        guard !current.isEmpty else { return [] }
        return try store.write { db in
            var sources: [Int64: Stored] = [:]
            var bySHA: [String: [Int64]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, path, sha256, parent_id FROM source WHERE status = 'complete'") {
                let id: Int64 = row["id"]
                sources[id] = Stored(path: row["path"], sha256: row["sha256"], parent: row["parent_id"])
                bySHA[row["sha256"], default: []].append(id)
            }
            // The stored sources holding a found file's lines: those with its bytes, and the
            // earlier versions they continue (a file that grew, then was renamed or compressed).
            func holders(_ sha: String) -> Set<Int64> {
                var out = Set<Int64>()
                for id in bySHA[sha] ?? [] {
                    var next: Int64? = id
                    while let n = next, out.insert(n).inserted { next = sources[n]?.parent }
                }
                return out
            }
            let holdersAt = Dictionary(current.map { ($0.path, holders($0.sha)) }, uniquingKeysWith: { $0.union($1) })
            var moved: [(from: String, to: String)] = []
            for f in current.sorted(by: { $0.path < $1.path }) {
                for id in (holdersAt[f.path] ?? []).sorted() {
                    guard let s = sources[id], s.path != f.path else { continue }
                    // Still where it was read (a copy found under a second name): it stays.
                    if let there = holdersAt[s.path] { if there.contains(id) { continue } } else if exists(s.path) { continue }
                    let note = "read as \(s.path); its bytes were found as \(f.path) later (renamed, as log rotation does), so its records cite that name"
                    try db.execute(sql: """
                        UPDATE source SET path = ?, notes = json_insert(CASE WHEN json_valid(notes) THEN notes ELSE '[]' END, '$[#]', ?) WHERE id = ?
                        """, arguments: [f.path, note, id])
                    moved.append((s.path, f.path))
                    sources[id]?.path = f.path
                }
            }
            return moved
        }
    }
}
