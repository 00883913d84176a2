import Foundation
import Testing
@testable import InvestigateKit

/// An app log whose zone-less stamps were read in a guessed zone is moved to the zone at which its
/// request lines meet nginx's access records, and only then.
@Suite struct AppZoneAlignmentTests {
    /// 2025-11-04 09:00:00 UTC.
    static let base: Int64 = 1_762_246_800_000_000

    static func clf(_ t: Int64) -> String {
        let parts = TimeFormat.display(t, zone: .utc, millis: false).split(separator: " ")
        let d = parts[0].split(separator: "-")
        return "\(d[2])/Nov/\(d[0]):\(parts[1]) +0000"
    }

    /// Python's `asctime` for a UTC moment written in a zone `offset` seconds east.
    static func asctime(_ t: Int64, offset: Int) -> String {
        let shown = TimeFormat.display(t + Int64(offset) * 1_000_000, zone: .utc).split(separator: " ")
        return "\(shown[0]) \(shown[1].replacingOccurrences(of: ".", with: ","))"
    }

    /// Forty requests to distinct paths over twenty minutes, seen by nginx (UTC) and by the app,
    /// which writes its wall clock in `appOffset`; one 500 at 09:12:33 with its traceback, and an
    /// unrelated app error two seconds before it by the app's clock read as UTC.
    static func incident(appOffset: Int, path: (Int) -> String = { "/api/orders/\($0)" }) -> [String: String] {
        var nginx: [(Int64, String)] = [], app: [(Int64, String)] = []
        for i in 0..<40 {
            let t = base + Int64(i) * 30_000_000 + 1_000_000
            nginx.append((t, "198.51.100.\(i + 1) - - [\(clf(t))] \"GET \(path(i)) HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0\""))
            app.append((t - 400_000, "[\(asctime(t - 400_000, offset: appOffset))] INFO in routes: GET \(path(i)) user=\(i)"))
        }
        let failed = base + 753_000_000  // 09:12:33
        nginx.append((failed, "203.0.113.88 - - [\(clf(failed))] \"POST /api/checkout HTTP/1.1\" 500 265 \"-\" \"Mozilla/5.0\""))
        app.append((failed - 300_000, "[\(asctime(failed - 300_000, offset: appOffset))] ERROR in app: Exception on /api/checkout [POST]\nTraceback (most recent call last):\n  File \"/srv/app/checkout.py\", line 112, in apply_coupon\ndecimal.DivisionByZero: [<class 'decimal.DivisionByZero'>]"))
        // The decoy: an error the app logged at 09:12:31 of its own clock.
        let decoy = failed - 2_000_000 - Int64(appOffset) * 1_000_000
        app.append((decoy, "[\(asctime(decoy, offset: appOffset))] ERROR in mailer: failed to send receipt\nTimeoutError: timed out"))
        return ["nginx/access.log": nginx.sorted { $0.0 < $1.0 }.map(\.1).joined(separator: "\n") + "\n",
                "app/app.log": app.sorted { $0.0 < $1.0 }.map(\.1).joined(separator: "\n") + "\n"]
    }

