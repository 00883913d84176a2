import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// nginx access and error records in one file (fail2ban's fixtures, one file for both logs,
/// journald's output): the file is read as whichever log it is recognised as, and the other kind's
/// records are read too, as their own importer reads them.
@Suite struct MixedNginxLogTests {
    static let access = [
        #"12.34.56.78 - - [20/Jan/2015:19:53:28 +0100] "GET //pma/scripts/setup.php HTTP/1.1" 404 47 "-" "-" "-""#,
        #"7.8.9.10 - root [20/Jan/2015:01:17:07 +0100] "GET /cgi-bin/recent.cgi HTTP/1.1" 404 162 "-" "-" "-""#,
    ]
    static let errors = [
        #"2015/01/21 10:56:10 [error] 2833#0: *16336 open() "/var/www/site/cgi-bin/php4" failed (2: No such file or directory), client: 5.7.9.2, server: localhost, request: "GET /cgi-bin/php4 HTTP/1.1", host: "1.2.3.4""#,
        #"host nginx[2833]: 2015/01/21 15:02:27 [error] 2833#0: *16813 "/var/www/site/roundcube/" is not found (2: No such file or directory), client: 5.7.9.2, server: localhost, request: "GET /roundcube/ HTTP/1.1", host: "1.2.3.4""#,
    ]
    /// elastic/beats' FastCGI record: its quoted text spans three lines.
    static let fastCGI = [
        #"2019/10/30 23:26:34 [error] 205860#205860: *180289 FastCGI sent in stderr: "PHP message: PHP Warning:  Declaration of FEE_Field_Terms::wrap() should be compatible with FEE_Field_Post::wrap() in /var/www/web/post.php on line 0"#,
        #"PHP message: PHP Warning:  Declaration of FEE_Field_Tags::wrap() should be compatible with FEE_Field_Terms::wrap() in /var/www/web/post.php on line 0" while reading response header from upstream, client: 192.0.2.9, server: example.com, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php/php-fpm.sock:", host: "example.com""#,
    ]

    func local(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int, _ s: Int, offsetHours: Int) -> Int64 {
        CivilTime.micros(year: y, month: mo, day: d, hour: h, minute: mi, second: s) - Int64(offsetHours) * 3_600_000_000
    }

    @Test func errorRecordsInAnAccessLogAreRead() throws {
        let lines = Self.access + Self.errors + Self.fastCGI + [Self.access[0]]
        #expect(ImporterRegistry.standard.detect(Self.access + Self.access + Self.errors, fileName: "nginx-botsearch").importer?.id == "nginx-access")
        let sink = try parse(NginxAccessImporter(), lines)
        #expect(sink.rejected.isEmpty, "\(sink.rejected.map(\.reason))")
        #expect(sink.events.map(\.kind) == [.access, .access, .log, .log, .log, .access])
        let error = sink.events[2], journal = sink.events[3], fast = sink.events[4]
        // Zone-less stamps in the offset of the file's own access lines.
        #expect(error.time == local(2015, 1, 21, 10, 56, 10, offsetHours: 1))
        #expect(error.clientIP == "5.7.9.2" && error.path == "/cgi-bin/php4" && error.extra["errno"] == "2" && error.layer == .nginx)
        #expect(journal.hostname == "host" && journal.program == "nginx" && journal.path == "/roundcube/")
        #expect(fast.line == 5 && fast.lineEnd == 6 && fast.clientIP == "192.0.2.9")
        #expect(sink.notes.contains { $0.contains("+0100, the offset of the file's own access-log lines") })
    }

    @Test func zoneOfErrorRecordsFromTzElseUTC() throws {
        let given = try parse(NginxAccessImporter(), Self.access + Self.errors, options: ImportOptions(timeZone: ZoneSpec("+0900")))
        #expect(given.events[2].time == local(2015, 1, 21, 10, 56, 10, offsetHours: 9))
        #expect(given.notes.contains { $0.contains("from --tz") })
        // An error record before any access line: UTC, and the note says so.
        let first = try parse(NginxAccessImporter(), Self.errors + Self.access)
        #expect(first.events[0].time == local(2015, 1, 21, 10, 56, 10, offsetHours: 0))
        #expect(first.notes.contains { $0.contains("as UTC") })
    }

    /// Inside an error record's open quote, a line that is an access record ends the record.
    @Test func anAccessLineEndsAnOpenErrorRecord() throws {
        let sink = try parse(NginxAccessImporter(), [Self.access[0], Self.fastCGI[0], Self.access[1], Self.fastCGI[1]])
        #expect(sink.events.map(\.kind) == [.access, .log, .access])
        #expect(sink.rejected.count == 1 && sink.rejected[0].line == 4)
    }

    @Test func accessRecordsInAnErrorLogAreRead() throws {
        let lines = Self.errors + Self.fastCGI + [Self.errors[0], Self.access[0]]
        #expect(ImporterRegistry.standard.detect(lines, fileName: "error.log").importer?.id == "nginx-error")
        let sink = try parse(NginxErrorImporter(), lines, options: ImportOptions(timeZone: .utc))
        #expect(sink.rejected.isEmpty, "\(sink.rejected.map(\.reason))")
        #expect(sink.events.map(\.kind) == [.log, .log, .log, .log, .access])
        let access = try #require(sink.events.last)
        #expect(access.clientIP == "12.34.56.78" && access.status == 404 && access.time == local(2015, 1, 20, 19, 53, 28, offsetHours: 1))
        #expect(sink.events[2].lineEnd == 4)
    }

    /// Where only one kind is read (gunicorn's access log, detection), the other kind is rejected
    /// with a reason that says what the line is.
    @Test func theOtherKindIsNamedWhereItIsNotRead() throws {
        let gunicorn = try parse(GunicornAccessImporter(), [Self.errors[0]], path: "/var/log/gunicorn-access.log")
        #expect(gunicorn.rejected.first?.reason == "an nginx error-log record in an access log")
        var plain = NginxAccessParser(directory: "", learnZone: nil)
        var sink = RecordSink()
        Line.with(Self.errors[1], number: 1) { plain.consume($0, into: &sink) }
        #expect(sink.rejected.first?.reason == "an nginx error-log record in an access log")
        var error = NginxErrorParser(zone: .utc, zoneNote: nil)
        var errorSink = RecordSink()
        Line.with(Self.access[0], number: 1) { error.consume($0, into: &errorSink) }
        #expect(errorSink.rejected.first?.reason == "an nginx access-log record in an error log")
        // Detection still tells the two apart: a pure error log is no access log, and back.
        #expect(NginxAccessImporter().recognize(Self.errors, fileName: "access.log") == 0)
        #expect(NginxErrorImporter().recognize(Self.access, fileName: "error.log") == 0)
    }

    @Test(.enabled(if: Corpus.available && Corpus.exists("fail2ban/nginx-botsearch")))
    func fail2banBotsearch() throws {
        let store = try TimelineStore()
        let summary = try Ingester(store: store).ingest(paths: [Corpus.path("fail2ban/nginx-botsearch")])
        let result = try #require(summary.files.first)
        #expect(result.format == "nginx-access" && result.events == 14 && result.rejected == 15)
        let kinds = try store.read { db in try String.fetchAll(db, sql: "SELECT kind FROM event ORDER BY line") }
        #expect(kinds.filter { $0 == "log" }.count == 6)
        let reasons = try store.read { db in try String.fetchAll(db, sql: "SELECT DISTINCT reason FROM rejected") }
        #expect(reasons.allSatisfy { $0.hasPrefix("comment line") }, "\(reasons)")
    }
}
