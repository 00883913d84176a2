import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// µs UTC for a civil time, for readable expectations.
private func utc(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int, _ s: Int, ms: Int = 0) -> Int64 {
    CivilTime.micros(year: y, month: mo, day: d, hour: h, minute: mi, second: s, micro: ms * 1000)
}

let seedLines = [
    "Feb  6 05:32:45 ip-10-1-1-50 gunicorn[2156944]: INFO 2025-02-06 14:32:45,136 [app] Request: GET http://example.com:443/api/ping",
    "Feb  6 05:32:45 ip-10-1-1-50 gunicorn[2156944]: INFO 2025-02-06 14:32:45,159 [app] Response: 400 http://example.com:443/api/ping",
]

/// Ingests files with the real pipeline into an in-memory timeline.
func ingestCorpus(_ relative: [String], options: ImportOptions = ImportOptions()) throws -> (IngestSummary, TimelineStore) {
    let store = try TimelineStore()
    let ingester = Ingester(store: store, options: options)
    let summary = try ingester.ingest(paths: relative.map(Corpus.path))
    return (summary, store)
}

@Suite struct SyslogFamilySampleTests {
    static let ids = ["syslog", "gunicorn-error", "gunicorn-access", "flask"]

    @Test(arguments: ids) func samplesParseAndAreDetected(id: String) throws {
        let importer = try #require(ImporterRegistry.standard.importer(id: id))
        #expect(!importer.samples.isEmpty)
        #expect(!importer.documentation.isEmpty && !importer.fieldNotes.isEmpty)
        for sample in importer.samples {
            let sink = try parse(importer, sample.lines, path: "/logs/" + sample.fileName,
                                 referenceTime: utc(2026, 1, 1, 0, 0, 0))
            #expect(sink.rejected.isEmpty, "\(id) \(sample.fileName): \(sink.rejected.map(\.reason))")
            #expect(!sink.events.isEmpty)
            let detected = ImporterRegistry.standard.detect(sample.lines, fileName: sample.fileName).importer
            #expect(detected?.id == id, "\(sample.fileName) detected as \(detected?.id ?? "nothing")")
        }
    }
}

@Suite struct SyslogTests {
    @Test func seedLinesFindTheNineHourOffsetAndTheRequestResponsePair() throws {
        let hints = IngestHints()
        let sink = try parse(SyslogImporter(), seedLines, path: "/var/log/syslog",
                             referenceTime: utc(2025, 2, 7, 0, 0, 0), hints: hints)
        #expect(sink.rejected.isEmpty)
        try #require(sink.events.count == 2)
        let request = sink.events[0], response = sink.events[1]
        #expect(request.layer == .app && response.layer == .app)
        #expect(request.method == "GET")
        #expect(request.path == "/api/ping")
        #expect(request.host == "example.com")
        #expect(request.kind == .log)
        #expect(response.status == 400)
        #expect(response.path == "/api/ping")
        #expect(response.kind == .access)
        // The embedded JST stamp, converted with the estimated +09:00, is the event time.
        #expect(request.time == utc(2025, 2, 6, 5, 32, 45, ms: 136))
        #expect(response.time == utc(2025, 2, 6, 5, 32, 45, ms: 159))
        #expect(request.altTime == utc(2025, 2, 6, 5, 32, 45))
        #expect(request.hostname == "ip-10-1-1-50" && request.program == "gunicorn" && request.pid == 2156944)
        #expect(request.level == "INFO")
        #expect(request.message == "Request: GET http://example.com:443/api/ping")
        #expect(sink.notes.contains { $0.contains("app clock is UTC+09:00 relative to the syslog host clock") })
        #expect(sink.notes.contains { $0.contains("year 2025") })
        #expect(hints.learnedAppZone()?.zone == .fixed(seconds: 9 * 3600))
    }

