import Foundation
import GRDB

/// The sources one question rests on: a database may hold several investigations (every run in a
/// folder feeds the same `./investigate.db`), and a question asked with PATHs is answered from the
/// files under those PATHs only.
///
/// A source is in scope when its path, made absolute and standardised (relative paths against the
/// current directory), is one of the PATHs or lies under one; or when its content is that of a
/// file found under them in this run (the same bytes are stored once, under the first name they
/// were read by: that source then shows under the name found here); and with it every earlier
/// version of a file that grew. `TimelineStore.scoped` applies it to every query.
public struct SourceScope: Sendable, Equatable {
    /// Source ids in scope, ascending.
    public var ids: [Int64]
    /// For sources stored under another name, the path they were found by under the PATHs.
    public var aliases: [Int64: String]
    /// The PATHs, standardised.
    public var roots: [String]
    /// Complete sources in the whole database (for "12 of 30 sources").
    public var total: Int
    /// The files the question names: sources under the PATHs or found there by content, not the
    /// stored sources they continue or repeat (a rotated file's earlier part, the same bytes read
    /// first under another name).
    public var named: Int

    public init(ids: [Int64], aliases: [Int64: String] = [:], roots: [String] = [], total: Int, named: Int? = nil) {
        self.ids = ids.sorted()
        self.aliases = aliases
        self.roots = roots
        self.total = total
        self.named = named ?? ids.count
    }

    /// A file an ingest run found under the PATHs: its path and content hash.
    public struct Found: Sendable {
        public var path: String
        public var sha256: String?
        public init(path: String, sha256: String?) {
            self.path = path
            self.sha256 = sha256
        }
    }

    public static func resolve(_ store: TimelineStore, paths: [String], found: [Found],
                               cwd: String = FileManager.default.currentDirectoryPath) throws -> SourceScope {
        try store.read { db in try resolve(db, paths: paths, found: found, cwd: cwd) }
    }

    public static func resolve(_ db: Database, paths: [String], found: [Found], cwd: String) throws -> SourceScope {
        let roots = paths.map { standardised($0, cwd: cwd) }
        var byHash: [String: String] = [:]
        for f in found.sorted(by: { $0.path < $1.path }) {
            if let sha = f.sha256, byHash[sha] == nil { byHash[sha] = f.path }
        }
        var parent: [Int64: Int64] = [:]
        var inScope = Set<Int64>()
        var aliases: [Int64: String] = [:]
        var pathOf: [Int64: String] = [:]
        var underRoots = Set<Int64>()
        var total = 0
        for row in try Row.fetchAll(db, sql: "SELECT id, path, sha256, parent_id FROM source WHERE status = 'complete'") {
            total += 1
            let id: Int64 = row["id"], path: String = row["path"], sha: String = row["sha256"]
            pathOf[id] = path
            if let p: Int64 = row["parent_id"] { parent[id] = p }
            if isUnder(standardised(path, cwd: cwd), roots) {
                inScope.insert(id)
                underRoots.insert(id)
            } else if let foundAs = byHash[sha] {
                inScope.insert(id)
                aliases[id] = foundAs
            }
        }
        // Files, not rows: one named file may be a row of its own and the same bytes stored earlier.
        let named = Set(underRoots.compactMap { pathOf[$0].map { standardised($0, cwd: cwd) } } + aliases.values.map { standardised($0, cwd: cwd) }).count
        // The stored sources a named file continues or repeats (an earlier version of a file that
        // grew, the same bytes first read under another name) hold its first lines: they are in,
        // shown under the name the question found them by.
        for id in Array(inScope) {
            var next = parent[id], child = id
            while let p = next, inScope.insert(p).inserted || !underRoots.contains(p) {
                if !underRoots.contains(p), aliases[p] == nil { aliases[p] = aliases[child] ?? pathOf[child] }
                child = p
                next = parent[p]
                if underRoots.contains(p) { break }
            }
        }
        return SourceScope(ids: Array(inScope), aliases: aliases, roots: roots, total: total, named: named)
    }

    static func standardised(_ path: String, cwd: String) -> String {
        let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : URL(fileURLWithPath: cwd).appendingPathComponent(path)
        var s = url.standardizedFileURL.resolvingSymlinksInPath().path
        while s.count > 1, s.hasSuffix("/") { s.removeLast() }
        return s
    }

