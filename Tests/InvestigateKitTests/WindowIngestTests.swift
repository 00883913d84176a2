import Foundation
import Testing
@testable import InvestigateKit

/// A question about a window stores a long file's records around the window only (the window and
/// the margin correlation needs), records which span of time it holds, and adds the rest when a
/// later question or `ingest` needs it: every record is stored exactly once, at its own line.
@Suite struct WindowIngestTests {
    static func t(_ iso: String) -> Int64 { UserTime.parse(iso, zone: .utc)! }

    /// One nginx line every 10 s from 09:00 UTC on 2025-02-06, `count` lines.
    static func log(_ lines: Range<Int>) -> String {
        lines.map { i in
            let at = t("2025-02-06T09:00:00Z") / 1_000_000 + Int64(i * 10)
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(identifier: "UTC")
            f.dateFormat = "dd/MMM/yyyy:HH:mm:ss Z"
            let stamp = f.string(from: Date(timeIntervalSince1970: TimeInterval(at)))
            return #"203.0.113.\#(i % 200) - - [\#(stamp)] "GET /item?n=\#(i) HTTP/1.1" 200 12 "-" "curl/8.5.0""#
        }.joined(separator: "\n") + "\n"
    }

    func ingest(_ store: TimelineStore, _ path: String, around at: String? = nil) throws -> IngestSummary {
        var options = ImportOptions()
        if let at { options.window = (Self.t(at) - 120_000_000)...(Self.t(at) + 120_000_000) }
        return try Ingester(store: store, options: options).ingest(paths: [path])
    }

    func count(_ store: TimelineStore, _ sql: String) throws -> Int {
        try store.read { try Int.fetchOne($0, sql: sql) ?? -1 }
    }

    /// Lines stored, and lines stored more than once (as one file's records, whatever version).
    func lines(_ store: TimelineStore) throws -> (distinct: Int, all: Int) {
        (try count(store, "SELECT count(DISTINCT line) FROM event"), try count(store, "SELECT count(*) FROM event"))
    }