    @Test func appFileUsesTheZoneLearntFromSyslog() throws {
        let hints = IngestHints()
        _ = try parse(SyslogImporter(), seedLines, path: "/var/log/syslog", referenceTime: utc(2025, 2, 7, 0, 0, 0), hints: hints)
        let app = seedLines.map { $0.components(separatedBy: "]: ")[1] }
        let sink = try parse(FlaskImporter(), app, path: "/srv/app/logs/2025-02-06.log", hints: hints)
        #expect(sink.rejected.isEmpty)
        #expect(sink.events.map(\.time) == [utc(2025, 2, 6, 5, 32, 45, ms: 136), utc(2025, 2, 6, 5, 32, 45, ms: 159)])
        #expect(sink.notes.contains { $0.contains("learnt from the syslog copy") })
        let given = try parse(FlaskImporter(), app, path: "/srv/app/logs/2025-02-06.log",
                              options: ImportOptions(appTimeZone: ZoneSpec("+0100")), hints: hints)
        #expect(given.events.first?.time == utc(2025, 2, 6, 13, 32, 45, ms: 136))
        #expect(given.notes.contains { $0.contains("--app-tz") })
    }

    @Test func yearComesFromReferenceTimeAndRollsOverInsideTheFile() throws {
        let lines = [
            "Dec 31 23:59:58 web1 sshd[1]: Accepted publickey for deploy",
            "Jan  1 00:00:03 web1 sshd[1]: session closed",
        ]
        let sink = try parse(SyslogImporter(), lines, referenceTime: utc(2025, 1, 2, 0, 0, 0))
        #expect(sink.events.map(\.time) == [utc(2024, 12, 31, 23, 59, 58), utc(2025, 1, 1, 0, 0, 3)])
        #expect(sink.notes.contains { $0.contains("December back to January at line 2") })
        // A December file modified in January belongs to the previous year.
        let december = try parse(SyslogImporter(), [lines[0]], referenceTime: utc(2025, 1, 10, 0, 0, 0))
        #expect(december.events.first?.time == utc(2024, 12, 31, 23, 59, 58))
        let forced = try parse(SyslogImporter(), lines, options: ImportOptions(year: 2019), referenceTime: utc(2025, 1, 2, 0, 0, 0))
        #expect(forced.events.map(\.time) == [utc(2019, 12, 31, 23, 59, 58), utc(2020, 1, 1, 0, 0, 3)])
        #expect(forced.notes.contains { $0.contains("--year") })
    }

    @Test func yearComesFromOtherLayersWhenTheModificationTimeIsOff() throws {
        // A syslog copied into the case folder in late 2026; the nginx log beside it is dated 2023.
        let hints = IngestHints()
        hints.learnSpan(first: utc(2023, 2, 6, 0, 0, 0), last: utc(2023, 2, 6, 23, 0, 0), format: "nginx-access", from: "/case/access.log")
        hints.learnSpan(first: utc(2026, 2, 6, 0, 0, 0), last: utc(2026, 2, 6, 23, 0, 0), format: "syslog", from: "/case/other-syslog")
        let lines = ["Feb  6 05:32:45 web sshd[1]: Accepted publickey for deploy"]
        let sink = try parse(SyslogImporter(), lines, referenceTime: utc(2026, 11, 1, 0, 0, 0), hints: hints)
        #expect(sink.events.first?.time == utc(2023, 2, 6, 5, 32, 45))
        #expect(sink.notes.contains { $0.contains("dated records of other layers cover most of these days in 2023 (/case/access.log)") })
        // When the modification time's year is covered, it stands.
        let plain = try parse(SyslogImporter(), lines, referenceTime: utc(2026, 11, 1, 0, 0, 0))
        #expect(plain.events.first?.time == utc(2026, 2, 6, 5, 32, 45))
    }

    @Test func hostZoneComesFromTzAndEmbeddedGunicornKeepsItsOwnOffset() throws {
        let lines = ["Feb  6 14:32:46 ip-10-1-1-50 gunicorn[2156944]: [2025-02-06 14:32:46 +0900] [2156944] [CRITICAL] WORKER TIMEOUT (pid:2156950)"]
        let sink = try parse(SyslogImporter(), lines, options: ImportOptions(timeZone: ZoneSpec("Asia/Tokyo")), referenceTime: utc(2025, 3, 1, 0, 0, 0))
        let event = try #require(sink.events.first)
        #expect(event.layer == .gunicorn)
        #expect(event.level == "CRITICAL")
        #expect(event.extra["gunicorn_event"] == "worker_timeout")
        #expect(event.extra["worker_pid"] == "2156950")
        #expect(event.time == utc(2025, 2, 6, 5, 32, 46))
        #expect(event.altTime == utc(2025, 2, 6, 5, 32, 46))
        #expect(sink.notes.contains { $0.contains("agree with the syslog prefix") })
        #expect(sink.notes.contains { $0.contains("Asia/Tokyo (--tz)") })
    }