    static func isUnder(_ path: String, _ roots: [String]) -> Bool {
        roots.contains { root in path == root || path.hasPrefix(root == "/" ? "/" : root + "/") }
    }

    /// "12 of 30 sources", for the first line of an answer.
    public var counted: String { "\(named) of \(total) source\(total == 1 ? "" : "s")" }
}

extension TimelineStore {
    /// Complete sources in the database.
    public func sourceCount() throws -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM source WHERE status = 'complete'") ?? 0 }
    }

    /// Runs `body` with the database seen through `scope`: temporary views named `event`,
    /// `source`, `source_layer`, `rejected` and `topology` shadow the tables (SQLite resolves an
    /// unqualified name in `temp` first), holding only the scope's sources and the layers they
    /// have. Every query inside, whoever wrote it, is answered from the scope alone; the views are
    /// dropped when `body` returns. Nothing may write the timeline meanwhile. A nil scope runs
    /// `body` on the whole database.
    public func scoped<T>(_ scope: SourceScope?, _ body: () throws -> T) throws -> T {
        guard let scope else { return try body() }
        if let active = scopeState.active {
            // Nested (a report built inside a scoped diagnosis): the same scope is already applied.
            precondition(active == scope, "a different source scope is already applied")
            return try body()
        }
        try dbQueue.inDatabase { db in try Self.createScopeViews(db, scope) }
        scopeState.active = scope
        defer {
            scopeState.active = nil
            try? dbQueue.inDatabase { db in try Self.dropScopeViews(db) }
        }
        return try body()
    }

    static let scopedTables = ["event", "source", "source_layer", "rejected", "topology"]

    static func createScopeViews(_ db: Database, _ scope: SourceScope) throws {
        try dropScopeViews(db)
        try db.execute(sql: "CREATE TEMP TABLE investigate_scope (id INTEGER PRIMARY KEY, path TEXT)")
        let insert = try db.makeStatement(sql: "INSERT INTO temp.investigate_scope (id, path) VALUES (?, ?)")
        for id in scope.ids { try insert.execute(arguments: [id, scope.aliases[id]]) }
        let inScope = "source_id IN (SELECT id FROM temp.investigate_scope)"
        try db.execute(sql: "CREATE TEMP VIEW event AS SELECT * FROM main.event WHERE \(inScope)")
        try db.execute(sql: "CREATE TEMP VIEW rejected AS SELECT * FROM main.rejected WHERE \(inScope)")
        try db.execute(sql: "CREATE TEMP VIEW source_layer AS SELECT * FROM main.source_layer WHERE \(inScope)")
        // A source found here under another name than it was stored by shows under the name found.
        let columns = try Row.fetchAll(db, sql: "SELECT name FROM pragma_table_info('source') ORDER BY cid").map { $0["name"] as String }
        let select = columns.map { $0 == "path" ? "COALESCE(t.path, s.path) AS path" : "s.\($0)" }.joined(separator: ", ")
        try db.execute(sql: "CREATE TEMP VIEW source AS SELECT \(select) FROM main.source s JOIN temp.investigate_scope t ON t.id = s.id")
        // Which layer is in front of which, as far as the layers in scope go.
        try db.execute(sql: """
            CREATE TEMP VIEW topology AS SELECT * FROM main.topology WHERE back IN (SELECT layer FROM temp.source_layer)
            AND (front = 'upstream' OR front IN (SELECT layer FROM temp.source_layer))
            """)
    }

    static func dropScopeViews(_ db: Database) throws {
        for name in scopedTables { try db.execute(sql: "DROP VIEW IF EXISTS temp.\(name)") }
        try db.execute(sql: "DROP TABLE IF EXISTS temp.investigate_scope")
    }
}

/// Which scope a store has applied (a class: `TimelineStore` is shared by reference).
final class ScopeState: @unchecked Sendable {
    private let lock = NSLock()
    private var _active: SourceScope?
    var active: SourceScope? {
        get { lock.lock(); defer { lock.unlock() }; return _active }
        set { lock.lock(); _active = newValue; lock.unlock() }
    }
}
