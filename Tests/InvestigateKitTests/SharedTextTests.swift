import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// Repeated text is stored once (`SharedText`, `shared_text`), and every query reads back through
/// the `event` view exactly the text each record had.
@Suite struct SharedTextTests {
    static let agents = [
        "Mozilla/5.0 (X11; Linux x86_64; rv:122.0) Gecko/20100101 Firefox/122.0",
        "curl/8.5.0",
        "a\u{0}b NUL inside, caf\u{E9} \u{1F600} \u{1B}[31mred",
        "12345",  // digits: text, never an id
    ]

    /// The agents a log file can carry as they are (no NUL).
    static let fileAgents = agents.filter { !$0.contains("\u{0}") }

    /// A combined-format line; the agent cycles through `fileAgents`.
    static func line(_ i: Int) -> String {
        let ua = fileAgents[i % fileAgents.count]
        return "203.0.113.\(i % 250) - - [06/Feb/2025:14:\(String(format: "%02d", (i / 60) % 60)):\(String(format: "%02d", i % 60)) +0000] "
            + "\"GET /item/\(i % 7)?n=\(i) HTTP/1.1\" 200 \(i) \"https://example.com/ref/\(i % 3)\" \"\(ua)\""
    }

    /// Every shared-text column's integers name a `shared_text` row.
    static func danglingIDs(_ db: Database) throws -> Int {
        try Schema.sharedTextColumns.sorted().reduce(0) { sum, column in
            sum + (try Int.fetchOne(db, sql: """
                SELECT count(*) FROM event_data d WHERE typeof(d.\(column)) = 'integer'
                AND NOT EXISTS (SELECT 1 FROM shared_text s WHERE s.id = d.\(column))
                """) ?? 0)
        }
    }

    @Test func repeatedValuesAreStoredOnceAndReadBackExactly() throws {
        let store = try TimelineStore()
        var events: [Event] = []
        for i in 0..<2000 {
            var e = Event(time: Int64(i), layer: .nginx, kind: .access, line: i + 1, raw: Array("line \(i)".utf8))
            e.userAgent = Self.agents[i % Self.agents.count]
            e.path = i % 2 == 0 ? "/item/\(i % 5)" : "/once/\(i)"
            e.host = "www.example.com"
            e.extra = ["referer": "https://example.com/ref/\(i % 3)"]
            e.query = "n=\(i % 3)"
            events.append(e)
        }
        var batch = EventBatch()
        for e in events { batch.append(e) }
        try store.write { db in
            try RawBlockTests.source(db)
            try EventWriter(db: db, sourceID: 1).insert(batch)
        }
        try store.read { db in
            let back = try StoredEvent.fetchAll(db, sql: "SELECT \(StoredEvent.columns) FROM event ORDER BY id").map(\.event)
            #expect(back == events)
            // Byte for byte, also through plain SQL on the view users read.
            let agentBytes = try Row.fetchAll(db, sql: "SELECT CAST(user_agent AS BLOB) AS b FROM events ORDER BY id").map { [UInt8]($0["b"] as Data) }
            #expect(agentBytes == events.map { Array($0.userAgent!.utf8) })
            // Each repeated value is one row; the first occurrence of each stays inline.
            let shared = try Set(Row.fetchAll(db, sql: "SELECT CAST(value AS BLOB) AS value FROM shared_text").compactMap { StoredEvent.text($0, "value") })
            #expect(shared.isSuperset(of: Self.agents.filter { $0.utf8.count >= SharedText.minLength }))
            #expect(!shared.contains { $0.hasPrefix("/once/") })
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM event_data WHERE typeof(user_agent) = 'text'") == Self.agents.count)
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM event_data WHERE typeof(path) = 'integer'") == 1000 - 5)
            // Short values stay text; query is never shared.
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM event_data WHERE typeof(query) <> 'text'") == 0)
            #expect(try Self.danglingIDs(db) == 0)
            // Filters and groups on the view see text.
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM event WHERE user_agent = 'curl/8.5.0'") == 500)
            #expect(try Int.fetchOne(db, sql: "SELECT count(DISTINCT path) FROM event WHERE path LIKE '/item/%'") == 5)
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM event WHERE user_agent = '12345'") == 500)
        }
    }

