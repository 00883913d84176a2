import Foundation
import GRDB
import Testing
@testable import InvestigateKit

@Suite struct CopyLinkerTests {
    @Test func syslogCopiesOfAppAndGunicornLinesAreMarkedOnce() throws {
        let dir = try TemporaryDirectory()
        let gunicornLine = "[2025-02-06 14:32:46 +0900] [2156944] [CRITICAL] WORKER TIMEOUT (pid:2156950)"
        try dir.write("var/log/syslog", (seedLines + [
            "Feb  6 05:32:46 ip-10-1-1-50 gunicorn[2156944]: " + gunicornLine,
            "Feb  6 05:40:01 ip-10-1-1-50 CRON[2157001]: (root) CMD (true)",
        ]).joined(separator: "\n") + "\n")
        try dir.write("srv/app/logs/2025-02-06.log", seedLines.map { $0.components(separatedBy: "]: ")[1] }.joined(separator: "\n") + "\n")
        try dir.write("srv/app/gunicorn-error.log", gunicornLine + "\n")

        let store = try TimelineStore()
        let summary = try Ingester(store: store).ingest(paths: [dir.path])
        #expect(summary.files.map(\.format).sorted { ($0 ?? "") < ($1 ?? "") } == ["flask", "gunicorn-error", "syslog"])
        #expect(summary.events == 7)
        #expect(try CopyLinker.link(store: store) == 3)
        #expect(try CopyLinker.link(store: store) == 0)
        #expect(try CopyLinker.countOriginals(store: store) == 4)
        let copies = try store.read { db in
            try Row.fetchAll(db, sql: """
                SELECT c.layer, s.format AS copy_format, os.format AS original_format FROM event c
                JOIN event o ON o.id = c.copy_of JOIN source s ON s.id = c.source_id JOIN source os ON os.id = o.source_id
                ORDER BY c.line
                """)
        }
        #expect(copies.map { $0["copy_format"] as String } == ["syslog", "syslog", "syslog"])
        #expect(copies.map { $0["original_format"] as String } == ["flask", "flask", "gunicorn-error"])
        // Marking runs without SQLite's foreign-key checks: every copy_of still names a stored
        // event, and the checks are on again for whatever the connection does next.
        let (violations, checks) = try store.dbQueue.writeWithoutTransaction { db in
            (try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").count, try Int.fetchOne(db, sql: "PRAGMA foreign_keys"))
        }
        #expect(violations == 0)
        #expect(checks == 1)
    }

    @Test func copiesPairByTheWrittenStampWhenTheAppFileWasReadInAnotherZone() throws {
        let dir = try TemporaryDirectory()
        let syslog = try dir.write("syslog", seedLines.joined(separator: "\n") + "\n")
        let app = try dir.write("logs/2025-02-06.log", seedLines.map { $0.components(separatedBy: "]: ")[1] }.joined(separator: "\n") + "\n")
        let store = try TimelineStore()
        _ = try Ingester(store: store).ingest(paths: [syslog])
        // A later run knows nothing of the syslog's lesson and is told the wrong zone.
        _ = try Ingester(store: store, options: ImportOptions(appTimeZone: .utc)).ingest(paths: [app])
        #expect(try CopyLinker.link(store: store) == 2)
        #expect(try CopyLinker.countOriginals(store: store) == 2)
    }

    /// Correlation never reads a source holding only copies (and system lines); one original line
    /// in it is enough to read it again.
    @Test func correlationSkipsSourcesThatHoldOnlyCopies() throws {
        let dir = try TemporaryDirectory()
        let syslog = try dir.write("syslog", (seedLines + ["Feb  6 05:40:01 ip-10-1-1-50 CRON[2157001]: (root) CMD (true)"])
            .joined(separator: "\n") + "\n")
        let appLines = seedLines.map { $0.components(separatedBy: "]: ")[1] }
        let app = try dir.write("logs/2025-02-06.log", appLines.joined(separator: "\n") + "\n")
        let store = try TimelineStore()
        _ = try Ingester(store: store).ingest(paths: [syslog, app])
        #expect(try CopyLinker.link(store: store) == 2)
        let syslogRange = try store.read { db in
            try #require(try Row.fetchOne(db, sql: "SELECT first_event_id, last_event_id FROM source WHERE path LIKE '%syslog'"))
        }
        #expect(try Correlator(store: store).copyOnlyRanges() == [(syslogRange[0] as Int64)...(syslogRange[1] as Int64)])

        // The app file lacks one line the syslog has: that line is an original, and the syslog is read.
        let other = try TimelineStore()
        let partial = try dir.write("partial/2025-02-06.log", appLines.dropLast().joined(separator: "\n") + "\n")
        _ = try Ingester(store: other).ingest(paths: [syslog, partial])
        #expect(try CopyLinker.link(store: other) == 1)
        #expect(try Correlator(store: other).copyOnlyRanges().isEmpty)
    }

    /// Copy marking skips runs that brought no app or gunicorn lines, yet an app file ingested
    /// after its syslog copies were correlated still claims them.
    @Test func anOriginalIngestedAfterItsCopiesWereCorrelatedStillClaimsThem() throws {
        let dir = try TemporaryDirectory()
        let syslog = try dir.write("syslog", seedLines.joined(separator: "\n") + "\n")
        let app = try dir.write("logs/2025-02-06.log", seedLines.map { $0.components(separatedBy: "]: ")[1] }.joined(separator: "\n") + "\n")
        let store = try TimelineStore()
        _ = try Ingester(store: store).ingest(paths: [syslog])
        #expect(try CopyLinker.link(store: store) == 0)
        try Correlator(store: store).run()
        _ = try Ingester(store: store).ingest(paths: [app])
        #expect(try CopyLinker.link(store: store) == 2)
        try Correlator(store: store).run()
        #expect(try CopyLinker.link(store: store) == 0)
        #expect(try CopyLinker.countOriginals(store: store) == 2)
    }

    /// An app that logs a burst within a few seconds has few distinct `local_time` values, so
    /// the store learns that field as common and keeps it apart from the row (`extra_common`):
    /// copies read in another zone must still pair by the stamp found there.
    @Test func copiesPairByTheWrittenStampWhenThatStampIsStoredAsACommonField() throws {
        let dir = try TemporaryDirectory()
        let count = ExtraSplitter.sightingsToDecide + 44
        let messages = (0..<count).map { n in
            "INFO 2025-02-06 14:32:4\(n % 4),500 [app] Request: GET http://example.com:443/api/item/\(n)"
        }
        let syslog = try dir.write("syslog", messages.map { message in
            "Feb  6 05:32:4\(message.dropFirst(23).prefix(1)) ip-10-1-1-50 gunicorn[2156944]: " + message
        }.joined(separator: "\n") + "\n")
        let app = try dir.write("logs/2025-02-06.log", messages.joined(separator: "\n") + "\n")
        let store = try TimelineStore()
        _ = try Ingester(store: store).ingest(paths: [syslog])
        _ = try Ingester(store: store, options: ImportOptions(appTimeZone: .utc)).ingest(paths: [app])
        let splitStamps = try store.read { db in
            try Int.fetchOne(db, sql: """
                SELECT count(*) FROM event_data WHERE extra_common IS NOT NULL
                  AND json_extract(CASE WHEN typeof(extra_common) = 'integer'
                      THEN (SELECT value FROM shared_text WHERE id = extra_common) ELSE extra_common END, '$.local_time') IS NOT NULL
                """) ?? 0
        }
        #expect(splitStamps > 0, "the burst's local_time was not learnt as common: the test no longer covers extra_common")
        #expect(try CopyLinker.link(store: store) == count)
        #expect(try CopyLinker.countOriginals(store: store) == count)
    }
}
