import Foundation
import Testing
import GRDB
@testable import InvestigateKit

/// Reading a stamp without parsing the line, and skipping the records far outside a window.
@Suite struct LineTimeScanTests {
    static func t(_ iso: String) -> Int64 { UserTime.parse(iso, zone: .utc)! }

    func stamp(_ scan: LineTimeScan, _ text: String) -> (time: Int64, exact: Bool)? {
        Array(text.utf8).withUnsafeBytes { scan.stamp($0) }
    }

    @Test func commonLogStampsAreExactWithTheirOffset() {
        let scan = LineTimeScan(.commonLog, multiline: false)
        let line = #"example.com 203.0.113.9 - - [06/Feb/2025:14:32:10 +0900] "GET / HTTP/1.1" 200 5 "-" "curl""#
        #expect(stamp(scan, line)?.time == Self.t("2025-02-06T05:32:10Z"))
        #expect(stamp(scan, line)?.exact == true)
        #expect(stamp(scan, #"203.0.113.9 - - [06/Foo/2025:14:32:10 +0900] "GET /""#) == nil)
        #expect(stamp(scan, #"{"time_local":"06/Feb/2025:14:32:10 +0900"}"#) == nil)
    }

    @Test func isoLikeStampsAreReadAsIfUTC() {
        let scan = LineTimeScan(.isoLike, multiline: true)
        #expect(stamp(scan, "INFO 2025-02-06 14:32:10,123 [app] Response: 200")?.time == Self.t("2025-02-06T14:32:10Z"))
        #expect(stamp(scan, "[2025-02-06T14:32:10 +0900] [42] [ERROR] Worker timeout")?.exact == false)
        #expect(stamp(scan, "Traceback (most recent call last):") == nil)
        #expect(stamp(scan, "  File \"/app/x.py\", line 12025-02-06 14:32:10") == nil)   // past the first 48 bytes
    }

    /// A stampless line follows its record in a multi-line format, and is parsed on its own in a
    /// single-line one; a stamp read without its zone is skipped only beyond 15 hours' slack.
    @Test func theSkipperFollowsRecordsAndAllowsForTheZone() {
        let keep = Self.t("2025-02-06T11:38:00Z")...Self.t("2025-02-06T12:22:00Z")
        func run(_ scan: LineTimeScan, _ lines: [String]) -> [Bool] {
            var skipper = OutsideLineSkipper(scan: scan, keep: keep)
            return lines.map { line in Array(line.utf8).withUnsafeBytes { skipper.skips($0) } }
        }
        let app = ["ERROR 2025-02-05 12:00:00,000 [app] boom", "Traceback (most recent call last):", "ValueError: x",
                   "INFO 2025-02-06 03:00:00,000 [app] within 15 hours", "INFO 2025-02-06 12:00:00,000 [app] in"]
        #expect(run(LineTimeScan(.isoLike, multiline: true), app) == [true, true, true, false, false])
        let access = [#"1.2.3.4 - - [05/Feb/2025:12:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "-""#,
                      "2025/02/06 12:00:00 [error] 42#42: *1 an error line among access lines",
                      #"1.2.3.4 - - [06/Feb/2025:12:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "-""#,
                      #"1.2.3.4 - - [06/Feb/2025:12:30:00 +0000] "GET / HTTP/1.1" 200 5 "-" "-""#]
        #expect(run(LineTimeScan(.commonLog, multiline: false), access) == [true, false, false, true])
    }

    /// Through ingest: a Flask log of two days asked about one hour stores that hour's records
    /// (a traceback whole), rejects nothing, and accounts for every line.
    @Test func aWindowParsesOnlyTheRecordsNearItAndAccountsForTheRest() throws {
        let dir = try TemporaryDirectory()
        var lines: [String] = []
        for hour in 0..<48 {
            let day = 5 + hour / 24, h = hour % 24
            lines.append(String(format: "ERROR 2025-02-%02d %02d:00:00,000 [app] Exception on /x [GET]", day, h))
            lines.append("Traceback (most recent call last):")
            lines.append("ValueError: bad \(hour)")
        }
        let path = try dir.write("app.log", lines.joined(separator: "\n") + "\n")
        var options = ImportOptions()
        options.appTimeZone = .utc
        options.window = Self.t("2025-02-06T11:58:00Z")...Self.t("2025-02-06T12:02:00Z")
        let store = try TimelineStore()
        let run = try Ingester(store: store, options: options).ingest(paths: [path])
        let file = try #require(run.files.first)
        #expect(file.events == 1)
        #expect(file.rejected == 0)
        let source = try #require(try store.read { try SourceRecord.fetchOne($0, sql: "SELECT * FROM source") })
        #expect(source.lines == 144)
        #expect(source.outsideLines == 141)
        let stored = try store.read { try Row.fetchOne($0, sql: "SELECT line, line_end FROM event") }
        #expect(stored?["line"] as Int? == 109 && stored?["line_end"] as Int? == 111)
        // `ingest` then adds the other 47 records, each once.
        _ = try Ingester(store: store).ingest(paths: [path])
        #expect(try store.read { try Int.fetchOne($0, sql: "SELECT count(DISTINCT line) FROM event") } == 48)
        #expect(try store.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM event") } == 48)
    }
}