    func ingest(_ files: [String: String], options: ImportOptions = ImportOptions()) throws -> (TimelineStore, [String]) {
        let dir = try TemporaryDirectory()
        for (name, text) in files { try dir.write(name, text) }
        let store = try TimelineStore()
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: options)
        let notes = try store.read { db in try String.fetchOne(db, sql: "SELECT notes FROM source WHERE format = 'flask'") } ?? ""
        return (store, (try? JSONDecoder().decode([String].self, from: Data(notes.utf8))) ?? [])
    }

    @Test func anAppLogWrittenInAnotherZoneIsMovedToIt() throws {
        let (store, notes) = try ingest(Self.incident(appOffset: 19_800))  // +05:30
        #expect(notes.contains { $0.contains("read as +0530, the offset at which the app's request lines meet") }, "\(notes)")
        #expect(notes.contains { $0.hasPrefix(AppZoneAlignment.checkedNote + "moved by -5.5 h") })
        // The app's request lines now sit just before nginx's records of them.
        let t = try store.read { db in try Int64.fetchOne(db, sql: "SELECT time FROM event WHERE layer = 'app' AND message LIKE 'Exception on%'") }
        #expect(t == Self.base + 753_000_000 - 300_000)
        let d = try Diagnoser(store: store).diagnose(DiagnosisQuery(at: Self.base + 753_000_000, zone: .utc, status: StatusFilter("500")))
        let f = try #require(d.findings.first)
        #expect(f.responder == "app" && f.cause == "app" && f.explanation.contains("DivisionByZero"), "\(f.explanation)")
        #expect(d.notes.contains { $0.contains("read as +0530") })
    }

    /// Read for a question's window only, the app log is still read far enough either side for the
    /// move to find the records the window needs.
    @Test func aWindowedQuestionReadsEnoughOfTheAppLogToMoveIt() throws {
        let dir = try TemporaryDirectory()
        for (name, text) in Self.incident(appOffset: 19_800) { try dir.write(name, text) }
        let store = try TimelineStore()
        let q = DiagnosisQuery(at: Self.base + 753_000_000, zone: .utc, status: StatusFilter("500"))
        var options = ImportOptions()
        options.window = q.from...q.to
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: options)
        let f = try #require(try Diagnoser(store: store).diagnose(q).findings.first)
        #expect(f.cause == "app" && f.explanation.contains("DivisionByZero"), "\(f.explanation)")
    }

    @Test func anAppLogReadInItsOwnZoneStays() throws {
        let (store, notes) = try ingest(Self.incident(appOffset: 0))
        #expect(notes.contains { $0.hasPrefix(AppZoneAlignment.checkedNote + "its request lines meet the access records at the zone it was read in") }, "\(notes)")
        let t = try store.read { db in try Int64.fetchOne(db, sql: "SELECT time FROM event WHERE layer = 'app' AND message LIKE 'Exception on%'") }
        #expect(t == Self.base + 753_000_000 - 300_000)
    }

    /// One path probed every 30 s all day, by nginx's and the app's clocks alike, meets at every
    /// half-hour shift: nothing is clear, nothing moves.
    @Test func aPeriodicProbeDecidesNothing() throws {
        var nginx: [String] = [], app: [String] = []
        for i in 0..<2880 {
            let t = Self.base + Int64(i) * 30_000_000 + 1_000_000
            nginx.append("10.0.0.1 - - [\(Self.clf(t))] \"GET /api/ping HTTP/1.1\" 200 2 \"-\" \"probe\"")
            app.append("[\(Self.asctime(t - 400_000, offset: 19_800))] INFO in routes: GET /api/ping user=0")
        }
        let (_, notes) = try ingest(["nginx/access.log": nginx.joined(separator: "\n") + "\n", "app/app.log": app.joined(separator: "\n") + "\n"])
        #expect(notes.contains { $0.contains("stays a guess") }, "\(notes)")
        #expect(notes.contains { $0.contains("read as UTC") })
    }

    @Test func aGivenAppZoneIsNeverSecondGuessed() throws {
        let (_, notes) = try ingest(Self.incident(appOffset: 19_800), options: ImportOptions(appTimeZone: .utc))
        #expect(!notes.contains { $0.hasPrefix(AppZoneAlignment.checkedNote) })
        #expect(notes.contains { $0.contains("read as UTC (--app-tz)") })
    }

    @Test func requestPathsAreReadFromCommonMessageShapes() {
        #expect(AppZoneAlignment.requestPath("GET /api/me user=3") == "/api/me")
        #expect(AppZoneAlignment.requestPath("request finished: POST /orders?x=1 201 12ms") == "/orders")
        #expect(AppZoneAlignment.requestPath("\"DELETE /items/7 HTTP/1.1\" 204") == "/items/7")
        #expect(AppZoneAlignment.requestPath("FORGET /x") == nil)
        #expect(AppZoneAlignment.requestPath("no request here") == nil)
    }
}
