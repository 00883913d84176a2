import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// A `timeline` or `--at` in a second terminal while an ingest writes: the database is in WAL
/// mode, so a reader sees the last committed state at once instead of waiting for the writer.
@Suite struct ConcurrentReaderTests {
    @Test func aReaderReadsTheCommittedStateWhileAWriterHoldsItsTransaction() throws {
        let dir = try TemporaryDirectory()
        let path = dir.url.appendingPathComponent("t.db").path
        let writer = try TimelineStore(path: path)
        try writer.write { db in try db.execute(sql: "INSERT INTO correlation_state (last_event_id) VALUES (1)") }
        let before = try writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM correlation_state") } ?? 0

        let inTransaction = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let thread = Thread {
            try? writer.dbQueue.inTransaction(.exclusive) { db in
                // Enough rows to spill past the page cache, which under a rollback journal took
                // the exclusive lock that held readers off until the commit.
                try db.execute(sql: "PRAGMA cache_size = 10")
                for n in 2...3_000 {
                    try db.execute(sql: "INSERT INTO correlation_state (last_event_id) VALUES (?)", arguments: [n])
                }
                inTransaction.signal()
                release.wait()
                return .commit
            }
        }
        thread.start()
        inTransaction.wait()
        let waits = Counter()
        let reader = try TimelineStore(path: path, lockWait: 5, onWait: { waits.add() })
        let started = Date()
        let seen = try reader.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM correlation_state") }
        #expect(seen == before)
        #expect(waits.value == 0)
        #expect(Date().timeIntervalSince(started) < 1)
        release.signal()
        while thread.isExecuting { usleep(10_000) }
        let after = try reader.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM correlation_state") }
        #expect(after == before + 2_999)
    }

    @Test func aDatabaseIsInWALModeAfterOpening() throws {
        let dir = try TemporaryDirectory()
        let path = dir.url.appendingPathComponent("t.db").path
        let store = try TimelineStore(path: path)
        #expect(try store.lookup { try store.journalMode($0) } == "wal")
    }

    /// A bulk load alone on the database runs under a rollback journal (each page written once);
    /// with another connection open it stays in WAL, without waiting for that connection.
    @Test func aBulkLoadLeavesWALOnlyWhenNobodyElseHasTheDatabaseOpen() throws {
        let dir = try TemporaryDirectory()
        let path = dir.url.appendingPathComponent("t.db").path
        let store = try TimelineStore(path: path, lockWait: 5)
        let alone = try store.dbQueue.writeWithoutTransaction { db in
            try store.bulkLoad(db, when: true) { try store.journalMode(db) }
        }
        #expect(alone == "delete")
        #expect(try store.lookup { try store.journalMode($0) } == "wal")

        let waits = Counter()
        let watched = try TimelineStore(path: path, lockWait: 5, onWait: { waits.add() })
        let other = try TimelineStore(path: path)
        _ = try other.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM event") }
        let started = Date()
        let beside = try watched.dbQueue.writeWithoutTransaction { db in
            try watched.bulkLoad(db, when: true) { try watched.journalMode(db) }
        }
        #expect(beside == "wal")
        #expect(waits.value == 0)
        #expect(Date().timeIntervalSince(started) < 1)
        _ = other
    }
}
