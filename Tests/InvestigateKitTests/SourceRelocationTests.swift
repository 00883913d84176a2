import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// logrotate renames files between two runs: records cite the name their bytes have now, so a
/// cited line is the record's own line (round 13 of the red team: 1,800 of 2,500 citations named
/// `access.log` lines that by then held other requests).
@Suite struct SourceRelocationTests {
    static func lines(_ range: Range<Int>) -> String {
        range.map { i in
            "203.0.113.\(i % 200 + 1) - - [06/Feb/2025:14:\(String(format: "%02d", i / 60 % 60)):\(String(format: "%02d", i % 60)) +0000] \"GET /r/\(String(format: "%06d", i)) HTTP/1.1\" 200 5 \"-\" \"curl/8\""
        }.joined(separator: "\n") + "\n"
    }

    /// Every stored record's (file, line) as the files are now, against its original bytes.
    static func wrongCitations(_ store: TimelineStore) throws -> Int {
        let rows = try store.read { db in
            try Row.fetchAll(db, sql: "SELECT s.path, e.line, e.id FROM event e JOIN source s ON s.id = e.source_id WHERE e.copy_of IS NULL")
        }
        var wrong = 0
        for row in rows {
            let path: String = row["path"], line: Int = row["line"], id: Int64 = row["id"]
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let fileLines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
            let raw = try store.read { db in try StoredEvent.fetchAll(db, sql: "SELECT \(StoredEvent.columns) FROM event WHERE id = ?", arguments: [id]) }
            if line > fileLines.count || String(decoding: fileLines[line - 1], as: UTF8.self) != raw.first?.text { wrong += 1 }
        }
        return wrong
    }

    @Test func numberedRotationBetweenRunsMovesTheCitations() throws {
        let dir = try TemporaryDirectory()
        let store = try TimelineStore()
        let log = try dir.write("logs/access.log", Self.lines(0..<100))
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        // logrotate: access.log → access.log.1, a new access.log.
        try FileManager.default.moveItem(atPath: log, toPath: log + ".1")
        _ = try dir.write("logs/access.log", Self.lines(100..<160))
        let second = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        #expect(second.ingest.files.contains { $0.path.hasSuffix("access.log.1") && $0.notes.contains { $0.contains("renamed since") } })
        let paths = try store.read { db in try String.fetchAll(db, sql: "SELECT path FROM source ORDER BY id") }
        #expect(paths.map { ($0 as NSString).lastPathComponent } == ["access.log.1", "access.log"])
        #expect(try Self.wrongCitations(store) == 0)
        let notes = try store.read { db in try String.fetchOne(db, sql: "SELECT notes FROM source WHERE id = 1") } ?? ""
        #expect(notes.contains("read as ") && notes.contains("access.log; its bytes were found as"))
    }

    /// A copy under a second name leaves the first where it is: both still hold the bytes.
    @Test func aCopyDoesNotMoveTheOriginal() throws {
        let dir = try TemporaryDirectory()
        let store = try TimelineStore()
        let log = try dir.write("a/access.log", Self.lines(0..<50))
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        try FileManager.default.copyItem(atPath: log, toPath: dir.path + "/a/access.log.bak")
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        let first = try store.read { db in try String.fetchOne(db, sql: "SELECT path FROM source WHERE id = 1") }
        #expect(first.map { ($0 as NSString).lastPathComponent } == "access.log")
        #expect(try Self.wrongCitations(store) == 0)
    }

    /// A file edited before its end is read again whole; its unchanged records count once and the
    /// run says the file was rewritten (round 13: 1,000 records doubled, no word of it).
    @Test func aRewrittenFilesUnchangedRecordsCountOnce() throws {
        let dir = try TemporaryDirectory()
        let store = try TimelineStore()
        _ = try dir.write("logs/access.log", Self.lines(0..<100))
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        // Line 10 deleted, five lines appended: not an append to what was read.
        _ = try dir.write("logs/access.log", Self.lines(0..<9) + Self.lines(10..<105))
        let second = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        #expect(second.ingest.files.contains { $0.notes.contains { $0.contains("the file was rewritten") } })
        let counts = try store.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM event WHERE copy_of IS NULL") ?? 0,
             try Int.fetchOne(db, sql: "SELECT count(*) FROM event WHERE copy_of IS NOT NULL") ?? 0)
        }
        // 100 read first (line 10 among them), 5 new: each request once.
        #expect(counts.0 == 105 && counts.1 == 99, "\(counts)")
    }

    /// A held-back half line whose file is then renamed unchanged to `access.log.1`: the rotated
    /// copy is final, so the line is read then (rejected with its reason), never left unstored
    /// (round 13: neither an event nor a rejected line until the file was compressed).
    @Test func aHeldBackLineIsReadWhenItsFileIsRotatedUnchanged() throws {
        let dir = try TemporaryDirectory()
        let store = try TimelineStore()
        let log = try dir.write("logs/access.log", Self.lines(0..<2) + #"203.0.113.7 - - [06/Feb/2025:14:32:47 +0000] "GET /c HTT"#)
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        try FileManager.default.moveItem(atPath: log, toPath: log + ".1")
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        let (events, rejected) = try store.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM event") ?? 0, try Int.fetchAll(db, sql: "SELECT line FROM rejected"))
        }
        #expect(events == 2 && rejected == [3])
        // And once read, the next run finds it unchanged.
        let third = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        #expect(third.ingest.events == 0 && third.ingest.rejected == 0)
    }
}