    /// A journal exported in the host's local time (-0400) with no --tz: the gunicorn stamps inside
    /// its lines carry -0400, so the prefixes are read in it, and systemd's restart lines land
    /// beside the gunicorn lines they belong with (read as UTC, they were four hours off).
    @Test func theHostZoneIsTheOffsetOfTheEmbeddedGunicornStamps() throws {
        let lines = [
            "May 20 10:25:00 web-1 systemd[1]: Stopping gunicorn.service - gunicorn daemon...",
            "May 20 10:25:01 web-1 gunicorn[812]: [2025-05-20 10:25:01 -0400] [812] [INFO] Handling signal: term",
            "May 20 10:25:02 web-1 gunicorn[812]: [2025-05-20 10:25:02 -0400] [812] [INFO] Shutting down: Master",
            "May 20 10:25:03 web-1 gunicorn[901]: [2025-05-20 10:25:03 -0400] [901] [INFO] Starting gunicorn 21.2.0",
            "May 20 10:25:04 web-1 sudo[900]: deploy : TTY=pts/0 ; PWD=/srv ; USER=root ; COMMAND=/usr/bin/systemctl restart gunicorn",
        ]
        let sink = try parse(SyslogImporter(), lines, referenceTime: utc(2025, 5, 21, 0, 0, 0))
        try #require(sink.events.count == 5)
        #expect(sink.events[0].time == utc(2025, 5, 20, 14, 25, 0))
        #expect(sink.events[4].time == utc(2025, 5, 20, 14, 25, 4))
        #expect(sink.notes.contains { $0.contains("read as -0400: the offset the gunicorn stamps embedded in them write") }, "\(sink.notes)")
        #expect(!sink.notes.contains { $0.contains("probably not") })
        // --tz still decides.
        let given = try parse(SyslogImporter(), lines, options: ImportOptions(timeZone: .utc), referenceTime: utc(2025, 5, 21, 0, 0, 0))
        #expect(given.events.first?.time == utc(2025, 5, 20, 10, 25, 0))
    }

    @Test func tracebackLinesOfTheSameProcessJoinTheirRecord() throws {
        let lines = [
            "Feb  6 05:32:47 web gunicorn[2156944]: [2025-02-06 14:32:47 +0900] [2156951] [ERROR] Error handling request /api/orders",
            "Feb  6 05:32:47 web gunicorn[2156944]: Traceback (most recent call last):",
            "Feb  6 05:32:47 web gunicorn[2156944]:   File \"/srv/app/app.py\", line 10, in orders",
            "Feb  6 05:32:47 web gunicorn[2156944]: KeyError: 'id'",
            "Feb  6 05:32:48 web CRON[7]: (root) CMD (true)",
            "Feb  6 05:32:49 web gunicorn[2156944]: Traceback (most recent call last):",
            "Feb  6 05:32:49 web gunicorn[2156944]: ValueError: bad",
            "Feb  6 05:32:50 web gunicorn[2156944]: [2025-02-06 14:32:50 +0900] [2156951] [ERROR] Error handling request /x#012Traceback (most recent call last):#012  File \"a.py\", line 1#012OSError: gone",
        ]
        let sink = try parse(SyslogImporter(), lines, referenceTime: utc(2025, 3, 1, 0, 0, 0))
        #expect(sink.rejected.isEmpty)
        try #require(sink.events.count == 4)
        let first = sink.events[0]
        #expect(first.line == 1 && first.lineEnd == 4)
        #expect(first.path == "/api/orders")
        #expect(first.error == "KeyError: 'id'")
        #expect(String(decoding: first.raw, as: UTF8.self) == lines[0...3].joined(separator: "\n"))
        #expect(first.extra["process_pid"] == "2156951")
        #expect(sink.events[1].layer == .system)
        let headless = sink.events[2]
        #expect(headless.layer == .gunicorn && headless.level == "ERROR" && headless.lineEnd == 7)
        #expect(headless.error == "ValueError: bad")
        #expect(sink.events[3].error == "OSError: gone")
        #expect(sink.events[3].message == "Error handling request /x")
        #expect(sink.notes.contains { $0.contains("no head line") })
    }

