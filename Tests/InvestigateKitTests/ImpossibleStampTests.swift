import Foundation
import Testing
@testable import InvestigateKit

/// Stamps no clock writes are rejected or kept without a time, never moved to a neighbouring
/// instant in silence (round 12 of the red team: `14:00:60` stored as 14:01:00, `+2500` read as an
/// offset, `Feb 29` of a non-leap year stored as 1 March).
@Suite struct ImpossibleStampTests {
    @Test func aSixtiethSecondIsALeapSecondOnlyAtTheHoursEnd() {
        #expect(CivilTime.isValid(year: 2016, month: 12, day: 31, hour: 23, minute: 59, second: 60))
        #expect(CivilTime.isValid(year: 2016, month: 12, day: 31, hour: 8, minute: 59, second: 60))
        #expect(!CivilTime.isValid(year: 2025, month: 3, day: 10, hour: 14, minute: 0, second: 60))
    }

    @Test func offsetsBeyondFourteenHoursAreNoZone() {
        func clf(_ text: String) -> (Int64, Int)? { Array(text.utf8).withUnsafeBufferPointer { ByteScanner.clfTime($0) } }
        #expect(clf("10/Mar/2025:14:00:09 +1400")?.1 == 14 * 3600)
        #expect(clf("10/Mar/2025:14:00:09 -1200")?.1 == -12 * 3600)
        #expect(clf("10/Mar/2025:14:00:09 +2500") == nil)
        #expect(clf("10/Mar/2025:14:00:09 +0075") == nil)
        #expect(clf("10/Mar/2025:14:00:60 +0000") == nil)
    }

    @Test func nginxRejectsTheLinesWithTheirReason() throws {
        let sink = try parse(NginxAccessImporter(), [
            #"203.0.113.7 - - [10/Mar/2025:14:00:09 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8""#,
            #"203.0.113.7 - - [10/Mar/2025:14:00:60 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8""#,
            #"203.0.113.7 - - [10/Mar/2025:14:00:09 +2500] "GET / HTTP/1.1" 200 5 "-" "curl/8""#,
        ])
        #expect(sink.events.count == 1 && sink.rejected.count == 2)
    }

    /// The year of `Feb 29` comes from the file's time: when that year has no 29 February the line
    /// is kept without a time, with the problem named, and a note tells the user.
    @Test func aLeapDayInAYearWithoutOneHasNoTime() throws {
        let march = CivilTime.micros(year: 2025, month: 3, day: 1, hour: 0, minute: 0, second: 0)
        let sink = try parse(SyslogImporter(), [
            "Feb 28 12:00:00 web1 CRON[3000]: (root) CMD (ok)",
            "Feb 29 12:00:00 web1 CRON[3000]: (root) CMD (leap)",
        ], path: "/var/log/syslog", referenceTime: march)
        try #require(sink.events.count == 2)
        #expect(sink.events[0].time == CivilTime.micros(year: 2025, month: 2, day: 28, hour: 12, minute: 0, second: 0))
        #expect(sink.events[1].time == nil && sink.events[1].extra["time_problem"]?.contains("no leap year") == true)
        #expect(sink.notes.contains { $0.contains("stamped Feb 29 in 2025") })
        // In a leap year it is an ordinary day.
        let leap = try parse(SyslogImporter(), ["Feb 29 12:00:00 web1 CRON[3000]: (root) CMD (leap)"], path: "/var/log/syslog",
                             referenceTime: CivilTime.micros(year: 2024, month: 3, day: 1, hour: 0, minute: 0, second: 0))
        #expect(leap.events.first?.time == CivilTime.micros(year: 2024, month: 2, day: 29, hour: 12, minute: 0, second: 0))
    }

    /// gunicorn and Python records with an impossible stamp: rejected with their continuation
    /// lines, not folded into the record above (a WORKER TIMEOUT vanished into "Booting worker").
    @Test func aPythonRecordWithAnImpossibleStampIsRejectedWhole() throws {
        let sink = try parse(try #require(ImporterRegistry.standard.importer(id: "gunicorn-error")), [
            "[2025-02-06 14:32:45 +0000] [1637] [INFO] Booting worker with pid: 7214",
            "[2025-02-30 14:32:47 +0000] [1637] [CRITICAL] WORKER TIMEOUT (pid:7214)",
            "  a continuation of the rejected record",
            "2025-02-06 25:00:00,001 ERROR app: hour 25",
            "[2025-02-06 14:32:49 +0000] [7300] [INFO] Booting worker with pid: 7300",
        ])
        #expect(sink.events.map(\.line) == [1, 5] && sink.events[0].lineEnd == 1)
        #expect(sink.rejected.map(\.line) == [2, 3, 4])
        #expect(sink.rejected.first?.reason.contains("impossible date or time") == true)
    }
}

/// A duration whose unit the log does not say is not read in a guessed unit (round 15: structlog's
/// `"duration": 60012` stored as 16.7 hours, a µs `request_time` as 1.9 years).
@Suite struct DurationUnitTests {
    @Test func nginxRequestTimeWithoutAFractionIsNotSeconds() throws {
        let sink = try parse(NginxAccessImporter(), [
            #"{"remote_addr":"203.0.113.7","time_local":"06/Feb/2025:14:32:45 +0000","request":"GET / HTTP/1.1","status":"200","request_time":"60012345"}"#,
            #"{"remote_addr":"203.0.113.7","time_local":"06/Feb/2025:14:32:46 +0000","request":"GET / HTTP/1.1","status":"200","request_time":"0.052"}"#,
            #"203.0.113.7 - - [06/Feb/2025:14:32:47 +0000] "GET / HTTP/1.1" 200 5 "-" "ua" rt=1500"#,
        ])
        try #require(sink.events.count == 3)
        #expect(sink.events[0].duration == nil && sink.events[0].extra["request_time"] == "60012345")
        #expect(sink.events[1].duration == 52_000)
        #expect(sink.events[2].duration == nil && sink.events[2].extra["rt"] == "1500")
    }

    @Test func aWholeNumberDurationInAJSONAppLogStaysText() throws {
        let sink = try parse(try #require(ImporterRegistry.standard.importer(id: "python-json")), [
            #"{"timestamp": "2025-02-06T14:32:45.100Z", "level": "info", "event": "request", "method": "GET", "path": "/a", "status": 200, "duration": 60012}"#,
            #"{"timestamp": "2025-02-06T14:32:46.100Z", "level": "info", "event": "request", "method": "GET", "path": "/b", "status": 200, "duration": 0.0123}"#,
        ])
        try #require(sink.events.count == 2)
        #expect(sink.events[0].duration == nil && sink.events[0].extra["duration"] == "60012")
        #expect(sink.events[1].duration == 12_300)
        #expect(sink.notes.contains { $0.contains("whole number") })
    }
}
