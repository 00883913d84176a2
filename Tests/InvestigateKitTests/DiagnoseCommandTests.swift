import Foundation
import Testing
@testable import InvestigateKit

/// The main job as a user runs it: exit codes and the honest answers when there is nothing to
/// explain. Runs the debug binary `swift build` made; skips (with a message) where there is none.
@Suite struct DiagnoseCommandTests {
    func investigate(_ arguments: [String], environment: [String: String] = [:]) throws -> CLIRun? {
        try CLIRun.investigate(arguments, environment: environment)
    }

    @Test func noRecognisedInputExitsTwoAndNamesTheFiles() throws {
        let dir = try TemporaryDirectory(), db = try TemporaryDirectory()
        try dir.write("notes.txt", "hello\n")
        try dir.write("readme.log", "nothing a web stack writes\n")
        guard let r = try investigate(["--db", db.url.appendingPathComponent("x.db").path, "--at", "2025-02-06 14:32", "--tz", "UTC", dir.path]) else { return }
        #expect(r.status == 2)
        #expect(r.out.contains("0 of 2 files recognised"))
        #expect(!r.out.contains("responder"))
    }

    @Test func aWindowWithoutErrorsExitsTwoAndTheJSONSaysWhy() throws {
        let dir = try TemporaryDirectory(), db = try TemporaryDirectory()
        let lines = (0..<30).map { i in
            "198.51.100.\(i + 1) - - [06/Feb/2025:05:3\(i / 10):\(String(format: "%02d", (i % 10) * 5)) +0000] \"GET / HTTP/1.1\" 200 512 \"-\" \"curl/8.5.0\""
        }
        try dir.write("access.log", lines.joined(separator: "\n") + "\n")
        guard let r = try investigate(["--db", db.url.appendingPathComponent("x.db").path, "--at", "2025-02-06 05:31", "--tz", "UTC", "--json", dir.path]) else { return }
        #expect(r.status == 2)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        #expect(json["outcome"] as? String == "nothing-to-explain")
        #expect((json["headline"] as? String)?.contains("No 4xx/5xx response") ?? false)
        #expect((json["findings"] as? [Any])?.isEmpty ?? false)
    }

    @Test func withoutTzTheQuestionIsReadInTheLocalZoneAndSaysSo() throws {
        let dir = try TemporaryDirectory(), db = try TemporaryDirectory()
        try dir.write("access.log", "203.0.113.45 - - [06/Feb/2025:14:32:10 +0900] \"GET /app/admin HTTP/1.1\" 403 512 \"-\" \"curl/8.5.0\"\n")
        guard let r = try investigate(["--db", db.url.appendingPathComponent("x.db").path, "--at", "2025-02-06 14:32", dir.path],
                                      environment: ["TZ": "Asia/Tokyo"]) else { return }
        #expect(r.status == 0)
        #expect(r.out.contains("Asia/Tokyo, the machine's local zone"))
        #expect(r.out.contains("203.0.113.45"))
    }

    /// A truncated gzip and a file no importer recognises are input the run could not read: exit 1,
    /// each named on stderr with the reason; documentation beside the logs is not.
    @Test func partlyReadAndUnrecognisedInputExitsOne() throws {
        let dir = try TemporaryDirectory(), db = try TemporaryDirectory()
        let lines = (0..<2000).map { i in
            "198.51.100.\(i % 50 + 1) - - [06/Feb/2025:05:30:\(String(format: "%02d", i % 60)) +0000] \"GET /x\(i) HTTP/1.1\" 200 5 \"-\" \"curl/8.5.0\""
        }.joined(separator: "\n") + "\n"
        let whole = GzipInflater.gzip(Array(lines.utf8))
        try dir.write("access.log.2.gz", bytes: Array(whole.prefix(whole.count / 2)))
        try dir.write("notes.txt", "call the vendor on Monday\n")
        try dir.write("README.md", "# Logs from the incident\n")
        guard let r = try investigate(["ingest", "--db", db.url.appendingPathComponent("x.db").path, dir.path]) else { return }
        #expect(r.status == 1)
        #expect(r.err.contains("access.log.2.gz: read in part: gzip stream is truncated"))
        #expect(r.err.contains("notes.txt: skipped: format not recognised"))
        #expect(!r.err.contains("README.md"))
    }

