import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// docs/schema.md must document every table and column the migrations create.
@Suite struct SchemaDocTests {
    @Test func everyTableAndColumnIsDocumented() throws {
        let doc = try String(contentsOf: Corpus.repositoryRoot.appendingPathComponent("docs/schema.md"), encoding: .utf8)
        let store = try TimelineStore()
        let tables = try store.read { db in
            try String.fetchAll(db, sql: """
                SELECT name FROM sqlite_master WHERE type = 'table'
                AND name NOT LIKE 'sqlite_%' AND name != 'grdb_migrations' ORDER BY name
                """)
        }
        #expect(!tables.isEmpty)
        for table in tables {
            #expect(doc.contains("`\(table)`"), "docs/schema.md does not describe table \(table)")
            let columns = try store.read { try $0.columns(in: table).map(\.name) }
            for column in columns {
                #expect(doc.contains("`\(column)`"), "docs/schema.md does not describe \(table).\(column)")
            }
        }
    }
}

/// Migrations upgrade a database written by an older version in place.
@Suite struct MigrationTests {
    @Test func v4RecordsEachSourcesEventIDRangeAndDropsTheSourceLineIndex() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("investigate-migration-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("old.db").path
        // A v3 database with two sources' events interleaved the way two ingest runs leave them.
        do {
            let queue = try DatabaseQueue(path: path)
            try Schema.migrator().migrate(queue, upTo: "v3-copies-per-source-layer")
            try queue.write { db in
                for id in [1, 2] {
                    try db.execute(sql: "INSERT INTO source (id, path, sha256, size, status, ingested_at) VALUES (?, ?, ?, 0, 'complete', 0)",
                                   arguments: [id, "f\(id).log", "h\(id)"])
                }
                for (source, line) in [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2)] {
                    try db.execute(sql: "INSERT INTO event (source_id, line, line_end, layer, kind, raw) VALUES (?, ?, ?, 'nginx', 'access', x'41')",
                                   arguments: [source, line, line])
                }
                #expect(try db.indexes(on: "event").contains { $0.name == "event_source_line" })
            }
        }
        let store = try TimelineStore(path: path)
        try store.read { db in
            let sources = try SourceRecord.all(db)
            #expect(sources.map(\.firstEventId) == [1, 4])
            #expect(sources.map(\.lastEventId) == [3, 5])
            #expect(try !db.indexes(on: "event_data").contains { $0.name == "event_source_line" })
            let found = try Int64.fetchOne(db, sql: """
                SELECT e.id FROM source s JOIN event e ON e.id BETWEEN s.first_event_id AND s.last_event_id
                WHERE s.path = 'f2.log' AND e.line = 2
                """)
            #expect(found == 5)
        }
    }
}