    /// A record naming a `shared_text` row that is gone (a damaged database) is an error when
    /// read, never a record shown without its value.
    @Test func aMissingSharedValueIsAnError() throws {
        let store = try TimelineStore()
        var batch = EventBatch()
        for i in 0..<3 {
            var e = Event(time: Int64(i), layer: .nginx, kind: .access, line: i + 1, raw: Array("l".utf8))
            e.userAgent = "curl/8.5.0"
            batch.append(e)
        }
        try store.write { db in
            try RawBlockTests.source(db)
            try EventWriter(db: db, sourceID: 1).insert(batch)
            #expect(try StoredEvent.fetchAll(db, sql: "SELECT \(StoredEvent.columns) FROM event").count == 3)
            try db.execute(sql: "DELETE FROM shared_text")
            #expect(throws: DatabaseError.self) { try StoredEvent.fetchAll(db, sql: "SELECT \(StoredEvent.columns) FROM event") }
        }
    }

    /// A file whose savepoint rolls back takes the `shared_text` rows it added with it: the next
    /// file of the same run must not name them.
    @Test func aRolledBackFileLeavesNoDanglingSharedText() throws {
        let dir = try TemporaryDirectory()
        // `a.log` fails at its line 1500, after its agents were shared; `b.log` repeats them.
        try dir.write("a.log", (0..<2000).map { Self.line($0) }.joined(separator: "\n") + "\n")
        try dir.write("b.log", (0..<400).map { Self.line($0) }.joined(separator: "\n") + "\n")
        let dbDir = try TemporaryDirectory()
        let store = try TimelineStore(path: dbDir.url.appendingPathComponent("t.db").path)
        try store.write { db in
            try db.execute(sql: """
                CREATE TEMP TRIGGER boom BEFORE INSERT ON event_data WHEN NEW.line = 1500
                BEGIN SELECT RAISE(ABORT, 'simulated failure'); END
                """)
        }
        let summary = try Ingester(store: store).ingest(paths: [dir.path])
        #expect(summary.files.map(\.status) == [.failed, .ingested])
        try store.read { db in
            #expect(try Self.danglingIDs(db) == 0)
            let agents = try String.fetchAll(db, sql: "SELECT user_agent FROM event ORDER BY line")
            #expect(agents == (0..<400).map { Self.fileAgents[$0 % Self.fileAgents.count] })
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM event_data WHERE typeof(user_agent) = 'integer'") ?? 0 > 300)
        }
    }

