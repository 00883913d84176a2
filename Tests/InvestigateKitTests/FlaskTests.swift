import Foundation
import Testing
@testable import InvestigateKit

@Suite struct FlaskTests {
    @Test func exceptionWithTracebackIsOneRecordWithMethodAndPath() throws {
        let lines = [
            "[2025-02-06 14:32:45,123] ERROR in app: Exception on /api/orders [POST]",
            "Traceback (most recent call last):",
            "  File \"/srv/app/app.py\", line 1511, in wsgi_app",
            "ZeroDivisionError: division by zero",
            "[2025-02-06 14:32:46,001] INFO in routes: order 42 created",
        ]
        let sink = try parse(FlaskImporter(), lines, options: ImportOptions(appTimeZone: ZoneSpec("+0900")))
        #expect(sink.rejected.isEmpty)
        try #require(sink.events.count == 2)
        let e = sink.events[0]
        #expect(e.layer == .app && e.level == "ERROR" && e.method == "POST" && e.path == "/api/orders")
        #expect(e.line == 1 && e.lineEnd == 4)
        #expect(e.error == "ZeroDivisionError: division by zero")
        #expect(e.extra["module"] == "app")
        #expect(e.time == CivilTime.micros(year: 2025, month: 2, day: 6, hour: 5, minute: 32, second: 45, micro: 123_000))
    }

