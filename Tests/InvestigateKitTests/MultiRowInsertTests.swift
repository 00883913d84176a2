import GRDB
import Testing
@testable import InvestigateKit

@Suite struct MultiRowInsertTests {
    /// Whole statements of many rows, then the rest one by one: every row once, values in place.
    @Test(arguments: [0, 1, 63, 64, 65, 130])
    func everyRowIsStoredOnceWithItsValues(count: Int) throws {
        let queue = try DatabaseQueue()
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, label TEXT, score REAL NOT NULL)")
            struct Item { var id: Int64; var label: String?; var score: Double }
            let rows: [Item] = (0..<count).map { n in
                let label: String? = n % 3 == 0 ? nil : "row \(n)"
                return Item(id: Int64(n + 1), label: label, score: Double(n) / 2)
            }
            try MultiRowInsert(db, "INSERT INTO t (id, label, score) VALUES", columns: 3).insert(rows) { statement, first, row in
                statement.bind(first, row.id)
                statement.bind(first + 1, row.label)
                statement.bind(first + 2, row.score)
            }
            let stored = try Row.fetchAll(db, sql: "SELECT id, label, score FROM t ORDER BY id")
            #expect(stored.count == count)
            for (row, back) in zip(rows, stored) {
                #expect(back["id"] as Int64 == row.id)
                #expect(back["label"] as String? == row.label)
                #expect(back["score"] as Double == row.score)
            }
        }
    }
}
