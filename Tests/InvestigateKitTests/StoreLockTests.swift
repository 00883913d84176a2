import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// Two processes on one database: a command that meets another's write lock waits for it (and
/// says so once) instead of failing at once; past its wait it fails with a lock error the CLI names.
@Suite struct StoreLockTests {
    /// Holds an exclusive lock on the database for `seconds` on another connection.
    func holdLock(_ path: String, seconds: Double) throws -> Thread {
        let ready = DispatchSemaphore(value: 0)
        let other = try DatabaseQueue(path: path)
        let thread = Thread {
            try? other.inTransaction(.exclusive) { _ in
                ready.signal()
                Thread.sleep(forTimeInterval: seconds)
                return .commit
            }
        }
        thread.start()
        ready.wait()
        return thread
    }

    /// A second ingest (a writer) waits for the first; readers do not wait at all (WAL mode,
    /// ConcurrentReaderTests).
    @Test func aWriterWaitsForAnotherProcesssLockAndSaysSoOnce() throws {
        let dir = try TemporaryDirectory()
        let path = dir.url.appendingPathComponent("t.db").path
        _ = try TimelineStore(path: path)
        let waits = Counter()
        let store = try TimelineStore(path: path, lockWait: 10, onWait: { waits.add() })
        _ = try holdLock(path, seconds: 0.6)
        let started = Date()
        try store.write { db in try db.execute(sql: "INSERT INTO correlation_state (last_event_id) VALUES (1)") }
        #expect(Date().timeIntervalSince(started) >= 0.4)
        #expect(waits.value == 1)
    }

    @Test func pastItsWaitACommandFailsWithALockError() throws {
        let dir = try TemporaryDirectory()
        let path = dir.url.appendingPathComponent("t.db").path
        _ = try TimelineStore(path: path)
        let store = try TimelineStore(path: path, lockWait: 0.2)
        _ = try holdLock(path, seconds: 1.5)
        do {
            try store.write { db in try db.execute(sql: "INSERT INTO correlation_state (last_event_id) VALUES (1)") }
            Issue.record("the write went through a lock another connection held")
        } catch {
            #expect(TimelineStore.isLockedError(error))
        }
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.lock(); n += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}