    @Test func systemdLinesAboutGunicornAreGunicornEvidence() throws {
        let lines = [
            "Feb  6 05:33:10 web systemd[1]: Stopping gunicorn.service - gunicorn daemon...",
            "Feb  6 05:33:10 web systemd[1]: gunicorn.service: Main process exited, code=killed, status=9/KILL",
            "Feb  6 05:33:10 web systemd[1]: gunicorn.service: Failed with result 'signal'.",
            "Feb  6 05:33:11 web systemd[1]: Started gunicorn.service - gunicorn daemon.",
            "Feb  6 05:33:12 web systemd[1]: Started Daily apt download activities.",
        ]
        let sink = try parse(SyslogImporter(), lines, referenceTime: utc(2025, 3, 1, 0, 0, 0))
        try #require(sink.events.count == 5)
        #expect(sink.events.map(\.layer) == [.gunicorn, .gunicorn, .gunicorn, .gunicorn, .system])
        #expect(sink.events.map { $0.extra["systemd"] } == ["stopped", "killed", "failed", "started", nil])
        #expect(sink.events[0].message == "Stopping gunicorn.service - gunicorn daemon...")
    }

    @Test func otherLayoutsIsoRfc5424AndJournal() throws {
        let lines = [
            "2025-02-06T05:32:45.123456+00:00 host gunicorn[2156944]: [2025-02-06 14:32:45 +0900] [1234] [INFO] Booting worker with pid: 5678",
            #"<38>1 2019-07-08T17:40:16.954167-04:00 hostname.example.com sshd 57915 - [timeQuality tzKnown="1"] Failed unknown for invalid user redmond"#,
            "2025-02-06T05:32:46+0000 host sshd[9]: Connection closed",
            "-- Boot 0b2d4ce9e8a44f43a3a5c36ab15a4e5d --",
            "Thu 2025-02-06 14:32:47 JST web gunicorn[2156944]: [2025-02-06 14:32:47 +0900] [2156944] [INFO] Handling signal: term",
        ]
        let sink = try parse(SyslogImporter(), lines)
        try #require(sink.events.count == 4)
        #expect(sink.events[0].altTime == utc(2025, 2, 6, 5, 32, 45, ms: 123) + 456)
        #expect(sink.events[0].time == utc(2025, 2, 6, 5, 32, 45))
        let rfc5424 = sink.events[1]
        #expect(rfc5424.time == utc(2019, 7, 8, 21, 40, 16, ms: 954) + 167)
        #expect(rfc5424.program == "sshd" && rfc5424.pid == 57915 && rfc5424.level == "INFO")
        #expect(rfc5424.extra["facility"] == "auth")
        #expect(rfc5424.extra["structured_data"] == #"[timeQuality tzKnown="1"]"#)
        #expect(rfc5424.message == "Failed unknown for invalid user redmond")
        #expect(sink.events[2].time == utc(2025, 2, 6, 5, 32, 46))
        #expect(sink.rejected.map(\.line) == [4])
        try #require(sink.events.count == 4)
        #expect(sink.events[3].altTime == utc(2025, 2, 6, 5, 32, 47) && sink.events[3].extra["gunicorn_event"] == "signal")
    }