    @Test func aWindowStoresItsSpanAndSaysWhatItLeftOut() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("access.log", Self.log(0..<2160))   // 09:00–15:00
        let store = try TimelineStore()
        let run = try ingest(store, path, around: "2025-02-06T12:00:00Z")
        // 12:00 ± 2 min ± 20 min margin: 11:38:00–12:22:00 inclusive, one line per 10 s.
        let expected = 22 * 60 / 10 * 2 + 1
        #expect(run.files.first?.events == expected)
        let source = try #require(try store.read { try SourceRecord.fetchOne($0, sql: "SELECT * FROM source") })
        #expect(source.covered == Self.t("2025-02-06T11:38:00Z")...Self.t("2025-02-06T12:22:00Z"))
        #expect(source.outsideLines == 2160 - expected)
        #expect(source.lines == source.events + source.outsideLines)
        #expect(source.sha256 == SHA256.hex(Array(Self.log(0..<2160).utf8)))
        #expect(run.files.first?.notes.contains { $0.contains("read for a question's window") } == true)
        #expect(try count(store, "SELECT min(time) FROM event") >= 0)
        #expect(try count(store, "SELECT count(*) FROM event WHERE time < \(Self.t("2025-02-06T11:38:00Z")) OR time > \(Self.t("2025-02-06T12:22:00Z"))") == 0)
    }

    @Test func askingAgainReadsNothingAndAnotherTimeAddsOnlyWhatIsMissing() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("access.log", Self.log(0..<2160))
        let store = try TimelineStore()
        _ = try ingest(store, path, around: "2025-02-06T12:00:00Z")
        let again = try ingest(store, path, around: "2025-02-06T12:00:00Z")
        #expect(again.files.first?.status == .unchanged)
        #expect(again.events == 0)

        // 12:10 ± 22 min overlaps the first window (11:38–12:22): only 12:22–12:32 is added.
        let later = try ingest(store, path, around: "2025-02-06T12:10:00Z")
        #expect(later.files.first?.status == .ingested)
        #expect(later.files.first?.notes.contains { $0.contains("already stored") } == true)
        let (distinct, all) = try lines(store)
        #expect(distinct == all)
        #expect(all == (54 * 60) / 10 + 1)   // 11:38:00–12:32:00

        // Both windows held: asking inside their union reads nothing.
        #expect(try ingest(store, path, around: "2025-02-06T12:05:00Z").files.first?.status == .unchanged)

        // `ingest` stores the rest: every line exactly once.
        let whole = try ingest(store, path)
        #expect(whole.files.first?.status == .ingested)
        let (d2, a2) = try lines(store)
        #expect(d2 == 2160 && a2 == 2160)
        #expect(try ingest(store, path).files.first?.status == .unchanged)
        #expect(try ingest(store, path, around: "2025-02-06T10:00:00Z").files.first?.status == .unchanged)
    }

    @Test func aFileWhollyInsideTheWindowIsStoredWhole() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("access.log", Self.log(1080..<1100))   // 12:00:00–12:03:10
        let store = try TimelineStore()
        let run = try ingest(store, path, around: "2025-02-06T12:00:00Z")
        #expect(run.files.first?.events == 20)
        let source = try #require(try store.read { try SourceRecord.fetchOne($0, sql: "SELECT * FROM source") })
        #expect(source.covered == nil)
        #expect(try ingest(store, path).files.first?.status == .unchanged)
    }

    /// The file grew after a question read it around a window: the next question reads it again
    /// and adds what is missing; no record is stored twice, and line numbers stay the file's.
    @Test func aGrownFileReadForAWindowKeepsEachRecordOnce() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("access.log", Self.log(0..<1200))   // 09:00–12:20
        let store = try TimelineStore()
        _ = try ingest(store, path, around: "2025-02-06T12:10:00Z")
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(Self.log(1200..<2160).utf8))
        try handle.close()
        let grown = try ingest(store, path, around: "2025-02-06T12:20:00Z")
        #expect(grown.files.first?.status == .ingested)
        var (distinct, all) = try lines(store)
        #expect(distinct == all)
        let misplaced = try store.read { db in
            try String.fetchAll(db, sql: "SELECT line || ': ' || CAST(raw AS TEXT) FROM events WHERE instr(CAST(raw AS TEXT), 'n=' || (line - 1) || ' ') = 0 LIMIT 3")
        }
        #expect(misplaced.isEmpty, "\(misplaced)")
        _ = try ingest(store, path)
        (distinct, all) = try lines(store)
        #expect(distinct == 2160 && all == 2160)
    }

    /// A compressed copy of a file read for a window (logrotate's `compress`) is the same content:
    /// a later question reads it and stores only what the first did not.
    @Test func aCompressedCopyOfAPartlyStoredFileAddsNoRecordTwice() throws {
        let dir = try TemporaryDirectory()
        let text = Self.log(0..<2160)
        let path = try dir.write("access.log.1", text)
        let store = try TimelineStore()
        _ = try ingest(store, path, around: "2025-02-06T12:00:00Z")
        try FileManager.default.removeItem(atPath: path)
        let gz = try dir.write("access.log.1.gz", bytes: try gzipped(Array(text.utf8)))
        _ = try ingest(store, gz, around: "2025-02-06T12:10:00Z")
        let (distinct, all) = try lines(store)
        #expect(distinct == all)
        #expect(all == (54 * 60) / 10 + 1)
    }

    func gzipped(_ bytes: [UInt8]) throws -> [UInt8] {
        let dir = try TemporaryDirectory()
        let plain = try dir.write("x", bytes: bytes)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/gzip")
        process.arguments = ["-k", "-n", plain]
        try process.run()
        process.waitUntilExit()
        return Array(try Data(contentsOf: URL(fileURLWithPath: plain + ".gz")))
    }

    /// A sparse log with no record near the window (gunicorn's error log: a boot at 09:00, a
    /// shutdown at 15:00) is still a log of that layer spanning the question, as after `ingest`:
    /// coverage counts the records read and not stored.
    @Test func aSparseLogWithNothingNearTheWindowStillCoversIt() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("gunicorn-error.log", """
            [2025-02-06 09:00:00 +0000] [42] [INFO] Starting gunicorn 21.2.0
            [2025-02-06 09:00:01 +0000] [43] [INFO] Booting worker with pid: 43
            [2025-02-06 15:00:00 +0000] [42] [INFO] Handling signal: term

            """)
        let q = DiagnosisQuery(at: Self.t("2025-02-06T12:00:00Z"))
        let windowed = try TimelineStore(), full = try TimelineStore()
        var options = ImportOptions()
        options.window = q.from...q.to
        _ = try TimelineUpdate.run(store: windowed, paths: [path], options: options)
        _ = try TimelineUpdate.run(store: full, paths: [path], options: ImportOptions())
        #expect(try count(windowed, "SELECT count(*) FROM event") == 0)
        let a = try Diagnoser(store: full).diagnose(q).coverage.first { $0.layer == "gunicorn" }
        let b = try Diagnoser(store: windowed).diagnose(q).coverage.first { $0.layer == "gunicorn" }
        #expect(a?.events == 3 && b?.events == 3)
        #expect(b?.covers(q.at) == true)
        // Completed by `ingest`, the records count once.
        _ = try TimelineUpdate.run(store: windowed, paths: [path], options: ImportOptions())
        #expect(try Diagnoser(store: windowed).diagnose(q).coverage.first { $0.layer == "gunicorn" }?.events == 3)
    }
}