    /// A database written by v8 is converted: the same values through `event`, repeated ones
    /// shared, links and ambiguities kept and still writable with foreign keys on.
    @Test func aV8DatabaseIsConverted() throws {
        let dir = try TemporaryDirectory()
        let path = dir.url.appendingPathComponent("v8.db").path
        var expected: [[String?]] = []
        do {
            let queue = try DatabaseQueue(path: path)
            try Schema.migrator().migrate(queue, upTo: "v8-raw-blocks")
            try queue.write { db in
                try RawBlockTests.source(db)
                for i in 0..<300 {
                    let ua: String? = i % 10 == 9 ? nil : Self.agents[i % Self.agents.count]
                    let path = i % 3 == 0 ? "/unique/\(i)" : "/shared/\(i % 4)"
                    let extra = "{\"referer\":\"https://example.com/\(i % 2)\"}"
                    try db.execute(sql: """
                        INSERT INTO event (source_id, line, line_end, time, layer, kind, client_ip, path, user_agent, extra, host, waf_rule, raw_block, raw_offset, raw_length)
                        VALUES (1, ?, ?, ?, 'nginx', 'access', '203.0.113.9', ?, CAST(? AS TEXT), ?, 'h', 'AWS-AWSManagedRulesCommonRuleSet', 0, 0, 0)
                        """, arguments: [i + 1, i + 1, Int64(i) * 1_000_000, path, ua.map { Data($0.utf8) }, extra])
                    expected.append([path, ua, extra, "h", "AWS-AWSManagedRulesCommonRuleSet"])
                }
                try db.execute(sql: "INSERT INTO chain (id, layers) VALUES (1, 'nginx')")
                try db.execute(sql: "INSERT INTO link (event_id, chain_id, key, confidence) VALUES (5, 1, 'ip', 0.9)")
                try db.execute(sql: "INSERT INTO ambiguous (event_id, candidates, reason) VALUES (6, '[1]', 'tie')")
            }
        }
        let store = try TimelineStore(path: path)
        try store.write { db in
            let names = ["path", "user_agent", "extra", "host", "waf_rule"]
            let rows = try Row.fetchAll(db, sql: "SELECT \(names.map { "CAST(\($0) AS BLOB) AS \($0)" }.joined(separator: ", ")) FROM event ORDER BY id")
            #expect(rows.map { row in names.map { StoredEvent.text(row, $0) } } == expected)
            #expect(try Self.danglingIDs(db) == 0)
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM shared_text WHERE value LIKE '/unique/%'") == 0)
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM event_data WHERE typeof(waf_rule) = 'integer'") == 300)
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM link WHERE event_id = 5 AND chain_id = 1") == 1)
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM ambiguous WHERE event_id = 6") == 1)
            #expect(try db.indexes(on: "event_data").contains { $0.name == "event_time" })
            #expect(try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").isEmpty)
            // Links name `event_data` now: a new one is accepted with foreign keys on, and one
            // naming no event is refused.
            #expect(try Bool.fetchOne(db, sql: "PRAGMA foreign_keys") == true)
            try db.execute(sql: "INSERT INTO link (event_id, chain_id, key, confidence) VALUES (7, 1, 'ip', 0.9)")
            #expect(throws: DatabaseError.self) {
                try db.execute(sql: "INSERT INTO link (event_id, chain_id, key, confidence) VALUES (99999, 1, 'ip', 0.9)")
            }
        }
    }

    /// Values whose hashes collide (log text is attacker-controlled) probe a bounded run of
    /// slots; past it they are stored inline, never mixed up.
    @Test func collidingHashesStayCorrectAndBounded() throws {
        let store = try TimelineStore()
        try store.write { db in
            let shared = SharedText()
            var ids: [String: Int64] = [:]
            for round in 0..<2 {
                for i in 0..<500 {
                    let value = "/probe/\(i)"
                    let id = try Array(value.utf8).withUnsafeBytes { try shared.id(for: $0, hash: 7, db: db) }
                    if round == 0 { #expect(id == nil) } else if let id { ids[value] = id }
                }
            }
            // The first `maxProbes` values found their slots and are shared on their repeat; the
            // rest stay inline.
            #expect(ids.count == SharedText.maxProbes)
            for (value, id) in ids {
                #expect(try String.fetchOne(db, sql: "SELECT value FROM shared_text WHERE id = ?", arguments: [id]) == value)
            }
        }
    }

    /// The user is told before an older database is converted (it takes seconds a million
    /// events), and only then.
    @Test func convertingAnOlderDatabaseIsAnnounced() throws {
        let dir = try TemporaryDirectory()
        let old = dir.url.appendingPathComponent("old.db").path, fresh = dir.url.appendingPathComponent("fresh.db").path
        try Schema.migrator().migrate(try DatabaseQueue(path: old), upTo: "v8-raw-blocks")
        final class Count: @unchecked Sendable { var n = 0 }
        let told = Count()
        _ = try TimelineStore(path: old, onUpgrade: { told.n += 1 })
        #expect(told.n == 1)
        _ = try TimelineStore(path: old, onUpgrade: { told.n += 1 })
        _ = try TimelineStore(path: fresh, onUpgrade: { told.n += 1 })
        #expect(told.n == 1)
    }

    /// A database a newer version wrote (a schema step this one does not know) is refused with
    /// what to do, never read.
    @Test func aDatabaseFromANewerVersionIsRefused() throws {
        let dir = try TemporaryDirectory()
        let path = dir.url.appendingPathComponent("newer.db").path
        do {
            let store = try TimelineStore(path: path)
            try store.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')") }
        }
        do {
            _ = try TimelineStore(path: path)
            Issue.record("a database with an unknown schema step was opened")
        } catch let error as NewerDatabaseError {
            #expect(error.steps == ["v99-from-the-future"])
            #expect(error.description.contains("investigate ingest --db NEW.db"))
        }
    }

    /// The address indexes are built when a question filters by address, not by ingest.
    @Test func addressIndexesAreBuiltWhenFirstNeeded() throws {
        let dir = try TemporaryDirectory()
        try dir.write("access.log", (0..<50).map { Self.line($0) }.joined(separator: "\n") + "\n")
        let store = try TimelineStore(path: dir.url.appendingPathComponent("t.db").path)
        _ = try Ingester(store: store).ingest(paths: [dir.path])
        func indexes() throws -> Set<String> { try store.read { db in Set(try db.indexes(on: "event_data").map(\.name)) } }
        #expect(try !indexes().contains("event_client_ip"))
        var q = TimelineQuery(from: 0, to: Int64.max)
        q.clientIP = "203.0.113.7"
        let (chains, _) = try TimelineView.build(store, q)
        #expect(chains.count == 1)
        #expect(try indexes().isSuperset(of: ["event_client_ip", "event_peer_ip"]))
        // A look-up by address now reads the index instead of every row.
        let plan = try store.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN SELECT id FROM event WHERE client_ip = '203.0.113.7'").map { $0["detail"] as String }
        }
        #expect(plan.contains { $0.contains("event_client_ip") })
    }
}