    @Test func badInputIsKeptCountedAndExplained() throws {
        let lines = [
            "\tcontinuation of something before the file",
            "Feb  6 05:32:45 web sshd[1]: one",
            "Feb  6 05:32:40 web sshd[1]: earlier than the line above",
            "\u{01}\u{02}garbage\u{00}bytes",
            "Feb  6 05:32:50 web last message repeated 3 times",
            "Feb  6 05:32:51 web gunicorn.myapp.app.error: [1234] WORKER TIMEOUT (pid:5678)",
            "Feb  6 05:32:52 web gunicorn.myapp.app.error: [1234] Error handling request /a#012Traceback (most recent call last):#012  File \"a.py\", line 1#012OSError: gone",
            "Feb  6 05:32:53 web backup.py[77]: Traceback (most recent call last):",
            "Feb  6 05:32:53 web backup.py[77]:   File \"backup.py\", line 3, in <module>",
            "Feb  6 05:32:53 web backup.py[77]: PermissionError: [Errno 13] Permission denied: '/srv/backup'",
        ]
        let sink = try parse(SyslogImporter(), lines, referenceTime: utc(2025, 3, 1, 0, 0, 0))
        try #require(sink.events.count == 6 && sink.rejected.count == 2)
        #expect(sink.events[4].message == "Error handling request /a" && sink.events[4].error == "OSError: gone")
        #expect(sink.events[5].layer == .system && sink.events[5].lineEnd == 10 && sink.events[5].level == "ERROR")
        #expect(sink.events[5].error == "PermissionError: [Errno 13] Permission denied: '/srv/backup'")
        #expect(sink.rejected.map(\.line) == [1, 4])
        #expect(sink.rejected[1].reason.contains("binary"))
        #expect(sink.notes.contains { $0.contains("1 lines are earlier than the line before them") })
        #expect(sink.events[2].extra["repeats"] == "3" && sink.events[2].extra["repeated_line"] == "3")
        #expect(sink.events[3].layer == .gunicorn && sink.events[3].message == "WORKER TIMEOUT (pid:5678)")
        #expect(sink.events[3].extra["process_pid"] == "1234")
    }