    /// A file already stored is not read again: a later `--app-tz` that differs from the zone its
    /// zone-less stamps were read in changes nothing, and the run says so instead of staying silent.
    @Test func aLaterAppZoneThatCannotApplyToAStoredFileIsReported() throws {
        let dir = try TemporaryDirectory()
        try dir.write("app/app.log", "[2025-02-06 14:32:45,123] INFO in routes: order 42 created\n")
        let store = try TimelineStore()
        let first = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions(appTimeZone: .utc))
        #expect(InputProblems.staleReadings(first.ingest).isEmpty)
        let same = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions(appTimeZone: ZoneSpec("+00:00")))
        #expect(InputProblems.staleReadings(same.ingest).isEmpty)
        let other = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions(appTimeZone: ZoneSpec("+09:00")))
        let stale = InputProblems.staleReadings(other.ingest)
        try #require(stale.count == 1)
        #expect(stale[0].reason.contains("read as UTC, not --app-tz +0900") && stale[0].reason.contains("new --db"))
        // Nothing was re-read: the record keeps its first reading.
        let time = try store.read { db in try Int64.fetchOne(db, sql: "SELECT time FROM event") }
        #expect(time == CivilTime.micros(year: 2025, month: 2, day: 6, hour: 14, minute: 32, second: 45, micro: 123_000))
    }

    @Test func theZoneAStoredFileWasReadInIsReadBackFromItsNote() {
        #expect(AppZoneReading.zone(inNotes: ["3\(AppZoneReading.marker)read as +0900 (--app-tz)"]) == "+0900")
        #expect(AppZoneReading.zone(inNotes: ["x", "2\(AppZoneReading.marker)read as UTC, the offset nginx writes in /a"]) == "UTC")
        #expect(AppZoneReading.zone(inNotes: ["1\(AppZoneReading.marker)read in this machine's zone (Europe/Berlin): no --app-tz"]) == "Europe/Berlin")
        #expect(AppZoneReading.zone(inNotes: ["read as UTC"]) == nil)
    }

    @Test(arguments: ["Exception on [GET]", "Exception on  [GET]", "Exception on [", "Exception on ]", "Exception on  []",
                      "Exception on x [GET]", "Exception on /a [get]", "Exception on /a [\u{301}GET]", "Exception on /a [GET]]"])
    func oddExceptionLinesAreReadWithoutCrashing(_ message: String) throws {
        // `Exception on [GET]` once crashed ingest: the last " [" is then the prefix's own space.
        let lines = ["[2025-02-06 14:32:45,123] ERROR in app: \(message)", "[2025-02-06 14:32:46,001] INFO in routes: ok"]
        let sink = try parse(FlaskImporter(), lines, options: ImportOptions(appTimeZone: ZoneSpec("+0900")))
        #expect(sink.rejected.isEmpty && sink.events.count == 2)
        let e = try #require(sink.events.first)
        #expect(e.message == message)
        if message == "Exception on x [GET]" { #expect(e.method == "GET" && e.path == "x") }
        if message.hasPrefix("Exception on [") || message.hasPrefix("Exception on  [") { #expect(e.method == nil && e.path == nil) }
    }

    @Test func customAppLogFormatCompiles() throws {
        let format = "%(asctime)s.%(msecs)03d %(levelname)-8s %(process)d --- [%(name)s] %(module)s: %(message)s"
        let lines = [
            "2025-02-06 14:32:45.136 INFO     2156951 --- [app.api] routes: Request: GET http://example.com/api/ping?x=1",
            "2025-02-06 14:32:45.159 WARNING  2156951 --- [app.api] routes: Response: 503 http://example.com/api/ping?x=1",
            "  continued",
        ]
        let sink = try parse(FlaskImporter(), lines, options: ImportOptions(appTimeZone: .utc, appLogFormat: format))
        #expect(sink.rejected.isEmpty)
        try #require(sink.events.count == 2)
        #expect(sink.events[0].time == CivilTime.micros(year: 2025, month: 2, day: 6, hour: 14, minute: 32, second: 45, micro: 136_000))
        #expect(sink.events[0].pid == 2156951 && sink.events[0].extra["logger"] == "app.api")
        #expect(sink.events[0].query == "x=1" && sink.events[0].method == "GET")
        #expect(sink.events[1].level == "WARNING" && sink.events[1].status == 503 && sink.events[1].lineEnd == 3)
        #expect(throws: ImporterError.self) { try PythonLogFormat("%(asctime)s %(levelname)s") }
    }

    @Test func leadingOrphanLinesAndBinaryAreRejectedWithReasons() throws {
        let lines = [
            "  File \"x.py\", line 1, in f",
            "2019-02-01 18:33:56,528 - app - INFO - Entered app",
            "bad\u{00}\u{01}",
            "ERROR:app:boom",
        ]
        let sink = try parse(FlaskImporter(), lines, options: ImportOptions(appTimeZone: .utc))
        try #require(sink.events.count == 2)
        #expect(sink.rejected.map(\.line) == [1, 3])
        #expect(sink.events[1].level == "ERROR" && sink.events[1].time == nil && sink.events[1].message == "boom")
        #expect(sink.notes.contains { $0.contains("--app-tz") })
    }

    @Test func werkzeugRequestLinesAreAppAccessRecords() throws {
        let lines = [
            "[2025-02-06 14:32:44,002] INFO in app: starting order service",
            #"127.0.0.1 - - [06/Feb/2025 14:32:45] "GET /api/orders?page=2 HTTP/1.1" 200 -"#,
            "\u{1B}[31m\u{1B}[1m::1 - - [06/Feb/2025 14:32:46] \"POST /api/orders HTTP/1.1\" 500 1234\u{1B}[0m",
        ]
        let sink = try parse(FlaskImporter(), lines, options: ImportOptions(appTimeZone: ZoneSpec("+0900")))
        #expect(sink.rejected.isEmpty)
        try #require(sink.events.count == 3)
        let get = sink.events[1], post = sink.events[2]
        #expect(get.kind == .access && get.layer == .app && get.method == "GET" && get.path == "/api/orders" && get.query == "page=2")
        #expect(get.status == 200 && get.bytes == nil && get.clientIP == "127.0.0.1")
        #expect(get.time == CivilTime.micros(year: 2025, month: 2, day: 6, hour: 5, minute: 32, second: 45))
        #expect(post.status == 500 && post.bytes == 1234 && post.peerIP == "::1" && post.method == "POST")
        // Request lines alone do not make an app log (nginx-like shapes stay with their importers).
        #expect(FlaskImporter().recognize([lines[1]], fileName: "x.log") == 0)
    }

    @Test func gunicornAccessLogIsTheGunicornLayer() throws {
        let lines = [#"172.24.0.2 - - [01/Feb/2019:18:33:56 +0000] "GET /x?y=1 HTTP/1.0" 502 14 "-" "ApacheBench/2.3""#]
        let sink = try parse(GunicornAccessImporter(), lines)
        #expect(sink.events.first?.layer == .gunicorn && sink.events.first?.status == 502 && sink.events.first?.path == "/x")
        #expect(ImporterRegistry.standard.detect(lines, fileName: "access.log").importer?.id == "nginx-access")
        #expect(ImporterRegistry.standard.detect(lines, fileName: "gunicorn-access.log").importer?.id == "gunicorn-access")
        // A folder named for gunicorn says it too (`logs/i-01/gunicorn/access.log`).
        #expect(Ingester.detectionName("/logs/i-01/gunicorn/access.log") == "gunicorn/access.log")
        #expect(ImporterRegistry.standard.detect(lines, fileName: Ingester.detectionName("/logs/i-01/gunicorn/access.log")).importer?.id == "gunicorn-access")
        #expect(ImporterRegistry.standard.detect(lines, fileName: Ingester.detectionName("/logs/i-01/nginx/access.log")).importer?.id == "nginx-access")
        #expect(Ingester.detectionName("access.log") == "access.log")
    }

    /// logrotate cut the file in the middle of a traceback: it begins with the rest of a record
    /// whose head is in the previous file. It is still a Flask log, and the leftover lines are kept.
    @Test func aLogThatBeginsWithATracebackIsStillRecognised() throws {
        let lines = [
            "Traceback (most recent call last):",
            "  File \"/srv/app/.venv/lib/python3.11/site-packages/flask/app.py\", line 1473, in wsgi_app",
            "    response = self.full_dispatch_request()",
            "  File \"/srv/app/views.py\", line 42, in order",
            "    total = order.total / order.count",
            "ZeroDivisionError: division by zero",
            "",
            "During handling of the above exception, another exception occurred:",
            "",
            "Traceback (most recent call last):",
            "  File \"/srv/app/views.py\", line 44, in order",
            "sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) server closed the connection unexpectedly",
            "INFO 2025-02-06 14:32:10,118 [app] Request: GET http://example.com:443/api/orders/7",
            "INFO 2025-02-06 14:32:10,131 [app] Response: 200 http://example.com:443/api/orders/7",
            "ERROR 2025-02-06 14:32:11,402 [app] Exception on /api/orders/8 [GET]",
        ]
        let detection = ImporterRegistry.standard.detect(lines, fileName: "2025-02-06.log")
        #expect(detection.importer?.id == "flask")
        let importer = try #require(ImporterRegistry.standard.importer(id: "flask"))
        let sink = try parse(importer, lines)
        #expect(sink.events.count >= 3)
        // The leftover traceback is evidence: kept, not dropped.
        let accounted = Set(sink.events.flatMap { Array($0.line...$0.lineEnd) } + sink.rejected.map(\.line))
        #expect(accounted.contains(1))
    }
}

/// `datefmt`s that write a zone, and lines whose layout no built-in knows: each is its own record
/// at its own instant, never folded into the record above (round 12 of the red team found
/// ISO-stamped lines vanishing into the previous record's continuation).
@Suite struct PythonStampVariantTests {
    static func utc(_ h: Int, _ m: Int, _ s: Int, _ micro: Int = 0) -> Int64 {
        CivilTime.micros(year: 2025, month: 2, day: 6, hour: h, minute: m, second: s, micro: micro)
    }

    /// The lines read as a Flask log whose zone-less stamps are in +0900.
    static func read(_ lines: [String]) throws -> RecordSink {
        try parse(FlaskImporter(), lines, options: ImportOptions(appTimeZone: ZoneSpec("+0900")))
    }

    @Test func stampsWithAZoneAreReadInIt() throws {
        let sink = try Self.read([
            "2025-02-06 14:32:47,528 - app - INFO - local, read in the app zone",
            "2025-02-06T14:32:48.529+0900 - app - WARNING - iso with T, dot ms and zone",
            "2025-02-06T14:32:49+09:00 - app - ERROR - iso with colon zone, no ms",
            "2025-02-06T05:32:50Z - app - INFO - Zulu",
            "2025-02-06 05:32:52,530 UTC - app - INFO - UTC word after the stamp",
        ])
        #expect(sink.rejected.isEmpty)
        try #require(sink.events.count == 5)
        #expect(sink.events.map(\.time) == [Self.utc(5, 32, 47, 528_000), Self.utc(5, 32, 48, 529_000), Self.utc(5, 32, 49),
                                             Self.utc(5, 32, 50), Self.utc(5, 32, 52, 530_000)])
        #expect(sink.events.map(\.level) == ["INFO", "WARNING", "ERROR", "INFO", "INFO"])
        #expect(sink.events[4].message == "UTC word after the stamp")
        // Only the zone-less stamp needed the app zone.
        #expect(sink.notes.contains { $0.hasPrefix("1 records' stamps without zone") })
    }

    @Test func aStampedLineOfAnUnknownLayoutIsARecordOfItsOwn() throws {
        let sink = try Self.read([
            "2025-02-06 14:32:45,123 - app - INFO - known layout",
            "2025-02-06T14:32:46+0900 | ERROR | payments | card declined",
            "Traceback (most recent call last):",
            "ValueError: card",
            "[2025-02-06 14:32:47] WARNING: odd layout",
        ])
        #expect(sink.rejected.isEmpty)
        try #require(sink.events.count == 3)
        #expect(sink.events[1].line == 2 && sink.events[1].lineEnd == 4 && sink.events[1].time == Self.utc(5, 32, 46))
        #expect(sink.events[1].error == "ValueError: card")
        #expect(sink.events[2].level == "WARNING" && sink.events[2].message == "odd layout" && sink.events[2].time == Self.utc(5, 32, 47))
        #expect(sink.notes.contains { $0.contains("2 lines open with a date and time but match no known layout (first at line 2)") })
    }

    /// `2025-02-06T14:32:51+09:00 INFO app: started` has rsyslog's shape, but no host is named INFO.
    @Test func aLevelWhereTheHostGoesIsNoSyslogLine() {
        let line = Array("2025-02-06T14:32:51+09:00 INFO app: request started".utf8)
        #expect(line.withUnsafeBufferPointer { SyslogPrefix.parse($0) } == nil)
        // A CloudWatch export's `stamp {json}`, with json.dumps's space after each colon (round 14
        // read an API Gateway access log as syslog, its key as the program).
        let export = Array(#"2025-05-08T09:15:00.376Z {"requestId": "ySMsp0RY59dydTQ=", "ip": "110.174.55.120", "status": "200"}"#.utf8)
        #expect(export.withUnsafeBufferPointer { SyslogPrefix.parse($0) } == nil)
        let rsyslog = Array("2025-02-06T14:32:51+09:00 web-1 app[12]: request started".utf8)
        #expect(rsyslog.withUnsafeBufferPointer { SyslogPrefix.parse($0) }?.hostname == "web-1")
    }
}