    /// An nginx log of 04:00–07:59 UTC, one line a minute with a 403 at 05:31, and an app file
    /// named for a day days before: one is read in part around 05:31, the other not at all.
    static func writeDayAndOldFile(_ dir: TemporaryDirectory) throws {
        let lines = (0..<240).map { i in
            "198.51.100.7 - - [06/Feb/2025:\(String(format: "%02d:%02d", 4 + i / 60, i % 60)):00 +0000] \"GET /x\(i) HTTP/1.1\" \(i == 91 ? 403 : 200) 5 \"-\" \"curl/8.5.0\""
        }.joined(separator: "\n") + "\n"
        try dir.write("access.log", lines)
        try dir.write("2025-02-01.log", "INFO 2025-02-01 10:00:00,000 [app] Response: 200 http://example.com/x\n")
    }

    /// A question lists in `--json` the files it left unread (their names' stamps) and those it
    /// read for its window only, with the span stored.
    @Test func theJSONListsFilesLeftUnreadAndFilesReadInPart() throws {
        let dir = try TemporaryDirectory(), db = try TemporaryDirectory()
        try Self.writeDayAndOldFile(dir)
        guard let r = try investigate(["--db", db.url.appendingPathComponent("x.db").path, "--at", "2025-02-06 05:31", "--tz", "UTC",
                                       "--json", dir.path]) else { return }
        let json = try #require(try JSONSerialization.jsonObject(with: r.outBytes) as? [String: Any])
        let unread = try #require(json["unread"] as? [[String: Any]])
        #expect(unread.count == 1 && (unread.first?["path"] as? String)?.hasSuffix("2025-02-01.log") == true)
        #expect((unread.first?["reason"] as? String)?.hasPrefix("outside the window") == true)
        let part = try #require(json["read_in_part"] as? [[String: Any]])
        #expect(part.count == 1)
        #expect(part.first?["from"] as? String == "2025-02-06T05:09:00Z")
        #expect(part.first?["to"] as? String == "2025-02-06T05:53:00Z")
        #expect(part.first?["lines_not_stored"] as? Int == 240 - 45)
        let findings = try #require(json["findings"] as? [[String: Any]])
        #expect(findings.count == 1)
    }

    /// The report's appendix names the files left unread and says which were stored in part.
    @Test func theReportListsFilesLeftUnreadAndReadInPart() throws {
        let dir = try TemporaryDirectory(), db = try TemporaryDirectory()
        try Self.writeDayAndOldFile(dir)
        guard let r = try investigate(["report", "--db", db.url.appendingPathComponent("x.db").path, "--at", "2025-02-06 05:31", "--tz", "UTC",
                                       "--output", "-", dir.path]) else { return }
        #expect(r.status == 0)
        #expect(r.out.contains("### Files not read for this window"))
        #expect(r.out.contains("2025-02-01.log | outside the window by its name's time stamp"))
        #expect(r.out.contains("records 2025-02-06T05:09:00Z to 2025-02-06T05:53:00Z only (195 lines outside not stored)"))
    }

    /// A database kept in the folder of logs it reads (with its WAL and shared-memory files) is not
    /// input: not read, not an input problem (exit 0, nothing on stderr about it).
    @Test func theDatabaseInsideTheLogFolderIsNotInput() throws {
        let dir = try TemporaryDirectory()
        try dir.write("access.log", "203.0.113.45 - - [06/Feb/2025:14:32:10 +0900] \"GET /app/admin HTTP/1.1\" 403 512 \"-\" \"curl/8.5.0\"\n")
        let db = dir.url.appendingPathComponent("investigate.db").path
        for _ in 0..<2 {
            guard let r = try investigate(["--db", db, "--at", "2025-02-06 14:32", "--tz", "Asia/Tokyo", dir.path]) else { return }
            #expect(r.status == 0)
            #expect(!r.err.contains("investigate.db"))
            #expect(r.out.contains("answering from 1 of 1 source"))
        }
    }
}