    @Test func gunicornAccessLinesInsideSyslogAndWhatIsNotSyslog() throws {
        let lines = [
            #"Feb  6 05:32:45 web gunicorn[2156944]: 10.1.1.210 - - [06/Feb/2025:14:32:45 +0900] "GET /api/ping?x=1 HTTP/1.0" 400 31 "-" "curl/8.5.0""#,
            #"Feb  6 05:32:45 web tomcat.log: 10.1.1.210 - - [06/Feb/2025:14:32:45 +0900] "GET /other HTTP/1.0" 200 31 "-" "curl/8.5.0""#,
        ]
        let sink = try parse(SyslogImporter(), lines, referenceTime: utc(2025, 3, 1, 0, 0, 0))
        try #require(sink.events.count == 2)
        let access = sink.events[0]
        #expect(access.layer == .gunicorn && access.kind == .access && access.status == 400 && access.path == "/api/ping")
        #expect(access.time == utc(2025, 2, 6, 5, 32, 45) && access.altTime == utc(2025, 2, 6, 5, 32, 45))
        #expect(access.hostname == "web" && access.program == "gunicorn")
        // Only gunicorn's own lines are read as gunicorn access records.
        #expect(sink.events[1].layer == .system && sink.events[1].status == nil)
        // `aws logs tail` output has an ISO stamp too, but no host name after it.
        let tail = ["2025-02-06T05:32:45.123000+00:00 2025/02/06/[$LATEST]0123456789abcdef START RequestId: 8f5a Version: $LATEST"]
        #expect(SyslogImporter().recognize(tail, fileName: "tail.txt") == 0)
        let albConnection = [#"2024-10-04T17:05:15.514108Z 192.168.131.39 36280 443 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 4.036 "CN=amazondomains.com""#]
        #expect(SyslogImporter().recognize(albConnection, fileName: "conn.log") == 0)
    }

    @Test func appOffsetIsTheMedianRoundedToFifteenMinutes() {
        #expect(SyslogParser.roundedMedian([32_400, 32_401, 32_399, 40_000, 32_400]) == 32_400)
        #expect(SyslogParser.roundedMedian([19_790]) == 19_800)
    }
}

@Suite(.enabled(if: Corpus.available)) struct SyslogCorpusTests {
    /// (file, importer, events, rejected)
    static let expectations: [(String, String, Int, Int)] = [
        ("lnav/logfile_syslog.0", "syslog", 4, 0),
        ("lnav/logfile_syslog.1", "syslog", 4, 0),
        ("lnav/logfile_syslog.2", "syslog", 3, 0),
        ("lnav/logfile_syslog.3", "syslog", 7, 0),
        ("lnav/logfile_bad_syslog.0", "syslog", 4, 0),
        ("lnav/logfile_syslog_with_access_log.0", "syslog", 5, 0),
        ("lnav/messages.gz", "syslog", 2512, 0),
        ("lnav/python-example.0", "flask", 5, 0),
        ("fail2ban/sshd", "syslog", 155, 193),
        ("internal-tech-radar/gunicorn.log", "gunicorn-error", 864, 0),
    ]

    @Test func corpusFilesIngestWithExpectedCounts() throws {
        let (summary, _) = try ingestCorpus(Self.expectations.map(\.0))
        for (file, format, events, rejected) in Self.expectations {
            let result = try #require(summary.files.first { $0.path.hasSuffix(file) })
            #expect(result.format == format, "\(file)")
            #expect(result.events == events, "\(file)")
            #expect(result.rejected == rejected, "\(file)")
        }
    }

    @Test func yearRollOverInLogfileSyslog1() throws {
        let (_, store) = try ingestCorpus(["lnav/logfile_syslog.1"], options: ImportOptions(year: 2014))
        let times = try store.read { db in try Int64.fetchAll(db, sql: "SELECT time FROM event ORDER BY line") }
        #expect(times == [utc(2014, 12, 3, 9, 23, 38), utc(2014, 12, 3, 9, 23, 38), utc(2014, 12, 3, 9, 23, 38), utc(2015, 1, 3, 9, 47, 2)])
    }

    @Test func tabContinuationInLogfileSyslog3() throws {
        let (_, store) = try ingestCorpus(["lnav/logfile_syslog.3"])
        let rows = try store.read { db in try Row.fetchAll(db, sql: "SELECT line, line_end, message FROM event ORDER BY line") }
        try #require(rows.count == 7)
        #expect(rows.map { $0["line_end"] as Int } == [1, 2, 5, 8, 11, 14, 17])
        let third: String = rows[2]["message"]
        #expect(third.hasPrefix("Configuration Notice:\nASL Module \"com.apple.cdscheduler\""))
    }

    @Test func gunicornTracebacksAreOneRecord() throws {
        let (_, store) = try ingestCorpus(["internal-tech-radar/gunicorn.log"])
        let errors = try store.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM event WHERE error = 'NameError: global name ''db_session'' is not defined'")
        }
        #expect(errors == 224)
        let timeouts = try store.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM event WHERE json_extract(extra, '$.gunicorn_event') = 'worker_boot'") }
        #expect(timeouts == 254)
    }
}

@Suite struct SyslogHostileInputTests {
    /// Every prefix of every sample line, and the lines with bytes flipped: parsers must neither crash
    /// nor lose a line (each becomes part of an event or a rejected line).
    @Test(arguments: SyslogFamilySampleTests.ids) func truncatedAndCorruptedLinesNeverCrash(id: String) throws {
        let importer = try #require(ImporterRegistry.standard.importer(id: id))
        var lines: [String] = []
        for sample in importer.samples {
            for line in sample.lines {
                let bytes = Array(line.utf8)
                for cut in stride(from: 0, to: bytes.count, by: 1) { lines.append(String(decoding: bytes[0..<cut], as: UTF8.self)) }
                var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
                for _ in 0..<20 {
                    var mutated = bytes
                    for _ in 0..<3 where !mutated.isEmpty {
                        seed = seed &* 6364136223846793005 &+ 1442695040888963407
                        mutated[Int(seed >> 33) % mutated.count] = UInt8(truncatingIfNeeded: seed >> 17)
                    }
                    lines.append(String(decoding: mutated, as: UTF8.self))
                }
            }
        }
        let sink = try parse(importer, lines, referenceTime: 1_700_000_000_000_000)
        var covered = Set(sink.rejected.map(\.line))
        for event in sink.events { covered.formUnion(event.line...event.lineEnd) }
        let nonEmpty = lines.indices.filter { !lines[$0].isEmpty }.map { $0 + 1 }
        #expect(nonEmpty.allSatisfy(covered.contains))
    }
}
