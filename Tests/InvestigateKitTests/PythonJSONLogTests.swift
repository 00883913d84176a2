import Foundation
import Testing
@testable import InvestigateKit

/// Application logs as JSON lines: python-json-logger's and structlog's usual keys.
@Suite struct PythonJSONLogTests {
    @Test func requestFieldsAreReadAndZonelessStampsTakeTheAppZone() throws {
        let importer = PythonJSONLogImporter()
        let sink = try parse(importer, importer.samples[0].lines, options: ImportOptions(appTimeZone: ZoneSpec("+08:00")))
        #expect(sink.rejected.isEmpty)
        try #require(sink.events.count == 2)
        let access = sink.events[0]
        #expect(access.kind == .access && access.layer == .app)
        #expect(access.time == CivilTime.micros(year: 2026, month: 7, day: 8, hour: 7, minute: 14, second: 1, micro: 721_000))
        #expect(access.extra["local_time"] == "2026-07-08 15:14:01,721")
        #expect(access.method == "GET" && access.path == "/healthz" && access.status == 200 && access.duration == 71_600)
        #expect(access.clientIP == "188.167.13.19" && access.requestID == "612dd272d1371c17149d439536b3216f")
        #expect(access.level == "INFO" && access.message == "GET /healthz 200" && access.extra["logger"] == "billing.access")
        // A line that names no duration is a log line of the request, not its access record.
        let warning = sink.events[1]
        #expect(warning.kind == .log && warning.level == "WARNING" && warning.extra["user_id"] == "42")
        #expect(sink.notes.contains { $0.contains("read as +0800 (--app-tz)") })
    }

    @Test func aZonedStampKeepsItsZoneAndATracebackNamesTheError() throws {
        let importer = PythonJSONLogImporter()
        let sink = try parse(importer, importer.samples[1].lines)
        let e = try #require(sink.events.first)
        #expect(e.time == CivilTime.micros(year: 2026, month: 7, day: 8, hour: 6, minute: 14, second: 5, micro: 120_000))
        #expect(e.extra["local_time"] == nil && sink.notes.isEmpty)
        #expect(e.path == "/api/v1/orders" && e.query == "x=1" && e.status == 500 && e.kind == .log)
        #expect(e.error == "KeyError: 'sku'" && e.message == "request finished" && e.level == "ERROR")
    }

    @Test(arguments: [
        ("not json at all", "not a JSON object"),
        (#"{"asctime": "yesterday", "levelname": "INFO", "message": "x"}"#, "no readable time"),
        (#"{"levelname": "INFO", "message": "x""#, "JSON"),
    ])
    func unreadableLinesAreRejectedWithTheirReason(_ c: (String, String)) throws {
        let sink = try parse(PythonJSONLogImporter(), [c.0])
        #expect(sink.events.isEmpty)
        let r = try #require(sink.rejected.first)
        #expect(r.reason.contains(c.1))
    }

    @Test func oddValuesAreKeptNotGuessed() throws {
        let line = #"{"timestamp": "2026-07-08T06:14:05+02:00", "level": "info", "msg": "x", "status": 999, "remote_addr": "unix:/run/app.sock", "path": "relative/p", "method": "GET /", "ctx": {"a": [1, 2]}}"#
        let e = try #require(try parse(PythonJSONLogImporter(), [line]).events.first)
        #expect(e.time == CivilTime.micros(year: 2026, month: 7, day: 8, hour: 4, minute: 14, second: 5, micro: 0))
        #expect(e.status == nil && e.extra["status"] == "999")
        #expect(e.clientIP == nil && e.extra["remote_addr"] == "unix:/run/app.sock")
        #expect(e.path == nil && e.extra["url"] == "relative/p" && e.method == nil)
        #expect(e.extra["ctx"] == #"{"a":[1,2]}"#)
    }

    @Test func onlyJSONLogsAreRecognised() {
        let importer = PythonJSONLogImporter()
        #expect(importer.recognize(importer.samples[0].lines, fileName: "app.log") == 1)
        #expect(importer.recognize([#"{"timestamp": 1751950000, "message": "x"}"#], fileName: "x") == 0)
        #expect(importer.recognize(["[2025-02-06 14:32:45,123] ERROR in app: boom"], fileName: "x") == 0)
    }
}
