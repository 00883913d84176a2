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
